#!/usr/bin/env python3
"""Runs `seqbridge bench` and the baselines (transformers, CTranslate2) on the same shape, one
after the other, and prints each field side by side with the ratio seqbridge / baseline.

    /work/venv/bin/python tools/baseline/compare.py --config opus-mt --batch 8 --beams 4
    /work/venv/bin/python tools/baseline/compare.py --config opus-mt --dtype int8 --threads 2 --markdown

Build the binary first (`cargo build --release`). --dtype goes to `seqbridge bench`; transformers
runs it where torch can (f32, f16) and f32 for int8; CTranslate2 runs --ct2-compute-type
(default int8 for --dtype int8, else float32). --markdown prints one README table row
(--markdown-header: its header first).
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BASELINE = ROOT / "tools" / "baseline"
FIELDS = ["tokens_per_s", "load_ms", "encoder_ms", "first_token_ms", "step_ms_median", "step_ms_p90",
          "host_ms_per_step", "dispatches_per_step", "submits_per_step", "gpu_bytes_allocated"]
ENGINES = ["transformers", "ctranslate2"]
SHORT = {"seqbridge": "seqbridge", "transformers": "transformers", "ctranslate2": "CT2"}


def run_json(cmd):
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{proc.stderr.strip()}")
    return json.loads(proc.stdout)


def baseline_cmd(engine, args, shape):
    if engine == "transformers":
        dtype = args.dtype if args.dtype in ("f32", "f16") else "f32"
        cmd = [sys.executable, BASELINE / "bench_transformers.py", *shape, "--dtype", dtype]
        if args.device:
            cmd += ["--device", args.device]
    else:
        compute = args.ct2_compute_type or ("int8" if args.dtype == "int8" else "float32")
        cmd = [sys.executable, BASELINE / "bench_ctranslate2.py", *shape, "--compute-type", compute]
        if args.device:
            cmd += ["--device", args.device]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    return cmd


def fmt(v):
    return "-" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))


def ms_pair(results, field):
    return " / ".join("-" if r.get(field) is None else f"{r[field]:.1f}" for r in results.values())


def markdown(args, results, header):
    ours = results["seqbridge"]
    names = list(results)
    if header:
        cols = ["config", "batch", "beams", "dtype", "seqbridge tok/s"]
        for name in names[1:]:
            cols += [f"{SHORT[name]} tok/s", f"vs {SHORT[name]}"]
        cols += [f"step ms ({' / '.join(SHORT[n] for n in names)})",
                 f"encoder ms ({' / '.join(SHORT[n] for n in names)})"]
        print("| " + " | ".join(cols) + " |")
        print("|" + "---|" * len(cols))
    cells = [args.config, str(args.batch), str(args.beams), args.dtype, f"{ours['tokens_per_s']:.1f}"]
    for name in names[1:]:
        r = results[name]
        label = f" ({r['dtype']})" if name == "ctranslate2" else ""
        cells += [f"{r['tokens_per_s']:.1f}{label}", f"{ours['tokens_per_s'] / r['tokens_per_s']:.2f}×"]
    cells += [ms_pair(results, "step_ms_median"), ms_pair(results, "encoder_ms")]
    print("| " + " | ".join(cells) + " |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="tiny")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--beams", type=int, default=1)
    ap.add_argument("--src-len", type=int, default=32)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--dtype", default="f32", choices=["f32", "f16", "int8"], help="seqbridge bench --dtype")
    ap.add_argument("--engines", nargs="+", choices=ENGINES, default=ENGINES, help="baselines to run")
    ap.add_argument("--ct2-compute-type", default=None,
                    help="CTranslate2 compute type (default: int8 for --dtype int8, else float32)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="CPU threads of the baselines")
    ap.add_argument("--device", default=None, help="baselines' device (default: cuda if present, else cpu)")
    ap.add_argument("--seqbridge", default=str(ROOT / "target" / "release" / "seqbridge"))
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--markdown-header", action="store_true", help="with --markdown: the table header first")
    args = ap.parse_args()

    shape = ["--config", args.config, "--batch", str(args.batch), "--beams", str(args.beams),
             "--src-len", str(args.src_len), "--new-tokens", str(args.new_tokens),
             "--warmup", str(args.warmup), "--iters", str(args.iters)]
    results = {"seqbridge": run_json([args.seqbridge, "bench", *shape, "--dtype", args.dtype, "--format", "json"])}
    for engine in dict.fromkeys(args.engines):
        results[engine] = run_json(baseline_cmd(engine, args, shape))

    if args.markdown:
        markdown(args, results, args.markdown_header)
        return
    ours = results["seqbridge"]
    for name, r in results.items():
        print(f"{name + ':':<14}{r['adapter']} ({r['backend']}; {r.get('engine', 'seqbridge')}, {r['dtype']})")
    head = f"{'field':<22}" + "".join(f"{SHORT[n]:>14}" for n in results)
    head += "".join(f"{'/' + SHORT[n]:>15}" for n in list(results)[1:])
    print(head)
    for f in FIELDS:
        row = f"{f:<22}" + "".join(f"{fmt(r.get(f)):>14}" for r in results.values())
        for name in list(results)[1:]:
            a, b = ours.get(f), results[name].get(f)
            ok = isinstance(a, (int, float)) and isinstance(b, (int, float)) and b
            row += f"{(f'{a / b:.2f}' if ok else '-'):>15}"
        print(row)
    if ours.get("gpu_ms_by_kernel"):
        print("seqbridge GPU ms per call by kernel family:",
              ", ".join(f"{k} {v:.1f}" for k, v in sorted(ours["gpu_ms_by_kernel"].items(), key=lambda kv: -kv[1])))


if __name__ == "__main__":
    main()
