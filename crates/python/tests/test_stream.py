"""Model.stream: an iterator over the new tokens of one source."""

from __future__ import annotations

import pytest

import seqbridge
from conftest import FIXTURES


def test_greedy_stream_equals_generate(shipped, dates):
    for text in dates[:4]:
        want = shipped.generate([text]).sequences[0][0]
        stream = shipped.stream(text)
        assert stream.generation is None
        tokens = list(stream)
        # The stream yields what follows the decoder start token, EOS included.
        assert tokens == want[1:]
        assert stream.generation.sequences == [[want]]
        assert shipped.decode(tokens) == shipped.generate([text]).texts[0]
        with pytest.raises(StopIteration):
            next(stream)


def test_beam_stream_equals_generate():
    model = seqbridge.Model(FIXTURES / "models" / "marian")
    ids = [45, 56, 83, 129, 78, 111, 88, 0]
    want = model.generate([ids], num_beams=4, max_new_tokens=16).sequences[0][0]
    assert list(model.stream(ids, num_beams=4, max_new_tokens=16)) == want[1:]


def test_stream_errors(shipped):
    # Checked before the thread starts: argument types and token ids that do not fit u32.
    with pytest.raises(TypeError):
        shipped.stream(["a", "list", "of", "texts"])
    with pytest.raises(ValueError):
        shipped.stream([5, -3, 0])
    # Checked by the engine on the worker thread: raised by the first next().
    stream = shipped.stream([5, 10**6, 0])
    with pytest.raises(ValueError) as e:
        next(stream)
    assert "1000000" in str(e.value)
    assert list(stream) == []
    with pytest.raises(ValueError):
        next(iter(shipped.stream("Saturday", num_beams=0)))


def test_abandoned_streams_do_not_block(shipped, dates):
    # Dropping a stream before its end leaves its thread to finish alone.
    for text in dates[:3]:
        next(shipped.stream(text))
    assert list(shipped.stream(dates[0])) == shipped.generate([dates[0]]).sequences[0][0][1:]
