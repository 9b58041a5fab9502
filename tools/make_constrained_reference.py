#!/usr/bin/env python3
"""Reference outputs of constrained decoding for the Rust tests (tests/models/constrained.rs).

The tiny random Marian fixture (tests/fixtures/models/marian: Metaspace BPE, so pieces decode
with a leading space) generates under a regular expression with transformers' `generate` and a
`prefix_allowed_tokens_fn` that is independent of the engine's automaton: a token is allowed
when the text decoded so far plus that token (tokenizers' own decoder over the whole sequence)
can still be completed to a full match (the `regex` module's partial matching), EOS when the
text is a full match; a hypothesis already off the expression may only end (EOS). Special
tokens are never allowed. The unconstrained outputs are stored too, so the test can check
that the constraint changed them.

Writes tests/fixtures/constrained/reference.json.
Usage (from the repository root): /work/venv/bin/python tools/make_constrained_reference.py
"""

from __future__ import annotations

import json
import os

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import regex  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402
from transformers import MarianMTModel  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
MODEL = os.path.join(REPO, "tests/fixtures/models/marian")
OUT = os.path.join(REPO, "tests/fixtures/constrained/reference.json")
# Lower-case words from a short list, then punctuation: bounded, so every hypothesis can end
# well within max_length, and far from what a random model writes.
PATTERN = r"(the|a|an|of)( [a-z]{1,6}){1,3}[.?!]"
TEXTS = [
    "The man was here.",
    "What could they do?",
    "Old men work.",
    "In two years, no state came back!",
]
SETTINGS = {"greedy": {"num_beams": 1}, "beam4": {"num_beams": 4}}


def allowed_fn(tok: Tokenizer, vocab: int, eos: int, specials: set[int]):
    compiled = regex.compile(PATTERN)

    def allowed(_batch_id: int, input_ids: torch.Tensor) -> list[int]:
        generated = input_ids.tolist()[1:]  # after the decoder start token
        text = tok.decode(generated, skip_special_tokens=True)
        out = []
        if compiled.fullmatch(text):
            out.append(eos)
        for t in range(vocab):
            if t in specials or t == eos:
                continue
            after = tok.decode(generated + [t], skip_special_tokens=True)
            if compiled.fullmatch(after, partial=True):
                out.append(t)
        return out or [eos]

    return allowed


def main() -> None:
    torch.manual_seed(0)
    tok = Tokenizer.from_file(os.path.join(MODEL, "tokenizer.json"))
    model = MarianMTModel.from_pretrained(MODEL, dtype=torch.float32).eval()
    eos = model.generation_config.eos_token_id
    vocab = model.config.vocab_size
    specials = {i for i, t in tok.get_added_tokens_decoder().items() if t.special}
    specials |= {t for t in range(vocab) if t >= tok.get_vocab_size()}
    fn = allowed_fn(tok, vocab, eos, specials)
    compiled = regex.compile(PATTERN)
    cases = []
    broken = {name: 0 for name in SETTINGS}
    for text in TEXTS:
        ids = tok.encode(text).ids
        case = {"text": text, "input_ids": ids}
        for name, kw in SETTINGS.items():
            src = torch.tensor([ids])
            with torch.no_grad():
                free = model.generate(src, **kw)[0].tolist()
                held = model.generate(src, prefix_allowed_tokens_fn=fn, **kw)[0].tolist()
            trim = lambda s: s[: s.index(eos, 1) + 1] if eos in s[1:] else s  # noqa: E731
            free, held = trim(free), trim(held)
            held_text = tok.decode(held, skip_special_tokens=True)
            assert compiled.fullmatch(held_text), (text, name, held_text)
            free_text = tok.decode(free, skip_special_tokens=True)
            broken[name] += compiled.fullmatch(free_text) is None
            case[name] = {
                "sequence": held,
                "decoded": held_text,
                "unconstrained": free,
                "unconstrained_decoded": free_text,
            }
        cases.append(case)
    # The test is only worth having if the constraint changes what the model writes.
    assert all(n == len(TEXTS) for n in broken.values()), broken
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(
            {
                "generator": "tools/make_constrained_reference.py",
                "transformers_version": transformers.__version__,
                "torch_version": torch.__version__,
                "model": "tests/fixtures/models/marian",
                "pattern": PATTERN,
                "cases": cases,
            },
            f,
            indent=1,
        )
        f.write("\n")
    print(f"wrote {OUT}")
    for c in cases:
        print(c["text"], "->", repr(c["greedy"]["decoded"]), "/", repr(c["beam4"]["decoded"]))


if __name__ == "__main__":
    main()
