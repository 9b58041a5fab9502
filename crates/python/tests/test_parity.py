"""Python results equal the command line's on the committed fixtures and the shipped model."""

from __future__ import annotations

import json
import numpy as np
import pytest

import seqbridge
from conftest import FIXTURES, SHIPPED, cli_json, reference, run_cli

# Fixture families with a generate case list (tools/make_fixtures.py); one per architecture.
FAMILIES = ["marian", "bart", "t5", "m2m100"]


def cli_flags(kwargs: dict) -> list[str]:
    """generate kwargs as `seqbridge generate` flags."""
    flags: list[str] = []
    for k, v in kwargs.items():
        name = "--" + k.replace("_", "-")
        if k == "bad_words_ids":
            for ids in v:
                flags += [name, ",".join(map(str, ids))]
        elif isinstance(v, bool):
            flags += [name, "true" if v else "false"]
        elif isinstance(v, list):
            flags += [name, ",".join(map(str, v))]
        else:
            flags += [name, str(v)]
    return flags


def test_translate_equals_cli(shipped, dates, cli_dates):
    assert shipped.translate(dates) == cli_dates
    # Batch size changes the GPU batches, not the results.
    assert shipped.translate(dates, batch_size=7) == cli_dates


def test_translate_beams_equals_cli(shipped, dates):
    texts = dates[:8]
    assert shipped.translate(texts, num_beams=4) == run_cli("translate", "--num-beams", "4", *texts).splitlines()


def test_translate_int8_equals_cli(dates):
    texts = dates[:8]
    model = seqbridge.Model(SHIPPED, dtype="int8")
    assert model.translate(texts) == run_cli("translate", "--dtype", "int8", *texts).splitlines()


def test_constrain_equals_cli(shipped, dates):
    texts = dates[:4] + ["good morning"]
    pattern = "[0-9]{4}-[0-9]{2}(-[0-9]{2})?"
    got = shipped.translate(texts, constrain=pattern)
    assert got == run_cli("translate", "--constrain", pattern, *texts).splitlines()
    assert shipped.translate(texts, constrain=False) == run_cli("translate", "--no-constrain", *texts).splitlines()
    with pytest.raises(ValueError, match="unclosed group"):
        shipped.translate(texts, constrain="(")


def test_blank_lines_stay_blank(shipped, cli_dates, dates):
    assert shipped.translate(["", dates[0], "  "]) == ["", cli_dates[0], ""]


def test_generate_text_equals_cli(shipped, dates):
    g = shipped.generate(dates[:3], num_beams=2)
    cli = cli_json("generate", "--model", str(SHIPPED), "--num-beams", "2", *sum((["--text", t] for t in dates[:3]), []))
    assert [h[0] for h in g.sequences] == cli["sequences"]
    assert g.texts == cli["text"]
    np.testing.assert_allclose(g.scores, cli["sequences_scores"], rtol=0, atol=1e-6)


@pytest.mark.parametrize("family", FAMILIES)
def test_generate_ids_equals_cli(family):
    model = seqbridge.Model(FIXTURES / "models" / family)
    cases = reference(family)["generate"]
    assert cases, f"{family}: no generate cases"
    for case in cases:
        g = model.generate(case["input_ids"], **case["kwargs"])
        args = ["generate", "--model", str(FIXTURES / "models" / family)]
        for ids in case["input_ids"]:
            args += ["--input-ids", ",".join(map(str, ids))]
        cli = cli_json(*args, *cli_flags(case["kwargs"]))
        name = f"{family}/{case['name']}"
        assert [h[0] for h in g.sequences] == cli["sequences"], name
        if "all_sequences" in cli:
            assert g.sequences == cli["all_sequences"], name
        # And both are transformers' output (the stored reference: hypotheses flattened).
        assert [s for hyps in g.sequences for s in hyps] == case["sequences"], name


def test_generate_stats(shipped, dates):
    g = shipped.generate(dates[:4])
    assert g.stats["encoder_runs"] == 1
    assert g.stats["decoder_steps"] >= max(len(h[0]) for h in g.sequences) - 1
    assert g.stats["weight_bytes_uploaded"] == 0


@pytest.mark.parametrize("family", ["marian", "t5"])
def test_score_equals_cli(family):
    model = seqbridge.Model(FIXTURES / "models" / family)
    for case in reference(family)["score"]:
        got = model.score(case["input_ids"], case["target_ids"])
        args = ["score", "--model", str(FIXTURES / "models" / family)]
        for ids in case["input_ids"]:
            args += ["--input-ids", ",".join(map(str, ids))]
        for ids in case["target_ids"]:
            args += ["--target-ids", ",".join(map(str, ids))]
        cli = cli_json(*args)
        assert all(isinstance(a, np.ndarray) and a.dtype == np.float32 for a in got)
        for a, want, ref in zip(got, cli["logprobs"], case["logprobs"]):
            np.testing.assert_allclose(a, want, rtol=0, atol=1e-5)
            np.testing.assert_allclose(a, ref, rtol=0, atol=2e-3)


def test_cross_attentions_equal_transformers():
    family = "marian"
    model = seqbridge.Model(FIXTURES / "models" / family)
    ref = reference(family)["cross_attentions"]
    src, dec = ref["input_ids"][0], ref["decoder_input_ids"][0]
    maps = model.cross_attentions(src, dec)
    want = np.array(ref["layers"], dtype=np.float32)  # [layers, heads, T, S]
    assert maps.dtype == np.float32 and maps.shape == want.shape
    np.testing.assert_allclose(maps, want, rtol=0, atol=1e-4)
    np.testing.assert_allclose(maps.sum(-1), 1.0, atol=1e-4)


def test_caption_equals_cli():
    model_dir = FIXTURES / "vision" / "vit-gpt2"
    images = sorted(str(p) for p in (FIXTURES / "vision" / "images").iterdir())
    model = seqbridge.Model(model_dir)
    got = model.caption(images, max_new_tokens=8)
    assert got == run_cli("caption", "--model", str(model_dir), "--max-new-tokens", "8", *images).splitlines()


@pytest.mark.parametrize("name", ["concat-3", "separate-2"])
def test_generate_sources_equals_transformers(name):
    """A text-and-image example as token ids beside an image file gives transformers'
    greedy sequence (tools/multi_source/make_fixtures.py), alone and twice in a batch."""
    model_dir = FIXTURES / "multi_source" / name
    ref = json.loads((model_dir / "reference.json").read_text())
    case = ref["from_file"]
    image = str(FIXTURES / "vision" / "images" / case["image"])
    model = seqbridge.Model(model_dir)
    assert model.source_kinds() == ref["kinds"]
    example = [inp[0] if kind == "text" else image for kind, inp in zip(ref["kinds"], ref["inputs"])]
    g = model.generate_sources([example], **case["kwargs"])
    assert [h[0] for h in g.sequences] == case["sequences"]
    assert g.stats["encoder_runs"] == len(ref["kinds"])
    g2 = model.generate_sources([example, example], **case["kwargs"])
    assert [h[0] for h in g2.sequences] == case["sequences"] * 2
    with pytest.raises(ValueError, match=f"example 0 has 1 item.*reads {len(ref['kinds'])} source"):
        model.generate_sources([[example[0]]])
    image_at = ref["kinds"].index("image")
    bad = list(example)
    bad[image_at] = [1, 2, 3]
    with pytest.raises(TypeError, match=f"example 0, source {image_at}: expected an image path"):
        model.generate_sources([bad])


def test_encode_decode(shipped):
    text = "Saturday, 28 November 2026"
    ids = shipped.encode(text)
    assert ids and all(isinstance(i, int) for i in ids)
    g = shipped.generate([ids])
    assert g.sequences == shipped.generate([text]).sequences
    assert shipped.decode(g.sequences[0][0]) == g.texts[0] == "2026-11-28"
