"""Model.transcribe with the real whisper-tiny.en weights (fetched by
tools/whisper/fetch_weights.py, as tools/test.sh does) equals `seqbridge transcribe`."""

from __future__ import annotations

import os
import wave
from pathlib import Path

import numpy as np
import pytest

import seqbridge
from conftest import FIXTURES, cli_json

AUDIO = FIXTURES / "audio"


@pytest.fixture(scope="module")
def whisper_dir() -> Path:
    root = Path(os.environ.get("SEQBRIDGE_WHISPER_DIR", Path.home() / ".cache" / "seqbridge" / "whisper"))
    d = root / "whisper-tiny.en-ct2"
    if not d.is_dir():
        pytest.fail(f"{d} is missing: run `python3 tools/whisper/fetch_weights.py`")
    return d


@pytest.fixture(scope="module")
def whisper(whisper_dir) -> seqbridge.Model:
    return seqbridge.Model(whisper_dir)


def test_transcribe_equals_cli(whisper, whisper_dir):
    files = [str(AUDIO / "en_us.wav"), str(AUDIO / "en_gb.flac")]
    got = whisper.transcribe(files, timestamps=True)
    cli = cli_json("transcribe", *files, "--model", str(whisper_dir), "--timestamps")["results"]
    assert len(got) == len(cli) == 2
    for g, c in zip(got, cli):
        assert g["text"] == c["text"] and g["text"].strip()
        assert g["language"] == c["language"] == "en"
        assert g["tokens"] == c["tokens"]
        assert [(round(s["start"], 3), round(s["end"], 3), s["text"]) for s in g["segments"]] == [
            (s["start"], s["end"], s["text"]) for s in c["segments"]
        ]
        assert g["words"] is None


def test_samples_equal_the_file(whisper):
    path = AUDIO / "en_us.wav"
    with wave.open(str(path)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    samples = (pcm.astype(np.float32) / 32768.0).astype(np.float32)
    from_file, from_samples = whisper.transcribe([str(path), samples])
    assert from_samples["text"] == from_file["text"]


def test_transcribe_errors(whisper):
    with pytest.raises(FileNotFoundError) as e:
        whisper.transcribe(["/no/such/clip.wav"])
    assert "/no/such/clip.wav" in str(e.value)
    with pytest.raises(TypeError):
        whisper.transcribe([3])
    with pytest.raises(TypeError) as e:
        whisper.transcribe([np.zeros((2, 16000), dtype=np.float32)])
    assert "1-D float32" in str(e.value)
