//! shaders/cache.wgsl against the CPU (pending).
