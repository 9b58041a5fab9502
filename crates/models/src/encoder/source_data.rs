//! The owned data of one source of a batch, for callers that read sources from files or
//! user input before borrowing them as an [`EncoderInput`].

use crate::encoder::EncoderInput;
use crate::io::image::Pixels;

/// One source's batch: token sequences, or preprocessed pixel values.
pub enum SourceData {
    Tokens(Vec<Vec<u32>>),
    Pixels(Pixels),
}

impl SourceData {
    pub fn input(&self) -> EncoderInput<'_> {
        match self {
            SourceData::Tokens(ids) => EncoderInput::Tokens(ids),
            SourceData::Pixels(p) => p.input(),
        }
    }
}
