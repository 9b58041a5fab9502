// softmax kernels: not yet written.
