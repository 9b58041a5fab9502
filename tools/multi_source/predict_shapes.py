#!/usr/bin/env python3
"""Answers a shapes checkpoint's held-out questions (train_shapes.py) with the PyTorch reference
read back from the saved files, and, given ``--engine BIN``, with ``BIN generate`` on the same
PNGs, printing both: the check that seqbridge reproduces the trained model. ``--reference FILE``
answers every held-out question and writes them with their exact match per type, for the Rust
test of ``seqbridge ask --eval`` on the shipped model (tests/fixtures/shapes_qa/reference.json).

    /work/venv/bin/python tools/multi_source/predict_shapes.py --model /tmp/shapes-concat --n 8 --engine target/debug/seqbridge
    /work/venv/bin/python tools/multi_source/predict_shapes.py --model assets/shapes-qa --reference tests/fixtures/shapes_qa/reference.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import torch
from PIL import Image

torch.set_num_threads(1)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from reference import MultiSource  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402
from transformers import AutoImageProcessor, ViTModel  # noqa: E402


def load(d: str) -> MultiSource:
    """The reference model with a checkpoint's weights (f16 as saved, computed in f32)."""
    cfg = json.load(open(os.path.join(d, "config.json")))
    model = MultiSource(cfg).eval()
    sd = {k: v.float() for k, v in load_file(os.path.join(d, "model.safetensors")).items()}

    def part(prefix: str) -> dict:
        return {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}

    for i, kind in enumerate(model.kinds):
        if kind == "vit":
            # from_pretrained maps the checkpoint names onto transformers' module names.
            with tempfile.TemporaryDirectory() as tmp:
                model.encoders[i].config.save_pretrained(tmp)
                save_file(part(f"encoders.{i}."), os.path.join(tmp, "model.safetensors"))
                enc = ViTModel.from_pretrained(tmp, add_pooling_layer=False,
                                               attn_implementation="eager")
            model.encoders[i].load_state_dict(enc.state_dict())
        else:
            model.encoders[i].load_state_dict(part(f"encoders.{i}."))
    model.enc_to_dec_proj.load_state_dict(part("enc_to_dec_proj."))
    model.decoder.load_state_dict(part("decoder."))
    model.seq2seq.tie_weights()
    return model


def answer_all(model: MultiSource, tok: Tokenizer, proc, d: str, held: list[dict]) -> list[str]:
    """Greedy answers to every held-out question, 64 per batch."""
    out = []
    for i in range(0, len(held), 64):
        exs = held[i:i + 64]
        px = proc(images=[Image.open(os.path.join(d, "heldout", e["image"])) for e in exs],
                  return_tensors="pt")["pixel_values"].float()
        with torch.no_grad():
            seqs = model.generate([px, [tok.encode(e["question"]).ids for e in exs]], num_beams=1,
                                  do_sample=False, max_new_tokens=4).sequences.tolist()
        out += [tok.decode(s, skip_special_tokens=True) for s in seqs]
    return out


def write_reference(path: str, held: list[dict], answers: list[str]) -> None:
    tally: dict[str, list[int]] = {}
    for e, got in zip(held, answers):
        for key in ("all", e["type"]):
            t = tally.setdefault(key, [0, 0])
            t[0] += got == e["answer"]
            t[1] += 1
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        json.dump({"answers": answers,
                   "exact_match": {k: {"right": r, "total": n} for k, (r, n) in sorted(tally.items())}},
                  f, indent=0)
        f.write("\n")
    print({k: f"{r}/{n}" for k, (r, n) in sorted(tally.items())})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--engine", help="a seqbridge binary to compare with")
    ap.add_argument("--reference", metavar="FILE", help="write every held-out answer to FILE")
    a = ap.parse_args()
    model = load(a.model)
    tok = Tokenizer.from_file(os.path.join(a.model, "tokenizer.json"))
    proc = AutoImageProcessor.from_pretrained(a.model)
    held = [json.loads(line) for line in open(os.path.join(a.model, "heldout", "examples.jsonl"))]
    if a.reference:
        write_reference(a.reference, held, answer_all(model, tok, proc, a.model, held))
        return
    same = 0
    for e in held[:a.n]:
        png = os.path.join(a.model, "heldout", e["image"])
        px = proc(images=[Image.open(png)], return_tensors="pt")["pixel_values"].float()
        with torch.no_grad():
            seq = model.generate([px, [tok.encode(e["question"]).ids]], num_beams=1,
                                 do_sample=False, max_new_tokens=4).sequences[0].tolist()
        ours = tok.decode(seq, skip_special_tokens=True)
        line = f"{e['image']} {e['question']!r} gold={e['answer']} torch={ours}"
        if a.engine:
            got = subprocess.run(
                [a.engine, "generate", "--model", a.model, "--source", f"image:{png}",
                 "--source", f"text:{e['question']}", "--max-new-tokens", "4", "--format", "json"],
                capture_output=True, text=True, check=True).stdout
            got = json.loads(got)["text"][0]
            line += f" engine={got}"
            same += got == ours
        print(line, flush=True)
    if a.engine:
        print(f"engine == torch on {same}/{min(a.n, len(held))}")


if __name__ == "__main__":
    main()
