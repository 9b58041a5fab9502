#!/usr/bin/env python3
"""The synthetic visual-question task of the shipped multi-source demo, deterministic from a seed.

A scene is 2 to 4 shapes (circle, square, triangle) in distinct colours-and-shapes, each in its
own cell of a 4 x 4 grid over a 64 x 64 image (so every object covers whole 8-pixel ViT patches'
worth of area and relations such as "left of" are never borderline). Questions, one type each:

- ``colour``: "what colour is the square ?" (the shape occurs once) -> "red";
- ``shape``: "what shape is red ?" (the colour occurs once) -> "square";
- ``count``: "how many circles ?" -> "0" ... "4";
- ``left``: "what colour is the shape left of the square ?" -> the colour of the object in the
  nearest occupied column left of the (unique) square, asked only when that column holds one.

Every example carries, for the interpretability figure of train_shapes.py, ``boxes`` (the pixel
boxes ``[x0, y0, x1, y1)`` of the objects the answer depends on) and ``words`` (the indices, in
the question's words, of the words that name them). The held-out set is drawn from another
seed and any scene-and-question that also occurs in the training set is dropped.

    python tools/multi_source/shapes_data.py --seed 1 --n 8 --out /tmp/shapes   # writes PNGs + jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import random

import numpy as np
from PIL import Image, ImageDraw

SIZE, GRID = 64, 4
CELL = SIZE // GRID
SHAPES = ["circle", "square", "triangle"]
COLOURS = {"red": (220, 40, 40), "green": (40, 180, 60), "blue": (50, 80, 230),
           "yellow": (230, 210, 40), "purple": (150, 60, 190)}
TYPES = ["colour", "shape", "count", "left"]
# Every word the questions and answers use (the tokenizer's vocabulary, after its specials).
WORDS = (["what", "colour", "is", "the", "shape", "how", "many", "left", "of", "?"]
         + SHAPES + [s + "s" for s in SHAPES] + list(COLOURS) + [str(i) for i in range(5)])


def scene(rng: random.Random) -> list[dict]:
    """2 to 4 objects, distinct (shape, colour) pairs, in distinct cells."""
    n = rng.randint(2, 4)
    cells = rng.sample(range(GRID * GRID), n)
    kinds = rng.sample([(s, c) for s in SHAPES for c in COLOURS], n)
    objs = []
    for cell, (shape, colour) in zip(cells, kinds):
        r, c = divmod(cell, GRID)
        size = rng.randint(9, 13)
        x0 = c * CELL + rng.randint(0, CELL - size)
        y0 = r * CELL + rng.randint(0, CELL - size)
        objs.append({"shape": shape, "colour": colour, "row": r, "col": c,
                     "box": [x0, y0, x0 + size, y0 + size]})
    return objs


def render(objs: list[dict]) -> Image.Image:
    img = Image.new("RGB", (SIZE, SIZE), (245, 245, 245))
    d = ImageDraw.Draw(img)
    for o in objs:
        x0, y0, x1, y1 = o["box"]
        fill = COLOURS[o["colour"]]
        if o["shape"] == "circle":
            d.ellipse([x0, y0, x1 - 1, y1 - 1], fill=fill)
        elif o["shape"] == "square":
            d.rectangle([x0, y0, x1 - 1, y1 - 1], fill=fill)
        else:
            d.polygon([((x0 + x1 - 1) / 2, y0), (x0, y1 - 1), (x1 - 1, y1 - 1)], fill=fill)
    return img


def left_of(objs: list[dict], ref: dict) -> dict | None:
    """The one object in the nearest occupied column left of ``ref``, or None."""
    cols = sorted({o["col"] for o in objs if o["col"] < ref["col"]})
    if not cols:
        return None
    there = [o for o in objs if o["col"] == cols[-1]]
    return there[0] if len(there) == 1 else None


def question(rng: random.Random, objs: list[dict], kind: str):
    """(question words, answer, objects it is about, indices of the naming words) or None."""
    by_shape = {s: [o for o in objs if o["shape"] == s] for s in SHAPES}
    by_colour = {c: [o for o in objs if o["colour"] == c] for c in COLOURS}
    if kind == "colour":
        opts = [s for s in SHAPES if len(by_shape[s]) == 1]
        if not opts:
            return None
        s = rng.choice(opts)
        return ["what", "colour", "is", "the", s, "?"], by_shape[s][0]["colour"], by_shape[s], [4]
    if kind == "shape":
        opts = [c for c in COLOURS if len(by_colour[c]) == 1]
        if not opts:
            return None
        c = rng.choice(opts)
        return ["what", "shape", "is", c, "?"], by_colour[c][0]["shape"], by_colour[c], [3]
    if kind == "count":
        s = rng.choice(SHAPES)
        return ["how", "many", s + "s", "?"], str(len(by_shape[s])), by_shape[s], [2]
    opts = [(s, left_of(objs, by_shape[s][0])) for s in SHAPES if len(by_shape[s]) == 1]
    opts = [(s, o) for s, o in opts if o is not None]
    if not opts:
        return None
    s, o = rng.choice(opts)
    words = ["what", "colour", "is", "the", "shape", "left", "of", "the", s, "?"]
    return words, o["colour"], [o, by_shape[s][0]], [5, 8]


def examples(seed: int, n: int, exclude: set | None = None) -> list[dict]:
    """n examples, question types in turn, from ``seed``; none whose key is in ``exclude``."""
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        kind = TYPES[len(out) % len(TYPES)]
        objs = scene(rng)
        q = question(rng, objs, kind)
        if q is None:
            continue
        words, answer, about, naming = q
        ex = {"type": kind, "objects": objs, "question": " ".join(words), "answer": answer,
              "boxes": [o["box"] for o in about], "words": naming}
        if exclude is not None and key(ex) in exclude:
            continue
        out.append(ex)
    return out


def key(ex: dict) -> str:
    return json.dumps([ex["objects"], ex["question"]], sort_keys=True)


def pixels(ex: dict) -> np.ndarray:
    """``[3, 64, 64]`` float32, normalised as preprocessor_config.json says (mean = std = 0.5)."""
    a = np.asarray(render(ex["objects"]), dtype=np.float32) / 255.0
    return ((a - 0.5) / 0.5).transpose(2, 0, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "examples.jsonl"), "w") as f:
        for i, ex in enumerate(examples(a.seed, a.n)):
            ex["image"] = f"{i:04d}.png"
            render(ex["objects"]).save(os.path.join(a.out, ex["image"]))
            f.write(json.dumps(ex) + "\n")


if __name__ == "__main__":
    main()
