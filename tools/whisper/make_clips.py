#!/usr/bin/env python3
"""Synthesise the speech clips of tests/fixtures/audio/ with espeak-ng and sox.

Run from the repository root (any Python 3; only the standard library is used):

    python3 tools/whisper/make_clips.py [--out tests/fixtures/audio]

Needs on PATH: ``espeak-ng`` and ``sox`` with MP3 support. On Debian/Ubuntu:

    apt-get install -y espeak-ng sox libsox-fmt-mp3 ffmpeg

(``libsox-fmt-mp3`` is what lets sox write MP3 through LAME; without it sox reports
"no handler for file extension `mp3'".)

What it writes, all from text written for this project:

* ``<name>.wav``: 16 kHz mono 16-bit PCM, the format Whisper's feature extractor expects.
  English in several voices and speeds (en-us, en-gb, a female variant ``+f3``, a fast
  ``+m3``), one English clip with pink noise mixed in, 2 s of digital silence, one paragraph
  of about 38 s (long-form: more than one 30 s window), and French, German and Spanish.
* Decoder fixtures derived from those WAVs: one 44.1 kHz stereo MP3 (the resampler and the
  mixdown), one FLAC (lossless: must decode to the WAV's samples exactly) and one OGG/Vorbis
  (lossy) of another clip.
* ``manifest.json``: each clip with its text, language, voice, speed, format, sample rate,
  channels and length, and for the derived files the WAV they come from.

Everything is deterministic: espeak-ng is, sox runs with ``-R`` (fixed seeds for the noise)
and ``-D`` (no dither), so a rerun with the same espeak-ng/sox versions gives the same WAVs
(the MP3 and OGG encoders may differ across versions; the tests compare them to their WAV
source, not to stored bytes).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import wave

RATE = 16_000

# name, language, espeak-ng voice, words per minute, text
SPEECH = [
    ("en_us", "en", "en-us", 165,
     "The library opens at nine in the morning and closes at six in the evening."),
    ("en_gb", "en", "en-gb", 150,
     "Please put the green bottles on the top shelf next to the kitchen window."),
    ("en_us_f3", "en", "en-us+f3", 175,
     "My sister bought three apples, two oranges and a loaf of fresh bread."),
    ("en_gb_fast", "en", "en-gb+m3", 210,
     "The train to the coast leaves every hour from platform four."),
    ("en_noise", "en", "en-us", 160,
     "We walked along the beach until the sun went down behind the hills."),
    ("en_long", "en", "en-us", 185,
     "Every spring the small town by the lake holds a market in its main square. "
     "Farmers bring vegetables, cheese and honey from the villages in the valley, "
     "and bakers sell warm bread before most people are awake. Children run between "
     "the stalls while their parents talk with neighbours they have not seen all winter. "
     "In the afternoon a band plays old songs near the fountain, and visitors sit on the "
     "steps of the church to listen. When the evening comes, the traders pack their carts "
     "and drive home along the narrow roads, and the square is quiet again until the next "
     "week. Nobody remembers exactly when the market began, but the oldest photographs in "
     "the town hall show the same stalls, the same carts and the same crowded square."),
    ("fr", "fr", "fr", 150,
     "Le matin, nous prenons le petit déjeuner dans le jardin avec nos amis."),
    ("de", "de", "de", 150,
     "Am Wochenende fahren wir mit dem Fahrrad zum See und schwimmen im kalten Wasser."),
    ("es", "es", "es", 150,
     "Mañana vamos a visitar a mis abuelos que viven en una casa cerca del mar."),
]

NOISE_VOLUME = 0.06  # pink noise amplitude mixed into en_noise (speech peaks near 0.5-0.9)


def run(cmd: list[str]) -> None:
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stderr}")


def wav_info(path: str) -> tuple[int, int, int]:
    """(sample rate, channels, frames) of a PCM WAV."""
    with wave.open(path, "rb") as w:
        return w.getframerate(), w.getnchannels(), w.getnframes()


def to_16k_mono(src: str, dst: str) -> None:
    run(["sox", "-R", "-D", src, "-r", str(RATE), "-c", "1", "-b", "16", "-e", "signed-integer", dst])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="tests/fixtures/audio")
    args = ap.parse_args()
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not on PATH (apt-get install -y espeak-ng sox libsox-fmt-mp3 ffmpeg)")
    os.makedirs(args.out, exist_ok=True)
    clips = []

    with tempfile.TemporaryDirectory() as tmp:
        for name, lang, voice, wpm, text in SPEECH:
            raw = os.path.join(tmp, f"{name}.espeak.wav")
            run(["espeak-ng", "-v", voice, "-s", str(wpm), "-w", raw, text])
            dst = os.path.join(args.out, f"{name}.wav")
            entry = {"file": f"{name}.wav", "text": text, "language": lang, "voice": voice,
                     "speed_wpm": wpm}
            if name == "en_noise":
                clean = os.path.join(tmp, f"{name}.clean.wav")
                to_16k_mono(raw, clean)
                _, _, frames = wav_info(clean)
                noise = os.path.join(tmp, "noise.wav")
                run(["sox", "-R", "-D", "-n", "-r", str(RATE), "-c", "1", "-b", "16", noise,
                     "synth", f"{frames}s", "pinknoise", "vol", str(NOISE_VOLUME)])
                run(["sox", "-R", "-D", "-m", "-v", "1", clean, "-v", "1", noise,
                     "-b", "16", "-e", "signed-integer", dst])
                entry["noise"] = f"sox synth pinknoise, vol {NOISE_VOLUME}"
            else:
                to_16k_mono(raw, dst)
            clips.append(entry)

        silence = os.path.join(args.out, "silence_2s.wav")
        run(["sox", "-R", "-D", "-n", "-r", str(RATE), "-c", "1", "-b", "16", "-e", "signed-integer",
             silence, "trim", "0", "2"])
        clips.append({"file": "silence_2s.wav", "text": "", "language": None, "voice": None,
                      "speed_wpm": None})

    by_file = {c["file"]: c for c in clips}
    derived = [
        # file, source wav, sox output options
        ("en_us_44k_stereo.mp3", "en_us.wav", []),  # ffmpeg, below
        ("en_gb.flac", "en_gb.wav", []),
        ("en_gb.ogg", "en_gb.wav", ["-C", "3"]),
    ]
    for file, source, opts in derived:
        src_path, out_path = os.path.join(args.out, source), os.path.join(args.out, file)
        if file.endswith(".mp3"):
            # ffmpeg's LAME writes the LAME/Xing header that records the encoder delay and
            # padding, so gapless decoders (symphonia, ffmpeg) trim them and the MP3 lines up
            # with its WAV; sox writes no such header, leaving it 25 ms late.
            run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", src_path,
                 "-ar", "44100", "-ac", "2", "-c:a", "libmp3lame", "-b:a", "128k", out_path])
            continue
        run(["sox", "-R", "-D", src_path, *opts, out_path])
        src = by_file[source]
        clips.append({"file": file, "source": source, "text": src["text"],
                      "language": src["language"], "voice": src["voice"],
                      "speed_wpm": src["speed_wpm"]})

    for c in clips:
        path = os.path.join(args.out, c["file"])
        if c["file"].endswith(".wav"):
            rate, channels, frames = wav_info(path)
            c.update(format="wav", sample_rate=rate, channels=channels, samples=frames,
                     seconds=round(frames / rate, 3))
        else:
            fmt = c["file"].rsplit(".", 1)[1]
            info = lambda flag: subprocess.run(["soxi", flag, path], capture_output=True,  # noqa: E731
                                               text=True, check=True).stdout.strip()
            c.update(format=fmt, sample_rate=int(info("-r")), channels=int(info("-c")),
                     seconds=round(float(info("-D")), 3))
        c["bytes"] = os.path.getsize(path)

    manifest = {
        "about": "Speech clips synthesised by tools/whisper/make_clips.py (espeak-ng + sox); "
                 "reference features in features.safetensors from "
                 "tools/whisper/make_feature_reference.py.",
        "espeak_ng": subprocess.run(["espeak-ng", "--version"], capture_output=True,
                                    text=True).stdout.strip(),
        "sox": subprocess.run(["sox", "--version"], capture_output=True, text=True).stdout.strip(),
        "clips": clips,
    }
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, ensure_ascii=False)
        f.write("\n")
    total = sum(c["bytes"] for c in clips)
    for c in clips:
        print(f"{c['file']:24} {c['seconds']:7.2f} s {c['bytes'] / 1024:8.1f} KiB")
    print(f"{'total':24} {total / 1024:19.1f} KiB")


if __name__ == "__main__":
    main()
