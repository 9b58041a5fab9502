//! shaders/norm.wgsl against the CPU (pending).
