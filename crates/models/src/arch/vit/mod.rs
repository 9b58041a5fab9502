//! ViT's image encoder, after `transformers/models/vit/modeling_vit.py`, as the encoder of a
//! `VisionEncoderDecoderModel` (weights under `encoder.`), and DeiT's
//! (`modeling_deit.py`), which is ViT with a second leading token, `distillation_token`.
//!
//! `embeddings.patch_embeddings.projection` is a `Conv2d` whose kernel equals its stride, so
//! it is a matmul over non-overlapping patches: the host lays the pixels out as patch rows
//! (im2col without overlap: a permutation, done while the upload is prepared) and one matmul
//! projects them. The leading rows of every image (`[CLS]`, and DeiT's distillation token)
//! are left zero, and one table `[T + P, D]` made at load holds what is added to each row:
//! `cls_token + position_embeddings[0]` (then `distillation_token + position_embeddings[1]`),
//! and `projection.bias + position_embeddings[T + i]` for patch i. Then the shared pre-LN
//! layers (`layernorm_before`, `attention.attention.{query,key,value}`,
//! `attention.output.dense`, `layernorm_after`, `intermediate.dense` with GELU,
//! `output.dense`) and the final `layernorm`. Every patch is valid (no key masking). The
//! pooler is not used by an encoder-decoder and is not loaded.

use std::path::Path;

use seqbridge_gpu::ops::elementwise::add;
use seqbridge_gpu::ops::matmul::Activation;
use seqbridge_gpu::{DType, Recorder, Tensor};
use serde::Deserialize;

use crate::encoder::{Encoder, EncoderInput, Memory, PatchGrid, unpadded_stack};
use crate::error::{Error, Result};
use crate::io::Vars;
use crate::nn::{
    FeedForward, Heads, Linear, Loader, Norm, Scratch, SelfAttention, TransformerLayer,
};

/// A size given as one number (square) or `[height, width]`.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Side {
    Square(usize),
    Pair([usize; 2]),
}

impl Side {
    /// (height, width).
    pub fn hw(self) -> (usize, usize) {
        match self {
            Side::Square(s) => (s, s),
            Side::Pair([h, w]) => (h, w),
        }
    }
}

/// The encoder sub-config of a ViT `VisionEncoderDecoderModel` (`ViTConfig`).
#[derive(Clone, Debug, Deserialize)]
pub struct VitConfig {
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub hidden_act: Option<String>,
    pub layer_norm_eps: Option<f64>,
    pub image_size: Side,
    pub patch_size: Side,
    pub num_channels: Option<usize>,
    pub qkv_bias: Option<bool>,
}

impl VitConfig {
    /// Checks the sizes (keys named as `{prefix}.key`) and returns the activation.
    pub fn validate(&self, path: &Path, prefix: &str) -> Result<Activation> {
        use crate::arch::limits::*;
        let (ih, iw) = self.image_size.hw();
        let (ph, pw) = self.patch_size.hw();
        let ranges = [
            ("hidden_size", self.hidden_size, 1, WIDTH),
            ("num_hidden_layers", self.num_hidden_layers, 1, LAYERS),
            ("num_attention_heads", self.num_attention_heads, 1, HEADS),
            ("intermediate_size", self.intermediate_size, 1, FFN),
            ("num_channels", self.channels(), 1, 16),
            ("image_size", ih.max(iw), 1, MAX_IMAGE_SIDE),
            ("patch_size", ph.max(pw), 1, MAX_IMAGE_SIDE),
        ];
        for (key, value, min, max) in ranges {
            crate::arch::check_range(path, &format!("{prefix}.{key}"), value, min, max)?;
        }
        let err = |msg: String| Error::Config {
            path: path.to_path_buf(),
            msg,
        };
        if ph > ih || pw > iw || ph == 0 || pw == 0 {
            return Err(err(format!(
                "{prefix}.patch_size {ph}×{pw} does not fit {prefix}.image_size {ih}×{iw}"
            )));
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(err(format!(
                "{prefix}.hidden_size {} is not divisible by {prefix}.num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            )));
        }
        let act = self.hidden_act.as_deref().unwrap_or("gelu");
        crate::arch::bart::parse_activation(act)
            .ok_or_else(|| err(format!("unsupported {prefix}.hidden_act {act:?}")))
    }

    pub fn channels(&self) -> usize {
        self.num_channels.unwrap_or(3)
    }

    /// Patches along (height, width): the convolution drops what does not fill a patch.
    pub fn grid(&self) -> (usize, usize) {
        let ((ih, iw), (ph, pw)) = (self.image_size.hw(), self.patch_size.hw());
        (ih / ph, iw / pw)
    }

    /// Positions of the encoder's output: the leading tokens and the patches.
    pub fn seq_len(&self, leading: usize) -> usize {
        let (gh, gw) = self.grid();
        leading + gh * gw
    }
}

/// ViT proper, or DeiT (a distillation token after `[CLS]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    Vit,
    Deit,
}

impl Variant {
    /// The learned tokens before the patches, by weight name under `embeddings`.
    fn leading(self) -> &'static [&'static str] {
        match self {
            Variant::Vit => &["cls_token"],
            Variant::Deit => &["cls_token", "distillation_token"],
        }
    }
}

/// Largest image or patch side a config may give.
const MAX_IMAGE_SIDE: usize = 1 << 14;

/// ViT's image encoder, with `enc_to_dec_proj` when the decoder is narrower or wider.
pub struct VitEncoder {
    /// `projection` as a linear over patch rows `[D, C·ph·pw]`, without bias (in the table).
    pub patch_proj: Linear,
    /// f32 `[T + P, D]`: what is added to each position after the projection.
    pub embed_table: Tensor,
    /// Leading token rows before the patches (T: 1, DeiT 2).
    pub leading: usize,
    pub layers: Vec<TransformerLayer>,
    pub layernorm: Norm,
    /// `enc_to_dec_proj` `[D_dec, D]`: applied to the states the decoder reads.
    pub proj: Option<Linear>,
    pub channels: usize,
    pub image: (usize, usize),
    pub patch: (usize, usize),
    pub grid: (usize, usize),
    pub d_model: usize,
}

impl VitEncoder {
    /// Loads the encoder under `vars` (`encoder.` of a VisionEncoderDecoderModel);
    /// `proj`: the `enc_to_dec_proj` to apply to its output, if any.
    pub fn load(
        cfg: &VitConfig,
        variant: Variant,
        act: Activation,
        ld: &Loader,
        vars: &Vars,
        proj: Option<Linear>,
    ) -> Result<VitEncoder> {
        let d = cfg.hidden_size;
        let eps = cfg.layer_norm_eps.unwrap_or(1e-12) as f32;
        let (c, (ph, pw)) = (cfg.channels(), cfg.patch_size.hw());
        let names = variant.leading();
        let s = cfg.seq_len(names.len());
        let emb = vars.pp("embeddings");
        let conv = emb.pp("patch_embeddings").pp("projection");
        let w = conv.matrix("weight", &[d, c, ph, pw])?;
        let bias = conv.f32("bias", &[d])?;
        let tokens = names
            .iter()
            .map(|n| emb.f32(n, &[1, 1, d]))
            .collect::<Result<Vec<_>>>()?;
        let mut table = emb.f32("position_embeddings", &[1, s, d])?;
        for (i, row) in table.chunks_exact_mut(d).enumerate() {
            let add = tokens.get(i).unwrap_or(&bias);
            row.iter_mut().zip(add).for_each(|(x, a)| *x += a);
        }
        ld.check_table("encoder.embeddings.position_embeddings", s, d)?;
        let heads = Heads {
            num_heads: cfg.num_attention_heads,
            head_dim: d / cfg.num_attention_heads,
            scale: ((d / cfg.num_attention_heads) as f32).powf(-0.5),
        };
        let qkv_bias = cfg.qkv_bias.unwrap_or(true);
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| {
                let v = vars.pp("encoder").pp(&format!("layer.{i}"));
                let (att, out) = (v.pp("attention").pp("attention"), v.pp("attention"));
                let parts = [(&att, "query"), (&att, "key"), (&att, "value")];
                Ok(TransformerLayer {
                    self_attn: SelfAttention {
                        qkv_proj: Linear::load_fused(ld, &parts, d, d, qkv_bias)?,
                        out_proj: Linear::load(ld, &out.pp("output"), "dense", d, d, true)?,
                        heads,
                    },
                    self_attn_norm: Norm::layer(ld, &v, "layernorm_before", d, eps)?,
                    cross: Vec::new(),
                    ffn: FeedForward::Plain {
                        fc1: Linear::load(
                            ld,
                            &v.pp("intermediate"),
                            "dense",
                            cfg.intermediate_size,
                            d,
                            true,
                        )?,
                        fc2: Linear::load(
                            ld,
                            &v.pp("output"),
                            "dense",
                            d,
                            cfg.intermediate_size,
                            true,
                        )?,
                        act,
                    },
                    ffn_norm: Norm::layer(ld, &v, "layernorm_after", d, eps)?,
                    norm_first: true,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(VitEncoder {
            patch_proj: Linear::from_host(ld, &w, None, d, c * ph * pw)?,
            embed_table: ld.upload_f32(&table, &[s, d])?,
            leading: names.len(),
            layers,
            layernorm: Norm::layer(ld, vars, "layernorm", d, eps)?,
            proj,
            channels: c,
            image: cfg.image_size.hw(),
            patch: (ph, pw),
            grid: cfg.grid(),
            d_model: d,
        })
    }

    /// Positions of the output: the leading tokens and the patches.
    pub fn seq_len(&self) -> usize {
        self.leading + self.grid.0 * self.grid.1
    }

    /// Width of the states the decoder reads.
    pub fn out_dim(&self) -> usize {
        self.proj.as_ref().map_or(self.d_model, |p| p.out_features)
    }

    /// (pixels, batch) of a pixel input, checked against the model.
    fn pixels<'a>(&self, input: &EncoderInput<'a>) -> Result<(&'a [f32], usize)> {
        let EncoderInput::Pixels {
            data,
            batch,
            channels,
            height,
            width,
        } = *input
        else {
            return Err(Error::Input(
                "the ViT encoder reads pixel values, not token ids or audio features".into(),
            ));
        };
        if batch == 0 {
            return Err(Error::Input("no images given".into()));
        }
        let (h, w) = self.image;
        if (channels, height, width) != (self.channels, h, w) {
            return Err(Error::Input(format!(
                "pixel values of {channels} channels × {height} × {width}; the model reads {} × {h} × {w} (image_size of its config)",
                self.channels
            )));
        }
        if data.len() != batch * channels * height * width {
            return Err(Error::Input(format!(
                "{} pixel values for [{batch}, {channels}, {height}, {width}]",
                data.len()
            )));
        }
        Ok((data, batch))
    }

    /// Patch rows `[B·(T + P), C·ph·pw]` (the T leading rows of each image zero), columns
    /// in the convolution weight's `(c, ky, kx)` order.
    fn patch_rows(&self, data: &[f32], batch: usize) -> Vec<f32> {
        let (c, (h, w), (ph, pw), (gh, gw)) = (self.channels, self.image, self.patch, self.grid);
        let cols = c * ph * pw;
        let s = self.seq_len();
        let mut out = vec![0f32; batch * s * cols];
        for b in 0..batch {
            let img = &data[b * c * h * w..(b + 1) * c * h * w];
            for (p, row) in out[b * s * cols..(b + 1) * s * cols]
                .chunks_exact_mut(cols)
                .skip(self.leading)
                .enumerate()
            {
                let (y0, x0) = ((p / gw) * ph, (p % gw) * pw);
                debug_assert!(p / gw < gh);
                for ch in 0..c {
                    for ky in 0..ph {
                        let src = ch * h * w + (y0 + ky) * w + x0;
                        let dst = ch * ph * pw + ky * pw;
                        row[dst..dst + pw].copy_from_slice(&img[src..src + pw]);
                    }
                }
            }
        }
        out
    }
}

impl Encoder for VitEncoder {
    fn check(&self, input: &EncoderInput) -> Result<()> {
        self.pixels(input).map(|_| ())
    }

    fn patch_grid(&self) -> Option<PatchGrid> {
        Some(PatchGrid {
            leading: self.leading,
            rows: self.grid.0,
            cols: self.grid.1,
            patch: self.patch,
            image: self.image,
        })
    }

    fn encode(&self, rec: &mut Recorder, input: &EncoderInput) -> Result<Memory> {
        let (data, b) = self.pixels(input)?;
        let gpu = rec.gpu().clone();
        let (d, s) = (self.d_model, self.seq_len());
        let cols = self.patch_proj.in_features;
        let rows = gpu.upload(&self.patch_rows(data, b), &[b * s, cols])?;
        let projected = gpu.empty(&[b * s, d], DType::F32)?;
        self.patch_proj.apply(rec, &rows, &projected)?;
        let mut scratch = Scratch::new(&gpu, &self.layers, b * s, d)?;
        scratch.res.reset();
        add(rec, &projected, &self.embed_table, scratch.res.cur())?;
        let lengths = unpadded_stack(rec, &self.layers, &mut scratch, (b, s, d), &self.layernorm)?;
        let (states, dim) = match &self.proj {
            Some(p) => {
                let out = gpu.empty(&[b * s, p.out_features], DType::F32)?;
                p.apply(rec, scratch.res.cur(), &out)?;
                (out, p.out_features)
            }
            None => (scratch.res.cur().clone(), d),
        };
        Ok(Memory {
            row_lengths: vec![s; b],
            states: states.reshape(&[b, s, dim])?,
            lengths,
            batch: b,
            len: s,
            dim,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::json::parse_json;
    use serde_json::json;

    fn cfg(v: serde_json::Value) -> VitConfig {
        parse_json(Path::new("config.json"), &v.to_string()).unwrap()
    }

    fn tiny() -> serde_json::Value {
        json!({"hidden_size": 12, "num_hidden_layers": 1, "num_attention_heads": 3,
               "intermediate_size": 20, "image_size": [10, 14], "patch_size": 4})
    }

    #[test]
    fn grid_drops_partial_patches() {
        let c = cfg(tiny());
        assert_eq!(c.grid(), (2, 3));
        assert_eq!((c.seq_len(1), c.seq_len(2)), (7, 8));
        assert_eq!(
            c.validate(Path::new("c.json"), "encoder").unwrap(),
            Activation::Gelu
        );
    }

    #[test]
    fn config_errors_name_the_key() {
        let path = Path::new("c.json");
        let mut v = tiny();
        v["num_attention_heads"] = json!(5);
        let e = cfg(v).validate(path, "encoder").unwrap_err().to_string();
        assert!(e.contains("encoder.num_attention_heads 5"), "{e}");
        let mut v = tiny();
        v["patch_size"] = json!(16);
        let e = cfg(v).validate(path, "encoder").unwrap_err().to_string();
        assert!(e.contains("encoder.patch_size 16×16"), "{e}");
        let mut v = tiny();
        v["hidden_act"] = json!("mish");
        let e = cfg(v).validate(path, "encoder").unwrap_err().to_string();
        assert!(e.contains("encoder.hidden_act"), "{e}");
    }
}
