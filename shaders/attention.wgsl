// attention kernels: not yet written.
