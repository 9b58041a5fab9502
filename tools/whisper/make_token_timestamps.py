#!/usr/bin/env python3
"""Whisper token and word timestamps for tests/models/whisper_words.rs and the unit tests of
crates/models/src/arch/whisper/{alignment,words}.rs.

    make_token_timestamps.py [--tiny DIR] [--base DIR] [--out tests/fixtures/whisper/token_timestamps.json]

What it stores, all from transformers' own functions:

- `functions`: `_median_filter` and `_dynamic_time_warping` (models/whisper/
  generation_whisper.py) on small seeded random matrices and on hand-made ones with ties,
  and `WhisperGenerationMixin._extract_token_timestamps` on random attention weights (a
  stand-in for the `generate` outputs it reads: per step, per layer, the cross-attention).
- `words`: the ASR pipeline's word assembly (`WhisperTokenizer._decode_asr` with
  `return_timestamps="word"`, which groups tokens by `_combine_tokens_into_words`) on text
  tokenized with whisper-base's tokenizer: English punctuation and quotes, French, Japanese
  and Chinese (split on Unicode boundaries), and a sequence with timestamp tokens (chunks).
- `models`: `generate(..., return_token_timestamps=True)` (float32, greedy and beam 5, the
  attention mask of WhisperFeatureExtractor, so the weights are cropped to the audio) on the
  short WAV clips of tests/fixtures/audio/manifest.json: English with whisper-tiny.en,
  English, French, German and Spanish with whisper-base (language given, task transcribe),
  then the pipeline's word assembly on what it returned. transformers 5 returns the
  generated tokens without the prompt and without `<|endoftext|>`, and one timestamp per
  returned token. Each entry also records `teacher_forced_max_diff`: the largest difference
  between those timestamps and the ones `_extract_token_timestamps` gives from the
  cross-attentions of one teacher-forced forward pass over prompt + returned tokens +
  `<|endoftext|>` (without its last token), the way seqbridge computes them.
"""

import argparse
import json
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
AUDIO = ROOT / "tests/fixtures/audio"


def read_wav(path):
    with wave.open(str(path), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2), path
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    return pcm.astype(np.float32) / 32768.0


def f32(a):
    """Values as the shortest JSON numbers that parse back to the same float32 (nan as
    null)."""
    return [None if np.isnan(v) else float(str(v)) for v in np.asarray(a, np.float32).ravel()]


class Outputs(dict):
    """What `_extract_token_timestamps` reads from a `generate` output."""

    __getattr__ = dict.__getitem__


class FakeModel:
    def __init__(self, layers):
        class Config:
            decoder_layers = layers
            median_filter_width = 7

        self.config = Config()


def functions(torch, gw):
    rng = np.random.default_rng(20240611)
    out = {"median_filter": [], "dtw": [], "extract": []}
    # [batch, heads, rows, cols]; cols ≤ 3 are returned as they are.
    for shape, width in (((1, 2, 3, 11), 7), ((2, 1, 2, 8), 7), ((1, 1, 2, 9), 3),
                         ((1, 1, 1, 3), 7), ((1, 1, 1, 4), 7)):
        x = rng.standard_normal(shape).astype(np.float32)
        y = gw._median_filter(torch.from_numpy(x), width).numpy()
        out["median_filter"].append({"shape": list(shape), "width": width,
                                     "input": f32(x), "output": f32(y)})
    ties = np.array([[1, 2, 2, 1, 2, 2, 1, 3, 3]], np.float32).reshape(1, 1, 1, 9)
    out["median_filter"].append({"shape": [1, 1, 1, 9], "width": 7, "input": f32(ties),
                                 "output": f32(gw._median_filter(torch.from_numpy(ties), 7).numpy())})
    mats = [rng.standard_normal(s) for s in ((5, 12), (12, 5), (1, 7), (7, 1), (6, 6))]
    mats += [np.zeros((3, 4)), np.ones((4, 3)), np.array([[0., 1, 0], [1, 0, 1]])]
    for m in mats:
        text, time = gw._dynamic_time_warping(m)
        out["dtw"].append({"rows": m.shape[0], "cols": m.shape[1], "matrix": m.ravel().tolist(),
                           "text_indices": text.tolist(), "time_indices": time.tolist()})
    # Attention-like weights: per layer [1, heads, rows, source], rows summing to one.
    for layers, heads, rows, src, align, num_input_ids, num_frames in (
            (3, 3, 8, 32, [[1, 0], [2, 2], [2, 1]], 3, 60),
            (2, 2, 10, 24, [[0, 1], [1, 0]], 1, 60),
            (2, 3, 7, 20, [[1, 2]], 4, 30),
            (2, 2, 5, 16, [[1, 1], [0, 0]], 4, 40),   # one row: std 0, nan
            (2, 2, 4, 16, [[1, 1]], 4, 40)):         # no row left
        logits = rng.standard_normal((layers, heads, rows, src)) * 3
        w = np.exp(logits)
        w = (w / w.sum(-1, keepdims=True)).astype(np.float32)
        # generate's layout: the first step carries the prompt rows, then one row a step.
        steps = [tuple(torch.from_numpy(w[l:l + 1, :, :num_input_ids]) for l in range(layers))]
        steps += [tuple(torch.from_numpy(w[l:l + 1, :, t:t + 1]) for l in range(layers))
                  for t in range(num_input_ids, rows)]
        o = Outputs(cross_attentions=tuple(steps), sequences=torch.zeros((1, rows + 1), dtype=torch.long))
        ts = gw.WhisperGenerationMixin._extract_token_timestamps(
            FakeModel(layers), o, align, num_frames=torch.tensor([num_frames]),
            num_input_ids=num_input_ids)
        out["extract"].append({"layers": layers, "heads": heads, "rows": rows, "source": src,
                               "alignment_heads": align, "num_input_ids": num_input_ids,
                               "num_frames": num_frames, "weights": f32(w),
                               "token_timestamps": f32(ts[0].numpy())})
    return out


def pipeline_words(tokenizer, tokens, token_timestamps, language=None):
    """The ASR pipeline's postprocessing with return_timestamps="word"."""
    import torch

    tokenizer.language = language
    _, optional = tokenizer._decode_asr(
        [{"tokens": torch.tensor([tokens]), "token_timestamps": torch.tensor([token_timestamps])}],
        return_timestamps="word", return_language=False, time_precision=0.02)
    return [{"word": c["text"], "start": c["timestamp"][0], "end": c["timestamp"][1]}
            for c in optional["chunks"]]


def word_cases(tokenizer):
    rng = np.random.default_rng(7)
    texts = [
        (None, ' "Hello," she said. (It\'s 5 o\'clock!) - a well-known test... ¿Qué? «Oui»'),
        ("french", " L'homme a dit : « bonjour » à 3h, n'est-ce pas ? C'était l'été."),
        ("japanese", "こんにちは、世界。今日はいい天気ですね！東京へ行きます。"),
        ("chinese", "我们今天去公园吧！你好，世界。"),
        ("english", " Well, um... I don't know. 'Maybe' [laughs] 100% - sure?"),
    ]
    cases = []
    for language, text in texts:
        tokens = tokenizer.encode(text, add_special_tokens=False)
        ts = np.cumsum(rng.integers(0, 12, len(tokens))) * 0.02
        ts = f32(ts)
        cases.append({"language": language, "tokens": tokens, "token_timestamps": ts,
                      "words": pipeline_words(tokenizer, tokens, ts, language)})
    # Timestamp tokens split the tokens into chunks; words never cross a chunk.
    tb = tokenizer.convert_tokens_to_ids("<|notimestamps|>") + 1
    a = tokenizer.encode(" Hello there, my", add_special_tokens=False)
    b = tokenizer.encode("-friend. And you?", add_special_tokens=False)
    c = tokenizer.encode(" Fine", add_special_tokens=False)
    tokens = [tb] + a + [tb + 60, tb + 60] + b + [tb + 130, tb + 150] + c
    ts = f32(np.cumsum(rng.integers(0, 12, len(tokens))) * 0.02)
    cases.append({"language": None, "tokens": tokens, "token_timestamps": ts,
                  "words": pipeline_words(tokenizer, tokens, ts)})
    return cases


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tiny", default="/tmp/hf/whisper-tiny.en-ct2")
    ap.add_argument("--base", default="/tmp/hf/whisper-base-ct2")
    ap.add_argument("--out", default=str(ROOT / "tests/fixtures/whisper/token_timestamps.json"))
    args = ap.parse_args()

    import torch
    import transformers
    import transformers.models.whisper.generation_whisper as gw
    from transformers import (WhisperFeatureExtractor, WhisperForConditionalGeneration,
                              WhisperTokenizer)

    torch.set_num_threads(1)
    clips = json.loads((AUDIO / "manifest.json").read_text())["clips"]
    out = {"transformers": transformers.__version__, "torch": torch.__version__,
           "about": " ".join(__doc__.split("\n\n")[2:]).replace("\n", " "),
           "functions": functions(torch, gw)}
    base_tok = WhisperTokenizer.from_pretrained(args.base)
    out["words"] = word_cases(base_tok)
    out["models"] = {}
    for name, hf, langs in (("whisper-tiny.en", args.tiny, {"en"}),
                            ("whisper-base", args.base, {"en", "fr", "de", "es"})):
        hf = Path(hf)
        gen = json.loads((hf / "generation_config.json").read_text())
        tok = WhisperTokenizer.from_pretrained(hf)
        fe = WhisperFeatureExtractor.from_pretrained(hf)
        model = WhisperForConditionalGeneration.from_pretrained(
            hf, dtype=torch.float32, attn_implementation="eager").eval()
        eot = gen["eos_token_id"]
        entries = []
        for c in clips:
            if c.get("format") != "wav" or c.get("language") not in langs or c["seconds"] > 30:
                continue
            lang = c["language"]
            f = fe(read_wav(AUDIO / c["file"]), sampling_rate=16000, return_tensors="pt",
                   return_attention_mask=True)
            num_frames = int(f.attention_mask.sum())
            prompt = [gen["decoder_start_token_id"]]
            kwargs = {}
            if gen["is_multilingual"]:
                prompt += [gen["lang_to_id"][f"<|{lang}|>"], gen["task_to_id"]["transcribe"]]
                kwargs = {"language": lang, "task": "transcribe"}
            prompt.append(gen["no_timestamps_token_id"])
            entry = {"file": c["file"], "language": lang, "num_frames": num_frames, "prompt": prompt}
            for beams in (1, 5):
                with torch.no_grad():
                    r = model.generate(f.input_features, attention_mask=f.attention_mask,
                                       num_beams=beams, do_sample=False,
                                       return_token_timestamps=True, **kwargs)
                seq = r["sequences"][0].tolist()
                ts = r["token_timestamps"][0].tolist()
                assert len(seq) == len(ts) and seq[:len(prompt)] != prompt and eot not in seq, seq
                # The same from one teacher-forced pass over the final sequence.
                full = prompt + seq + [eot]
                with torch.no_grad():
                    o = model(input_features=f.input_features,
                              decoder_input_ids=torch.tensor([full[:-1]]), output_attentions=True)
                steps = [tuple(a[:, :, :len(prompt)] for a in o.cross_attentions)]
                steps += [tuple(a[:, :, t:t + 1] for a in o.cross_attentions)
                          for t in range(len(prompt), len(full) - 1)]
                tf = model._extract_token_timestamps(
                    Outputs(cross_attentions=tuple(steps), sequences=torch.tensor([full])),
                    gen["alignment_heads"], num_frames=torch.tensor([num_frames]),
                    num_input_ids=len(prompt))[0].tolist()
                diff = max(abs(a - b) for a, b in zip(ts, tf[len(prompt):]))
                key = "greedy" if beams == 1 else f"beam{beams}"
                entry[key] = {"generated": seq, "token_timestamps": f32(ts),
                              "teacher_forced_max_diff": diff,
                              "words": pipeline_words(tok, seq, f32(ts))}
                print(name, c["file"], key, "teacher-forced diff", diff,
                      [(w["word"], w["start"], w["end"]) for w in entry[key]["words"]][:4], flush=True)
            entries.append(entry)
        out["models"][name] = entries
    Path(args.out).write_text(json.dumps(out, ensure_ascii=False) + "\n")
    print("wrote", args.out, Path(args.out).stat().st_size, "bytes")


if __name__ == "__main__":
    main()
