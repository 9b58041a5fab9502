#!/usr/bin/env python3
"""Whisper generation references for tests/models/whisper.rs.

    make_reference.py [--tiny DIR] [--base DIR] [--out tests/fixtures/whisper/reference.json]

Runs transformers' WhisperForConditionalGeneration.generate (short-form, no timestamps,
float32, greedy and beam 5) on the clips of tests/fixtures/audio/manifest.json: the English
WAV clips with whisper-tiny.en, and English, French, German and Spanish with whisper-base
(language given explicitly, task transcribe). The model directories are the Hugging Face
conversions made by tools/whisper/ct2_to_hf.py. Features come from WhisperFeatureExtractor.

Each entry records the prompt (`<|startoftranscript|>` [language, task] `<|notimestamps|>`)
and `generated`: the tokens after the prompt, without `<|endoftext|>`. transformers 5 drops
the prompt and the closing `<|endoftext|>` from what `generate` returns; `returned` is the
raw sequence it returned, and `returned_has_prompt` / `returned_has_eos` say whether it
began with the prompt / ended with `<|endoftext|>`.
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tiny", default="/tmp/hf/whisper-tiny.en-ct2")
    ap.add_argument("--base", default="/tmp/hf/whisper-base-ct2")
    ap.add_argument("--out", default=str(ROOT / "tests/fixtures/whisper/reference.json"))
    args = ap.parse_args()

    import torch
    import transformers
    from tokenizers import Tokenizer
    from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration

    torch.set_num_threads(2)
    clips = json.loads((AUDIO / "manifest.json").read_text())["clips"]
    out = {"transformers": transformers.__version__, "torch": torch.__version__,
           "about": __doc__.split("\n\n")[2].replace("\n", " "), "models": {}}
    for name, hf, langs in (("whisper-tiny.en", args.tiny, {"en"}),
                            ("whisper-base", args.base, {"en", "fr", "de", "es"})):
        hf = Path(hf)
        gen = json.loads((hf / "generation_config.json").read_text())
        tok = Tokenizer.from_file(str(hf / "tokenizer.json"))
        fe = WhisperFeatureExtractor.from_pretrained(hf)
        model = WhisperForConditionalGeneration.from_pretrained(hf, dtype=torch.float32).eval()
        entries = []
        for c in clips:
            if c.get("format") != "wav" or c.get("language") not in langs or c["seconds"] > 30:
                continue
            lang = c["language"]
            feats = fe(read_wav(AUDIO / c["file"]), sampling_rate=16000,
                       return_tensors="np").input_features
            prompt = [gen["decoder_start_token_id"]]
            kwargs = {}
            if gen["is_multilingual"]:
                prompt += [gen["lang_to_id"][f"<|{lang}|>"], gen["task_to_id"]["transcribe"]]
                kwargs = {"language": lang, "task": "transcribe"}
            prompt.append(gen["no_timestamps_token_id"])
            entry = {"file": c["file"], "language": lang, "prompt": prompt}
            for beams in (1, 5):
                with torch.no_grad():
                    seq = model.generate(torch.from_numpy(feats), num_beams=beams,
                                         do_sample=False, **kwargs)[0].tolist()
                has_prompt = seq[:len(prompt)] == prompt
                generated = seq[len(prompt):] if has_prompt else list(seq)
                eot = gen["eos_token_id"]
                has_eos = eot in generated
                if has_eos:
                    generated = generated[:generated.index(eot)]
                key = "greedy" if beams == 1 else f"beam{beams}"
                entry[key] = {"returned": seq, "returned_has_prompt": has_prompt,
                              "returned_has_eos": has_eos,
                              "generated": generated,
                              "text": tok.decode(generated, skip_special_tokens=True)}
                print(name, c["file"], key, entry[key]["text"], flush=True)
            entries.append(entry)
        out["models"][name] = entries
    Path(args.out).write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n")
    print("wrote", args.out)


if __name__ == "__main__":
    main()
