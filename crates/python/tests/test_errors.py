"""Errors reach Python as exceptions of the right type with the engine's one-line message,
never as a crash of the interpreter."""

from __future__ import annotations

import json
import shutil

import pytest

import seqbridge
from conftest import FIXTURES, SHIPPED


def copy_of(src, tmp_path):
    """A copy of a model directory to break."""
    d = tmp_path / "model"
    shutil.copytree(src, d)
    return d


def one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert msg and "\n" not in msg, repr(msg)
    return msg


def test_missing_directory_is_file_not_found(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(FileNotFoundError) as e:
        seqbridge.Model(missing)
    assert str(missing) in one_line(e)


def test_corrupt_config_is_os_error(tmp_path):
    d = copy_of(SHIPPED, tmp_path)
    (d / "config.json").write_text("{ not json")
    with pytest.raises(OSError) as e:
        seqbridge.Model(d)
    assert "config.json" in one_line(e)


def test_truncated_weights_are_os_error(tmp_path):
    d = copy_of(SHIPPED, tmp_path)
    w = d / "model.safetensors"
    w.write_bytes(w.read_bytes()[:1000])
    with pytest.raises(OSError) as e:
        seqbridge.Model(d)
    assert "model.safetensors" in one_line(e)


def test_unknown_model_type_is_os_error(tmp_path):
    d = copy_of(SHIPPED, tmp_path)
    cfg = json.loads((d / "config.json").read_text())
    cfg["model_type"] = "no-such-architecture"
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(OSError) as e:
        seqbridge.Model(d)
    assert "no-such-architecture" in one_line(e)


def test_bad_backend_and_dtype_are_value_errors():
    with pytest.raises(ValueError) as e:
        seqbridge.Model(SHIPPED, backend="nope")
    assert '"nope" is not a backend' in one_line(e)
    with pytest.raises(ValueError) as e:
        seqbridge.Model(SHIPPED, dtype="f8")
    assert '"f8"' in one_line(e) and '"int8"' in one_line(e)


def test_unknown_adapter_is_runtime_error():
    with pytest.raises(RuntimeError) as e:
        seqbridge.Model(SHIPPED, adapter="no-such-adapter-name")
    assert "no-such-adapter-name" in one_line(e) or "no GPU adapter" in one_line(e)


def test_ids_outside_vocabulary(shipped):
    with pytest.raises(ValueError) as e:
        shipped.generate([[5, 10**6, 0]])
    msg = one_line(e)
    assert "1000000" in msg and "source 0" in msg


def test_negative_and_oversized_ids(shipped):
    with pytest.raises(ValueError) as e:
        shipped.generate([[5, -1, 0]])
    assert "source 0, position 1: token id -1" in one_line(e)
    with pytest.raises(ValueError):
        shipped.generate([[2**40]])


def test_wrong_argument_types(shipped):
    with pytest.raises(TypeError) as e:
        shipped.generate("Saturday")
    assert "wrap it in a list" in one_line(e)
    with pytest.raises(TypeError):
        shipped.generate([["a", 1]])
    with pytest.raises(TypeError):
        shipped.generate(["x"], num_beams="four")


def test_bad_options(shipped):
    with pytest.raises(ValueError) as e:
        shipped.generate(["Saturday"], num_beams=0)
    assert "num_beams" in one_line(e)
    with pytest.raises(ValueError) as e:
        shipped.generate(["Saturday"], num_beams=-2)
    assert "option num_beams: -2 is negative" in one_line(e)
    with pytest.raises(ValueError) as e:
        shipped.generate(["Saturday"], length_penalty=float("nan"))
    one_line(e)
    with pytest.raises(ValueError) as e:
        shipped.generate(["Saturday"], early_stopping="sometimes")
    assert "early_stopping" in one_line(e)
    with pytest.raises(ValueError) as e:
        shipped.generate(["Saturday"], forced_bos_token_id=-1)
    assert "option forced_bos_token_id: token id -1" in one_line(e)
    with pytest.raises(TypeError) as e:
        shipped.generate(["Saturday"], num_beam=4)
    assert "'num_beam'" in one_line(e) or '"num_beam"' in one_line(e)
    with pytest.raises(ValueError) as e:
        shipped.translate(["x"], batch_size=0)
    assert "batch_size" in one_line(e)


def test_scoring_errors(shipped):
    with pytest.raises(ValueError) as e:
        shipped.score([[5, 0]], [[5, 0], [6, 0]])
    assert "1 sources but 2 targets" in one_line(e)
    with pytest.raises(ValueError):
        shipped.cross_attentions([5, 0], [10**6])


def test_text_without_tokenizer(tmp_path):
    d = copy_of(FIXTURES / "models" / "marian", tmp_path)
    (d / "tokenizer.json").unlink()
    model = seqbridge.Model(d)
    with pytest.raises(ValueError) as e:
        model.generate(["hello"])
    assert "no tokenizer" in one_line(e)
    assert model.generate([[5, 0]]).texts is None


def test_family_mismatch(shipped, tmp_path):
    with pytest.raises(ValueError) as e:
        shipped.transcribe([str(FIXTURES / "audio" / "en_us.wav")])
    assert "not a Whisper model" in one_line(e)
    with pytest.raises(OSError) as e:
        shipped.caption([str(FIXTURES / "vision" / "images" / "gray.png")])
    one_line(e)


def test_missing_audio_and_image_files():
    captioner = seqbridge.Model(FIXTURES / "vision" / "vit-gpt2")
    with pytest.raises(OSError) as e:
        captioner.caption(["/no/such/image.png"])
    assert "/no/such/image.png" in one_line(e)


def test_model_survives_errors(shipped, dates, cli_dates):
    for bad in ([[10**6]], [[-1]]):
        with pytest.raises(ValueError):
            shipped.generate(bad)
    assert shipped.translate(dates[:2]) == cli_dates[:2]
