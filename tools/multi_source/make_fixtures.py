#!/usr/bin/env python3
"""Tiny random multi-source checkpoints and their reference outputs (tools/multi_source/reference.py).

Run from the repository root:

    /path/to/venv/bin/python tools/multi_source/make_fixtures.py [--out tests/fixtures/multi_source]

It writes one directory per fixture, each with ``config.json``, ``generation_config.json``,
``model.safetensors`` and ``reference.json``:

- ``concat-2``: a BART text encoder (d_model 12, 3 heads, so ``enc_to_dec_proj.0``) and a ViT
  image encoder (image 12, patch 4: 10 positions, hidden 18, ``enc_to_dec_proj.1``) read by a
  BART decoder (d_model 20, 4 heads of 5) through one cross-attention over both;
- ``separate-2``: the same encoders, a decoder with one cross-attention block per source;
- ``separate-3`` and ``concat-3``: text + image + a second text encoder (d_model 20, no
  projection), in both fusions.

``reference.json`` holds the inputs (per source: token id lists of three examples of
different lengths, or pixel values ``[3, 3, 12, 12]``), ``generate`` cases (greedy and beam
search over the batch of three: kwargs, ``sequences``, ``sequences_scores``), ``score``
(log P(token_t | sources, tokens_<t) of the greedy sequences, teacher-forced), and
``from_file``: the greedy sequence of example 0's texts beside the image
``tests/fixtures/vision/images/shapes.jpg`` read by ``preprocessor_config.json`` (also written),
and ``cross_attentions``: per source, per decoder layer, ``[heads, T, S_i]`` of example 0 over its
greedy sequence. Weights are drawn from a seeded normal wide enough that the argmax moves from
step to step; seeds are tried in order until every greedy decision has a margin of at least
MIN_MARGIN (and the beam
hypotheses' scores differ by as much), the three examples differ, and one of them varies or ends early.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch

torch.set_num_threads(1)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from reference import MultiSource  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from PIL import Image  # noqa: E402
from transformers import BartConfig, ViTConfig  # noqa: E402
from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil  # noqa: E402

MIN_MARGIN = 1e-2
VOCAB = 61
EOS, PAD, START = 2, 1, 0
MAX_LENGTH = 12
# transformers' PIL image processor at the image encoder's size, and a test image of the
# vision fixtures.
PROCESSOR = ViTImageProcessorPil(size={"height": 12, "width": 12}, do_convert_rgb=True,
                                 image_mean=[0.5, 0.45, 0.4], image_std=[0.5, 0.25, 0.3])
IMAGE = "tests/fixtures/vision/images/shapes.jpg"
FILE_CASE = {"max_new_tokens": 4}
FILE_MARGIN = 0.1
CASES = [
    ("greedy", {"num_beams": 1, "max_length": MAX_LENGTH}),
    ("beam3", {"num_beams": 3, "max_length": MAX_LENGTH, "num_return_sequences": 2,
               "length_penalty": 1.0, "early_stopping": False}),
    ("beam4_short", {"num_beams": 4, "max_new_tokens": 5}),
]


def text_config(d: int, heads: int, layers: int, ffn: int, vocab: int) -> dict:
    return BartConfig(
        vocab_size=vocab, d_model=d, encoder_layers=layers, decoder_layers=1,
        encoder_attention_heads=heads, decoder_attention_heads=heads, encoder_ffn_dim=ffn,
        decoder_ffn_dim=ffn, max_position_embeddings=24, activation_function="gelu",
        pad_token_id=PAD, bos_token_id=START, eos_token_id=EOS, dropout=0.0,
        attention_dropout=0.0, activation_dropout=0.0).to_dict()


def image_config() -> dict:
    return ViTConfig(
        hidden_size=18, num_hidden_layers=2, num_attention_heads=3, intermediate_size=26,
        image_size=12, patch_size=4, num_channels=3, hidden_act="gelu",
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0).to_dict()


def decoder_config() -> dict:
    return BartConfig(
        vocab_size=VOCAB, d_model=20, encoder_layers=1, decoder_layers=2,
        encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=36,
        decoder_ffn_dim=36, max_position_embeddings=24, activation_function="gelu",
        pad_token_id=PAD, bos_token_id=START, eos_token_id=EOS, decoder_start_token_id=EOS,
        forced_eos_token_id=None, dropout=0.0, attention_dropout=0.0,
        activation_dropout=0.0).to_dict()


def config(fusion: str, sources: int) -> dict:
    encoders = [text_config(12, 3, 2, 28, 53), image_config(), text_config(20, 2, 1, 16, 47)]
    return {
        "model_type": "multi_source",
        "fusion": fusion,
        "encoders": encoders[:sources],
        "decoder": decoder_config(),
        "decoder_start_token_id": EOS,
        "pad_token_id": PAD,
        "bos_token_id": START,
        "eos_token_id": EOS,
    }


def inputs(g: torch.Generator, cfg: dict) -> list:
    """Three examples per source: texts of different lengths, images of random pixels."""
    out = []
    for i, e in enumerate(cfg["encoders"]):
        if e["model_type"] == "vit":
            out.append(torch.randn(3, 3, 12, 12, generator=g))
        else:
            lengths = [[5, 9, 2], [7, 3, 4]][i // 2]
            v = e["vocab_size"]
            out.append([[int(t) for t in torch.randint(3, v, (n,), generator=g)] + [EOS]
                        for n in lengths])
    return out


def randomize(model: MultiSource, g: torch.Generator) -> None:
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name.split(".")[-2]:
                p.copy_((1.0 if name.endswith("weight") else 0.0)
                        + 0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
        # EOS's row of the tied output projection, larger: some sequences end early.
        model.decoder.embed_tokens.weight[EOS] *= 1.6


def strip(seq: list[int]) -> list[int]:
    """Through the first EOS after the start token; no padding."""
    for i, t in enumerate(seq[1:], 1):
        if t == EOS:
            return seq[:i + 1]
    return seq


def from_file(srcs: list) -> list:
    """Example 0's texts beside the image file, read by the image processor."""
    pixels = PROCESSOR(images=[Image.open(IMAGE)], return_tensors="pt")["pixel_values"]
    return [pixels.float() if torch.is_tensor(x) else x[:1] for x in srcs]


def greedy_margin(model: MultiSource, srcs: list, **kwargs) -> float:
    out = model.generate(srcs, num_beams=1, do_sample=False, **kwargs)
    m = float("inf")
    for step in out.scores:
        top = torch.topk(step, 2, dim=-1).values
        m = min(m, float((top[:, 0] - top[:, 1]).min()))
    return m


def acceptable(model: MultiSource, srcs: list) -> bool:
    """Every greedy decision clear by MIN_MARGIN; sequences that differ between examples
    (they read their sources), and one that varies along the way or one that ends early."""
    out = model.generate(srcs, max_length=MAX_LENGTH, num_beams=1, do_sample=False)
    m = float("inf")
    for step in out.scores:
        top = torch.topk(step, 2, dim=-1).values
        m = min(m, float((top[:, 0] - top[:, 1]).min()))
    seqs = [strip(s) for s in out.sequences.tolist()]
    varied = any(len(set(s[1:])) >= 3 for s in seqs)
    distinct = len({tuple(s) for s in seqs}) == len(seqs)
    early = any(len(s) < MAX_LENGTH for s in seqs) and any(len(s) > 4 for s in seqs)
    # The image file's pixels differ from PIL's by up to 2 levels in seqbridge's decoder.
    file_margin = greedy_margin(model, from_file(srcs), **FILE_CASE)
    return (m >= MIN_MARGIN and distinct and (varied or early) and file_margin >= FILE_MARGIN
            and all(beam_gap(model, srcs, kw) >= MIN_MARGIN for _, kw in CASES[1:]))


def beam_gap(model: MultiSource, srcs: list, kwargs: dict) -> float:
    """The smallest score gap between an example's returned hypotheses (a near tie would
    let float rounding reorder them)."""
    out = model.generate(srcs, do_sample=False, **kwargs)
    k = kwargs.get("num_return_sequences", 1)
    s = out.sequences_scores.view(-1, k)
    return float((s[:, :-1] - s[:, 1:]).abs().min()) if k > 1 else float("inf")


def make(out_dir: str, name: str, fusion: str, sources: int) -> None:
    cfg = config(fusion, sources)
    for seed in range(400):
        g = torch.Generator().manual_seed(1000 * sources + seed)
        model = MultiSource(cfg).eval()
        randomize(model, g)
        model.seq2seq.tie_weights()
        srcs = inputs(g, cfg)
        with torch.no_grad():
            if acceptable(model, srcs):
                break
    else:
        raise SystemExit(f"{name}: no seed gives greedy margins of {MIN_MARGIN}")
    cases = []
    with torch.no_grad():
        for case, kwargs in CASES:
            o = model.generate(srcs, do_sample=False, **kwargs)
            c = {"name": case, "kwargs": kwargs,
                 "sequences": [strip(s) for s in o.sequences.tolist()]}
            if kwargs["num_beams"] > 1:
                c["sequences_scores"] = o.sequences_scores.tolist()
            cases.append(c)
        greedy = cases[0]["sequences"]
        t = max(len(s) for s in greedy)
        dec_in = torch.tensor([s + [PAD] * (t - len(s)) for s in greedy])
        logp = torch.log_softmax(model.logits(srcs, dec_in[:, :-1]), -1)
        score = [[float(logp[b, i, s[i + 1]]) for i in range(len(s) - 1)]
                 for b, s in enumerate(greedy)]
        maps = model.cross_attentions([x[:1] for x in srcs], torch.tensor([greedy[0]]))
        o = model.generate(from_file(srcs), do_sample=False, **FILE_CASE)
        file_case = {"image": os.path.basename(IMAGE), "kwargs": FILE_CASE,
                     "sequences": [strip(x) for x in o.sequences.tolist()]}
    ref = {
        "inputs": [x.flatten().tolist() if torch.is_tensor(x) else x for x in srcs],
        "kinds": ["image" if e["model_type"] == "vit" else "text" for e in cfg["encoders"]],
        "pixel_shape": [3, 12, 12],
        "generate": cases,
        "score": {"sequences": greedy, "logprobs": score},
        "from_file": file_case,
        "cross_attentions": {
            "decoder_input_ids": greedy[0],
            "sources": [[m.flatten().tolist() for m in per_layer] for per_layer in maps],
            "shapes": [[list(m.shape) for m in per_layer] for per_layer in maps],
        },
    }
    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1, sort_keys=True)
    with open(os.path.join(d, "generation_config.json"), "w") as f:
        json.dump({"decoder_start_token_id": EOS, "bos_token_id": START, "eos_token_id": EOS,
                   "pad_token_id": PAD, "max_length": MAX_LENGTH}, f, indent=1)
    save_file(model.state_dict_hf(), os.path.join(d, "model.safetensors"))
    PROCESSOR.save_pretrained(d)
    rounded = json.loads(json.dumps(ref), parse_float=lambda x: round(float(x), 7))
    with open(os.path.join(d, "reference.json"), "w") as f:
        json.dump(rounded, f, separators=(",", ":"))
    print(name, "seed", seed, "greedy", greedy)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="tests/fixtures/multi_source")
    a = ap.parse_args()
    for name, fusion, n in [("concat-2", "concat", 2), ("separate-2", "separate", 2),
                            ("concat-3", "concat", 3), ("separate-3", "separate", 3)]:
        make(a.out, name, fusion, n)


if __name__ == "__main__":
    main()
