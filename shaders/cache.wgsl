// cache kernels: not yet written.
