#!/usr/bin/env python3
"""Transcribe a WAV with a converted Hugging Face Whisper directory (transformers), and
optionally with the CTranslate2 original (the ctranslate2 package), comparing greedy tokens.

    transcribe_check.py HF_DIR WAV [--ct2 DIR_CT2]

WAV: 16 kHz mono 16-bit PCM, e.g.
    espeak-ng -w /tmp/x.wav "hello world" && sox /tmp/x.wav -r 16000 -c 1 /tmp/x16.wav

Prints the tokens and the text of each, and exits non-zero if --ct2 was given and the
greedy tokens differ. Needs torch, transformers and tokenizers (tools/requirements.txt);
--ct2 needs `pip install ctranslate2`.
"""

import argparse
import json
import sys
import wave
from pathlib import Path

import numpy as np


def read_wav(path):
    with wave.open(str(path), "rb") as w:
        if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (16000, 1, 2):
            sys.exit(f"{path}: need 16 kHz mono 16-bit PCM, got {w.getframerate()} Hz, "
                     f"{w.getnchannels()} channels, {8 * w.getsampwidth()} bits")
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    return pcm.astype(np.float32) / 32768.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("hf_dir")
    ap.add_argument("wav")
    ap.add_argument("--ct2", help="the CTranslate2 directory HF_DIR was converted from")
    args = ap.parse_args()

    import torch
    from tokenizers import Tokenizer
    from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration

    torch.set_num_threads(1)
    hf = Path(args.hf_dir)
    gen = json.loads((hf / "generation_config.json").read_text(encoding="utf-8"))
    tok = Tokenizer.from_file(str(hf / "tokenizer.json"))
    audio = read_wav(args.wav)
    features = WhisperFeatureExtractor.from_pretrained(hf)(
        audio, sampling_rate=16000, return_tensors="np").input_features
    model = WhisperForConditionalGeneration.from_pretrained(hf, dtype=torch.float32).eval()
    kwargs = {"language": "en", "task": "transcribe"} if gen["is_multilingual"] else {}
    with torch.no_grad():
        seq = model.generate(torch.from_numpy(features), num_beams=1, do_sample=False,
                             **kwargs)[0].tolist()
    # The prompt: <|startoftranscript|> [<|en|> <|transcribe|>] <|notimestamps|>.
    prompt = [gen["decoder_start_token_id"]]
    if gen["is_multilingual"]:
        prompt += [gen["lang_to_id"]["<|en|>"], gen["task_to_id"]["transcribe"]]
    prompt.append(gen["no_timestamps_token_id"])
    if seq[:len(prompt)] == prompt:  # transformers 4 returns the prompt, 5 does not
        seq = seq[len(prompt):]
    hf_tokens = [t for t in seq if t != gen["eos_token_id"]]
    print(f"transformers  {hf.name}: {hf_tokens}")
    print(f"transformers  {hf.name}: {tok.decode(hf_tokens, skip_special_tokens=True)!r}")

    if args.ct2:
        import ctranslate2

        ct2 = ctranslate2.models.Whisper(args.ct2, device="cpu", compute_type="float32",
                                         intra_threads=1)
        res = ct2.generate(ctranslate2.StorageView.from_array(features), [prompt],
                           beam_size=1, max_length=448)
        ct2_tokens = [t for t in res[0].sequences_ids[0] if t != gen["eos_token_id"]]
        print(f"ctranslate2   {Path(args.ct2).name}: {ct2_tokens}")
        print(f"ctranslate2   {Path(args.ct2).name}: "
              f"{tok.decode(ct2_tokens, skip_special_tokens=True)!r}")
        if ct2_tokens != hf_tokens:
            sys.exit("greedy tokens differ")
        print("identical greedy tokens")


if __name__ == "__main__":
    main()
