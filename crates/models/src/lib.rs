//! seqbridge model families.
pub mod config;
pub mod error;
pub mod options;
pub mod positions;
pub mod search;
pub mod weights;
