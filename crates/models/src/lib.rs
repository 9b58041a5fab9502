//! seqbridge model families: Marian (opus-mt), BART, mBART, Pegasus and M2M100 / NLLB on the
//! GPU, token for token with transformers' `generate`.
//!
//! ```no_run
//! use seqbridge_models::{GenerateOptions, Model};
//! let gpu = seqbridge_gpu::Gpu::new()?;
//! let model = Model::load("opus-mt-en-de", &gpu)?;              // config + weights, uploaded once
//! let out = model.generate(&[vec![5, 17, 99, 0]], &GenerateOptions::default())?;
//! println!("{:?} {:?}", out.sequences[0][0], out.stats);       // decoder start … EOS
//! let beams = GenerateOptions { num_beams: Some(4), max_new_tokens: Some(32), ..Default::default() };
//! let (_, texts) = model.generate_text(&["Hello world"], &beams)?; // with tokenizer.json
//! let mut stream = |source: usize, token: u32| println!("{source}: {token}");
//! model.generate_with(&[vec![5, 17, 0]], &GenerateOptions::default(), &mut stream)?;
//! let scores = model.score(&[vec![5, 17, 0]], &[vec![8, 9, 0]])?;  // log P(target_t | …)
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Data flow: load (weights to the GPU once) → encode each batch of sources once → every
//! decoder layer's cross K/V once → one submit per decode step (one token per sequence, a
//! self-attention cache, beams sharing the encoder side) → read back the chosen ids (greedy)
//! or the top-k candidates (beams). See `model.rs` and `bart.rs`.

pub mod bart;
pub mod config;
pub mod error;
pub mod layers;
pub mod m2m_100;
pub mod marian;
pub mod mbart;
mod model;
pub mod options;
pub mod pegasus;
pub mod positions;
mod profile;
pub mod search;
pub mod tokenizer;
pub mod weights;

pub use config::{EarlyStopping, GenerationConfig, ModelConfig, ModelType};
pub use error::{Error, Result};
pub use model::{Generation, LoadOptions, Model, Scores, Stats};
pub use options::GenerateOptions;
pub use profile::Profile;
pub use tokenizer::Tokenizer;
pub use weights::WeightDtype;
