"""Character-level tokenizer for the date normaliser, in `tokenizers`' JSON format.

Layout (shared by source and target, as Marian shares its vocabulary):
    id 0            </s>    end of sequence (appended to every source)
    id 1            <unk>   any character outside the vocabulary
    ids 2..N+1      one token per character (printable ASCII incl. the space,
                    then the accented letters the generator emits)
    id N+2          <mdy>   a source that starts with it reads ambiguous numeric
                            dates month-first (03/04/2021 -> 2021-03-04); the
                            CLI's --month-first puts it there
    id N+3 (last)   <pad>   padding and decoder start, as in Marian

Pipeline, restricted to components the Rust `tokenizers` crate 0.22 supports
without its `onig` feature:
    normalizer      NFC (so decomposed accents still hit the vocabulary)
    pre-tokenizer   none: the whole input is one "word", spaces included
    model           BPE with no merges: every character becomes its own token,
                    unknown characters become <unk> one by one
    post-processor  TemplateProcessing "$A </s>"
    decoder         Fuse: tokens are concatenated without separators

Usage:
    python tools/dates/build_tokenizer.py OUT_DIR     # writes OUT_DIR/tokenizer.json
"""

from __future__ import annotations

import os
import sys

from tokenizers import Tokenizer, decoders, models, normalizers, processors
from tokenizers import AddedToken

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dates_data  # noqa: E402
import dates_forms  # noqa: E402

EOS, UNK, PAD = "</s>", "<unk>", "<pad>"
MDY = dates_forms.MDY
SPECIALS = (EOS, UNK, MDY, PAD)


def build_vocab() -> dict[str, int]:
    vocab = {EOS: 0, UNK: 1}
    for c in dates_data.vocab_chars():
        assert c not in vocab
        vocab[c] = len(vocab)
    vocab[MDY] = len(vocab)
    vocab[PAD] = len(vocab)
    return vocab


def build_tokenizer() -> Tokenizer:
    vocab = build_vocab()
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=UNK, fuse_unk=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = None
    tok.post_processor = processors.TemplateProcessing(
        single=f"$A {EOS}",
        pair=f"$A $B {EOS}",
        special_tokens=[(EOS, vocab[EOS])],
    )
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIALS])
    # Adding the specials must not have renumbered anything.
    for t in SPECIALS:
        assert tok.token_to_id(t) == vocab[t], t
    assert tok.get_vocab_size() == len(vocab)
    return tok


def check_roundtrip(tok: Tokenizer, texts) -> None:
    """One token per character (the MDY prefix is one token), and decode gives
    the text back (without the prefix, a special token)."""
    eos, mdy = tok.token_to_id(EOS), tok.token_to_id(MDY)
    for text in texts:
        enc = tok.encode(text)
        assert enc.ids[-1] == eos, (text, enc.ids)
        body = text
        if text.startswith(MDY):
            assert enc.ids[0] == mdy, (text, enc.tokens)
            body = text[len(MDY):]
        assert len(enc.ids) == len(body) + 1 + (len(text) - len(body) > 0), (text, enc.tokens)
        dec = tok.decode(enc.ids, skip_special_tokens=True)
        assert dec == body, (text, dec)


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    tok = build_tokenizer()
    path = os.path.join(out_dir, "tokenizer.json")
    tok.save(path)
    tok = Tokenizer.from_file(path)
    check_roundtrip(tok, ["Saturday, 28 November 2026", "2026-11-28", "le 3 mars 1999 à 14h05", "  a  b ",
                         MDY + "03/04/2021"])
    print(f"wrote {path}: vocab {tok.get_vocab_size()}")


if __name__ == "__main__":
    main()
