#!/usr/bin/env python3
"""Times Whisper transcription in transformers and CTranslate2 on the clips of `seqbridge
bench --model DIR`, and optionally seqbridge itself, and prints one JSON object per engine.

    /work/venv/bin/python tools/baseline/bench_whisper.py --threads 2
    /work/venv/bin/python tools/baseline/bench_whisper.py --models tiny.en --seqbridge target/release/seqbridge --markdown

Same clips (default: the English WAV clips of tests/fixtures/audio/manifest.json of 30 s or
less, the default of `seqbridge bench`), short-form (one 30-s window per clip), greedy
(--beams), no timestamps, language en for multilingual models, features from
WhisperFeatureExtractor, the same CPU threads for every engine:

- transformers: WhisperForConditionalGeneration.generate, float32, eager, on the Hugging Face
  conversions (tools/whisper/ct2_to_hf.py) in --hf-root;
- CTranslate2: ctranslate2.models.Whisper.generate with the prompt transformers builds,
  compute types --compute-types, on the CTranslate2 directories in --ct2-root (the weights
  tools/whisper/fetch_weights.py fetches and seqbridge loads).

A run transcribes every clip once; after --warmup untimed runs, figures are medians over
--runs runs. Fields, as in `seqbridge bench`: rtf = wall seconds of a run (features +
generate of every clip) / audio seconds; features_ms and encoder_ms per clip (the encoder
timed in a separate call); step_ms_median / _p90 over the one-token decode steps;
tokens_per_s = tokens generated after the prompt (EOS included) per run / wall seconds.
transformers' steps are timed between consecutive logits-processor calls (the prompt's pass
left out). CTranslate2 exposes no per-step hook: its step_ms_mean is the decode time of the
whole clip (generate on the encoder output) less that of a 1-token decode, over the tokens
beyond the first.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
AUDIO = ROOT / "tests" / "fixtures" / "audio"
MODELS = {"tiny.en": "whisper-tiny.en-ct2", "base": "whisper-base-ct2"}


def percentile(xs, q):
    xs = sorted(xs)
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def read_wav(path):
    with wave.open(str(path), "rb") as w:
        if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (16000, 1, 2):
            sys.exit(f"{path}: need 16 kHz mono 16-bit PCM, got {w.getframerate()} Hz, "
                     f"{w.getnchannels()} channels, {8 * w.getsampwidth()} bits")
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    return pcm.astype(np.float32) / 32768.0


def default_clips():
    clips = json.loads((AUDIO / "manifest.json").read_text())["clips"]
    return [AUDIO / c["file"] for c in clips
            if c.get("language") == "en" and c.get("format") == "wav" and c["seconds"] <= 30]


def prompt_of(gen, language):
    """<|startoftranscript|> [language, transcribe] <|notimestamps|>, as transformers builds it."""
    prompt = [gen["decoder_start_token_id"]]
    if gen.get("is_multilingual"):
        prompt += [gen["lang_to_id"][f"<|{language}|>"], gen["task_to_id"]["transcribe"]]
    prompt.append(gen["no_timestamps_token_id"])
    return prompt


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def summary(engine, name, runs_wall, features_ms, encoder_ms, steps, tokens_per_run, audio_s, texts, args, **extra):
    wall = statistics.median(runs_wall)
    out = {
        "engine": engine,
        "model": name,
        "audio_seconds": audio_s,
        "wall_seconds": wall,
        "rtf": wall / audio_s,
        "features_ms": statistics.median(features_ms),
        "encoder_ms": statistics.median(encoder_ms),
        "step_ms_median": statistics.median(steps) if steps else None,
        "step_ms_p90": percentile(steps, 0.9) if steps else None,
        "tokens_per_run": tokens_per_run,
        "tokens_per_s": tokens_per_run / wall,
        "threads": args.threads,
        "beams": args.beams,
        "warmup": args.warmup,
        "runs": args.runs,
        "adapter": platform.processor() or platform.machine(),
        "clips": texts,
    }
    out.update(extra)
    return out


def bench_transformers(name, clips, args):
    import torch
    import transformers
    from tokenizers import Tokenizer
    from transformers import LogitsProcessor, WhisperFeatureExtractor, WhisperForConditionalGeneration

    class StepClock(LogitsProcessor):
        """Records when each step's logits arrive (the first: after the prompt's pass)."""

        def __init__(self):
            self.times = []

        def __call__(self, input_ids, scores):
            self.times.append(time.perf_counter())
            return scores

    hf = Path(args.hf_root) / MODELS[name]
    gen = json.loads((hf / "generation_config.json").read_text())
    tok = Tokenizer.from_file(str(hf / "tokenizer.json"))
    fe = WhisperFeatureExtractor.from_pretrained(hf)
    model = WhisperForConditionalGeneration.from_pretrained(hf, dtype=torch.float32).eval()
    kwargs = {"language": args.language, "task": "transcribe"} if gen.get("is_multilingual") else {}
    audio_s = sum(len(a) for a in clips.values()) / 16000
    runs_wall, features_ms, encoder_ms, steps, texts, tokens_per_run = [], [], [], [], [], 0
    with torch.inference_mode():
        for run in range(args.warmup + args.runs):
            wall, first = 0.0, run == args.warmup
            for file, audio in clips.items():
                clock = StepClock()
                t0 = time.perf_counter()
                feats = fe(audio, sampling_rate=16000, return_tensors="pt").input_features
                t1 = time.perf_counter()
                seq = model.generate(feats, num_beams=args.beams, do_sample=False,
                                     logits_processor=[clock], **kwargs)[0].tolist()
                t2 = time.perf_counter()
                _, enc = timed(lambda: model.get_encoder()(feats))
                if run < args.warmup:
                    continue
                wall += t2 - t0
                features_ms.append((t1 - t0) * 1e3)
                encoder_ms.append(enc * 1e3)
                if args.beams == 1:
                    steps += [(b - a) * 1e3 for a, b in zip(clock.times, clock.times[1:])]
                if first:
                    tokens_per_run += len(clock.times)
                    eos = gen["eos_token_id"]
                    texts.append({"file": file.name, "tokens": len(clock.times),
                                  "text": tok.decode([t for t in seq if t != eos], skip_special_tokens=True).strip()})
            if run >= args.warmup:
                runs_wall.append(wall)
    return summary("transformers", name, runs_wall, features_ms, encoder_ms, steps, tokens_per_run, audio_s, texts,
                   args, compute_type="float32",
                   backend=f"torch {torch.__version__} eager (cpu, {torch.get_num_threads()} threads)",
                   version=f"transformers {transformers.__version__}", model_dir=str(hf))


def bench_ctranslate2(name, compute_type, clips, args):
    import ctranslate2
    from tokenizers import Tokenizer
    from transformers import WhisperFeatureExtractor

    hf = Path(args.hf_root) / MODELS[name]
    ct2 = Path(args.ct2_root).expanduser() / MODELS[name]
    gen = json.loads((hf / "generation_config.json").read_text())
    tok = Tokenizer.from_file(str(ct2 / "tokenizer.json"))
    fe = WhisperFeatureExtractor.from_pretrained(hf)
    model = ctranslate2.models.Whisper(str(ct2), device="cpu", compute_type=compute_type,
                                       intra_threads=args.threads, inter_threads=1)
    prompt = prompt_of(gen, args.language)
    opts = dict(beam_size=args.beams, max_length=448)
    audio_s = sum(len(a) for a in clips.values()) / 16000
    runs_wall, features_ms, encoder_ms, decode_steps, texts, tokens_per_run = [], [], [], [], [], 0
    for run in range(args.warmup + args.runs):
        wall, first = 0.0, run == args.warmup
        for file, audio in clips.items():
            t0 = time.perf_counter()
            feats = fe(audio, sampling_rate=16000, return_tensors="np").input_features
            t1 = time.perf_counter()
            res = model.generate(ctranslate2.StorageView.from_array(feats), [prompt], **opts)[0]
            t2 = time.perf_counter()
            memory, enc = timed(lambda: model.encode(ctranslate2.StorageView.from_array(feats)))
            # Tokens after the prompt; CTranslate2 returns them without the closing EOS.
            ids = res.sequences_ids[0]
            n = len(ids) + (1 if len(prompt) + len(ids) < opts["max_length"] else 0)
            _, full = timed(lambda: model.generate(memory, [prompt], **opts))
            _, one = timed(lambda: model.generate(memory, [prompt], **{**opts, "max_length": len(prompt) + 1}))
            if run < args.warmup:
                continue
            wall += t2 - t0
            features_ms.append((t1 - t0) * 1e3)
            encoder_ms.append(enc * 1e3)
            if n > 1:
                decode_steps.append((full - one) * 1e3 / (n - 1))
            if first:
                tokens_per_run += n
                texts.append({"file": file.name, "tokens": n, "text": tok.decode(ids, skip_special_tokens=True).strip()})
        if run >= args.warmup:
            runs_wall.append(wall)
    return summary("ctranslate2", name, runs_wall, features_ms, encoder_ms, [], tokens_per_run, audio_s, texts, args,
                   compute_type=compute_type,
                   step_ms_mean=statistics.median(decode_steps) if decode_steps else None,
                   backend=f"ctranslate2 (cpu, {args.threads} intra threads)",
                   version=f"ctranslate2 {ctranslate2.__version__}", model_dir=str(ct2))


def bench_seqbridge(name, files, args):
    ct2 = Path(args.ct2_root).expanduser() / MODELS[name]
    cmd = [args.seqbridge, "bench", "--model", str(ct2), "--format", "json", "--num-beams", str(args.beams),
           "--warmup", str(args.warmup), "--runs", str(args.runs), "--language", args.language,
           "--audio", *map(str, files)]
    out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    out.update(engine="seqbridge", model=name, compute_type=out["dtype"], command=" ".join(cmd))
    return out


def markdown(r):
    num = lambda v, f: "–" if v is None else f.format(v)
    step = r.get("step_ms_median") or r.get("step_ms_mean")
    mark = "" if r.get("step_ms_median") is not None or step is None else " (mean)"
    return (f"| {r['model']} | {r['engine']} | {r['compute_type']} | {r['rtf']:.3f} | {r['tokens_per_s']:.1f} "
            f"| {num(r['features_ms'], '{:.1f}')} | {num(r['encoder_ms'], '{:.0f}')} | {num(step, '{:.1f}')}{mark} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--engines", nargs="+", default=["transformers", "ctranslate2"],
                    choices=["transformers", "ctranslate2"])
    ap.add_argument("--compute-types", nargs="+", default=["float32", "int8"], help="CTranslate2 compute types")
    ap.add_argument("--hf-root", default="/tmp/hf", help="Hugging Face conversions (tools/whisper/ct2_to_hf.py)")
    ap.add_argument("--ct2-root", default=os.environ.get("SEQBRIDGE_WHISPER_DIR", "~/.cache/seqbridge/whisper"))
    ap.add_argument("--audio", nargs="+", type=Path, help="16 kHz mono 16-bit WAV files (default: as seqbridge bench)")
    ap.add_argument("--language", default="en", help="for multilingual models")
    ap.add_argument("--beams", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2, help="CPU threads of every engine")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seqbridge", help="also run this seqbridge binary's `bench` on the CTranslate2 directories")
    ap.add_argument("--markdown", action="store_true", help="print README table rows instead of JSON")
    args = ap.parse_args()

    import torch
    import transformers
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    torch.set_num_threads(args.threads)
    files = args.audio or default_clips()
    clips = {f: read_wav(f) for f in files}
    results = []
    for name in args.models:
        if args.seqbridge:
            results.append(bench_seqbridge(name, files, args))
        if "transformers" in args.engines:
            results.append(bench_transformers(name, clips, args))
        if "ctranslate2" in args.engines:
            results += [bench_ctranslate2(name, ct, clips, args) for ct in args.compute_types]
    if args.markdown:
        for r in results:
            print(markdown(r))
    else:
        json.dump(results, sys.stdout, indent=1)
        print()


if __name__ == "__main__":
    main()
