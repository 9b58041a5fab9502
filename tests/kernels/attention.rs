//! shaders/attention.wgsl against the CPU (pending).
