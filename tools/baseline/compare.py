#!/usr/bin/env python3
"""Runs `seqbridge bench` and the transformers baseline on the same shape, one after the
other, and prints each field side by side with the ratio seqbridge / transformers.

    /work/venv/bin/python tools/baseline/compare.py --config opus-mt --batch 8 --beams 4

Build the binary first (`cargo build --release`). --markdown prints one README table row.
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIELDS = ["tokens_per_s", "load_ms", "encoder_ms", "step_ms_median", "step_ms_p90", "host_ms_per_step",
          "dispatches_per_step", "submits_per_step", "gpu_bytes_allocated"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="tiny")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--beams", type=int, default=1)
    ap.add_argument("--src-len", type=int, default=32)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--dtype", default="f32", choices=["f32", "f16"])
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--device", default=None, help="torch device (default: cuda if present, else cpu)")
    ap.add_argument("--seqbridge", default=str(ROOT / "target" / "release" / "seqbridge"))
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()

    common = ["--config", args.config, "--batch", str(args.batch), "--beams", str(args.beams),
              "--src-len", str(args.src_len), "--new-tokens", str(args.new_tokens), "--dtype", args.dtype,
              "--warmup", str(args.warmup), "--iters", str(args.iters)]
    ours = json.loads(subprocess.run([args.seqbridge, "bench", *common, "--format", "json"],
                                     check=True, capture_output=True, text=True).stdout)
    base_cmd = [sys.executable, str(ROOT / "tools" / "baseline" / "bench_transformers.py"), *common]
    if args.threads:
        base_cmd += ["--threads", str(args.threads)]
    if args.device:
        base_cmd += ["--device", args.device]
    theirs = json.loads(subprocess.run(base_cmd, check=True, capture_output=True, text=True).stdout)

    if args.markdown:
        ratio = ours["tokens_per_s"] / theirs["tokens_per_s"]
        print(f"| {args.config} | {args.batch} | {args.beams} | {ours['tokens_per_s']:.1f} | {theirs['tokens_per_s']:.1f} "
              f"| {ratio:.2f}× | {ours['step_ms_median']:.1f} / {theirs['step_ms_median']:.1f} "
              f"| {ours['encoder_ms']:.1f} / {theirs['encoder_ms']:.1f} |")
        return
    print(f"seqbridge:    {ours['adapter']} ({ours['backend']})")
    print(f"transformers: {theirs['adapter']} ({theirs['backend']})")
    print(f"{'field':<22}{'seqbridge':>14}{'transformers':>14}{'ratio':>9}")
    for f in FIELDS:
        a, b = ours.get(f), theirs.get(f)
        ratio = f"{a / b:.2f}" if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b else "-"
        fmt = lambda v: "-" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))
        print(f"{f:<22}{fmt(a):>14}{fmt(b):>14}{ratio:>9}")
    if ours.get("gpu_ms_by_kernel"):
        print("seqbridge GPU ms per call by kernel family:",
              ", ".join(f"{k} {v:.1f}" for k, v in sorted(ours["gpu_ms_by_kernel"].items(), key=lambda kv: -kv[1])))


if __name__ == "__main__":
    main()
