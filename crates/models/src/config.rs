//! What the engine needs to know of a loaded model, whatever its architecture: sizes,
//! vocabularies, position limits and special tokens. Each `arch/` family fills it in from its
//! own serde config.

/// The architecture-neutral description of a loaded encoder-decoder.
#[derive(Clone, Debug)]
pub struct ModelConfig {
    /// Hugging Face `model_type` (marian, bart, t5, ...).
    pub model_type: String,
    /// Decoder hidden size.
    pub d_model: usize,
    pub encoder_layers: usize,
    pub decoder_layers: usize,
    pub encoder_attention_heads: usize,
    pub decoder_attention_heads: usize,
    /// Source vocabulary.
    pub vocab_size: usize,
    /// Target vocabulary (the logits' width).
    pub decoder_vocab_size: usize,
    /// Longest source the encoder's positions allow (`None`: relative positions, no limit).
    pub max_source_positions: Option<usize>,
    /// Longest decoder input the positions allow (`None`: no limit).
    pub max_target_positions: Option<usize>,
    /// The config key behind those limits, for messages (`max_position_embeddings`).
    pub positions_key: &'static str,
    pub pad_token_id: u32,
    pub bos_token_id: Option<u32>,
    pub eos_token_id: Vec<u32>,
    pub decoder_start_token_id: Option<u32>,
    pub forced_bos_token_id: Option<u32>,
    pub forced_eos_token_id: Option<Vec<u32>>,
    /// Mel bins of the log-mel features an audio encoder reads (Whisper); `None` for text.
    pub num_mel_bins: Option<usize>,
}
