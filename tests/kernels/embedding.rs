//! shaders/embedding.wgsl against the CPU (pending).
