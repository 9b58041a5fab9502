#!/usr/bin/env python3
"""Times Hugging Face transformers (PyTorch eager) on the shapes of `seqbridge bench`.

Same random-weight config (assets/bench/<name>.json, the files seqbridge's --config reads),
same batch, beams, source length and fixed number of new tokens (EOS ignored), and prints
the JSON fields of `seqbridge bench` that it can measure; the others are null.

    /work/venv/bin/python tools/baseline/bench_transformers.py --config opus-mt --batch 1
"""

import argparse
import platform
import statistics
import time

import torch
import transformers
from transformers import LogitsProcessor, LogitsProcessorList

from random_model import build_model, load_config, percentile, print_result, random_source_ids


class StepClock(LogitsProcessor):
    """Records the time at which each decoding step's logits arrive."""

    def __init__(self, sync):
        self.times = []
        self.sync = sync

    def __call__(self, input_ids, scores):
        self.sync()
        self.times.append(time.perf_counter())
        return scores


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--config",
        default="tiny",
        help="name of assets/bench/<name>.json (vit-gpt2: random pixels), or a path to a config.json",
    )
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--beams", type=int, default=1)
    ap.add_argument("--src-len", type=int, default=32)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--dtype", choices=["f32", "f16", "bf16"], default="f32")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all cores)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    config, vision = load_config(args.config)
    dtype = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}[args.dtype]
    device = torch.device(args.device)
    sync = (lambda: torch.cuda.synchronize()) if device.type == "cuda" else (lambda: None)

    t0 = time.perf_counter()
    model = build_model(config, vision, args.seed).to(device=device, dtype=dtype)
    sync()
    load_ms = (time.perf_counter() - t0) * 1e3

    g = torch.Generator().manual_seed(args.seed)
    ids = random_source_ids(config, args.batch, args.src_len, g)
    ids = ids.to(device)
    mask = torch.ones_like(ids)
    if vision:
        side, patch = config.encoder.image_size, config.encoder.patch_size
        pixels = (torch.rand((args.batch, 3, side, side), generator=g) * 2 - 1).to(device=device, dtype=dtype)
        inputs = {"pixel_values": pixels}
        args.src_len = 1 + (side // patch) ** 2
    else:
        inputs = {"input_ids": ids, "attention_mask": mask}

    gen_kwargs = dict(
        num_beams=args.beams,
        max_new_tokens=args.new_tokens,
        min_new_tokens=args.new_tokens,
        do_sample=False,
        early_stopping=False,
        forced_bos_token_id=None,
        forced_eos_token_id=None,
        num_return_sequences=1,
        use_cache=True,
    )

    encoder_ms, gen_s, steps = [], [], []
    with torch.inference_mode():
        for it in range(args.warmup + args.iters):
            sync()
            t0 = time.perf_counter()
            model.get_encoder()(**inputs)
            sync()
            enc = (time.perf_counter() - t0) * 1e3

            clock = StepClock(sync)
            sync()
            t0 = time.perf_counter()
            out = model.generate(**inputs, logits_processor=LogitsProcessorList([clock]), **gen_kwargs)
            sync()
            total = time.perf_counter() - t0
            assert out.shape[1] == args.new_tokens + 1, out.shape
            if it >= args.warmup:
                encoder_ms.append(enc)
                gen_s.append(total)
                # Step i spans the arrival of logits i-1 to logits i; the first one also holds
                # the encoder and set-up, so it is left out.
                steps += [(b - a) * 1e3 for a, b in zip(clock.times, clock.times[1:])]

    tokens = args.batch * args.new_tokens
    result = {
        "tokens_per_s": tokens / statistics.median(gen_s),
        "load_ms": load_ms,
        "encoder_ms": statistics.median(encoder_ms),
        "step_ms_median": statistics.median(steps),
        "step_ms_p90": percentile(steps, 0.9),
        "gpu_bytes_allocated": torch.cuda.max_memory_allocated() if device.type == "cuda" else None,
        "adapter": torch.cuda.get_device_name() if device.type == "cuda" else (platform.processor() or platform.machine()),
        "backend": f"torch {torch.__version__} eager ({device.type}, {torch.get_num_threads()} threads)",
        "engine": f"transformers {transformers.__version__}",
    }
    print_result(result, args, args.dtype)


if __name__ == "__main__":
    main()
