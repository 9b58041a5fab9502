#!/usr/bin/env python3
"""Writes the small seed corpus of the fuzz targets (fuzz/corpus/TARGET/) from the repository's
fixtures. Standard library only. Each checkpoint and tokenizer seed starts with the mode byte
that its target reads first (see fuzz/src/lib.rs). Run from the repository root."""

import json
import os
import struct

FIX = "tests/fixtures"
OUT = "fuzz/corpus"


def put(target, name, data):
    os.makedirs(f"{OUT}/{target}", exist_ok=True)
    with open(f"{OUT}/{target}/{name}", "wb") as f:
        f.write(data)


def read(path):
    with open(f"{FIX}/{path}", "rb") as f:
        return f.read()


def safetensors(tensors):
    """tensors: [(name, dtype, shape, raw bytes)] -> a safetensors file."""
    header, data = {"__metadata__": {"format": "pt"}}, b""
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def ct2_string(s):
    b = s.encode()
    return struct.pack("<H", len(b) + 1) + b + b"\0"


def model_bin():
    """A CTranslate2 model.bin, version 6: spec, revision, variables, aliases."""
    out = struct.pack("<I", 6) + ct2_string("WhisperSpec") + struct.pack("<I", 3)
    variables = [
        ("encoder/conv1/weight", [2, 3], 0, struct.pack("<6f", *range(6))),
        ("decoder/embeddings/weight", [4, 2], 0, struct.pack("<8f", *range(8))),
        ("num_heads", [], 3, struct.pack("<i", 2)),
    ]
    out += struct.pack("<I", len(variables))
    for name, shape, dtype, raw in variables:
        out += ct2_string(name) + bytes([len(shape)])
        out += b"".join(struct.pack("<I", d) for d in shape)
        out += bytes([dtype]) + struct.pack("<I", len(raw)) + raw
    out += struct.pack("<I", 1) + ct2_string("decoder/projection/weight")
    out += ct2_string("decoder/embeddings/weight")
    return out


# config: config.json and generation_config.json files as they are.
for family in ["marian", "t5", "m2m100", "mbart"]:
    put("config", f"{family}_config.json", read(f"models/{family}/config.json"))
for family in ["marian", "bart", "t5"]:
    put("config", f"{family}_generation_config.json",
        read(f"models/{family}/generation_config.json"))
put("config", "vit_gpt2_config.json", read("vision/vit-gpt2/config.json"))

# checkpoint: 0 = model.safetensors, 1 = shard index, 2 = model.bin.
f32 = struct.pack("<6f", *range(6))
put("checkpoint", "single", b"\0" + safetensors([
    ("model.shared.weight", "F32", [2, 3], f32),
    ("model.encoder.layer_norm.weight", "F16", [3], struct.pack("<3e", 1, 1, 1)),
    ("model.decoder.layer_norm.bias", "BF16", [2], b"\0\0\0\0"),
    ("final_logits_bias", "F32", [1, 1], struct.pack("<f", 0)),
]))
index = {"metadata": {"total_size": 48}, "weight_map": {
    "layers.0.weight": "model-00001-of-00002.safetensors",
    "layers.1.weight": "model-00002-of-00002.safetensors"}}
put("checkpoint", "index", b"\1" + json.dumps(index, indent=2).encode())
put("checkpoint", "ctranslate2", b"\2" + model_bin())

# tokenizer: 0 tokenizer.json, 1 spiece.model (T5), 2 sentencepiece.bpe.model (mBART),
# 3 Marian source/target.spm, 4 Marian vocab.json, 5 tokenizer_config.json beside spiece.model.
# target.spm of the opus-mt fixture is the smallest SentencePiece model here (3 KB).
spm = read("hub/opus_mt/target.spm")
put("tokenizer", "json_marian", b"\0" + read("models/marian/tokenizer.json"))
put("tokenizer", "t5_spiece", b"\1" + spm)
put("tokenizer", "mbart_spm", b"\2" + spm)
put("tokenizer", "marian_spm", b"\3" + spm)
put("tokenizer", "marian_vocab", b"\4" + read("hub/opus_mt/vocab.json"))
put("tokenizer", "t5_tokenizer_config", b"\5" + read("hub/t5/tokenizer_config.json"))

# cli: arguments separated by NUL (the program name is added by the target).
for name, argv in {
    "generate_ids": ["generate", "--model", "m", "--input-ids", "5,17,99,0", "--num-beams", "4"],
    "generate_options": ["generate", "--model", "m", "--input-ids", "1,2", "--max-new-tokens",
                         "8", "--length-penalty", "0.6", "--forced-eos-token-id", "0,2"],
    "score": ["score", "--model", "m", "--input-ids", "5,0", "--target-ids", "8,9,0"],
    "translate": ["translate", "--text", "hello", "--batch-size", "4"],
    "bench": ["bench", "--config", "tiny", "--num-beams", "2"],
}.items():
    put("cli", name, "\0".join(argv).encode())
