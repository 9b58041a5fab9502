//! M2M100 and NLLB, after `transformers/models/m2m_100/modeling_m2m_100.py`: BART with
//! pre-norm blocks, final encoder/decoder layer norms, `scale_embedding`, no
//! `final_logits_bias`, and its own sinusoidal positions derived from padding.

use crate::error::Result;
use crate::nn::positions::m2m100_sinusoidal;
use crate::nn::{Loader, PositionTable};

/// `M2M100SinusoidalPositionalEmbedding`: a computed (never stored) `[max_positions + 2, D]`
/// table whose row `padding_idx` is zero. transformers numbers the non-pad tokens of a
/// sequence `padding_idx + 1, padding_idx + 2, ...` (`create_position_ids_from_input_ids`);
/// with right padding and no pad token inside a sequence that is position t at row
/// `padding_idx + 1 + t`, which is what we use. (Pad positions themselves are masked keys,
/// and their outputs are never read.)
pub struct M2M100SinusoidalPositionalEmbedding;

impl M2M100SinusoidalPositionalEmbedding {
    pub fn load(ld: &Loader, pad: u32, max_positions: usize, d: usize) -> Result<PositionTable> {
        let pad = pad as usize;
        // Saturating: sizes from config.json are bounded by the caller, but an overflow here
        // must become the size error below, not a wrap.
        let rows = (max_positions.saturating_add(2))
            .max(pad.saturating_add(max_positions.saturating_add(1)));
        ld.check_table("M2M100 sinusoidal positions", rows, d)?;
        let table = m2m100_sinusoidal(rows, d, Some(pad))?;
        Ok(PositionTable {
            table: ld.upload_f32(&table, &[rows, d])?,
            offset: pad + 1,
            max_positions,
        })
    }
}
