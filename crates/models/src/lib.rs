//! seqbridge model families on the GPU, token for token with transformers' `generate`:
//! Marian (opus-mt), BART, mBART, Pegasus, M2M100 / NLLB, T5 / mT5 / umT5, Whisper, and
//! image captioning (`VisionEncoderDecoderModel`: ViT + GPT-2).
//!
//! ```no_run
//! use seqbridge_models::{GenerateOptions, Model};
//! let gpu = seqbridge_gpu::Gpu::new()?;
//! let model = Model::load("opus-mt-en-de", &gpu)?;              // config + weights, uploaded once
//! let out = model.generate(&[vec![5, 17, 99, 0]], &GenerateOptions::default())?;
//! println!("{:?} {:?}", out.sequences[0][0], out.stats);       // decoder start … EOS
//! let beams = GenerateOptions { num_beams: Some(4), max_new_tokens: Some(32), ..Default::default() };
//! let (_, texts) = model.generate_text(&["Hello world"], &beams)?; // with a tokenizer
//! let mut stream = |source: usize, token: u32| println!("{source}: {token}");
//! model.generate_with(&[vec![5, 17, 0]], &GenerateOptions::default(), &mut stream)?;
//! let scores = model.score(&[vec![5, 17, 0]], &[vec![8, 9, 0]])?;  // log P(target_t | …)
//! let captioner = Model::load("vit-gpt2-image-captioning", &gpu)?; // ViT + GPT-2
//! let (_, captions) = captioner.generate_images(&["cat.jpg", "dog.png"], &beams)?; // one batch
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Layout (see ARCHITECTURE.md): `io` reads checkpoints, configs and tokenizers; `nn` holds
//! the layers every family shares; `encoder` and `decoder` are the contracts (input →
//! memory; memories → resident cross K/V once → steps → logits) and their transformer
//! implementations; `arch` has one folder per family and the `model_type` registry;
//! `generation` has the options, logits processors, search bookkeeping and the one loop;
//! [`Model`] is the facade.

// Library code returns errors instead of panicking (README, "Guarantees"); tests may unwrap.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod arch;
pub mod config;
pub mod decoder;
pub mod encoder;
pub mod error;
pub mod generation;
pub mod io;
mod model;
pub mod nn;

pub use config::ModelConfig;
pub use error::{Error, Result};
pub use generation::{
    Constrain, Constraint, EarlyStopping, GenerateOptions, GenerationConfig, Profile, Stats,
    StepEvent,
};
pub use io::tokenizer;
pub use io::{Tokenizer, WeightDtype};
pub use model::{
    CONSTRAINT_FILE, Generation, ImageProcessor, LoadOptions, Model, Pixels, Scores,
    TranscribeOptions, Transcript, TranscriptSegment, TranscriptWindow,
};
pub use nn::Quantization;
