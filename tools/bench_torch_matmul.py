#!/usr/bin/env python3
"""CPU baseline for benches/matmul.rs: torch f32 `x @ w.T` on 2 threads, same shapes.

Run: /work/venv/bin/python tools/bench_torch_matmul.py
Shapes are MxKxN as in the criterion bench: x is [M, K], w is [N, K] (Hugging Face Linear
layout). Prints the median time of `reps` calls after a warm-up, GFLOP/s (2·M·N·K per call)
and, for M <= 32, GB/s of weight traffic (N·K·4 bytes per call).
"""
import statistics
import time

import torch

SHAPES = [(64, 768, 768), (1, 512, 512), (32, 512, 2048), (1024, 1024, 1024), (1, 512, 58101)]


def bench(m, k, n, min_time=1.0):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(m, k, generator=g) * 2 - 1
    w = torch.rand(n, k, generator=g) * 2 - 1
    out = torch.empty(m, n)
    for _ in range(3):
        torch.matmul(x, w.T, out=out)
    # Calls per sample so one sample takes ~0.1 s, then 10 samples.
    t0 = time.perf_counter()
    torch.matmul(x, w.T, out=out)
    one = max(time.perf_counter() - t0, 1e-6)
    calls = max(1, int(0.1 / one))
    samples = []
    deadline = time.perf_counter() + min_time
    while len(samples) < 10 or time.perf_counter() < deadline:
        t0 = time.perf_counter()
        for _ in range(calls):
            torch.matmul(x, w.T, out=out)
        samples.append((time.perf_counter() - t0) / calls)
        if len(samples) >= 30:
            break
    return statistics.median(samples)


def main():
    torch.set_num_threads(2)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, f32")
    print(f"{'shape (MxKxN)':>16} {'time':>12} {'GFLOP/s':>9} {'weight GB/s':>12}")
    for m, k, n in SHAPES:
        t = bench(m, k, n)
        gflops = 2 * m * n * k / t / 1e9
        gbs = f"{n * k * 4 / t / 1e9:12.2f}" if m <= 32 else f"{'':>12}"
        print(f"{f'{m}x{k}x{n}':>16} {t * 1e6:10.1f}us {gflops:9.2f} {gbs}")


if __name__ == "__main__":
    main()
