//! The encoders of a multi-source model: one encoder per source, each run once per call on
//! its own input ([`EncoderInput::Sources`]), giving one memory per source; and
//! [`Projected`], an encoder whose states are mapped to the decoder's width.

use seqbridge_gpu::{DType, Recorder};

use crate::encoder::{Encoder, EncoderInput, Memory, PatchGrid, SourceKind};
use crate::error::{Error, Result};
use crate::nn::Linear;

/// One encoder per source, in the order of the model's `encoders`.
pub struct MultiEncoder {
    pub encoders: Vec<Box<dyn Encoder>>,
}

impl MultiEncoder {
    /// The per-source inputs of `input`, checked to be one per encoder over one batch.
    fn inputs<'a>(&self, input: &EncoderInput<'a>) -> Result<&'a [EncoderInput<'a>]> {
        let EncoderInput::Sources(inputs) = *input else {
            return Err(Error::Input(format!(
                "this model reads {} sources; give one input per source",
                self.encoders.len()
            )));
        };
        if inputs.len() != self.encoders.len() {
            return Err(Error::Input(format!(
                "this model reads {} sources, {} given",
                self.encoders.len(),
                inputs.len()
            )));
        }
        let batch = input.batch();
        if let Some((i, x)) = inputs.iter().enumerate().find(|(_, x)| x.batch() != batch) {
            return Err(Error::Input(format!(
                "source {i} holds {} examples, source 0 holds {batch}",
                x.batch()
            )));
        }
        Ok(inputs)
    }
}

/// `source i: ` before an input error of source i.
fn named(i: usize, e: Error) -> Error {
    match e {
        Error::Input(msg) => Error::Input(format!("source {i}: {msg}")),
        e => e,
    }
}

impl Encoder for MultiEncoder {
    fn check(&self, input: &EncoderInput) -> Result<()> {
        for (i, (enc, x)) in self.encoders.iter().zip(self.inputs(input)?).enumerate() {
            enc.check(x).map_err(|e| named(i, e))?;
        }
        Ok(())
    }

    fn encode(&self, _rec: &mut Recorder, _input: &EncoderInput) -> Result<Memory> {
        Err(Error::Input(format!(
            "this model encodes {} sources into one memory each, not into one",
            self.encoders.len()
        )))
    }

    fn encode_sources(&self, rec: &mut Recorder, input: &EncoderInput) -> Result<Vec<Memory>> {
        let inputs = self.inputs(input)?;
        self.encoders
            .iter()
            .zip(inputs)
            .enumerate()
            .map(|(i, (enc, x))| enc.encode(rec, x).map_err(|e| named(i, e)))
            .collect()
    }

    /// The first image encoder's grid.
    fn patch_grid(&self) -> Option<PatchGrid> {
        self.encoders.iter().find_map(|e| e.patch_grid())
    }

    fn source_kinds(&self) -> Vec<SourceKind> {
        self.encoders
            .iter()
            .flat_map(|e| e.source_kinds())
            .collect()
    }
}

/// An encoder followed by `enc_to_dec_proj`, a linear to the decoder's width (as
/// transformers' `VisionEncoderDecoderModel` maps its encoder's states).
pub struct Projected {
    pub inner: Box<dyn Encoder>,
    pub proj: Linear,
}

impl Encoder for Projected {
    fn check(&self, input: &EncoderInput) -> Result<()> {
        self.inner.check(input)
    }

    fn encode(&self, rec: &mut Recorder, input: &EncoderInput) -> Result<Memory> {
        let m = self.inner.encode(rec, input)?;
        let rows = m.batch * m.len;
        let width = self.proj.out_features;
        let out = rec.gpu().empty(&[rows, width], DType::F32)?;
        self.proj
            .apply(rec, &m.states.reshape(&[rows, m.dim])?, &out)?;
        Ok(Memory {
            states: out.reshape(&[m.batch, m.len, width])?,
            dim: width,
            ..m
        })
    }

    fn patch_grid(&self) -> Option<PatchGrid> {
        self.inner.patch_grid()
    }

    fn source_kinds(&self) -> Vec<SourceKind> {
        self.inner.source_kinds()
    }
}
