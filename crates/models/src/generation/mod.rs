//! Generation: options resolved against generation_config.json, logits processors, greedy
//! and beam search bookkeeping, and the one loop that drives any decoder.

pub(crate) mod attention_tap;
pub mod beam;
pub mod config;
pub mod constraint;
pub mod greedy;
pub mod options;
mod pipelined;
pub mod processors;
pub mod profile;
pub mod runner;
pub mod timestamps;

pub use attention_tap::StepEvent;
pub use config::{EarlyStopping, GenerationConfig};
pub use constraint::Constraint;
pub use options::{Constrain, GenerateOptions, SearchConfig};
pub use processors::{LogitsProcessor, Processors};
pub use profile::Profile;
pub(crate) use runner::Runner;
pub use runner::Stats;
