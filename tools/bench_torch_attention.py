#!/usr/bin/env python3
"""CPU baseline for benches/attention.rs: torch f32 scaled_dot_product_attention on 2 threads,
same shapes and masks. Run: /work/venv/bin/python tools/bench_torch_attention.py"""
import time, torch
import torch.nn.functional as F
torch.set_num_threads(2)
torch.manual_seed(0)

def bench(fn, reps=20, rounds=5):
    fn()
    best = 1e9
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(reps):
            fn()
        best = min(best, (time.perf_counter() - t) / reps)
    return best

def pairs(B, q, kv, lengths=None, group=1, causal=False):
    n = 0
    for b in range(B):
        for i in range(q):
            l = kv
            if lengths is not None: l = min(l, lengths[b // group])
            if causal: l = min(l, i + 1)
            n += l
    return n

H, dh = 8, 64
with torch.no_grad():
    # encoder self-attention, padded
    B, T = 8, 64
    lengths = [64, 57, 50, 41, 64, 33, 20, 64]
    qkv = torch.randn(B, T, 3 * H * dh)
    q, k, v = [x.view(B, T, H, dh).transpose(1, 2) for x in qkv.split(H * dh, -1)]
    mask = (torch.arange(T)[None, :] < torch.tensor(lengths)[:, None])[:, None, None, :]
    t = bench(lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask))
    f = 4 * dh * H * pairs(B, T, T, lengths)
    print(f"encoder_self: {t*1e6:.1f} us/call {f/t/1e9:.2f} GFLOP/s")
    # decoder prefill causal
    B, T = 4, 48
    qkv = torch.randn(B, T, 3 * H * dh)
    q, k, v = [x.view(B, T, H, dh).transpose(1, 2) for x in qkv.split(H * dh, -1)]
    t = bench(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True))
    f = 4 * dh * H * pairs(B, T, T, causal=True)
    print(f"decoder_prefill_causal: {t*1e6:.1f} us/call {f/t/1e9:.2f} GFLOP/s")
    # cross decode: 8 sources x 4 beams share K/V (expand, no copy), S=64
    S, src, beams = 64, 8, 4
    lengths = [64, 60, 55, 64, 48, 64, 31, 64]
    q = torch.randn(src, beams, H, 1, dh)
    k = torch.randn(src, 1, H, S, dh).expand(src, beams, H, S, dh)
    v = torch.randn(src, 1, H, S, dh).expand(src, beams, H, S, dh)
    mask = (torch.arange(S)[None, :] < torch.tensor(lengths)[:, None])[:, None, None, None, :]
    t = bench(lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask), reps=50)
    f = 4 * dh * H * pairs(32, 1, S, lengths, group=4)
    by = 4 * (2 * sum(lengths) * H * dh + 2 * 32 * H * dh)
    print(f"cross_decode: {t*1e6:.1f} us/call {f/t/1e9:.2f} GFLOP/s {by/t/1e9:.2f} GB/s")
    # long decode
    kv = 1500
    q = torch.randn(1, H, 1, dh)
    kc = torch.randn(1, H, 2048, dh)[:, :, :kv]
    vc = torch.randn(1, H, 2048, dh)[:, :, :kv]
    t = bench(lambda: F.scaled_dot_product_attention(q, kc, vc), reps=50)
    f = 4 * dh * H * kv
    by = 4 * (2 * kv * H * dh + 2 * H * dh)
    print(f"long_decode: {t*1e6:.1f} us/call {f/t/1e9:.2f} GFLOP/s {by/t/1e9:.2f} GB/s")
