// matmul kernels: not yet written.
