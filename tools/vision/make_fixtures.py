#!/usr/bin/env python3
"""Tiny random VisionEncoderDecoderModel checkpoints, test images, and transformers' outputs.

Run from the repository root:

    /path/to/venv/bin/python tools/vision/make_fixtures.py [--out tests/fixtures/vision]

It writes:

- ``images/``: small PNG and JPEG files drawn here with PIL (a colour gradient, shapes on a
  background, a greyscale pattern), of sizes that make the processor both shrink and enlarge,
  and the shapes again with an EXIF orientation (``rotated.jpg``).
- ``vit-gpt2/`` and ``deit-gpt2/``: a ViT encoder (image 30x30, patch 6, hidden 36, 3 heads) and a GPT-2 decoder
  with cross-attention (hidden 40, 4 heads), so the encoder's width differs from the decoder's
  and ``enc_to_dec_proj`` is there; and a DeiT encoder (image 32, patch 8, hidden 40: a
  distillation token after [CLS], no projection) with the same kind of decoder. Each in the
  Hugging Face layout: ``config.json`` with the
  ``encoder`` and ``decoder`` sub-configs, ``generation_config.json``, ``model.safetensors``,
  ``preprocessor_config.json`` and a byte-level BPE ``tokenizer.json`` trained here on a few
  sentences (a few hundred tokens), and ``reference.json``:

  - ``pixel_values``: per image file, ``ViTImageProcessorPil`` (transformers' PIL backend,
    which resizes the uint8 image with PIL) output ``[3, 30, 30]``;
  - ``encoder_states``: the encoder's last hidden state after ``enc_to_dec_proj`` (what the
    decoder's cross-attention reads), ``[3, 26, 40]`` for the three images;
  - ``generate``: cases over the three images' pixel values (greedy, beam 4, a length-limited
    one): kwargs, ``sequences`` (decoder start first, through EOS, no padding),
    ``sequences_scores`` for beams, and the smallest greedy decision margin;
  - ``score``: log P(token_t | image, tokens_<t) of every greedy sequence, teacher-forced;
  - ``captions``: the decoded greedy sequences (special tokens skipped);
  - ``cross_attentions``: per decoder layer, the cross-attention probabilities ``[heads, T, S]``
    of a teacher-forced pass over image 1's greedy sequence (eager attention).

The random weights are drawn from a seeded normal and scaled so that the argmax moves from step
to step; EOS's embedding row (the tied output projection's row) is scaled so that some
sequences end early and others run to the limit. Seeds are tried in order until every greedy
decision has a margin of at least MIN_MARGIN and the float64 model gives the same sequences.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import tempfile

import numpy as np
import torch

torch.set_num_threads(1)

from PIL import Image, ImageDraw  # noqa: E402
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers  # noqa: E402
from transformers import (  # noqa: E402
    DeiTConfig,
    GenerationConfig,
    GPT2Config,
    TrOCRConfig,
    PreTrainedTokenizerFast,
    VisionEncoderDecoderConfig,
    VisionEncoderDecoderModel,
    ViTConfig,
)
from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

hf_logging.set_verbosity_error()

MIN_MARGIN = 2e-3
MAX_NEW_TOKENS = 14
IMAGES = ["gradient.png", "shapes.jpg", "gray.png"]
CORPUS = [
    "a red circle and a blue square on a green field",
    "a photo of a cat sitting on a wooden table",
    "two dogs play with a ball in the park",
    "the sky is blue and the grass is green",
    "a man rides a bicycle down a busy street",
    "gradient from dark to light with stripes",
]


def make_images(out: str) -> None:
    """Three small images: shrunk (40x28 PNG, 64x48 JPEG) and enlarged (17x23 greyscale PNG)."""
    os.makedirs(out, exist_ok=True)
    w, h = 40, 28
    px = np.zeros((h, w, 3), dtype=np.uint8)
    for y in range(h):
        for x in range(w):
            px[y, x] = (x * 6, y * 9, int(128 + 100 * math.sin(x * 0.5 + y * 0.3)))
    Image.fromarray(px, "RGB").save(os.path.join(out, "gradient.png"))
    img = Image.new("RGB", (64, 48), (40, 160, 70))
    d = ImageDraw.Draw(img)
    d.ellipse((6, 8, 30, 32), fill=(220, 30, 30))
    d.rectangle((36, 14, 58, 40), fill=(30, 40, 200))
    d.line((0, 47, 63, 0), fill=(250, 250, 250), width=3)
    img.save(os.path.join(out, "shapes.jpg"), quality=90)
    # The same pixels stored with EXIF orientation 6 (display rotated 90 degrees clockwise),
    # as phone photos are: decoders must turn it upright as transformers' load_image does.
    exif = Image.Exif()
    exif[0x0112] = 6
    img.save(os.path.join(out, "rotated.jpg"), quality=90, exif=exif)
    g = np.zeros((23, 17), dtype=np.uint8)
    for y in range(23):
        for x in range(17):
            g[y, x] = 255 if (x // 3 + y // 4) % 2 else (x * 13 + y * 5) % 120
    Image.fromarray(g, "L").save(os.path.join(out, "gray.png"))


def make_tokenizer(pad: bool = False) -> Tokenizer:
    """A GPT-2 style byte-level BPE with a few merges and <|endoftext|> (then <pad>) last."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=[],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer)
    tok.add_special_tokens(["<|endoftext|>"])
    if pad:
        tok.add_special_tokens(["<pad>"])
    return tok


def encoder_config(kind: str):
    """ViT: image 30, patch 6, hidden 36 (narrower than the decoder: enc_to_dec_proj).
    DeiT: image 32, patch 8, hidden 40 (the decoder's width: no projection)."""
    if kind == "vit":
        return ViTConfig(
            hidden_size=36,
            num_hidden_layers=2,
            num_attention_heads=3,
            intermediate_size=52,
            image_size=30,
            patch_size=6,
            num_channels=3,
            hidden_act="gelu",
            qkv_bias=True,
        )
    return DeiTConfig(
        hidden_size=40,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=44,
        image_size=32,
        patch_size=8,
        num_channels=3,
        hidden_act="gelu",
    )


def decoder_config(kind: str, vocab: int, eot: int, pad: int | None, enc_width: int):
    """GPT-2 (hidden 40, 4 heads), or TrOCR (hidden 40, 4 heads, post-norm, reading the
    encoder's width): ``trocr-small`` style (sinusoidal positions numbered from the pad id,
    scaled embeddings) or ``trocr-base`` style (learned positions)."""
    if kind.startswith("trocr"):
        small = kind == "trocr-small"
        return TrOCRConfig(
            vocab_size=vocab,
            d_model=40,
            decoder_layers=2,
            decoder_attention_heads=4,
            decoder_ffn_dim=56,
            activation_function="gelu" if small else "relu",
            max_position_embeddings=40,
            scale_embedding=small,
            use_learned_position_embeddings=not small,
            layernorm_embedding=True,
            cross_attention_hidden_size=enc_width,
            pad_token_id=pad,
            bos_token_id=eot,
            eos_token_id=eot,
            decoder_start_token_id=eot,
            is_decoder=True,
            add_cross_attention=True,
        )
    return GPT2Config(
        vocab_size=vocab,
        n_positions=40,
        n_embd=40,
        n_layer=2,
        n_head=4,
        activation_function="gelu_new",
        add_cross_attention=True,
        is_decoder=True,
        bos_token_id=eot,
        eos_token_id=eot,
    )


def build(
    kind: str, dec_kind: str, seed: int, vocab: int, eot: int, pad: int | None, eos_scale: float
) -> VisionEncoderDecoderModel:
    enc = encoder_config(kind)
    dec = decoder_config(dec_kind, vocab, eot, pad, enc.hidden_size)
    cfg = VisionEncoderDecoderConfig.from_encoder_decoder_configs(enc, dec)
    cfg.decoder_start_token_id = eot
    cfg.pad_token_id = eot if pad is None else pad
    cfg.eos_token_id = eot
    torch.manual_seed(seed)
    cfg._attn_implementation = "eager"  # cross-attention probabilities are compared
    model = VisionEncoderDecoderModel(cfg)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layernorm" in name or "layer_norm" in name or "ln_" in name:
                # Norm gains around 1, shifts small: the stream stays normalised.
                base = 1.0 if name.endswith("weight") else 0.0
                p.copy_(base + 0.2 * torch.randn(p.shape, generator=g))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            else:
                # GPT-2's Conv1D weights are [in, out]; nn.Linear's [out, in].
                conv1d = "decoder.transformer" in name and p.dim() == 2
                fan_in = p.shape[0] if conv1d else p.shape[-1]
                std = 1.6 / math.sqrt(max(fan_in, 1))
                p.copy_(std * torch.randn(p.shape, generator=g))
        wte = model.decoder.get_input_embeddings().weight
        wte[eot] *= eos_scale
    model.generation_config = GenerationConfig(
        decoder_start_token_id=eot,
        bos_token_id=eot,
        eos_token_id=eot,
        pad_token_id=cfg.pad_token_id,
    )
    return model.eval()


def strip(seq: list[int], eos: int) -> list[int]:
    """A generate row without its padding: decoder start, tokens, through the first EOS."""
    for i in range(1, len(seq)):
        if seq[i] == eos:
            return seq[: i + 1]
    return seq


def run_cases(model, pixels: torch.Tensor, eos: int):
    """The generate cases, their decision margins and the teacher-forced log-probs."""
    cases = []
    margins = []
    for name, kwargs, rows in [
        ("greedy_batch3", {"max_new_tokens": MAX_NEW_TOKENS}, [0, 1, 2]),
        ("greedy_limit5", {"max_new_tokens": 5}, [1]),
        ("beam4_batch3", {"num_beams": 4, "max_new_tokens": MAX_NEW_TOKENS}, [0, 1, 2]),
        ("beam4_batch2", {"num_beams": 4, "max_new_tokens": 8, "length_penalty": 0.6}, [2, 0]),
    ]:
        with torch.no_grad():
            out = model.generate(
                pixel_values=pixels[rows],
                output_scores=True,
                return_dict_in_generate=True,
                **kwargs,
            )
        seqs = [strip(s, eos) for s in out.sequences.tolist()]
        case = {"name": name, "images": rows, "kwargs": kwargs, "sequences": seqs}
        if kwargs.get("num_beams", 1) == 1:
            for step in out.scores:
                top = torch.log_softmax(step.double(), -1).topk(2, dim=-1).values
                margins.extend((top[:, 0] - top[:, 1]).tolist())
        else:
            case["sequences_scores"] = out.sequences_scores.tolist()
        cases.append(case)
    return cases, margins


def logprobs(model, pixels: torch.Tensor, seqs: list[list[int]]) -> list[list[float]]:
    out = []
    for i, s in enumerate(seqs):
        ids = torch.tensor([s[:-1]])
        with torch.no_grad():
            logits = model(pixel_values=pixels[i : i + 1], decoder_input_ids=ids).logits[0]
        lp = torch.log_softmax(logits.double(), -1)
        out.append([lp[t, tok].item() for t, tok in enumerate(s[1:])])
    return out


def acceptable(cases, pad: int | None) -> bool:
    greedy = cases[0]["sequences"]
    # A pad id inside a sequence would change TrOCR's sinusoidal positions.
    if pad is not None and any(pad in s for c in cases for s in c["sequences"]):
        return False
    lengths = [len(s) - 1 for s in greedy]
    ended = [s[-1] == s[0] and len(s) > 1 for s in greedy]
    distinct = all(len(set(s[1:])) >= min(3, len(s) - 1) for s in greedy)
    beams_differ = cases[2]["sequences"] != greedy
    return (
        any(ended)
        and not all(ended)
        and min(lengths) >= 3
        and distinct
        and beams_differ
        and len({tuple(s) for s in greedy}) == len(greedy)
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/fixtures/vision")
    args = ap.parse_args()
    img_dir = os.path.join(args.out, "images")
    make_images(img_dir)
    make_fixture(args.out, img_dir, ("vit", "gpt2"), "vit-gpt2", 30)
    make_fixture(args.out, img_dir, ("deit", "gpt2"), "deit-gpt2", 32)
    make_fixture(args.out, img_dir, ("deit", "trocr-small"), "deit-trocr", 32)
    make_fixture(args.out, img_dir, ("vit", "trocr-base"), "vit-trocr", 30)


def make_fixture(
    out_root: str, img_dir: str, kinds: tuple[str, str], name: str, side: int
) -> None:
    kind, dec_kind = kinds
    trocr = dec_kind.startswith("trocr")
    tok = make_tokenizer(pad=trocr)
    vocab = tok.get_vocab_size()
    eot = tok.token_to_id("<|endoftext|>")
    pad = tok.token_to_id("<pad>") if trocr else None
    proc = ViTImageProcessorPil(
        size={"height": side, "width": side},
        do_convert_rgb=True,
        image_mean=[0.5, 0.45, 0.4],
        image_std=[0.5, 0.25, 0.3],
    )
    images = [Image.open(os.path.join(img_dir, f)) for f in IMAGES]
    pixels = proc(images=images, return_tensors="pt")["pixel_values"].float()

    for attempt in range(200):
        seed = 1000 + attempt
        eos_scale = 1.0 + 0.25 * (attempt % 5)
        model = build(kind, dec_kind, seed, vocab, eot, pad, eos_scale)
        cases, margins = run_cases(model, pixels, eot)
        if not acceptable(cases, pad) or min(margins) < MIN_MARGIN:
            continue
        # float64 must agree: no decision sits on float32 rounding.
        cases64, _ = run_cases(model.double(), pixels.double(), eot)
        model.float()
        if [c["sequences"] for c in cases64] != [c["sequences"] for c in cases]:
            continue
        break
    else:
        raise SystemExit("no seed gave acceptable sequences")
    print(f"{name}: seed {seed}, eos_scale {eos_scale}, min greedy margin {min(margins):.4f}")
    for c in cases:
        print(c["name"], c["sequences"])

    out = os.path.join(out_root, name)
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        proc.save_pretrained(tmp)
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(out)
        for f in os.listdir(tmp):
            shutil.copy(os.path.join(tmp, f), out)
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>")
    tok.save(os.path.join(out, "tokenizer.json"))
    # Reload from disk: the reference comes from what the tests load.
    model = VisionEncoderDecoderModel.from_pretrained(
        out, dtype=torch.float32, attn_implementation="eager"
    ).eval()
    dec = getattr(getattr(model.decoder, "model", None), "decoder", None)
    if dec is not None and hasattr(dec.embed_positions, "weights"):
        # transformers 5.25 leaves TrOCR's computed sinusoidal table on the meta device after
        # from_pretrained (and, recomputing it, sizes it without the cache): build it again
        # as TrOCRDecoder.__init__ does.
        e = dec.embed_positions
        c = model.decoder.config
        e.weights = e.get_embedding(c.max_position_embeddings + e.padding_idx + 1, c.d_model, e.padding_idx)
    cases, margins = run_cases(model, pixels, eot)
    with torch.no_grad():
        states = model.encoder(pixel_values=pixels).last_hidden_state
        if getattr(model, "enc_to_dec_proj", None) is not None:
            states = model.enc_to_dec_proj(states)
    greedy = cases[0]["sequences"]
    r6 = lambda xs: [round(float(x), 6) for x in xs]  # noqa: E731
    # Cross-attention probabilities of a teacher-forced pass over image 1's greedy sequence
    # (decoder start included, last token excluded): per layer [heads, T, S].
    dec_ids = greedy[1][:-1]
    with torch.no_grad():
        att = model(
            pixel_values=pixels[1:2],
            decoder_input_ids=torch.tensor([dec_ids]),
            output_attentions=True,
        ).cross_attentions
    cross = {
        "image": 1,
        "decoder_input_ids": dec_ids,
        "layers": [r6(a[0].flatten().tolist()) for a in att],
        "shape": list(att[0].shape[1:]),
    }
    ref = {
        "transformers": __import__("transformers").__version__,
        "seed": seed,
        "images": IMAGES,
        "pixel_values": {f: r6(pixels[i].flatten().tolist()) for i, f in enumerate(IMAGES)},
        "pixel_shape": list(pixels.shape[1:]),
        "encoder_states": r6(states.flatten().tolist()),
        "encoder_states_shape": list(states.shape),
        "min_greedy_margin": min(margins),
        "generate": cases,
        "score": {"sequences": greedy, "logprobs": [r6(x) for x in logprobs(model, pixels, greedy)]},
        "captions": [hf_tok.decode(s, skip_special_tokens=True) for s in greedy],
        "cross_attentions": cross,
    }
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump(ref, f, separators=(",", ":"))
        f.write("\n")
    print("captions", ref["captions"])


if __name__ == "__main__":
    main()
