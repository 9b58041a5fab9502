#!/usr/bin/env python3
"""Trains the shapes question-answering model (shapes_data.py) twice, ``--fusion concat`` and
``--fusion separate`` at the same size, step budget and seed, on the CPU, and writes each as a
``multi_source`` checkpoint seqbridge loads (f16 ``model.safetensors``, ``config.json``,
``generation_config.json``, ``tokenizer.json``, ``preprocessor_config.json``) with its held-out
set (``heldout/``: PNGs + ``examples.jsonl``) and ``report.json``.

    nice /work/venv/bin/python tools/multi_source/train_shapes.py --fusion concat --steps 600 --out /tmp/shapes-concat

The model: a ViT image encoder (64 x 64, patch 8: 64 patches + [CLS]), a one-layer BART text
encoder over the question, and a two-layer BART decoder that writes the one-word answer, all of
width ``--width`` (so no projections), the question's tokenizer a word-level ``tokenizer.json``.

Figures on the held-out set (greedy, PyTorch, f16 weights as saved):

- exact match per question type and overall;
- ``image_on_object``: of the last decoder layer's cross-attention (mean over heads) of the step
  that writes the answer, the share of the *image* attention that falls on the patches that
  overlap the boxes of the objects the question is about (shapes_data.py's ``boxes``),
  renormalised over the image positions ([CLS] included); ``image_chance`` is the share those
  patches would get under uniform attention. The ratio says whether the decoder looks where
  the answer is rather than everywhere;
- ``text_on_words``: the same step's share of the *text* attention on the question words that
  name those objects (``words``), with ``text_chance`` its uniform share;
- ``image_share`` (concat only): the share of the one attention that goes to the image segment
  at all (separate blocks each sum to 1, so it is not defined there).

Each source's attention is renormalised over its own positions so the two fusions compare on the
same footing: with concat, on the image and text segments of the one pool; with separate, on each
block as it is. One step (the answer token's) is measured since the answer is one word and the
next step only writes ``</s>``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

torch.set_num_threads(1)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import shapes_data as sd  # noqa: E402
from reference import MultiSource  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from tokenizers import Tokenizer, models, pre_tokenizers, processors  # noqa: E402
from transformers import BartConfig, ViTConfig  # noqa: E402
from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil  # noqa: E402

BOS, PAD, EOS, UNK = 0, 1, 2, 3
SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]
PATCH = 8


def tokenizer() -> Tokenizer:
    vocab = {w: i for i, w in enumerate(SPECIALS + sd.WORDS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>",
                                                        special_tokens=[("</s>", EOS)])
    tok.add_special_tokens(SPECIALS)
    return tok


def config(fusion: str, width: int, vocab: int) -> dict:
    def bart(layers: int) -> dict:
        return BartConfig(
            vocab_size=vocab, d_model=width, encoder_layers=layers, decoder_layers=layers,
            encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=2 * width,
            decoder_ffn_dim=2 * width, max_position_embeddings=32, activation_function="gelu",
            pad_token_id=PAD, bos_token_id=BOS, eos_token_id=EOS, decoder_start_token_id=EOS,
            forced_eos_token_id=None, dropout=0.0, attention_dropout=0.0,
            activation_dropout=0.0, scale_embedding=False).to_dict()

    vit = ViTConfig(hidden_size=width, num_hidden_layers=2, num_attention_heads=4,
                    intermediate_size=2 * width, image_size=sd.SIZE, patch_size=PATCH,
                    num_channels=3, hidden_act="gelu", hidden_dropout_prob=0.0,
                    attention_probs_dropout_prob=0.0).to_dict()
    return {"model_type": "multi_source", "fusion": fusion, "encoders": [vit, bart(1)],
            "decoder": bart(2), "decoder_start_token_id": EOS, "pad_token_id": PAD,
            "bos_token_id": BOS, "eos_token_id": EOS}


def batch(tok: Tokenizer, exs: list[dict]):
    px = torch.from_numpy(np.stack([sd.pixels(e) for e in exs]))
    qs = [tok.encode(e["question"]).ids for e in exs]
    ans = torch.tensor([tok.token_to_id(e["answer"]) for e in exs])
    return [px, qs], ans


def patches_of(boxes: list[list[int]]) -> list[int]:
    """Image positions (1 + patch index; 0 is [CLS]) whose patch overlaps any box."""
    g = sd.SIZE // PATCH
    out = set()
    for x0, y0, x1, y1 in boxes:
        for r in range(y0 // PATCH, (y1 - 1) // PATCH + 1):
            for c in range(x0 // PATCH, (x1 - 1) // PATCH + 1):
                out.add(1 + r * g + c)
    return sorted(out)


def evaluate(model: MultiSource, tok: Tokenizer, held: list[dict]) -> dict:
    model.eval()
    right = {t: [0, 0] for t in sd.TYPES}
    fig = {"image_on_object": [], "image_chance": [], "text_on_words": [], "text_chance": [],
           "image_share": []}
    with torch.no_grad():
        for i in range(0, len(held), 64):
            exs = held[i:i + 64]
            srcs, ans = batch(tok, exs)
            out = model.generate(srcs, num_beams=1, do_sample=False, max_new_tokens=4)
            for e, seq, a in zip(exs, out.sequences.tolist(), ans.tolist()):
                right[e["type"]][0] += int(seq[1:3] == [a, EOS])
                right[e["type"]][1] += 1
        for e in held[:200]:
            srcs, ans = batch(tok, [e])
            maps = model.cross_attentions(srcs, torch.tensor([[EOS, int(ans[0])]]))
            img = maps[0][-1].mean(0)[0]  # last layer, mean over heads, the answer's step
            txt = maps[1][-1].mean(0)[0]
            on = patches_of(e["boxes"])
            fig["image_on_object"].append(float(img[on].sum() / img.sum()))
            fig["image_chance"].append(len(on) / img.numel())
            fig["text_on_words"].append(float(txt[e["words"]].sum() / txt.sum()))
            fig["text_chance"].append(len(e["words"]) / txt.numel())
            fig["image_share"].append(float(img.sum() / (img.sum() + txt.sum())))
    rep = {f"exact_{t}": r / max(n, 1) for t, (r, n) in right.items()}
    rep["exact"] = sum(r for r, _ in right.values()) / len(held)
    rep.update({k: float(np.mean(v)) for k, v in fig.items()})
    if model.fusion == "separate":
        del rep["image_share"]
    model.train()
    return rep


def save(model: MultiSource, cfg: dict, tok: Tokenizer, held: list[dict], rep: dict,
         out: str) -> None:
    os.makedirs(os.path.join(out, "heldout"), exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1, sort_keys=True)
    with open(os.path.join(out, "generation_config.json"), "w") as f:
        json.dump({"decoder_start_token_id": EOS, "bos_token_id": BOS, "eos_token_id": EOS,
                   "pad_token_id": PAD, "max_length": 6}, f, indent=1)
    save_file({k: v.half() for k, v in model.state_dict_hf().items()},
              os.path.join(out, "model.safetensors"))
    tok.save(os.path.join(out, "tokenizer.json"))
    ViTImageProcessorPil(size={"height": sd.SIZE, "width": sd.SIZE}, do_convert_rgb=True,
                         image_mean=[0.5] * 3, image_std=[0.5] * 3).save_pretrained(out)
    with open(os.path.join(out, "heldout", "examples.jsonl"), "w") as f:
        for i, e in enumerate(held):
            e = dict(e, image=f"{i:04d}.png")
            sd.render(e["objects"]).save(os.path.join(out, "heldout", e["image"]))
            f.write(json.dumps(e) + "\n")
    with open(os.path.join(out, "report.json"), "w") as f:
        json.dump(rep, f, indent=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fusion", choices=["concat", "separate"], required=True)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--train", type=int, default=20000, help="training examples")
    ap.add_argument("--heldout", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    tok = tokenizer()
    cfg = config(a.fusion, a.width, tok.get_vocab_size())
    model = MultiSource(cfg)
    model.seq2seq.tie_weights()
    train = sd.examples(1000 + a.seed, a.train)
    held = sd.examples(2000 + a.seed, a.heldout, exclude={sd.key(e) for e in train})
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 50) * max(0.05, 1 - s / a.steps))
    order = torch.Generator().manual_seed(a.seed)
    model.train()
    t0 = time.time()
    for step in range(a.steps):
        idx = torch.randint(len(train), (a.batch,), generator=order).tolist()
        srcs, ans = batch(tok, [train[i] for i in idx])
        dec_in = torch.stack([torch.full_like(ans, EOS), ans], 1)
        labels = torch.stack([ans, torch.full_like(ans, EOS)], 1)
        logits = model.logits(srcs, dec_in)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                 labels.reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 50 == 0 or step == a.steps - 1:
            print(f"step {step} loss {loss.item():.3f} {(time.time() - t0) / (step + 1):.3f} s/step",
                  flush=True)
    step_s = (time.time() - t0) / a.steps
    # Evaluate the weights as saved (f16), so the figures are those of the shipped checkpoint.
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())
    rep = evaluate(model, tok, held)
    rep.update({"fusion": a.fusion, "steps": a.steps, "batch": a.batch, "width": a.width,
                "seed": a.seed, "s_per_step": step_s,
                "parameters": sum(p.numel() for p in model.parameters())})
    save(model, cfg, tok, held, rep, a.out)
    print(json.dumps(rep, indent=1))


if __name__ == "__main__":
    main()
