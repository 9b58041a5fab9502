#!/usr/bin/env python3
"""Times Hugging Face transformers (PyTorch eager) on the shapes of `seqbridge bench`.

Same random-weight config (assets/bench/<name>.json, the files seqbridge's --config reads),
same batch, beams, source length and fixed number of new tokens (EOS ignored), and prints
the JSON fields of `seqbridge bench` that it can measure; the others are null.

    /work/venv/bin/python tools/baseline/bench_transformers.py --config opus-mt --batch 1
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import transformers
from transformers import (
    AutoConfig,
    AutoModelForSeq2SeqLM,
    LogitsProcessor,
    LogitsProcessorList,
    VisionEncoderDecoderConfig,
    VisionEncoderDecoderModel,
)

ROOT = Path(__file__).resolve().parents[2]


class StepClock(LogitsProcessor):
    """Records the time at which each decoding step's logits arrive."""

    def __init__(self, sync):
        self.times = []
        self.sync = sync

    def __call__(self, input_ids, scores):
        self.sync()
        self.times.append(time.perf_counter())
        return scores


def percentile(xs, q):
    xs = sorted(xs)
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


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
    torch.manual_seed(args.seed)
    path = Path(args.config)
    if not path.exists():
        path = ROOT / "assets" / "bench" / f"{args.config}.json"
    cfg_dict = json.loads(path.read_text())
    vision = cfg_dict.get("model_type") == "vision-encoder-decoder"
    if vision:
        # Image captioning (vit-gpt2): random pixels instead of random ids.
        config = VisionEncoderDecoderConfig.from_encoder_decoder_configs(
            AutoConfig.for_model(**cfg_dict["encoder"]), AutoConfig.for_model(**cfg_dict["decoder"])
        )
        for key in ("decoder_start_token_id", "pad_token_id", "bos_token_id", "eos_token_id"):
            setattr(config, key, cfg_dict.get(key))
        config.vocab_size = config.decoder.vocab_size
    else:
        config = AutoConfig.for_model(**cfg_dict)
    dtype = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}[args.dtype]
    device = torch.device(args.device)
    sync = (lambda: torch.cuda.synchronize()) if device.type == "cuda" else (lambda: None)

    t0 = time.perf_counter()
    if vision:
        model = VisionEncoderDecoderModel(config).to(device=device, dtype=dtype).eval()
    else:
        model = AutoModelForSeq2SeqLM.from_config(config).to(device=device, dtype=dtype).eval()
    sync()
    load_ms = (time.perf_counter() - t0) * 1e3

    specials = {config.pad_token_id, config.eos_token_id, config.bos_token_id, config.decoder_start_token_id}
    g = torch.Generator().manual_seed(args.seed)
    ids = torch.randint(3, config.vocab_size - 1, (args.batch, args.src_len), generator=g)
    for s in specials:
        if s is not None:
            ids[ids == s] = 3
    ids[:, -1] = config.eos_token_id
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
        "host_ms_per_step": None,
        "dispatches_per_step": None,
        "submits_per_step": None,
        "gpu_bytes_allocated": torch.cuda.max_memory_allocated() if device.type == "cuda" else None,
        "gpu_ms_by_kernel": None,
        "adapter": torch.cuda.get_device_name() if device.type == "cuda" else (platform.processor() or platform.machine()),
        "backend": f"torch {torch.__version__} eager ({device.type}, {torch.get_num_threads()} threads)",
        "engine": f"transformers {transformers.__version__}",
        "config": args.config,
        "batch": args.batch,
        "beams": args.beams,
        "src_len": args.src_len,
        "new_tokens": args.new_tokens,
        "dtype": args.dtype,
        "warmup": args.warmup,
        "iters": args.iters,
    }
    json.dump(result, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
