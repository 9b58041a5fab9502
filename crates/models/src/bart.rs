//! The BART family on the GPU, after `transformers/models/bart/modeling_bart.py`.
//!
//! Marian, mBART, Pegasus and M2M100 are BART with switches (their modeling files are
//! largely "Copied from transformers.models.bart"): pre- or post-layer-norm blocks,
//! `layernorm_embedding`, final encoder/decoder layer norms, learned or sinusoidal positions,
//! `embed_scale`, `final_logits_bias`. One implementation here, configured by
//! [`ModelConfig`]; the per-family differences live in `marian.rs`, `mbart.rs`, `pegasus.rs`
//! and `m2m_100.rs`.
//!
//! Load-time fusions (the only departures from HF's module layout):
//! - every self-attention's `q_proj`, `k_proj`, `v_proj` → one `[3D, D]` `in_proj`;
//! - every decoder layer's `encoder_attn.k_proj` / `v_proj` → one `[L·2D, D]`
//!   `BartDecoder::encoder_attn_kv_proj`, so the encoder output is projected once, in one
//!   matmul, for all layers.

use seqbridge_gpu::ops::attention::{Attention, SeqLayout, attention};
use seqbridge_gpu::ops::matmul::Activation;
use seqbridge_gpu::{DType, Gpu, Recorder, Tensor};

use crate::config::{ModelConfig, Positions};
use crate::error::Result;
use crate::layers::{Embedding, LayerNorm, Linear, Loader, PositionTable, Residual, embed_tokens};
use crate::weights::Vars;
use crate::{m2m_100, marian};

/// `BartAttention`. Self-attention: `in_proj` = q_proj ‖ k_proj ‖ v_proj `[3D, D]`.
/// Cross-attention (`encoder_attn`): `in_proj` = q_proj `[D, D]`; its k_proj/v_proj live in
/// [`BartDecoder::encoder_attn_kv_proj`].
pub struct BartAttention {
    pub in_proj: Linear,
    pub out_proj: Linear,
    pub num_heads: usize,
    pub head_dim: usize,
}

impl BartAttention {
    fn load_self(ld: &Loader, vars: &Vars, d: usize, heads: usize) -> Result<BartAttention> {
        Ok(BartAttention {
            in_proj: Linear::load_fused(
                ld,
                &[(vars, "q_proj"), (vars, "k_proj"), (vars, "v_proj")],
                d,
                d,
            )?,
            out_proj: Linear::load(ld, vars, "out_proj", d, d, true)?,
            num_heads: heads,
            head_dim: d / heads,
        })
    }

    fn load_cross(ld: &Loader, vars: &Vars, d: usize, heads: usize) -> Result<BartAttention> {
        Ok(BartAttention {
            in_proj: Linear::load(ld, vars, "q_proj", d, d, true)?,
            out_proj: Linear::load(ld, vars, "out_proj", d, d, true)?,
            num_heads: heads,
            head_dim: d / heads,
        })
    }

    fn scaling(&self) -> f32 {
        (self.head_dim as f32).powf(-0.5)
    }
}

/// A sub-layer with its residual connection and layer norm, pre- or post-norm:
/// pre: `x = x + f(LN(x))`; post: `x = LN(x + f(x))`. `f(input, out, residual)` must end
/// with a matmul whose epilogue adds `residual` into `out`.
fn residual_block(
    rec: &mut Recorder,
    normalize_before: bool,
    ln: &LayerNorm,
    res: &mut Residual,
    normed: &Tensor,
    f: impl FnOnce(&mut Recorder, &Tensor, &Tensor, &Tensor) -> Result<()>,
) -> Result<()> {
    if normalize_before {
        ln.forward(rec, res.cur(), normed)?;
        f(rec, normed, res.other(), res.cur())?;
        res.swap();
    } else {
        f(rec, res.cur(), normed, res.cur())?;
        ln.forward(rec, normed, res.cur())?;
    }
    Ok(())
}

/// `fc1 → activation → fc2 (+ residual)`.
fn feed_forward(
    rec: &mut Recorder,
    (fc1, fc2): (&Linear, &Linear),
    act: Activation,
    input: &Tensor,
    hidden: &Tensor,
    out: &Tensor,
    residual: &Tensor,
) -> Result<()> {
    fc1.forward(rec, input, hidden, act, None, 0)?;
    fc2.forward(rec, hidden, out, Activation::None, Some(residual), 0)
}

/// `BartEncoderLayer`.
pub struct BartEncoderLayer {
    pub self_attn: BartAttention,
    pub self_attn_layer_norm: LayerNorm,
    pub fc1: Linear,
    pub fc2: Linear,
    pub final_layer_norm: LayerNorm,
}

/// `BartDecoderLayer`.
pub struct BartDecoderLayer {
    pub self_attn: BartAttention,
    pub self_attn_layer_norm: LayerNorm,
    pub encoder_attn: BartAttention,
    pub encoder_attn_layer_norm: LayerNorm,
    pub fc1: Linear,
    pub fc2: Linear,
    pub final_layer_norm: LayerNorm,
}

/// `BartEncoder`.
pub struct BartEncoder {
    pub embed_tokens: Embedding,
    pub embed_positions: PositionTable,
    pub embed_scale: f32,
    pub layernorm_embedding: Option<LayerNorm>,
    pub layers: Vec<BartEncoderLayer>,
    /// The final `layer_norm` of pre-norm families.
    pub layer_norm: Option<LayerNorm>,
}

/// `BartDecoder`.
pub struct BartDecoder {
    pub embed_tokens: Embedding,
    pub embed_positions: PositionTable,
    pub embed_scale: f32,
    pub layernorm_embedding: Option<LayerNorm>,
    pub layers: Vec<BartDecoderLayer>,
    pub layer_norm: Option<LayerNorm>,
    /// `layers[l].encoder_attn.{k_proj, v_proj}` for every l, stacked: `[L·2D, D]`, rows
    /// `l·2D .. l·2D + D` the K of layer l, the next D its V.
    pub encoder_attn_kv_proj: Linear,
}

/// `BartForConditionalGeneration`: the encoder-decoder plus `lm_head` (its bias is
/// `final_logits_bias`, when the family has one).
pub struct BartForConditionalGeneration {
    pub config: ModelConfig,
    pub encoder: BartEncoder,
    pub decoder: BartDecoder,
    pub lm_head: Linear,
}

/// Encoder activations of one call: `batch` sources right-padded to `src_len` tokens.
pub struct EncoderBuffers {
    pub batch: usize,
    pub src_len: usize,
    /// u32 `[B, S]` source ids (padding: pad_token_id).
    pub ids: Tensor,
    /// u32 `[B]` real source lengths (keys past them are masked).
    pub lengths: Tensor,
    /// 2 × f32 `[B·S, D]`: the residual stream.
    pub res: Residual,
    /// f32 `[B·S, D]`: layer-norm outputs (pre-norm) or pre-norm sums (post-norm).
    pub normed: Tensor,
    /// f32 `[B·S, 3D]`: fused Q/K/V of the current layer.
    pub qkv: Tensor,
    /// f32 `[B·S, D]`: attention output before out_proj.
    pub attn: Tensor,
    /// f32 `[B·S, F]`: fc1 output.
    pub ffn: Tensor,
    /// f32 `[B, S, L·2D]`: every decoder layer's cross-attention K and V, computed once.
    pub cross_kv: Tensor,
}

impl EncoderBuffers {
    pub fn new(
        gpu: &Gpu,
        cfg: &ModelConfig,
        batch: usize,
        src_len: usize,
    ) -> Result<EncoderBuffers> {
        let (d, rows) = (cfg.d_model, batch * src_len);
        let f32s = |shape: &[usize]| gpu.empty(shape, DType::F32);
        Ok(EncoderBuffers {
            batch,
            src_len,
            ids: gpu.empty(&[batch, src_len], DType::U32)?,
            lengths: gpu.empty(&[batch], DType::U32)?,
            res: Residual::new(f32s(&[rows, d])?, f32s(&[rows, d])?),
            normed: f32s(&[rows, d])?,
            qkv: f32s(&[rows, 3 * d])?,
            attn: f32s(&[rows, d])?,
            ffn: f32s(&[rows, cfg.encoder_ffn_dim])?,
            cross_kv: f32s(&[batch, src_len, cfg.decoder_layers * 2 * d])?,
        })
    }
}

/// Decoder activations of one call: `rows` sequences (sources × beams) fed `q_len` tokens
/// per pass, with a self-attention cache of `t_cap` positions.
pub struct DecoderBuffers {
    pub rows: usize,
    pub q_len: usize,
    pub t_cap: usize,
    /// u32 `[N, Q]` input tokens of this pass.
    pub ids: Tensor,
    /// 2 × f32 `[N·Q, D]`: the residual stream.
    pub res: Residual,
    /// f32 `[N·Q, D]`.
    pub normed: Tensor,
    /// f32 `[N·Q, D]`: attention output before out_proj.
    pub attn: Tensor,
    /// f32 `[N·Q, D]`: cross-attention queries.
    pub cross_q: Tensor,
    /// f32 `[N·Q, F]`: fc1 output.
    pub ffn: Tensor,
    /// Per decoder layer, f32 `[N, Tcap, 3D]`: the fused Q/K/V of every position, written by
    /// the in_proj matmul straight into the cache (Q of past positions is dead space).
    pub self_qkv_cache: Vec<Tensor>,
    /// f32 `[N·Q, V]`.
    pub logits: Tensor,
}

impl DecoderBuffers {
    pub fn new(
        gpu: &Gpu,
        cfg: &ModelConfig,
        rows: usize,
        q_len: usize,
        t_cap: usize,
    ) -> Result<DecoderBuffers> {
        let (d, n) = (cfg.d_model, rows * q_len);
        let f32s = |shape: &[usize]| gpu.empty(shape, DType::F32);
        Ok(DecoderBuffers {
            rows,
            q_len,
            t_cap,
            ids: gpu.empty(&[rows, q_len], DType::U32)?,
            res: Residual::new(f32s(&[n, d])?, f32s(&[n, d])?),
            normed: f32s(&[n, d])?,
            attn: f32s(&[n, d])?,
            cross_q: f32s(&[n, d])?,
            ffn: f32s(&[n, cfg.decoder_ffn_dim])?,
            self_qkv_cache: (0..cfg.decoder_layers)
                .map(|_| f32s(&[rows, t_cap, 3 * d]))
                .collect::<seqbridge_gpu::Result<Vec<_>>>()?,
            logits: f32s(&[n, cfg.decoder_vocab_size])?,
        })
    }
}

/// The encoder side a decoder pass attends to.
pub struct CrossInputs<'a> {
    /// f32 `[B, S, L·2D]`.
    pub cross_kv: &'a Tensor,
    /// u32 `[B]`.
    pub lengths: &'a Tensor,
    pub src_len: usize,
    /// Decoder rows per source (beams): row r reads source r / kv_group.
    pub kv_group: usize,
}

impl BartForConditionalGeneration {
    /// Loads every weight (see the module doc for the fusions) and uploads it once.
    pub fn load(
        ld: &Loader,
        vars: &Vars,
        cfg: &ModelConfig,
    ) -> Result<BartForConditionalGeneration> {
        let d = cfg.d_model;
        let eps = cfg.layer_norm_eps;
        let model = vars.pp("model");
        let enc_v = model.pp("encoder");
        let dec_v = model.pp("decoder");
        let embed_scale = if cfg.scale_embedding {
            (d as f32).sqrt()
        } else {
            1.0
        };

        // Token embeddings: `model.shared` (or the older per-side keys).
        let (enc_tokens, dec_tokens) = load_token_embeddings(ld, &model, cfg)?;
        let positions = |v: &Vars| -> Result<PositionTable> {
            match cfg.positions {
                Positions::Learned => {
                    let rows = cfg.max_position_embeddings + 2;
                    let w = v.pp("embed_positions").f32("weight", &[rows, d])?;
                    Ok(PositionTable {
                        table: ld.upload_f32(&w, &[rows, d])?,
                        offset: 2,
                        max_positions: cfg.max_position_embeddings,
                    })
                }
                Positions::Sinusoidal => {
                    marian::MarianSinusoidalPositionalEmbedding::load(ld, v, cfg)
                }
                Positions::M2M100Sinusoidal => {
                    m2m_100::M2M100SinusoidalPositionalEmbedding::load(ld, cfg)
                }
            }
        };
        let ln_opt = |v: &Vars, name: &str, on: bool| -> Result<Option<LayerNorm>> {
            on.then(|| LayerNorm::load(ld, v, name, d, eps)).transpose()
        };

        let mut enc_layers = Vec::with_capacity(cfg.encoder_layers);
        for l in 0..cfg.encoder_layers {
            let v = enc_v.pp(&format!("layers.{l}"));
            enc_layers.push(BartEncoderLayer {
                self_attn: BartAttention::load_self(
                    ld,
                    &v.pp("self_attn"),
                    d,
                    cfg.encoder_attention_heads,
                )?,
                self_attn_layer_norm: LayerNorm::load(ld, &v, "self_attn_layer_norm", d, eps)?,
                fc1: Linear::load(ld, &v, "fc1", cfg.encoder_ffn_dim, d, true)?,
                fc2: Linear::load(ld, &v, "fc2", d, cfg.encoder_ffn_dim, true)?,
                final_layer_norm: LayerNorm::load(ld, &v, "final_layer_norm", d, eps)?,
            });
        }
        let encoder = BartEncoder {
            embed_tokens: enc_tokens,
            embed_positions: positions(&enc_v)?,
            embed_scale,
            layernorm_embedding: ln_opt(&enc_v, "layernorm_embedding", cfg.layernorm_embedding)?,
            layers: enc_layers,
            layer_norm: ln_opt(&enc_v, "layer_norm", cfg.final_layer_norm)?,
        };

        let mut dec_layers = Vec::with_capacity(cfg.decoder_layers);
        let layer_vars: Vec<Vars> = (0..cfg.decoder_layers)
            .map(|l| dec_v.pp(&format!("layers.{l}")))
            .collect();
        for v in &layer_vars {
            dec_layers.push(BartDecoderLayer {
                self_attn: BartAttention::load_self(
                    ld,
                    &v.pp("self_attn"),
                    d,
                    cfg.decoder_attention_heads,
                )?,
                self_attn_layer_norm: LayerNorm::load(ld, v, "self_attn_layer_norm", d, eps)?,
                encoder_attn: BartAttention::load_cross(
                    ld,
                    &v.pp("encoder_attn"),
                    d,
                    cfg.decoder_attention_heads,
                )?,
                encoder_attn_layer_norm: LayerNorm::load(ld, v, "encoder_attn_layer_norm", d, eps)?,
                fc1: Linear::load(ld, v, "fc1", cfg.decoder_ffn_dim, d, true)?,
                fc2: Linear::load(ld, v, "fc2", d, cfg.decoder_ffn_dim, true)?,
                final_layer_norm: LayerNorm::load(ld, v, "final_layer_norm", d, eps)?,
            });
        }
        let cross_vars: Vec<Vars> = layer_vars.iter().map(|v| v.pp("encoder_attn")).collect();
        let kv_parts: Vec<(&Vars, &str)> = cross_vars
            .iter()
            .flat_map(|v| [(v, "k_proj"), (v, "v_proj")])
            .collect();
        let encoder_attn_kv_proj = Linear::load_fused(ld, &kv_parts, d, d)?;

        // lm_head: tied to the decoder embeddings unless the config unties it and the
        // checkpoint has its own (a missing lm_head falls back to tied, as transformers does).
        let vocab = cfg.decoder_vocab_size;
        let final_logits_bias = if cfg.has_final_logits_bias && vars.contains("final_logits_bias") {
            Some(vars.f32("final_logits_bias", &[1, vocab])?)
        } else {
            None
        };
        let lm_head = if !cfg.tie_word_embeddings && vars.contains("lm_head.weight") {
            let w = vars.pp("lm_head").matrix("weight", &[vocab, d])?;
            Linear::from_host(ld, &w, final_logits_bias.as_deref(), vocab, d)?
        } else {
            dec_tokens.as_linear(final_logits_bias.as_deref(), ld)?
        };
        let decoder = BartDecoder {
            embed_tokens: dec_tokens,
            embed_positions: positions(&dec_v)?,
            embed_scale,
            layernorm_embedding: ln_opt(&dec_v, "layernorm_embedding", cfg.layernorm_embedding)?,
            layers: dec_layers,
            layer_norm: ln_opt(&dec_v, "layer_norm", cfg.final_layer_norm)?,
            encoder_attn_kv_proj,
        };
        Ok(BartForConditionalGeneration {
            config: cfg.clone(),
            encoder,
            decoder,
            lm_head,
        })
    }

    /// Records the encoder over `buf.ids` and the cross-attention K/V of every decoder
    /// layer (one matmul) into `buf.cross_kv`.
    pub fn encode(&self, rec: &mut Recorder, buf: &mut EncoderBuffers) -> Result<()> {
        self.encoder.forward(rec, &self.config, buf)?;
        let out = buf.res.cur().clone();
        self.decoder.encoder_attn_kv_proj.forward(
            rec,
            &out,
            &buf.cross_kv.reshape(&[
                buf.batch * buf.src_len,
                self.config.decoder_layers * 2 * self.config.d_model,
            ])?,
            Activation::None,
            None,
            0,
        )
    }

    /// Records a decoder pass over `buf.ids` (positions `t0 .. t0 + Q`) and the lm_head into
    /// `buf.logits`. `kv_rows`: the beam indirection table `[N, Tcap]` of the self-attention
    /// cache. `cross_probs`: per layer, f32 `[N, H, Q, S]` to receive the cross-attention
    /// probabilities.
    pub fn decode(
        &self,
        rec: &mut Recorder,
        buf: &mut DecoderBuffers,
        t0: usize,
        cross: &CrossInputs,
        kv_rows: Option<&Tensor>,
        cross_probs: Option<&[Tensor]>,
    ) -> Result<()> {
        self.decoder
            .forward(rec, &self.config, buf, t0, cross, kv_rows, cross_probs)?;
        let x = buf.res.cur().clone();
        self.lm_head
            .forward(rec, &x, &buf.logits, Activation::None, None, 0)
    }
}

/// `model.shared` (or the older `encoder.embed_tokens` / `decoder.embed_tokens` keys);
/// Marian with `share_encoder_decoder_embeddings: false` has one table per side.
fn load_token_embeddings(
    ld: &Loader,
    model: &Vars,
    cfg: &ModelConfig,
) -> Result<(Embedding, Embedding)> {
    let d = cfg.d_model;
    let first = |candidates: &[&str], rows: usize| -> Result<Embedding> {
        let key = candidates
            .iter()
            .find(|k| model.contains(&format!("{k}.weight")))
            .unwrap_or(&candidates[0]);
        let w = model.pp(key).matrix("weight", &[rows, d])?;
        Embedding::from_host(ld, &w, rows, d)
    };
    if cfg.share_embeddings {
        let e = first(
            &["shared", "encoder.embed_tokens", "decoder.embed_tokens"],
            cfg.vocab_size,
        )?;
        Ok((e.clone(), e))
    } else {
        let enc = first(&["encoder.embed_tokens", "shared"], cfg.vocab_size)?;
        let dec = first(&["decoder.embed_tokens"], cfg.decoder_vocab_size)?;
        Ok((enc, dec))
    }
}

impl BartEncoder {
    fn forward(
        &self,
        rec: &mut Recorder,
        cfg: &ModelConfig,
        buf: &mut EncoderBuffers,
    ) -> Result<()> {
        let (b, s, d) = (buf.batch, buf.src_len, cfg.d_model);
        buf.res.reset();
        embed_tokens(
            rec,
            &buf.ids,
            &self.embed_tokens,
            &self.embed_positions,
            self.embed_scale,
            0,
            &buf.res.cur().reshape(&[b, s, d])?,
        )?;
        if let Some(ln) = &self.layernorm_embedding {
            ln.forward(rec, buf.res.cur(), buf.res.other())?;
            buf.res.swap();
        }
        for layer in &self.layers {
            layer.forward(rec, cfg, buf)?;
        }
        if let Some(ln) = &self.layer_norm {
            ln.forward(rec, buf.res.cur(), buf.res.other())?;
            buf.res.swap();
        }
        Ok(())
    }
}

impl BartEncoderLayer {
    fn forward(
        &self,
        rec: &mut Recorder,
        cfg: &ModelConfig,
        buf: &mut EncoderBuffers,
    ) -> Result<()> {
        let (b, s, d) = (buf.batch, buf.src_len, cfg.d_model);
        let EncoderBuffers {
            res,
            normed,
            qkv,
            attn,
            ffn,
            lengths,
            ..
        } = buf;
        let (normed, qkv, attn, ffn, lengths) = (&*normed, &*qkv, &*attn, &*ffn, &*lengths);
        let sa = &self.self_attn;
        residual_block(
            rec,
            cfg.normalize_before,
            &self.self_attn_layer_norm,
            res,
            normed,
            |rec, input, out, residual| {
                sa.in_proj
                    .forward(rec, input, qkv, Activation::None, None, 0)?;
                let fused = |offset| SeqLayout {
                    offset,
                    batch_stride: s * 3 * d,
                    row_stride: 3 * d,
                };
                attention(
                    rec,
                    &Attention {
                        q: qkv,
                        k: qkv,
                        v: qkv,
                        out: attn,
                        q_layout: fused(0),
                        k_layout: fused(d),
                        v_layout: fused(2 * d),
                        out_layout: SeqLayout::contiguous(s, d),
                        batch: b,
                        heads: sa.num_heads,
                        head_dim: sa.head_dim,
                        q_len: s,
                        kv_len: s,
                        kv_group: 1,
                        key_lengths: Some(lengths),
                        causal_offset: None,
                        bias: None,
                        kv_rows: None,
                        kv_rows_stride: 0,
                        probs: None,
                        scale: sa.scaling(),
                        imp: Default::default(),
                    },
                )?;
                sa.out_proj
                    .forward(rec, attn, out, Activation::None, Some(residual), 0)
            },
        )?;
        residual_block(
            rec,
            cfg.normalize_before,
            &self.final_layer_norm,
            res,
            normed,
            |rec, input, out, residual| {
                feed_forward(
                    rec,
                    (&self.fc1, &self.fc2),
                    cfg.activation,
                    input,
                    ffn,
                    out,
                    residual,
                )
            },
        )
    }
}

impl BartDecoder {
    #[allow(clippy::too_many_arguments)]
    fn forward(
        &self,
        rec: &mut Recorder,
        cfg: &ModelConfig,
        buf: &mut DecoderBuffers,
        t0: usize,
        cross: &CrossInputs,
        kv_rows: Option<&Tensor>,
        cross_probs: Option<&[Tensor]>,
    ) -> Result<()> {
        let (n, q, d) = (buf.rows, buf.q_len, cfg.d_model);
        buf.res.reset();
        embed_tokens(
            rec,
            &buf.ids,
            &self.embed_tokens,
            &self.embed_positions,
            self.embed_scale,
            t0,
            &buf.res.cur().reshape(&[n, q, d])?,
        )?;
        if let Some(ln) = &self.layernorm_embedding {
            ln.forward(rec, buf.res.cur(), buf.res.other())?;
            buf.res.swap();
        }
        for (l, layer) in self.layers.iter().enumerate() {
            let probs = cross_probs.and_then(|p| p.get(l));
            layer.forward(rec, cfg, buf, l, t0, cross, kv_rows, probs)?;
        }
        if let Some(ln) = &self.layer_norm {
            ln.forward(rec, buf.res.cur(), buf.res.other())?;
            buf.res.swap();
        }
        Ok(())
    }
}

impl BartDecoderLayer {
    #[allow(clippy::too_many_arguments)]
    fn forward(
        &self,
        rec: &mut Recorder,
        cfg: &ModelConfig,
        buf: &mut DecoderBuffers,
        l: usize,
        t0: usize,
        cross: &CrossInputs,
        kv_rows: Option<&Tensor>,
        probs: Option<&Tensor>,
    ) -> Result<()> {
        let (n, q, t_cap, d) = (buf.rows, buf.q_len, buf.t_cap, cfg.d_model);
        let DecoderBuffers {
            res,
            normed,
            attn,
            cross_q,
            ffn,
            self_qkv_cache,
            ..
        } = buf;
        let (normed, attn, cross_q, ffn) = (&*normed, &*attn, &*cross_q, &*ffn);
        let cache = &self_qkv_cache[l];
        // The in_proj writes Q/K/V of the new positions straight into the cache: one row per
        // sequence at column t0·3D (one token), or the whole `[N·Tcap, 3D]` (teacher forcing).
        let (cache_out, col) = if q == 1 {
            (cache.reshape(&[n, t_cap * 3 * d])?, t0 * 3 * d)
        } else {
            (cache.reshape(&[n * t_cap, 3 * d])?, 0)
        };
        let sa = &self.self_attn;
        residual_block(
            rec,
            cfg.normalize_before,
            &self.self_attn_layer_norm,
            res,
            normed,
            |rec, input, out, residual| {
                sa.in_proj
                    .forward(rec, input, &cache_out, Activation::None, None, col)?;
                let at = |offset| SeqLayout {
                    offset,
                    batch_stride: t_cap * 3 * d,
                    row_stride: 3 * d,
                };
                attention(
                    rec,
                    &Attention {
                        q: cache,
                        k: cache,
                        v: cache,
                        out: attn,
                        q_layout: at(t0 * 3 * d),
                        k_layout: at(d),
                        v_layout: at(2 * d),
                        out_layout: SeqLayout::contiguous(q, d),
                        batch: n,
                        heads: sa.num_heads,
                        head_dim: sa.head_dim,
                        q_len: q,
                        kv_len: t0 + q,
                        kv_group: 1,
                        key_lengths: None,
                        causal_offset: Some(t0),
                        bias: None,
                        kv_rows,
                        kv_rows_stride: if kv_rows.is_some() { t_cap } else { 0 },
                        probs: None,
                        scale: sa.scaling(),
                        imp: Default::default(),
                    },
                )?;
                sa.out_proj
                    .forward(rec, attn, out, Activation::None, Some(residual), 0)
            },
        )?;
        let ca = &self.encoder_attn;
        let (s, layers) = (cross.src_len, cfg.decoder_layers);
        residual_block(
            rec,
            cfg.normalize_before,
            &self.encoder_attn_layer_norm,
            res,
            normed,
            |rec, input, out, residual| {
                ca.in_proj
                    .forward(rec, input, cross_q, Activation::None, None, 0)?;
                let at = |offset| SeqLayout {
                    offset,
                    batch_stride: s * layers * 2 * d,
                    row_stride: layers * 2 * d,
                };
                attention(
                    rec,
                    &Attention {
                        q: cross_q,
                        k: cross.cross_kv,
                        v: cross.cross_kv,
                        out: attn,
                        q_layout: SeqLayout::contiguous(q, d),
                        k_layout: at(l * 2 * d),
                        v_layout: at(l * 2 * d + d),
                        out_layout: SeqLayout::contiguous(q, d),
                        batch: n,
                        heads: ca.num_heads,
                        head_dim: ca.head_dim,
                        q_len: q,
                        kv_len: s,
                        kv_group: cross.kv_group,
                        key_lengths: Some(cross.lengths),
                        causal_offset: None,
                        bias: None,
                        kv_rows: None,
                        kv_rows_stride: 0,
                        probs,
                        scale: ca.scaling(),
                        imp: Default::default(),
                    },
                )?;
                ca.out_proj
                    .forward(rec, attn, out, Activation::None, Some(residual), 0)
            },
        )?;
        residual_block(
            rec,
            cfg.normalize_before,
            &self.final_layer_norm,
            res,
            normed,
            |rec, input, out, residual| {
                feed_forward(
                    rec,
                    (&self.fc1, &self.fc2),
                    cfg.activation,
                    input,
                    ffn,
                    out,
                    residual,
                )
            },
        )
    }
}
