//! GPT-2 as the decoder of a `VisionEncoderDecoderModel` (weights under `decoder.`), after
//! `transformers/models/gpt2/modeling_gpt2.py` with `add_cross_attention`.
//!
//! GPT-2 stores its projections as `Conv1D`, weight `[in, out]`: they are transposed on the
//! host at load into the `[out, in]` the shared [`Linear`] reads, so the matmul and its
//! epilogues are the same as every other family's. `attn.c_attn` is already Q‖K‖V fused;
//! each layer's `crossattention.c_attn` (K‖V over the memory) is stacked with the other
//! layers' into one projection, so the image is projected once for all layers. Pre-LN blocks
//! (`ln_1`, `ln_cross_attn`, `ln_2`), learned positions `wpe` from position 0, `ln_f`, and
//! `lm_head` tied to `wte`. Scores are scaled by 1/sqrt(head_dim) (`scale_attn_weights`), and
//! by 1/(layer + 1) more with `scale_attn_by_inverse_layer_idx`.

use std::path::Path;

use seqbridge_gpu::ops::matmul::Activation;
use serde::Deserialize;

use crate::decoder::TransformerDecoder;
use crate::error::{Error, Result};
use crate::io::json::token_ids;
use crate::io::{HostData, Vars};
use crate::nn::{
    CrossAttention, CrossBlock, Embedding, FeedForward, Heads, Linear, Loader, Norm, PositionTable,
    SelfAttention, TextEmbedding, TransformerLayer,
};

/// The decoder sub-config (`GPT2Config`): the fields the decoder reads.
#[derive(Clone, Debug, Deserialize)]
pub struct Gpt2Config {
    pub vocab_size: usize,
    pub n_positions: usize,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_inner: Option<usize>,
    pub activation_function: Option<String>,
    pub layer_norm_epsilon: Option<f64>,
    pub add_cross_attention: Option<bool>,
    pub scale_attn_weights: Option<bool>,
    pub scale_attn_by_inverse_layer_idx: Option<bool>,
    pub tie_word_embeddings: Option<bool>,
    pub bos_token_id: Option<u32>,
    #[serde(default, deserialize_with = "token_ids")]
    pub eos_token_id: Option<Vec<u32>>,
    pub pad_token_id: Option<u32>,
}

impl Gpt2Config {
    /// Checks the sizes (keys named as `{prefix}.key`) and returns the activation.
    pub fn validate(&self, path: &Path, prefix: &str) -> Result<Activation> {
        use crate::arch::limits::*;
        let ranges = [
            ("vocab_size", self.vocab_size, 1, VOCAB),
            ("n_positions", self.n_positions, 1, POSITIONS),
            ("n_embd", self.n_embd, 1, WIDTH),
            ("n_layer", self.n_layer, 1, LAYERS),
            ("n_head", self.n_head, 1, HEADS),
            ("n_inner", self.inner(), 1, FFN),
        ];
        for (key, value, min, max) in ranges {
            crate::arch::check_range(path, &format!("{prefix}.{key}"), value, min, max)?;
        }
        let err = |msg: String| Error::Config {
            path: path.to_path_buf(),
            msg,
        };
        if !self.n_embd.is_multiple_of(self.n_head) {
            return Err(err(format!(
                "{prefix}.n_embd {} is not divisible by {prefix}.n_head {}",
                self.n_embd, self.n_head
            )));
        }
        if self.add_cross_attention != Some(true) {
            return Err(err(format!(
                "{prefix}.add_cross_attention is not true: a GPT-2 decoder without cross-attention cannot read the encoder"
            )));
        }
        let ids = self
            .eos_token_id
            .iter()
            .flatten()
            .map(|&t| ("eos_token_id", t))
            .chain(self.bos_token_id.map(|t| ("bos_token_id", t)))
            .chain(self.pad_token_id.map(|t| ("pad_token_id", t)));
        crate::arch::check_tokens(path, self.vocab_size, ids)?;
        let act = self.activation_function.as_deref().unwrap_or("gelu_new");
        crate::arch::bart::parse_activation(act)
            .ok_or_else(|| err(format!("unsupported {prefix}.activation_function {act:?}")))
    }

    /// The MLP's hidden width (`n_inner`, default 4·n_embd).
    pub fn inner(&self) -> usize {
        self.n_inner.unwrap_or(4 * self.n_embd)
    }

    fn heads(&self, layer: usize) -> Heads {
        let head_dim = self.n_embd / self.n_head;
        let mut scale = if self.scale_attn_weights.unwrap_or(true) {
            (head_dim as f32).powf(-0.5)
        } else {
            1.0
        };
        if self.scale_attn_by_inverse_layer_idx == Some(true) {
            scale /= (layer + 1) as f32;
        }
        Heads {
            num_heads: self.n_head,
            head_dim,
            scale,
        }
    }
}

/// `[rows, cols]` row-major → `[cols, rows]`.
fn transpose(m: &HostData, rows: usize, cols: usize) -> HostData {
    fn t<T: Copy>(v: &[T], rows: usize, cols: usize) -> Vec<T> {
        (0..cols)
            .flat_map(|c| (0..rows).map(move |r| v[r * cols + c]))
            .collect()
    }
    match m {
        HostData::F32(v) => HostData::F32(t(v, rows, cols)),
        HostData::F16(v) => HostData::F16(t(v, rows, cols)),
    }
}

/// `Conv1D` `{name}.weight` `[in, out]` (transposed to `[out, in]`) and `{name}.bias` `[out]`.
fn conv1d(v: &Vars, name: &str, inp: usize, out: usize) -> Result<(HostData, Vec<f32>)> {
    let v = v.pp(name);
    let w = v.matrix("weight", &[inp, out])?;
    Ok((transpose(&w, inp, out), v.f32("bias", &[out])?))
}

/// A `Conv1D` as a [`Linear`].
fn linear(ld: &Loader, v: &Vars, name: &str, inp: usize, out: usize) -> Result<Linear> {
    let (w, b) = conv1d(v, name, inp, out)?;
    Linear::from_host(ld, &w, Some(&b), out, inp)
}

/// Loads the decoder under `vars` (`decoder.` of a VisionEncoderDecoderModel), attending one
/// memory of width `n_embd`.
pub fn build_decoder(
    cfg: &Gpt2Config,
    act: Activation,
    ld: &Loader,
    vars: &Vars,
) -> Result<TransformerDecoder> {
    let d = cfg.n_embd;
    let eps = cfg.layer_norm_epsilon.unwrap_or(1e-5) as f32;
    let tr = vars.pp("transformer");
    let ln = |v: &Vars, name: &str| Norm::layer(ld, v, name, d, eps);
    let layer_vars: Vec<Vars> = (0..cfg.n_layer).map(|i| tr.pp(&format!("h.{i}"))).collect();
    let layers = layer_vars
        .iter()
        .enumerate()
        .map(|(l, v)| {
            let heads = cfg.heads(l);
            let attn = v.pp("attn");
            let cross = v.pp("crossattention");
            let mlp = v.pp("mlp");
            Ok(TransformerLayer {
                self_attn: SelfAttention {
                    qkv_proj: linear(ld, &attn, "c_attn", d, 3 * d)?,
                    out_proj: linear(ld, &attn, "c_proj", d, d)?,
                    heads,
                },
                self_attn_norm: ln(v, "ln_1")?,
                cross: vec![CrossBlock {
                    attn: CrossAttention {
                        q_proj: linear(ld, &cross, "q_attn", d, d)?,
                        out_proj: linear(ld, &cross, "c_proj", d, d)?,
                        heads,
                        source: 0,
                        slot: l,
                    },
                    norm: ln(v, "ln_cross_attn")?,
                }],
                ffn: FeedForward::Plain {
                    fc1: linear(ld, &mlp, "c_fc", d, cfg.inner())?,
                    fc2: linear(ld, &mlp, "c_proj", cfg.inner(), d)?,
                    act,
                },
                ffn_norm: ln(v, "ln_2")?,
                norm_first: true,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    // Every layer's cross K‖V `[2D, D]`, stacked in layer (slot) order.
    let mut kv_w: Option<HostData> = None;
    let mut kv_b = Vec::with_capacity(cfg.n_layer * 2 * d);
    for v in &layer_vars {
        let (w, b) = conv1d(&v.pp("crossattention"), "c_attn", d, 2 * d)?;
        match &mut kv_w {
            None => kv_w = Some(w),
            Some(all) => all.extend(w),
        }
        kv_b.extend(b);
    }
    let kv_w = kv_w.unwrap_or(HostData::F32(Vec::new()));
    let cross_kv_proj = Linear::from_host(ld, &kv_w, Some(&kv_b), cfg.n_layer * 2 * d, d)?;

    let vocab = cfg.vocab_size;
    let tokens = Embedding::from_host(ld, &tr.pp("wte").matrix("weight", &[vocab, d])?, vocab, d)?;
    let lm_head = if cfg.tie_word_embeddings.unwrap_or(true) {
        tokens.as_linear(None, ld)?
    } else {
        Linear::load(ld, vars, "lm_head", vocab, d, false)?
    };
    let n_pos = cfg.n_positions;
    ld.check_table("decoder.transformer.wpe", n_pos, d)?;
    let wpe = tr.pp("wpe").f32("weight", &[n_pos, d])?;
    Ok(TransformerDecoder {
        embed: TextEmbedding {
            tokens,
            positions: Some(PositionTable {
                table: ld.upload_f32(&wpe, &[n_pos, d])?,
                offset: 0,
                max_positions: n_pos,
            }),
            scale: 1.0,
            norm: None,
        },
        layers,
        final_norm: Some(ln(&tr, "ln_f")?),
        lm_head,
        cross_kv_proj: vec![cross_kv_proj],
        position_bias: Vec::new(),
        d_model: d,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::json::parse_json;
    use serde_json::json;

    #[test]
    fn conv1d_weights_are_transposed() {
        let m = HostData::F32(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let HostData::F32(t) = transpose(&m, 2, 3) else {
            unreachable!()
        };
        assert_eq!(t, vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    }

    #[test]
    fn config_is_checked() {
        let base = json!({"vocab_size": 50, "n_positions": 16, "n_embd": 12, "n_layer": 2,
                          "n_head": 3, "add_cross_attention": true, "eos_token_id": 49});
        let parse = |v: serde_json::Value| -> Gpt2Config {
            parse_json(Path::new("c.json"), &v.to_string()).unwrap()
        };
        let path = Path::new("c.json");
        assert_eq!(
            parse(base.clone()).validate(path, "decoder").unwrap(),
            Activation::GeluTanh
        );
        let c = parse(base.clone());
        assert_eq!((c.inner(), c.heads(1).head_dim), (48, 4));
        let mut v = base.clone();
        v["add_cross_attention"] = json!(false);
        let e = parse(v).validate(path, "decoder").unwrap_err().to_string();
        assert!(e.contains("decoder.add_cross_attention"), "{e}");
        let mut v = base.clone();
        v["eos_token_id"] = json!(50);
        let e = parse(v).validate(path, "decoder").unwrap_err().to_string();
        assert!(e.contains("eos_token_id 50"), "{e}");
        let mut v = base;
        v["scale_attn_by_inverse_layer_idx"] = json!(true);
        let h = parse(v).heads(1);
        assert!((h.scale - 0.25).abs() < 1e-7, "{h:?}");
    }
}
