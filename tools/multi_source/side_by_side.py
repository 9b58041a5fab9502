#!/usr/bin/env python3
"""The README's side-by-side picture of the shapes experiment: one held-out question answered
by both trained variants (train_shapes.py, concat and separate), each drawn by
``seqbridge ask --align-png`` (the image under the answer token's cross-attention, and the
question word it read most), stacked under a title line per variant.

    /work/venv/bin/python tools/multi_source/side_by_side.py --engine target/release/seqbridge \\
        --concat /tmp/sh-concat --separate /tmp/sh-separate --index 3 \\
        --out assets/shapes-qa-attention.png
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile

from PIL import Image, ImageDraw


def panel(engine: str, model: str, png: str, question: str, out: str) -> str:
    answer = subprocess.run([engine, "ask", "--model", model, png, question, "--align-png", out],
                            capture_output=True, text=True, check=True).stdout.strip()
    return answer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--engine", required=True)
    ap.add_argument("--concat", required=True)
    ap.add_argument("--separate", required=True)
    ap.add_argument("--index", type=int, default=0, help="held-out example (of --separate's set)")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    held = os.path.join(a.separate, "heldout")
    with open(os.path.join(held, "examples.jsonl")) as f:
        e = [json.loads(line) for line in f][a.index]
    png = os.path.join(held, e["image"])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, model in (("concat", a.concat), ("separate", a.separate)):
            out = os.path.join(tmp, f"{name}.png")
            got = panel(a.engine, model, png, e["question"], out)
            rows.append((f"{name}: {e['question']}  ->  {got}  (gold: {e['answer']})",
                         Image.open(out).convert("RGB")))
        line = 18
        width = max(im.width for _, im in rows)
        sheet = Image.new("RGB", (width, sum(line + im.height for _, im in rows)), "white")
        draw = ImageDraw.Draw(sheet)
        y = 0
        for title, im in rows:
            draw.text((8, y + 4), title, fill=(20, 20, 20))
            sheet.paste(im, (0, y + line))
            y += line + im.height
        sheet.save(a.out, optimize=True)
    print(a.out)


if __name__ == "__main__":
    main()
