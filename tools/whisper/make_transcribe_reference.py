#!/usr/bin/env python3
"""Whisper transcription references (timestamps, language detection, translation, long-form)
for seqbridge's Whisper tests.

    make_transcribe_reference.py [--tiny DIR] [--base DIR]
        [--out tests/fixtures/whisper/transcribe_reference.json]
        [--features tests/fixtures/audio/features_long.safetensors]

Runs transformers' WhisperForConditionalGeneration.generate (float32, do_sample=False) on the
WAV clips of tests/fixtures/audio/manifest.json with the Hugging Face conversions made by
tools/whisper/ct2_to_hf.py. whisper-tiny.en: every English clip and silence_2s with
return_timestamps=True, greedy and beam 5, and en_long (37.9 s) long-form, greedy and beam 5.
whisper-base: every clip under 30 s with language=None (detection), greedy, no timestamps;
fr, de and es with task="translate" (language given), greedy and beam 5; en_us and fr with
timestamps, greedy; en_long long-form (language detected), greedy. Short clips get the
feature extractor's default call (padded to 30 s); en_long gets truncation=False,
padding="longest", return_attention_mask=True, as transformers documents long-form, and
those features are stored in features_long.safetensors (F32 [80, frames], tiny.en's
extractor; base's is the same).

Each entry: `file`, `case`, `language` (given, or null), `task`, `num_beams`, `timestamps`,
`long_form`, `detected_language` (auto cases: `detect_language`, which is also the language
token generate put in every window's prompt), `language_top` (auto cases: the three largest
raw logits over the language tokens that detect_language compares), `no_speech_prob` (softmax of the raw float32
logits right after `<|startoftranscript|>`, at `<|nospeech|>` = no_timestamps_token_id - 1;
for long-form that of the first window, each window has its own), `no_speech_prob_hf`
(greedy short-form entries: what transformers' own WhisperNoSpeechDetection recorded in a
second generate call with no_speech_threshold=1.0, logprob_threshold=-1e9 and
temperature=0.0, which skip and fall back on nothing), `windows` (one per call of
GenerationMixin.generate inside Whisper's loop: `seek` and `frames`, the window's frame offset
and length in the features; `tokens`, the full sequence that call returned, prompt from
`<|startoftranscript|>` through `<|endoftext|>`, or without it when the call stopped at
max_length, 448 tokens with the prompt; the window's `no_speech_prob`), `tokens` (short-form:
the only window's `tokens`; null for long-form), `returned` (what generate returned: the
segments' tokens concatenated, without prompt and `<|endoftext|>`), `segments` (timestamps
only: generate(return_segments=True), i.e. WhisperGenerationMixin._retrieve_segment: start,
end, tokens and their text) and `text` (WhisperTokenizer.decode(returned,
skip_special_tokens=True)).
"""

import argparse
import json
import time
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


def f32(x):
    """The shortest JSON number that parses back to the same float32."""
    return float(str(np.float32(x)))


class Recorder:
    """Wraps the calls Whisper's generate makes per window: the window it cuts
    (_get_input_segment) and the underlying GenerationMixin.generate."""

    def __init__(self, torch, gw, GenerationMixin):
        self.windows = []
        self.no_speech = None
        rec = self
        cut, inner = gw.WhisperGenerationMixin._get_input_segment, GenerationMixin.generate

        def get_input_segment(input_features, seek, seek_num_frames, num_segment_frames, cur_bsz,
                              batch_idx_map):
            seg = cut(input_features, seek, seek_num_frames, num_segment_frames, cur_bsz,
                      batch_idx_map)
            rec.windows.append({"seek": int(seek[0]), "frames": int(seek_num_frames[0]),
                                "input": seg.clone()})
            return seg

        def generate(self_, *args, **kwargs):
            out = inner(self_, *args, **kwargs)
            seqs = out if torch.is_tensor(out) else out["sequences"]
            assert seqs.shape[0] == 1, seqs.shape
            rec.windows[-1]["tokens"] = seqs[0].tolist()
            procs = kwargs.get("logits_processor") or []
            found = [p for p in procs if type(p).__name__ == "WhisperNoSpeechDetection"]
            if found and rec.no_speech is None:  # the first window's
                rec.no_speech = float(found[0].no_speech_prob[0])
            return out

        gw.WhisperGenerationMixin._get_input_segment = staticmethod(get_input_segment)
        GenerationMixin.generate = generate


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tiny", default="/tmp/hf/whisper-tiny.en-ct2")
    ap.add_argument("--base", default="/tmp/hf/whisper-base-ct2")
    ap.add_argument("--out", default=str(ROOT / "tests/fixtures/whisper/transcribe_reference.json"))
    ap.add_argument("--features", default=str(AUDIO / "features_long.safetensors"))
    ap.add_argument("--cache", help="JSON file of finished entries, reused on a rerun (the "
                    "silence clip with beam 5 decodes to max_length and takes minutes)")
    args = ap.parse_args()

    import safetensors.numpy
    import torch
    import transformers
    import transformers.models.whisper.generation_whisper as gw
    from transformers import (WhisperFeatureExtractor, WhisperForConditionalGeneration,
                              WhisperTokenizer)
    from transformers.generation.utils import GenerationMixin

    torch.set_num_threads(2)
    rec = Recorder(torch, gw, GenerationMixin)
    clips = json.loads((AUDIO / "manifest.json").read_text())["clips"]
    wavs = [c for c in clips if c.get("format") == "wav"]
    english = [c["file"] for c in wavs if c["language"] in ("en", None) and c["seconds"] <= 30]
    short = [c["file"] for c in wavs if c["seconds"] <= 30]
    lang_of = {c["file"]: c["language"] for c in wavs}
    # (file, case, language, task, beams, timestamps)
    plans = {
        "whisper-tiny.en": [(f, "timestamps", None, None, b, True) for f in english for b in (1, 5)]
        + [("en_long.wav", "long_form", None, None, b, True) for b in (1, 5)],
        "whisper-base": [(f, "detect", None, None, 1, False) for f in short]
        + [(f, "translate", lang_of[f], "translate", b, False)
           for f in ("fr.wav", "de.wav", "es.wav") for b in (1, 5)]
        + [(f, "timestamps", lang_of[f], None, 1, True) for f in ("en_us.wav", "fr.wav")]
        + [("en_long.wav", "long_form", None, None, 1, True)],
    }
    out = {"transformers": transformers.__version__, "torch": torch.__version__,
           "about": " ".join(__doc__.split("\n\n")[2:]).replace("\n", " "), "models": {}}
    timings = []
    cache = {}
    if args.cache and Path(args.cache).exists():
        cache = json.loads(Path(args.cache).read_text())
    for name, hf in (("whisper-tiny.en", args.tiny), ("whisper-base", args.base)):
        hf = Path(hf)
        gen = json.loads((hf / "generation_config.json").read_text())
        tok = WhisperTokenizer.from_pretrained(hf)
        fe = WhisperFeatureExtractor.from_pretrained(hf)
        model = WhisperForConditionalGeneration.from_pretrained(hf, dtype=torch.float32).eval()
        sot, eot = gen["decoder_start_token_id"], gen["eos_token_id"]
        no_speech_id = gen["no_timestamps_token_id"] - 1
        id_to_lang = {v: k[2:-2] for k, v in gen["lang_to_id"].items()}

        def no_speech_prob(window):
            with torch.no_grad():
                logits = model(input_features=window, decoder_input_ids=torch.tensor([[sot]])).logits
            return float(logits[0, 0].float().softmax(-1)[no_speech_id])

        def language_top(feats, k=3):
            """The k largest raw logits over the language tokens after <|startoftranscript|>,
            on the first 3000 frames: what detect_language takes the argmax of."""
            with torch.no_grad():
                logits = model(input_features=feats[:, :, :3000],
                               decoder_input_ids=torch.tensor([[sot]])).logits[0, 0]
            ids = sorted(id_to_lang)
            top = sorted(ids, key=lambda i: -float(logits[i]))[:k]
            return [{"language": id_to_lang[i], "logit": f32(logits[i])} for i in top]

        def text(ids):
            return tok.decode(ids, skip_special_tokens=True)

        entries = []
        for file, case, lang, task, beams, ts in plans[name]:
            key = f"{name} {file} {case} {beams}"
            audio = read_wav(AUDIO / file)
            long_form = case == "long_form"
            if long_form:
                f = fe(audio, sampling_rate=16000, return_tensors="pt", truncation=False,
                       padding="longest", return_attention_mask=True)
                kwargs = {"attention_mask": f.attention_mask}
                if name == "whisper-tiny.en":
                    out["features_long"] = {
                        "file": Path(args.features).name, "clip": file, "samples": len(audio),
                        "frames": int(f.input_features.shape[-1]),
                        "attention_mask_frames": int(f.attention_mask.sum())}
                    safetensors.numpy.save_file(
                        {"features": np.ascontiguousarray(f.input_features[0].numpy().astype("<f4"))},
                        args.features, metadata={"clip": file, "extractor": "WhisperFeatureExtractor "
                                                 "truncation=False padding=longest"})
            else:
                f = fe(audio, sampling_rate=16000, return_tensors="pt")
                kwargs = {}
            feats = f.input_features
            top = language_top(feats) if lang is None and gen["is_multilingual"] else None
            if key in cache:
                entries.append(dict(cache[key]["entry"], language_top=top))
                timings.append((cache[key]["seconds"], name, file, case, beams))
                continue
            if gen["is_multilingual"]:
                kwargs.update(language=lang, task=task)
            t0 = time.time()
            rec.windows = []
            with torch.no_grad():
                r = model.generate(feats, num_beams=beams, do_sample=False, return_timestamps=ts,
                                   return_segments=True, **kwargs)
            took = time.time() - t0
            windows = rec.windows
            assert all("tokens" in w for w in windows), file
            for w in windows:
                # A window without <|endoftext|> stopped at max_length (448 tokens with the prompt).
                assert w["tokens"][0] == sot and (w["tokens"][-1] == eot
                                                  or len(w["tokens"]) == gen["max_length"]), w
                w["no_speech_prob"] = f32(no_speech_prob(w.pop("input")))
            detected = None
            if lang is None and gen["is_multilingual"]:
                with torch.no_grad():
                    lid = int(model.detect_language(input_features=feats[:, :, :3000],
                                                    generation_config=model.generation_config)[0])
                assert all(w["tokens"][1] == lid for w in windows), (lid, windows)
                detected = id_to_lang[lid]
                assert top[0]["language"] == detected, (top, detected)
            nsp_hf = None
            if beams == 1 and not long_form:
                rec.no_speech, rec.windows = None, []
                with torch.no_grad():
                    model.generate(feats, num_beams=1, do_sample=False, return_timestamps=ts,
                                   no_speech_threshold=1.0, logprob_threshold=-1e9, temperature=0.0,
                                   **kwargs)
                nsp_hf = f32(rec.no_speech)
            returned = r["sequences"][0].tolist()
            segments = None
            if ts:
                segments = [{"start": float(s["start"]), "end": float(s["end"]),
                             "tokens": s["tokens"].tolist(), "text": text(s["tokens"].tolist())}
                            for s in r["segments"][0]]
            entry = {"file": file, "case": case, "language": lang, "task": task or "transcribe",
                     "num_beams": beams, "timestamps": ts, "long_form": long_form,
                     "detected_language": detected, "language_top": top,
                     "no_speech_prob": windows[0]["no_speech_prob"],
                     "no_speech_prob_hf": nsp_hf,
                     "tokens": None if long_form else windows[0]["tokens"],
                     "windows": windows, "returned": returned, "segments": segments,
                     "text": text(returned)}
            entries.append(entry)
            timings.append((took, name, file, case, beams))
            if args.cache:
                cache[key] = {"entry": entry, "seconds": took}
                Path(args.cache).write_text(json.dumps(cache))
            print(f"{name} {file} {case} beams={beams} {took:.1f}s windows="
                  f"{[(w['seek'], w['frames']) for w in windows]} lang={detected} "
                  f"nsp={entry['no_speech_prob']:.3g}/{nsp_hf} {entry['text']!r}", flush=True)
        out["models"][name] = entries
        Path(args.out).write_text(json.dumps(out, ensure_ascii=False) + "\n")  # progress
    out["seconds"] = [{"model": n, "file": f, "case": c, "num_beams": b, "seconds": round(t, 1)}
                      for t, n, f, c, b in timings]
    Path(args.out).write_text(json.dumps(out, ensure_ascii=False) + "\n")
    print("wrote", args.out, Path(args.out).stat().st_size, "bytes")


if __name__ == "__main__":
    main()
