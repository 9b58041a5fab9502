"""Reference outputs of transformers for the Rust parity test.

Loads the float16 checkpoint in assets/date-normalizer/ in float32 (what the
Rust side runs) and writes tests/fixtures/date_normalizer/reference.json:

  greedy     64 held-out samples (of every category, every language, some with
             the month-first prefix), then the rows of issue 17's table,
             num_beams=1
  beam4      16 other held-out samples (of every category), num_beams=4
  alignment  teacher-forced forward on the greedy output of one sentence, with
             cross_attentions[layer][head][target_pos][source_pos] (batch 0)

Each entry has text, category, input_ids (tokenizer.json, with </s>), sequence
(generate's output trimmed: decoder start first, up to and including the first
</s> at index >= 1, no padding) and decoded (skip_special_tokens=True).

Usage (from the repository root, after training):
    /work/venv/bin/python tools/dates/make_reference.py
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
import transformers  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402
from transformers import MarianMTModel  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
# Samples per category (heldout.tsv: source, target, category; languages round-robin
# inside each category, so consecutive rows cycle through en, fr, de, es).
GREEDY = {"written": 16, "numeric": 16, "partial": 12, "time-only": 8, "no-date": 12}
BEAM4 = {"written": 4, "numeric": 4, "partial": 3, "time-only": 2, "no-date": 3}
# Issue 17's table (and a few more of its forms): what a newcomer types first.
TABLE = ["30.06.2015", "06/30/2015", "30/06/2015 08:00", "4/3/24", "<mdy>4/3/24", "Thu 2 Feb 23",
         "April 2030", "am 1. Mai", "09:45", "good morning", "17.04.2011 07:10",
         "11/23/2031 6:40 AM", "le 19/05/2008 à 7h30", "30 février 2019", "2019-14-02"]
ALIGN_TEXT = "Saturday, 28 November 2026"
# transformers' defaults for beam search, pinned so the Rust side knows them.
BEAM_SETTINGS = {4: {"length_penalty": 1.0, "early_stopping": False}}


def load_heldout(path):
    with open(path, encoding="utf-8") as f:
        return [tuple(line.rstrip("\n").split("\t")) for line in f if line.strip("\n")]


def pick(heldout, counts, skip=None):
    """(text, category): counts[c] rows of each category, after skip[c] of them."""
    out = []
    for cat, n in counts.items():
        rows = [r for r in heldout if r[2] == cat][(skip or {}).get(cat, 0):]
        out += [(r[0], cat) for r in rows[:n]]
    return out


def trim(seq, eos):
    seq = list(seq)
    for i in range(1, len(seq)):
        if seq[i] == eos:
            return seq[: i + 1]
    return seq


@torch.no_grad()
def run(model, tok, texts, num_beams, eos):
    out = []
    for text, cat in texts:  # one at a time: no padding anywhere, like the Rust CLI
        ids = tok.encode(text).ids
        gen = model.generate(input_ids=torch.tensor([ids]), num_beams=num_beams, do_sample=False,
                             max_length=model.generation_config.max_length, **BEAM_SETTINGS.get(num_beams, {}))
        seq = trim(gen[0].tolist(), eos)
        out.append({"text": text, "category": cat, "input_ids": ids, "sequence": seq,
                    "decoded": tok.decode(seq, skip_special_tokens=True)})
    return out


def dump(doc) -> str:
    """JSON with one sample (or one attention head) per line: diffable, still compact."""
    def enc(v):
        return json.dumps(v, ensure_ascii=False, separators=(",", ":"))
    parts = []
    for key, value in doc.items():
        if key in ("greedy", "beam4"):
            body = "[\n" + ",\n".join("  " + enc(r) for r in value) + "\n ]"
        elif key == "alignment":
            items = []
            for k, v in value.items():
                if k == "cross_attentions":
                    items.append(f"  {enc(k)}:[\n" + ",\n".join(
                        "   [" + ",\n    ".join(enc(head) for head in layer) + "]" for layer in v) + "]")
                else:
                    items.append(f"  {enc(k)}:{enc(v)}")
            body = "{\n" + ",\n".join(items) + "\n }"
        else:
            body = enc(value)
        parts.append(f" {enc(key)}:{body}")
    text = "{\n" + ",\n".join(parts) + "\n}\n"
    assert json.loads(text) == json.loads(enc(doc))
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.path.join(REPO, "assets", "date-normalizer"))
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "fixtures", "date_normalizer", "reference.json"))
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    tok = Tokenizer.from_file(os.path.join(args.model, "tokenizer.json"))
    model = MarianMTModel.from_pretrained(args.model, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    eos = model.generation_config.eos_token_id
    heldout = load_heldout(os.path.join(args.model, "heldout.tsv"))

    greedy = run(model, tok, pick(heldout, GREEDY), 1, eos)
    beam4 = run(model, tok, pick(heldout, BEAM4, GREEDY), 4, eos)
    want = {r[0]: r[1] for r in heldout}
    for name, rows in (("greedy", greedy), ("beam4", beam4)):
        ok = sum(r["decoded"] == want[r["text"]] for r in rows)
        print(f"{name}: {ok}/{len(rows)} match the held-out targets")
    table = run(model, tok, [(t, "table") for t in TABLE], 1, eos)
    for r in table:
        print(f"  {r['text']!r} -> {r['decoded']!r}")
    greedy += table

    [align] = run(model, tok, [(ALIGN_TEXT, "written")], 1, eos)
    src = torch.tensor([align["input_ids"]])
    dec_in = torch.tensor([align["sequence"][:-1]])
    with torch.no_grad():
        fwd = model(input_ids=src, decoder_input_ids=dec_in, output_attentions=True, use_cache=False)
    # Sanity: teacher forcing reproduces the greedy choice at every step.
    assert fwd.logits[0].argmax(-1).tolist() == align["sequence"][1:], "teacher-forced argmax differs"
    cross = [layer[0].tolist() for layer in fwd.cross_attentions]  # [layer][head][tgt][src]
    alignment = {
        "text": ALIGN_TEXT,
        "input_ids": align["input_ids"],
        "sequence": align["sequence"],
        "decoded": align["decoded"],
        "source_tokens": [tok.id_to_token(i) for i in align["input_ids"]],
        "target_tokens": [tok.id_to_token(i) for i in align["sequence"]],
        "decoder_input_ids": dec_in[0].tolist(),
        "cross_attentions": cross,
    }
    print(f"alignment: {ALIGN_TEXT!r} -> {align['decoded']!r}; cross_attentions "
          f"{len(cross)}x{len(cross[0])}x{len(cross[0][0])}x{len(cross[0][0][0])}")

    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    gc = model.generation_config
    doc = {
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "model": "assets/date-normalizer (float16 checkpoint loaded in float32)",
        "generation": {"max_length": gc.max_length, "decoder_start_token_id": gc.decoder_start_token_id,
                       "eos_token_id": gc.eos_token_id, "pad_token_id": gc.pad_token_id,
                       "beam4": {"num_beams": 4, **BEAM_SETTINGS[4]}},
        "greedy": greedy,
        "beam4": beam4,
        "alignment": alignment,
    }
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(dump(doc))
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes)")


if __name__ == "__main__":
    main()
