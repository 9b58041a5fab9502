//! Every kernel family against a plain CPU reference, over odd shapes, batches and masks.
//!
//! Runs on whatever adapter `SEQBRIDGE_BACKEND` / `SEQBRIDGE_ADAPTER` select (CI runs it on
//! lavapipe's Vulkan and on llvmpipe's GL). No adapter is a loud failure, never a skip.

mod attention;
mod cache;
mod common;
mod concat;
mod conv;
mod elementwise;
mod embedding;
mod heads;
mod logit_rules;
mod matmul;
mod next_ids;
mod norm;
mod norm_matmul;
mod position_bias;
mod roofline;
mod runtime;
mod sampling;
mod softmax;
mod token_mask;
