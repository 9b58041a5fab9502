"""Train the small Marian date normaliser shipped in assets/date-normalizer/.

Everything is seeded (random, numpy, torch) and runs on the CPU, one thread by
default.  Steps:
  1. build the character-level tokenizer (build_tokenizer.py) -> OUT/tokenizer.json
  2. generate the held-out set with its own seed -> OUT/heldout.tsv
     (source<TAB>target<TAB>category, a fixed number of lines per category)
  3. train a MarianMTModel on examples generated on the fly from the training
     seed, skipping any source that is in the held-out set or in the first
     model's held-out set (OUT/heldout-v1.tsv, written forms only, kept to
     check that nothing regressed)
  4. save the checkpoint in float16 (config.json, generation_config.json,
     model.safetensors)
  5. reload the saved f16 checkpoint in float32 and measure held-out
     exact-match accuracy with greedy `generate` (what the Rust side runs),
     per category, and on heldout-v1.tsv

Usage (from the repository root):
    /work/venv/bin/python tools/dates/train_date_model.py            # defaults below
    /work/venv/bin/python tools/dates/train_date_model.py --threads 2 --out /tmp/dn
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402
from transformers import GenerationConfig, MarianConfig, MarianMTModel  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import build_tokenizer  # noqa: E402
import dates_data  # noqa: E402
import dates_forms  # noqa: E402

REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
MAX_POSITIONS = 128
MAX_SOURCE_CHARS = 100  # generator max is ~65; inputs are never truncated
GEN_MAX_LENGTH = 32  # "YYYY-MM-DDTHH:MM" is 16 tokens + start + </s>
# Held-out lines per category (languages round-robin inside each).
HELDOUT_COUNTS = {"written": 1000, "numeric": 800, "partial": 500, "time-only": 300, "no-date": 400}
V1_HELDOUT = "heldout-v1.tsv"


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(REPO, "assets", "date-normalizer"))
    ap.add_argument("--seed", type=int, default=20261128, help="training seed (model init and data)")
    ap.add_argument("--heldout-seed", type=int, default=19990303)
    ap.add_argument("--v1-heldout", default=os.path.join(REPO, "assets", "date-normalizer", V1_HELDOUT),
                    help="the first model's held-out set (copied to OUT if elsewhere)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=2400)
    ap.add_argument("--batch-size", type=int, default=96)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--label-smoothing", type=float, default=0.05)
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--layers", type=int, default=3, help="encoder and decoder layers each")
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--ffn", type=int, default=512)
    ap.add_argument("--eval-every", type=int, default=800)
    ap.add_argument("--eval-every-nth", type=int, default=7, help="held-out lines used for progress checks")
    ap.add_argument("--min-accuracy", type=float, default=0.99)
    ap.add_argument("--month-end-rate", type=float, default=0.0,
                    help="share of extra training examples at the ends of months (dates_forms.month_end)")
    ap.add_argument("--leap-rate", type=float, default=0.0,
                    help="share of the month-end examples that are 28-30 February (dates_forms.LEAP_RATE)")
    ap.add_argument("--relative-time-rate", type=float, default=0.0,
                    help="share of extra no-date examples: a counted relative phrase after a time")
    ap.add_argument("--no-date-weight", type=float, default=None,
                    help="weight of the no-date category in the training stream (default 0.12 of 1)")
    ap.add_argument("--init-from", metavar="DIR",
                    help="continue from this checkpoint (same tokenizer) instead of a fresh model; "
                         "give it another --seed so the data stream is new")
    return ap.parse_args()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class CharCodec:
    """Fast path for the training loop, checked against tokenizer.json."""

    def __init__(self, tok: Tokenizer):
        self.vocab = tok.get_vocab()
        self.eos = tok.token_to_id(build_tokenizer.EOS)
        self.unk = tok.token_to_id(build_tokenizer.UNK)
        self.pad = tok.token_to_id(build_tokenizer.PAD)
        self.mdy = tok.token_to_id(build_tokenizer.MDY)

    def encode(self, text: str) -> list[int]:
        prefix = []
        if text.startswith(build_tokenizer.MDY):
            prefix, text = [self.mdy], text[len(build_tokenizer.MDY):]
        return prefix + [self.vocab.get(c, self.unk) for c in text] + [self.eos]


def make_heldout(seed: int, avoid: set[str]) -> list[tuple[str, str, str]]:
    """(source, target, category), HELDOUT_COUNTS per category, no source twice
    and none of `avoid`."""
    rng = random.Random(seed)
    seen = set(avoid)
    out = []
    for category, n in HELDOUT_COUNTS.items():
        k = 0
        # Round-robin over the languages so each category is balanced.
        while k < n:
            lang = dates_data.LANGS[k % len(dates_data.LANGS)]
            src, tgt, _, _ = dates_data.make_example(rng, lang, category)
            if src in seen:
                continue
            seen.add(src)
            out.append((src, tgt, category))
            k += 1
    return out


def read_tsv(path: str) -> list[tuple[str, str, str]]:
    """source<TAB>target[<TAB>category]; a file without categories is all 'written'."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            cols = line.rstrip("\n").split("\t")
            rows.append((cols[0], cols[1], cols[2] if len(cols) > 2 else "written"))
    return rows


def report(name: str, rows, errors) -> float:
    """Prints overall and per-category exact match; returns the worst of them."""
    missed: dict[str, int] = {}
    for src, _, _ in errors:
        missed[src] = 1
    total: dict[str, list[int]] = {}
    for src, _, cat in rows:
        t = total.setdefault(cat, [0, 0])
        t[0] += src not in missed
        t[1] += 1
    hits = sum(t[0] for t in total.values())
    print(f"{name}: exact match {hits * 100 / len(rows):.2f}% ({hits}/{len(rows)})", flush=True)
    worst = hits / len(rows)
    if len(total) > 1:
        for cat, (h, n) in total.items():
            print(f"  {cat:10s} {h * 100 / n:6.2f}% ({h}/{n})", flush=True)
            worst = min(worst, h / n)
    return worst


def pad_batch(seqs: list[list[int]], value: int) -> torch.Tensor:
    width = max(len(s) for s in seqs)
    return torch.tensor([s + [value] * (width - len(s)) for s in seqs], dtype=torch.long)


def make_batch(codec: CharCodec, pairs, start_id: int):
    src = [codec.encode(s) for s, _ in pairs]
    tgt = [codec.encode(t) for _, t in pairs]
    input_ids = pad_batch(src, codec.pad)
    attention_mask = (input_ids != codec.pad).long()
    labels = pad_batch(tgt, -100)
    dec_in = labels.new_full(labels.shape, codec.pad)
    dec_in[:, 0] = start_id
    dec_in[:, 1:] = labels[:, :-1]
    dec_in.masked_fill_(dec_in == -100, codec.pad)
    return input_ids, attention_mask, dec_in, labels


@torch.no_grad()
def greedy_accuracy(model, codec, rows, batch_size=200, show_errors=0):
    model.eval()
    correct = 0
    errors = []
    tok_decode = {i: t for t, i in codec.vocab.items()}
    specials = {codec.eos, codec.pad, codec.unk}
    pairs = [(r[0], r[1]) for r in rows]
    for i in range(0, len(pairs), batch_size):
        chunk = pairs[i:i + batch_size]
        input_ids = pad_batch([codec.encode(s) for s, _ in chunk], codec.pad)
        attention_mask = (input_ids != codec.pad).long()
        out = model.generate(input_ids=input_ids, attention_mask=attention_mask,
                             num_beams=1, do_sample=False, max_length=GEN_MAX_LENGTH)
        for (src, tgt), seq in zip(chunk, out.tolist()):
            pred = "".join(tok_decode[t] for t in seq[1:] if t not in specials)
            if pred == tgt:
                correct += 1
            else:
                errors.append((src, tgt, pred))
    model.train()
    for src, tgt, pred in errors[:show_errors]:
        print(f"    MISS {src!r}: want {tgt} got {pred}")
    return correct / len(pairs), errors


def build_model(args, codec: CharCodec) -> MarianMTModel:
    config = MarianConfig(
        vocab_size=len(codec.vocab),
        decoder_vocab_size=len(codec.vocab),
        d_model=args.d_model,
        encoder_layers=args.layers,
        decoder_layers=args.layers,
        encoder_attention_heads=args.heads,
        decoder_attention_heads=args.heads,
        encoder_ffn_dim=args.ffn,
        decoder_ffn_dim=args.ffn,
        max_position_embeddings=MAX_POSITIONS,
        activation_function="swish",
        scale_embedding=True,
        share_encoder_decoder_embeddings=True,
        tie_word_embeddings=True,
        dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        init_std=0.02,
        pad_token_id=codec.pad,
        eos_token_id=codec.eos,
        decoder_start_token_id=codec.pad,
        bos_token_id=None,
        forced_eos_token_id=None,
        use_cache=True,
    )
    return MarianMTModel(config)


def generation_config(codec: CharCodec) -> GenerationConfig:
    return GenerationConfig(
        decoder_start_token_id=codec.pad,
        eos_token_id=codec.eos,
        pad_token_id=codec.pad,
        max_length=GEN_MAX_LENGTH,
        num_beams=1,
        do_sample=False,
    )


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    seed_everything(args.seed)
    os.makedirs(args.out, exist_ok=True)
    t_start = time.time()

    # 1. tokenizer
    tok = build_tokenizer.build_tokenizer()
    tok_path = os.path.join(args.out, "tokenizer.json")
    tok.save(tok_path)
    tok = Tokenizer.from_file(tok_path)
    codec = CharCodec(tok)

    # 2. held-out sets: the new one, and the first model's (written forms only)
    v1 = read_tsv(args.v1_heldout)
    v1_path = os.path.join(args.out, V1_HELDOUT)
    if os.path.abspath(args.v1_heldout) != os.path.abspath(v1_path):
        with open(v1_path, "w", encoding="utf-8") as f:
            f.writelines(f"{s}\t{t}\n" for s, t, _ in v1)
    heldout = make_heldout(args.heldout_seed, {s for s, _, _ in v1})
    with open(os.path.join(args.out, "heldout.tsv"), "w", encoding="utf-8") as f:
        for src, tgt, cat in heldout:
            assert "\t" not in src and "\n" not in src
            f.write(f"{src}\t{tgt}\t{cat}\n")
    heldout_sources = {s for s, _, _ in heldout} | {s for s, _, _ in v1}
    dates_forms.MONTH_END_RATE = args.month_end_rate  # training stream only, not the held-out set
    dates_forms.LEAP_RATE = args.leap_rate
    dates_forms.RELATIVE_TIME_RATE = args.relative_time_rate
    if args.no_date_weight is not None:
        dates_forms.CATEGORY_WEIGHTS = [(args.no_date_weight if c == "no-date" else w, c)
                                        for w, c in dates_forms.CATEGORY_WEIGHTS]
    for src, tgt, _ in heldout:
        assert tok.encode(src).ids == codec.encode(src), src
        assert tok.decode(codec.encode(tgt), skip_special_tokens=True) == tgt
        assert len(src) <= MAX_SOURCE_CHARS
    build_tokenizer.check_roundtrip(tok, [r[0] for r in heldout] + [r[1] for r in heldout if r[1]])
    eval_pairs = heldout[:: args.eval_every_nth]

    # 3. model and training
    if args.init_from:
        model = MarianMTModel.from_pretrained(args.init_from, dtype=torch.float32)
        assert model.config.vocab_size == len(codec.vocab), "--init-from: another tokenizer"
        print(f"continuing from {args.init_from}", flush=True)
    else:
        model = build_model(args, codec)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: d_model={args.d_model} layers={args.layers}+{args.layers} heads={args.heads} "
          f"ffn={args.ffn} vocab={len(codec.vocab)} params={n_params:,}", flush=True)
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if (p.ndim < 2 or "layer_norm" in name or "embed" in name or "shared" in name)
         else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.98), eps=1e-9)

    def lr_at(step: int) -> float:  # linear warmup, cosine decay to 2% of the peak
        if step < args.warmup:
            return args.lr * (step + 1) / args.warmup
        progress = (step - args.warmup) / max(1, args.steps - args.warmup)
        return args.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * progress)))

    stream = dates_data.examples(args.seed)
    skipped = 0
    model.train()
    t_train = time.time()
    running = 0.0
    for step in range(args.steps):
        pairs = []
        while len(pairs) < args.batch_size:
            src, tgt, _, _ = next(stream)
            if src in heldout_sources:
                skipped += 1
                continue
            pairs.append((src, tgt))
        input_ids, attention_mask, dec_in, labels = make_batch(codec, pairs, codec.pad)
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        logits = model(input_ids=input_ids, attention_mask=attention_mask,
                       decoder_input_ids=dec_in, use_cache=False).logits
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1),
                               ignore_index=-100, label_smoothing=args.label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        running = loss.item() if step == 0 else 0.98 * running + 0.02 * loss.item()
        if (step + 1) % 100 == 0:
            print(f"step {step + 1:5d}  loss {running:.4f}  lr {lr_at(step):.2e}  "
                  f"{time.time() - t_train:6.0f}s", flush=True)
        if (step + 1) % args.eval_every == 0 and step + 1 < args.steps:
            _, errs = greedy_accuracy(model, codec, eval_pairs, show_errors=3)
            report(f"  eval@{step + 1} on {len(eval_pairs)} held-out", eval_pairs, errs)
    train_secs = time.time() - t_train
    print(f"training: {args.steps} steps x {args.batch_size} in {train_secs:.0f}s "
          f"({args.threads} thread(s)); {skipped} held-out duplicates skipped", flush=True)


    # 4. save in float16
    model.half()
    model.generation_config = generation_config(codec)
    model.save_pretrained(args.out, safe_serialization=True)
    model.generation_config.save_pretrained(args.out)

    # 5. reload the f16 checkpoint in f32 and measure what the Rust side will run
    reloaded = MarianMTModel.from_pretrained(args.out, dtype=torch.float32)
    _, errors = greedy_accuracy(reloaded, codec, heldout, show_errors=30)
    acc = report("HELD-OUT EXACT MATCH (f16 checkpoint reloaded in f32), heldout.tsv", heldout, errors)
    _, errors_v1 = greedy_accuracy(reloaded, codec, v1, show_errors=10)
    acc = min(acc, report(f"HELD-OUT EXACT MATCH (f16 reloaded in f32), {V1_HELDOUT}", v1, errors_v1))
    sizes = {f: os.path.getsize(os.path.join(args.out, f)) for f in sorted(os.listdir(args.out))}
    print("files:", json.dumps(sizes), flush=True)
    print(f"total wall time {time.time() - t_start:.0f}s", flush=True)
    if acc < args.min_accuracy:
        sys.exit(f"accuracy {acc:.4f} below --min-accuracy {args.min_accuracy}")


if __name__ == "__main__":
    main()
