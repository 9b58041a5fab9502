//! The encoder contract: an input (token ids, audio features or pixels) becomes a
//! [`Memory`] that decoders attend to. [`TransformerEncoder`] is the text encoder of every
//! family built from the shared layers; Whisper's audio encoder is in `arch/whisper`, the
//! ViT image encoder in `arch/vit`.

pub mod multi;
mod source_data;

pub use source_data::SourceData;

use seqbridge_gpu::{DType, Recorder, Tensor};

use crate::error::{Error, Result};
use crate::nn::{
    LayerInputs, Norm, RelativePositionBias, Scratch, SelfKv, TextEmbedding, TransformerLayer,
};

/// What an encoder reads.
#[derive(Clone, Copy, Debug)]
pub enum EncoderInput<'a> {
    /// One token sequence per source (no padding; lengths may differ).
    Tokens(&'a [Vec<u32>]),
    /// Log-mel features (Whisper's `input_features`): f32 `[batch, n_mels, frames]`,
    /// row-major, on the host.
    Features {
        data: &'a [f32],
        batch: usize,
        n_mels: usize,
        frames: usize,
    },
    /// Pixel values (`pixel_values` of an image processor): f32
    /// `[batch, channels, height, width]`, row-major, on the host.
    Pixels {
        data: &'a [f32],
        batch: usize,
        channels: usize,
        height: usize,
        width: usize,
    },
    /// One input per encoder of a multi-source model, in the order of its `encoders`; each
    /// holds the same batch of examples.
    Sources(&'a [EncoderInput<'a>]),
}

impl<'a> EncoderInput<'a> {
    /// Sources in the batch.
    pub fn batch(&self) -> usize {
        match self {
            EncoderInput::Tokens(s) => s.len(),
            EncoderInput::Features { batch, .. } | EncoderInput::Pixels { batch, .. } => *batch,
            EncoderInput::Sources(s) => s.first().map_or(0, EncoderInput::batch),
        }
    }

    /// Sources `lo..hi` of the batch as an input of their own.
    pub fn rows(&self, lo: usize, hi: usize) -> Result<EncoderInput<'a>> {
        let n = self.batch();
        if lo >= hi || hi > n {
            return Err(Error::Input(format!(
                "sources {lo}..{hi} of a batch of {n}"
            )));
        }
        let slice = |data: &'a [f32], per: usize| data.get(lo * per..hi * per);
        Ok(match *self {
            // Sub-inputs would need storage of their own: only the whole batch.
            EncoderInput::Sources(_) if (lo, hi) == (0, n) => *self,
            EncoderInput::Sources(_) => {
                return Err(Error::Input(format!(
                    "examples {lo}..{hi} of {n}: several sources go through in one batch"
                )));
            }
            EncoderInput::Tokens(s) => EncoderInput::Tokens(&s[lo..hi]),
            EncoderInput::Features {
                data,
                n_mels,
                frames,
                ..
            } => EncoderInput::Features {
                data: slice(data, n_mels * frames).unwrap_or(&[]),
                batch: hi - lo,
                n_mels,
                frames,
            },
            EncoderInput::Pixels {
                data,
                channels,
                height,
                width,
                ..
            } => EncoderInput::Pixels {
                data: slice(data, channels * height * width).unwrap_or(&[]),
                batch: hi - lo,
                channels,
                height,
                width,
            },
        })
    }

    /// The token sequences, or an error saying that `who` reads token ids.
    pub fn tokens(&self, who: &str) -> Result<&[Vec<u32>]> {
        match *self {
            EncoderInput::Tokens(s) => Ok(s),
            EncoderInput::Features { .. } => Err(Error::Input(format!(
                "{who} reads token ids, not audio features"
            ))),
            EncoderInput::Pixels { .. } => {
                Err(Error::Input(format!("{who} reads token ids, not pixels")))
            }
            EncoderInput::Sources(_) => Err(Error::Input(format!(
                "{who} reads token ids, not several sources"
            ))),
        }
    }
}

/// An encoder's output: states of `batch` sources right-padded to `len` positions.
pub struct Memory {
    /// Per row, its real length (the host's copy of `lengths`).
    pub row_lengths: Vec<usize>,
    /// f32 `[batch, len, dim]`.
    pub states: Tensor,
    /// u32 `[batch]`: real lengths (positions past them are padding, masked as keys).
    pub lengths: Tensor,
    pub batch: usize,
    pub len: usize,
    pub dim: usize,
}

/// An encoder: input → memory, recorded into the caller's recorder (one submit for the
/// encoder and the decoder's cross K/V projection).
pub trait Encoder: Send + Sync {
    /// Checks the input against the model (vocabulary, positions) before anything is
    /// allocated; errors name the source, token and position.
    fn check(&self, input: &EncoderInput) -> Result<()>;
    /// Records the encoder over `input`.
    fn encode(&self, rec: &mut Recorder, input: &EncoderInput) -> Result<Memory>;
    /// Records the encoders over `input`: one memory per source the decoder attends (one,
    /// except for a multi-source model's encoders).
    fn encode_sources(&self, rec: &mut Recorder, input: &EncoderInput) -> Result<Vec<Memory>> {
        Ok(vec![self.encode(rec, input)?])
    }
    /// Where an image encoder's positions lie on the image; `None` for other encoders.
    fn patch_grid(&self) -> Option<PatchGrid> {
        None
    }
    /// What each source reads: one entry, or one per source of a multi-source model.
    fn source_kinds(&self) -> Vec<SourceKind> {
        vec![
            self.patch_grid()
                .map_or(SourceKind::Features, SourceKind::Pixels),
        ]
    }
}

/// What one source of a model reads (for callers that make inputs: benches, interfaces).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceKind {
    /// Token ids below `vocab`, at most `max_len` of them.
    Tokens {
        vocab: usize,
        max_len: Option<usize>,
    },
    /// Pixel values of the grid's image size.
    Pixels(PatchGrid),
    /// Audio features.
    Features,
}

/// The positions of an image encoder: `leading` learned tokens (`[CLS]`, DeiT's
/// distillation token), then one per patch, row by row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PatchGrid {
    pub leading: usize,
    /// Patches per column and per row.
    pub rows: usize,
    pub cols: usize,
    /// A patch's (height, width) in pixels of the model's input.
    pub patch: (usize, usize),
    /// The model's input (height, width) in pixels.
    pub image: (usize, usize),
}

/// Every sequence non-empty, its ids inside a vocabulary of `vocab` and its length within
/// `max_len` (named `limit_key` in messages); errors name the sequence (`what` and index),
/// the token and its position.
pub fn check_sequences(
    what: &str,
    seqs: &[Vec<u32>],
    vocab: usize,
    max_len: Option<usize>,
    limit_key: &str,
) -> Result<()> {
    if seqs.is_empty() {
        return Err(Error::Input(format!("no {what} sequences given")));
    }
    for (i, s) in seqs.iter().enumerate() {
        if s.is_empty() {
            return Err(Error::Input(format!("{what} {i} is empty")));
        }
        if let Some((p, t)) = s.iter().enumerate().find(|(_, t)| **t as usize >= vocab) {
            return Err(Error::Input(format!(
                "{what} {i}: token id {t} at position {p} is outside the vocabulary (vocab_size {vocab})"
            )));
        }
        if let Some(max) = max_len
            && s.len() > max
        {
            return Err(Error::Input(format!(
                "{what} {i} has {} tokens, more than {limit_key} {max}",
                s.len()
            )));
        }
    }
    Ok(())
}

/// A transformer encoder over token ids: embeddings, layers without cross-attention, an
/// optional final norm; T5's relative position bias when the family has one.
pub struct TransformerEncoder {
    pub embed: TextEmbedding,
    pub layers: Vec<TransformerLayer>,
    pub final_norm: Option<Norm>,
    /// None, one table shared by every layer (T5), or one per layer (umT5).
    pub position_bias: Vec<RelativePositionBias>,
    pub d_model: usize,
    pub pad_token_id: u32,
    pub max_positions: Option<usize>,
    pub positions_key: &'static str,
}

impl Encoder for TransformerEncoder {
    fn source_kinds(&self) -> Vec<SourceKind> {
        vec![SourceKind::Tokens {
            vocab: self.embed.tokens.vocab,
            max_len: self.max_positions,
        }]
    }

    fn check(&self, input: &EncoderInput) -> Result<()> {
        let sources = input.tokens("this text encoder")?;
        check_sequences(
            "source",
            sources,
            self.embed.tokens.vocab,
            self.max_positions,
            self.positions_key,
        )
    }

    fn encode(&self, rec: &mut Recorder, input: &EncoderInput) -> Result<Memory> {
        self.check(input)?;
        let sources = input.tokens("this text encoder")?;
        let gpu = rec.gpu().clone();
        let (b, d) = (sources.len(), self.d_model);
        let s = sources.iter().map(Vec::len).max().unwrap_or(1);
        let mut ids = Vec::with_capacity(b * s);
        for src in sources {
            ids.extend_from_slice(src);
            ids.extend(std::iter::repeat_n(self.pad_token_id, s - src.len()));
        }
        let lengths: Vec<u32> = sources.iter().map(|x| x.len() as u32).collect();
        let ids = gpu.upload(&ids, &[b, s])?;
        let lengths = gpu.upload(&lengths, &[b])?;
        let mut scratch = Scratch::new(&gpu, &self.layers, b * s, d)?;
        let qkv_width = self
            .layers
            .iter()
            .map(|l| 3 * l.self_attn.heads.inner())
            .max();
        let qkv = gpu.empty(&[b * s, qkv_width.unwrap_or(1)], DType::F32)?;
        let bias = match self.position_bias.first() {
            Some(p) => Some(gpu.empty(&[1, p.heads, s, s], DType::F32)?),
            None => None,
        };
        scratch.res.reset();
        let (cur, other) = (scratch.res.cur().clone(), scratch.res.other().clone());
        if self.embed.forward(rec, &ids, 0, &cur, &other)? {
            scratch.res.swap();
        }
        let mut pending = None;
        for (l, layer) in self.layers.iter().enumerate() {
            if let (Some(out), Some(p)) = (&bias, self.position_bias.get(l)) {
                p.forward(rec, 0, s, s, out)?;
            }
            let width = 3 * layer.self_attn.heads.inner();
            let io = LayerInputs {
                rows: b,
                len: s,
                self_kv: SelfKv::Full {
                    qkv: &qkv.view(0, &[b * s, width])?,
                    lengths: &lengths,
                },
                bias: bias.as_ref(),
                cross: &[],
                split: true,
            };
            pending = layer.forward(rec, &mut scratch, &io, pending)?;
        }
        scratch.settle(rec, pending)?;
        if let Some(n) = &self.final_norm {
            scratch.res.norm(rec, n)?;
        }
        Ok(Memory {
            row_lengths: sources.iter().map(Vec::len).collect(),
            states: scratch.res.cur().reshape(&[b, s, d])?,
            lengths,
            batch: b,
            len: s,
            dim: d,
        })
    }
}

/// Runs `layers` (full self-attention, no position bias) over `rows` sources of `len`
/// positions without padding, held in `scratch.res`, then `norm`: the stack of the audio and
/// image encoders, whose inputs all have the same length. Returns the sources' lengths.
pub(crate) fn unpadded_stack(
    rec: &mut Recorder,
    layers: &[TransformerLayer],
    scratch: &mut Scratch,
    (rows, len, d): (usize, usize, usize),
    norm: &Norm,
) -> Result<Tensor> {
    let gpu = rec.gpu().clone();
    let lengths = gpu.upload(&vec![len as u32; rows], &[rows])?;
    let qkv = gpu.empty(&[rows * len, 3 * d], DType::F32)?;
    let mut pending = None;
    for layer in layers {
        let io = LayerInputs {
            rows,
            len,
            self_kv: SelfKv::Full {
                qkv: &qkv,
                lengths: &lengths,
            },
            bias: None,
            cross: &[],
            split: true,
        };
        pending = layer.forward(rec, scratch, &io, pending)?;
    }
    scratch.settle(rec, pending)?;
    scratch.res.norm(rec, norm)?;
    Ok(lengths)
}
