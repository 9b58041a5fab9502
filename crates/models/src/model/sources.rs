//! Cross-attention maps per source of a multi-source model (any model: one source).

use crate::encoder::EncoderInput;
use crate::error::Result;
use crate::generation::Stats;
use crate::generation::profile::Probe;
use crate::model::Model;

impl Model {
    /// Cross-attention probabilities of a teacher-forced pass over `decoder_input_ids` for
    /// one example, split by source: per source, per decoder layer, `[heads, T, S_i]`
    /// row-major over that source's positions. With separate cross-attention each source's
    /// maps are its own block's (each row sums to 1); with concatenated sources they are the
    /// one block's columns of that source (a row sums to 1 over all sources together), which
    /// shows how a token's attention splits across the sources.
    pub fn cross_attentions_sources(
        &self,
        input: &EncoderInput,
        decoder_input_ids: &[u32],
    ) -> Result<Vec<Vec<Vec<f32>>>> {
        self.check_one(input, decoder_input_ids)?;
        let run = self.runner();
        let cross = run.encode(input, &mut Stats::default(), &mut Probe::off())?;
        let blocks = run.cross_attentions(&cross, decoder_input_ids)?;
        self.gpu.check_errors()?;
        let layers = self.decoder.num_layers();
        let Some(segments) = cross.segments.first() else {
            // One block per source in every layer, layer by layer.
            let n = cross.sources.len();
            return Ok((0..n)
                .map(|i| (0..layers).map(|l| blocks[l * n + i].clone()).collect())
                .collect());
        };
        let width = cross.sources.first().map_or(0, |s| s.len);
        let mut at = 0;
        Ok(segments
            .iter()
            .map(|&len| {
                let cols = at..at + len;
                at += len;
                blocks
                    .iter()
                    .map(|map| {
                        map.chunks_exact(width.max(1))
                            .flat_map(|row| row[cols.clone()].iter().copied())
                            .collect()
                    })
                    .collect()
            })
            .collect())
    }
}
