//! shaders/sampling.wgsl against the CPU (pending).
