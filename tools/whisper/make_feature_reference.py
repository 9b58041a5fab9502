#!/usr/bin/env python3
"""Record transformers' WhisperFeatureExtractor output for the clips of tests/fixtures/audio/.

Run from the repository root, after tools/whisper/make_clips.py, with the venv of
tools/requirements.txt (numpy, torch, transformers, safetensors):

    /path/to/venv/bin/python tools/whisper/make_feature_reference.py [--dir tests/fixtures/audio]

It writes ``<dir>/features.safetensors``, read by tests/models/audio.rs (no Python at test time).

Input: each WAV of manifest.json, read as 16-bit PCM and scaled by 1/32768 to float32, which is
what the Rust decoder (symphonia) produces for 16-bit PCM.

Entries (``<entry>`` below), each one 3000-frame window of log-mel features:

* ``<clip>``: ``feature_extractor(audio, sampling_rate=16000)``, the short-form call: audio
  padded with zeros (or truncated) to 30 s, 80 mel bins (whisper tiny/base/small/medium).
* ``<clip>@128``: the same with ``feature_size=128`` (large-v3), for one clip.
* ``<clip>@longform:<seek>``: the long-form path of ``WhisperForConditionalGeneration.generate``:
  features of the whole unpadded clip at once (``truncation=False, padding="longest"``, as the
  ASR pipeline calls it for audio over 30 s), sliced at frame ``seek`` by transformers' own
  ``WhisperGenerationMixin._get_input_segment``, which pads a short last window with 0.0 (in
  feature space, not with the features of silence).

Tensors per entry:

* ``<entry>.frames``: I64 [k], the stored frame indices (in the 3000-frame window).
* ``<entry>.values``: F32 [n_mels, k], the features at those frames.
* ``<entry>.fill_from``, ``<entry>.fill``: I64 [1], F32 [1]; every frame from ``fill_from`` to
  3000 equals ``fill`` in every mel bin (the padding region).

For the short clips every frame before ``fill_from`` plus three padded frames are stored; for the
long clip (38 s) every 10th frame plus the frames at the window's edges, to keep the fixtures
small. The metadata key ``entries`` describes each entry (clip, kind, seek, n_mels) and
``torch_vs_numpy`` gives, per entry, the largest |difference| between transformers' two
implementations (torch.stft in float32, used by ``__call__`` when torch is installed, and the
numpy one, float64 FFT); the stored values are ``__call__``'s.
"""

from __future__ import annotations

import argparse
import json
import os
import wave

import numpy as np
import safetensors.numpy
import torch
import transformers
from transformers import WhisperFeatureExtractor
from transformers.models.whisper.generation_whisper import WhisperGenerationMixin

WINDOW = 3000
LONG_STRIDE = 10


def read_wav(path: str) -> np.ndarray:
    with wave.open(path, "rb") as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1 and w.getframerate() == 16000, path
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return pcm.astype(np.float32) / np.float32(32768.0)


def fill_start(feats: np.ndarray) -> int:
    """First frame from which every frame equals the last one."""
    last = feats[:, -1:]
    same = np.all(feats == last, axis=0)
    k = feats.shape[1]
    while k > 0 and same[k - 1]:
        k -= 1
    return k


def numpy_path(fe: WhisperFeatureExtractor, audio: np.ndarray) -> np.ndarray:
    return fe._np_extract_fbank_features(audio[None, :].astype(np.float32), "cpu")[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", default="tests/fixtures/audio")
    args = ap.parse_args()
    torch.set_num_threads(1)
    with open(os.path.join(args.dir, "manifest.json")) as f:
        manifest = json.load(f)

    fe80 = WhisperFeatureExtractor(feature_size=80)
    fe128 = WhisperFeatureExtractor(feature_size=128)
    n = fe80.n_samples
    tensors: dict[str, np.ndarray] = {}
    entries: dict[str, dict] = {}
    diffs: dict[str, float] = {}

    def add(name: str, feats: np.ndarray, frames: list[int], fill_from: int, meta: dict,
            ref_np: np.ndarray | None) -> None:
        assert feats.shape[1] == WINDOW, (name, feats.shape)
        fill = feats[:, fill_from:] if fill_from < WINDOW else np.zeros((1, 0), np.float32)
        fill_value = float(fill.flat[0]) if fill.size else 0.0
        assert np.all(fill == np.float32(fill_value)), name
        idx = np.asarray(sorted(set(frames)), dtype=np.int64)
        tensors[f"{name}.frames"] = idx
        tensors[f"{name}.values"] = np.ascontiguousarray(feats[:, idx].astype("<f4"))
        tensors[f"{name}.fill_from"] = np.asarray([fill_from], dtype=np.int64)
        tensors[f"{name}.fill"] = np.asarray([fill_value], dtype=np.float32)
        entries[name] = meta
        if ref_np is not None:
            diffs[name] = float(np.abs(ref_np.astype(np.float64) - feats).max())
        print(f"{name:28} {len(idx):5} frames, fill {fill_value:+.4f} from {fill_from:4}"
              + (f", torch vs numpy {diffs[name]:.2e}" if name in diffs else ""))

    for clip in manifest["clips"]:
        if clip["format"] != "wav":
            continue
        file = clip["file"]
        stem = file[: -len(".wav")]
        audio = read_wav(os.path.join(args.dir, file))
        padded = np.zeros(n, np.float32)
        padded[: min(n, len(audio))] = audio[:n]

        feats = fe80(audio, sampling_rate=16000, return_tensors="np").input_features[0]
        ref_np = numpy_path(fe80, padded)
        meta = {"clip": file, "kind": "short", "seek": 0, "n_mels": 80}
        if len(audio) <= n:
            fill_from = fill_start(feats)
            # every frame that touches audio lies before fill_from
            assert fill_from <= (len(audio) + fe80.n_fft // 2) // fe80.hop_length + 2, file
            frames = list(range(min(WINDOW, fill_from + 3)))
            add(stem, feats, frames, fill_from, meta, ref_np)
        else:
            frames = list(range(0, WINDOW, LONG_STRIDE)) + list(range(4)) + list(range(WINDOW - 6, WINDOW))
            add(stem, feats, frames, WINDOW, meta, ref_np)

            # long-form: whole clip at once, then transformers' own segment slicing
            whole = fe80(audio, sampling_rate=16000, truncation=False, padding="longest",
                         return_attention_mask=True, return_tensors="pt").input_features
            total = whole.shape[-1]
            assert total == len(audio) // fe80.hop_length, (total, len(audio))
            whole_np = numpy_path(fe80, audio)
            for seek in range(0, total, WINDOW):
                seg = WhisperGenerationMixin._get_input_segment(
                    whole,
                    seek=torch.tensor([seek]),
                    seek_num_frames=torch.tensor([min(total - seek, WINDOW)]),
                    num_segment_frames=WINDOW,
                    cur_bsz=1,
                    batch_idx_map=[0],
                )[0].numpy()
                real = min(total - seek, WINDOW)
                seg_np = np.zeros_like(seg)
                seg_np[:, :real] = whole_np[:, seek : seek + real]
                frames = (list(range(0, real, LONG_STRIDE)) + list(range(4))
                          + list(range(real - 6, real)) + list(range(real, min(WINDOW, real + 3))))
                meta = {"clip": file, "kind": "longform", "seek": seek, "n_mels": 80,
                        "total_frames": total}
                add(f"{stem}@longform:{seek}", seg, frames, real, meta, seg_np)

        if stem == "en_us":
            feats = fe128(audio, sampling_rate=16000, return_tensors="np").input_features[0]
            fill_from = fill_start(feats)
            frames = list(range(0, fill_from, LONG_STRIDE)) + list(range(fill_from - 4, fill_from + 3))
            meta = {"clip": file, "kind": "short", "seek": 0, "n_mels": 128}
            add(f"{stem}@128", feats, frames, fill_from, meta, numpy_path(fe128, padded))

    metadata = {
        "about": "transformers WhisperFeatureExtractor reference; see "
                 "tools/whisper/make_feature_reference.py",
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "entries": json.dumps(entries, sort_keys=True),
        "torch_vs_numpy": json.dumps(diffs, sort_keys=True),
    }
    out = os.path.join(args.dir, "features.safetensors")
    safetensors.numpy.save_file(tensors, out, metadata=metadata)
    print(f"{out}: {os.path.getsize(out) / 1024:.1f} KiB, {len(entries)} entries")


if __name__ == "__main__":
    main()
