//! Marian (opus-mt), after `transformers/models/marian/modeling_marian.py`: BART with
//! post-norm blocks, no `layernorm_embedding`, no final layer norms, `embed_scale`
//! sqrt(d_model) (`scale_embedding`), sinusoidal positions and, optionally, separate
//! encoder/decoder vocabularies (`share_encoder_decoder_embeddings: false`, with
//! `decoder_vocab_size`). The layers themselves are [`crate::arch::bart`]'s.

use crate::error::Result;
use crate::io::Vars;
use crate::nn::positions::marian_sinusoidal;
use crate::nn::{Loader, PositionTable};

/// `MarianSinusoidalPositionalEmbedding` (Pegasus has the same): `[max_positions, D]`,
/// position t at row t. Published checkpoints sometimes store the table
/// (`embed_positions.weight`); transformers then loads it, otherwise computes it.
pub struct MarianSinusoidalPositionalEmbedding;

impl MarianSinusoidalPositionalEmbedding {
    pub fn load(ld: &Loader, side: &Vars, n: usize, d: usize) -> Result<PositionTable> {
        let v = side.pp("embed_positions");
        ld.check_table(&v.key("weight"), n, d)?;
        let table = if v.contains("weight") {
            v.f32("weight", &[n, d])?
        } else {
            marian_sinusoidal(n, d)?
        };
        Ok(PositionTable {
            table: ld.upload_f32(&table, &[n, d])?,
            offset: 0,
            max_positions: n,
        })
    }
}
