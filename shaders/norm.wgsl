// norm kernels: not yet written.
