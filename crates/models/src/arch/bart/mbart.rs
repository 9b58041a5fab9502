//! mBART (and mBART-50), after `transformers/models/mbart/modeling_mbart.py`: BART with
//! pre-norm blocks (`self_attn_layer_norm` before attention, `final_layer_norm` before the
//! feed-forward), `layernorm_embedding` after the embeddings and a final `layer_norm` at the
//! end of the encoder and of the decoder. Learned positions with offset 2 and
//! `final_logits_bias` as in BART. Generation usually forces the target language code as
//! first token (`forced_bos_token_id`) after the decoder start token (eos).
//!
//! Nothing here needs code of its own: [`super::Family::of`] maps `model_type: "mbart"` to these
//! switches and [`super::build`] runs them.
