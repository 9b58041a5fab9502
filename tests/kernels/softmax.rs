//! shaders/softmax.wgsl against the CPU (pending).
