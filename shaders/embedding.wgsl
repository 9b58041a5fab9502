// embedding kernels: not yet written.
