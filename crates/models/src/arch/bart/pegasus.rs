//! Pegasus, after `transformers/models/pegasus/modeling_pegasus.py`: BART with pre-norm
//! blocks, final encoder/decoder `layer_norm`, no `layernorm_embedding`, `scale_embedding`,
//! and Marian's sinusoidal positions
//! ([`super::marian::MarianSinusoidalPositionalEmbedding`], same formula as
//! `PegasusSinusoidalPositionalEmbedding`). The decoder starts from the pad token.
//!
//! Nothing here needs code of its own: [`super::Family::of`] maps `model_type: "pegasus"` to
//! these switches and [`super::build`] runs them.
