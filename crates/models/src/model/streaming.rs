//! Greedy generation that reports, with every token, the cross-attention of the query that
//! chose it for Whisper's alignment heads: what simultaneous policies such as AlignAtt read
//! to decide whether a token is safe to emit before more audio arrives.

use super::{Generation, Model};
use crate::encoder::EncoderInput;
use crate::error::{Error, Result};
use crate::generation::attention_tap::{AttentionTap, StepTap};
use crate::generation::profile::Probe;
use crate::generation::{GenerateOptions, SearchConfig, StepEvent};

impl Model {
    /// Greedy generation from any encoder input, as [`Model::generate_input`], calling
    /// `on_step` as each step finishes with the token each unfinished source received and
    /// the alignment heads' cross-attention row of the query that chose it
    /// (`[heads, S]`; the same values as row `position` of [`Model::alignment_weights`]
    /// over the final sequence). Only those heads are written and read back.
    pub fn generate_streaming(
        &self,
        input: &EncoderInput,
        opts: &GenerateOptions,
        on_step: &mut dyn FnMut(&StepEvent),
    ) -> Result<Generation> {
        let heads = self.alignment_heads()?;
        let search = SearchConfig::resolve(&self.config, &self.generation_config, opts)?;
        if search.num_beams != 1 {
            return Err(Error::Options(format!(
                "streaming cross-attention needs greedy search, not num_beams {}",
                search.num_beams
            )));
        }
        self.encoder.check(input)?;
        let mut call = self.begin();
        let run = self.runner();
        let cross = run.encode(input, &mut call.own, &mut Probe::off())?;
        let src_len = cross.sources.first().map_or(0, |s| s.len);
        let tap = AttentionTap::new(
            &self.gpu,
            self.decoder.as_ref(),
            heads,
            cross.batch,
            1,
            src_len,
        )?;
        let mut step = StepTap { tap, on_step };
        let found = run.greedy(
            &search,
            &cross,
            &mut |_, _| {},
            Some(&mut step),
            &mut call.own,
            &mut Probe::off(),
        )?;
        self.gpu.check_errors()?;
        Ok(Generation {
            sequences: found.sequences,
            scores: found.scores,
            no_speech_probs: found.no_speech,
            stats: self.finish(call),
        })
    }
}
