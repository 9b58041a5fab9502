//! shaders/matmul.wgsl against the CPU (pending).
