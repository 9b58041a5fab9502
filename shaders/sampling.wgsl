// sampling kernels: not yet written.
