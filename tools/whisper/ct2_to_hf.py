#!/usr/bin/env python3
"""Convert a CTranslate2 Whisper directory to a Hugging Face one.

    ct2_to_hf.py DIR_CT2 OUT_DIR [--dtype f16|f32] [--reference JSON --name NAME]

Reads DIR_CT2/model.bin with its own parser (numpy only; the ctranslate2 package is not
needed), maps every variable onto the WhisperForConditionalGeneration state dict (splitting
the fused self-attention QKV and cross-attention KV tensors, renaming gamma/beta, dropping
the zero K biases Hugging Face's Whisper does not have), and writes OUT_DIR with

  config.json                WhisperConfig: sizes from the tensor shapes and model.bin's
                             attributes, token ids from the tokenizer's special tokens
  generation_config.json     as the openai/whisper-* repositories lay it out, from
                             CTranslate2's config.json (suppress_ids, suppress_ids_begin,
                             alignment_heads) and the tokenizer (lang_to_id, task_to_id, ...)
  model.safetensors          f16 (the stored precision, default) or f32; proj_out is tied to
                             embed_tokens and not stored, as save_pretrained does
  tokenizer.json             copied
  preprocessor_config.json   WhisperFeatureExtractor with feature_size = n_mels

With --reference, it also records, for every tensor it wrote, the shape, the first values,
the sum and the sum of squares (float64) under NAME in the JSON file (merged with what is
there): tests/fixtures/whisper/ct2_reference.json, which the Rust reader is tested against.
"""

import argparse
import json
import re
import shutil
import struct
import sys
from pathlib import Path

import numpy as np

# CTranslate2 dtype ids (binary version >= 4) and item sizes (before).
DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16, 5: "bfloat16"}
ITEM_SIZES = {4: 0, 2: 2, 1: 1}
GLOBAL_INT16_SCALE = 1000.0
SAMPLING_RATE = 16000


class ConvertError(Exception):
    pass


def read_model_bin(path):
    """Parses a CTranslate2 model.bin: (header dict, {name: array}, {alias: target},
    {name: stored dtype name}); bfloat16 arrays come back as float32. Every read is checked
    against the file size."""
    data = Path(path).read_bytes()
    pos = 0

    def take(n, what):
        nonlocal pos
        if pos + n > len(data):
            raise ConvertError(f"{path}: truncated reading {what} at byte {pos} "
                               f"(needs {n}, {len(data) - pos} left)")
        b = data[pos:pos + n]
        pos += n
        return b

    def num(fmt, what):
        return struct.unpack("<" + fmt, take(struct.calcsize("<" + fmt), what))[0]

    def string(what):
        n = num("H", what)
        return take(n, what).split(b"\0", 1)[0].decode("utf-8")

    version = num("I", "the binary version")
    if not 1 <= version <= 6:
        raise ConvertError(f"{path}: binary version {version} (1 to 6 are known)")
    spec, revision = ("", 1)
    if version >= 2:
        spec = string("the spec name")
        revision = num("I", "the spec revision")
    variables, stored = {}, {}
    for _ in range(num("I", "the variable count")):
        name = string("a variable name")
        rank = num("B", f"the rank of {name}")
        shape = struct.unpack(f"<{rank}I", take(4 * rank, f"the shape of {name}"))
        if version >= 4:
            dtype = DTYPES.get(num("B", f"the dtype of {name}"))
            nbytes = num("I", f"the size of {name}")
        else:
            item = num("B", f"the item size of {name}")
            dtype = DTYPES.get(ITEM_SIZES.get(item, -1))
            nbytes = num("I", f"the count of {name}") * item
        if dtype is None:
            raise ConvertError(f"{path}: {name} has an unknown dtype")
        raw = take(nbytes, f"the data of {name}")
        if dtype == "bfloat16":
            arr = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            arr = np.frombuffer(raw, np.dtype(dtype).newbyteorder("<"))
        if arr.size != int(np.prod(shape, dtype=np.int64)):
            raise ConvertError(f"{path}: {name} holds {arr.size} values for shape {shape}")
        variables[name] = arr.reshape(shape)
        stored[name] = dtype if dtype == "bfloat16" else np.dtype(dtype).name
    aliases = {}
    if version >= 3:
        for _ in range(num("I", "the alias count")):
            alias = string("an alias")
            aliases[alias] = string(f"the target of {alias}")
    if pos != len(data):
        raise ConvertError(f"{path}: {len(data) - pos} bytes after the alias table")
    header = {"binary_version": version, "spec": spec, "revision": revision}
    return header, variables, aliases, stored


class Ct2Model:
    def __init__(self, path):
        self.header, self.variables, self.aliases, self.stored = read_model_bin(path)

    def raw(self, name):
        for _ in range(16):
            if name in self.variables:
                return name, self.variables[name]
            if name not in self.aliases:
                raise ConvertError(f"model.bin has no variable {name}")
            name = self.aliases[name]
        raise ConvertError(f"alias cycle at {name}")

    def get(self, name):
        """A float tensor (int8/int16 dequantized with their scales), as float32."""
        name, v = self.raw(name)
        if v.dtype == np.int8:
            scale = self.raw(name + "_scale")[1].astype(np.float32)
            shape = (-1,) + (1,) * (v.ndim - 1) if scale.size > 1 else ()
            return v.astype(np.float32) / scale.reshape(shape)
        if v.dtype == np.int16:
            try:
                scale = float(self.raw(name + "_scale")[1].reshape(-1)[0])
            except ConvertError:
                scale = GLOBAL_INT16_SCALE
            return v.astype(np.float32) / scale
        return v.astype(np.float32)

    def attr(self, name):
        return self.raw(name)[1].reshape(-1)[0].item()

    def layers(self, side):
        ids = {int(m.group(1)) for n in self.variables
               if (m := re.match(rf"{side}/layer_(\d+)/", n))}
        if ids != set(range(len(ids))):
            raise ConvertError(f"{side} layers are not numbered 0..n-1: {sorted(ids)}")
        return len(ids)


def state_dict(m):
    """The WhisperForConditionalGeneration state dict (without the tied proj_out), float32."""
    sd = {}

    def norm(hf, ct2):
        sd[f"{hf}.weight"] = m.get(f"{ct2}/gamma")
        sd[f"{hf}.bias"] = m.get(f"{ct2}/beta")

    def linear(hf, ct2):
        sd[f"{hf}.weight"] = m.get(f"{ct2}/weight")
        sd[f"{hf}.bias"] = m.get(f"{ct2}/bias")

    def fused(hf_block, ct2, names):
        """Splits a fused projection into len(names) row blocks; drops the K bias (zeros)."""
        w, b = m.get(f"{ct2}/weight"), m.get(f"{ct2}/bias")
        for name, wp, bp in zip(names, np.split(w, len(names)), np.split(b, len(names))):
            sd[f"{hf_block}.{name}.weight"] = wp
            if name == "k_proj":
                if np.any(bp != 0):
                    raise ConvertError(f"{ct2}/bias has a non-zero K part; Hugging Face's "
                                       "Whisper has no k_proj bias")
            else:
                sd[f"{hf_block}.{name}.bias"] = bp

    for side in ("encoder", "decoder"):
        hf, ct = f"model.{side}", side
        for i in range(m.layers(side)):
            h, c = f"{hf}.layers.{i}", f"{ct}/layer_{i}"
            fused(f"{h}.self_attn", f"{c}/self_attention/linear_0", ["q_proj", "k_proj", "v_proj"])
            linear(f"{h}.self_attn.out_proj", f"{c}/self_attention/linear_1")
            norm(f"{h}.self_attn_layer_norm", f"{c}/self_attention/layer_norm")
            if side == "decoder":
                linear(f"{h}.encoder_attn.q_proj", f"{c}/attention/linear_0")
                fused(f"{h}.encoder_attn", f"{c}/attention/linear_1", ["k_proj", "v_proj"])
                linear(f"{h}.encoder_attn.out_proj", f"{c}/attention/linear_2")
                norm(f"{h}.encoder_attn_layer_norm", f"{c}/attention/layer_norm")
            linear(f"{h}.fc1", f"{c}/ffn/linear_0")
            linear(f"{h}.fc2", f"{c}/ffn/linear_1")
            norm(f"{h}.final_layer_norm", f"{c}/ffn/layer_norm")
        norm(f"{hf}.layer_norm", f"{ct}/layer_norm")
        sd[f"{hf}.embed_positions.weight"] = m.get(f"{ct}/position_encodings/encodings")
    for conv in ("conv1", "conv2"):
        linear(f"model.encoder.{conv}", f"encoder/{conv}")
    sd["model.decoder.embed_tokens.weight"] = m.get("decoder/embeddings/weight")
    proj_name, proj = m.raw("decoder/projection/weight")
    if proj_name != "decoder/embeddings/weight" and not np.array_equal(
            m.get(proj_name), sd["model.decoder.embed_tokens.weight"]):
        sd["proj_out.weight"] = m.get(proj_name)  # untied
    return sd


def special_tokens(tokenizer_path):
    tok = json.loads(Path(tokenizer_path).read_text(encoding="utf-8"))
    return {t["content"]: t["id"] for t in tok.get("added_tokens", [])}


def build_configs(m, ct2_config, specials, untied):
    """config.json and generation_config.json contents."""
    def tok(name):
        if name not in specials:
            raise ConvertError(f"tokenizer.json has no special token {name}")
        return specials[name]

    d_model, n_mels, _ = m.variables["encoder/conv1/weight"].shape
    vocab_size = m.variables["decoder/embeddings/weight"].shape[0]
    for name, want in (("decoder/activation", 3), ("decoder/pre_norm", 1),
                       ("decoder/scale_embeddings", 0)):
        if name in m.variables and m.attr(name) != want:
            raise ConvertError(f"{name} is {m.attr(name)}, Whisper has {want}")
    eot, sot = tok("<|endoftext|>"), tok("<|startoftranscript|>")
    translate, transcribe = tok("<|translate|>"), tok("<|transcribe|>")
    no_timestamps = tok("<|notimestamps|>")
    # Language tokens lie between <|startoftranscript|> and <|translate|>.
    lang_to_id = {t: i for t, i in sorted(specials.items(), key=lambda x: x[1])
                  if sot < i < translate and re.fullmatch(r"<\|[a-z]{2,3}\|>", t)}
    multilingual = vocab_size >= 51865  # as openai-whisper and transformers decide it
    cfg = {
        "architectures": ["WhisperForConditionalGeneration"],
        "model_type": "whisper",
        "vocab_size": vocab_size,
        "num_mel_bins": n_mels,
        "d_model": d_model,
        "encoder_layers": m.layers("encoder"),
        "encoder_attention_heads": m.attr("encoder/num_heads"),
        "encoder_ffn_dim": m.variables["encoder/layer_0/ffn/linear_0/weight"].shape[0],
        "decoder_layers": m.layers("decoder"),
        "decoder_attention_heads": m.attr("decoder/num_heads"),
        "decoder_ffn_dim": m.variables["decoder/layer_0/ffn/linear_0/weight"].shape[0],
        "max_source_positions": m.variables["encoder/position_encodings/encodings"].shape[0],
        "max_target_positions": m.variables["decoder/position_encodings/encodings"].shape[0],
        "num_hidden_layers": m.layers("encoder"),
        "activation_function": "gelu",
        "scale_embedding": False,
        "dropout": 0.0,
        "attention_dropout": 0.0,
        "activation_dropout": 0.0,
        "encoder_layerdrop": 0.0,
        "decoder_layerdrop": 0.0,
        "init_std": 0.02,
        "is_encoder_decoder": True,
        "use_cache": True,
        "tie_word_embeddings": not untied,
        "bos_token_id": eot,
        "eos_token_id": eot,
        "pad_token_id": eot,
        "decoder_start_token_id": sot,
        "suppress_tokens": ct2_config["suppress_ids"],
        "begin_suppress_tokens": ct2_config["suppress_ids_begin"],
        "median_filter_width": 7,
        "dtype": "float16",
    }
    gen = {
        "alignment_heads": ct2_config.get("alignment_heads"),
        "begin_suppress_tokens": ct2_config["suppress_ids_begin"],
        "bos_token_id": eot,
        "decoder_start_token_id": sot,
        "eos_token_id": eot,
        "pad_token_id": eot,
        "forced_decoder_ids": [[1, None], [2, transcribe]] if multilingual
        else [[1, no_timestamps]],
        "is_multilingual": multilingual,
        "lang_to_id": lang_to_id,
        "task_to_id": {"transcribe": transcribe, "translate": translate},
        "max_initial_timestamp_index": 50,  # 1 s, openai-whisper's max_initial_timestamp
        "max_length": cfg["max_target_positions"],
        "no_timestamps_token_id": no_timestamps,
        "prev_sot_token_id": tok("<|startofprev|>"),
        "return_timestamps": False,
        "suppress_tokens": ct2_config["suppress_ids"],
    }
    if gen["alignment_heads"] is None:
        del gen["alignment_heads"]
    return cfg, gen


def write_safetensors(path, tensors, dtype):
    header, offset, blobs = {}, 0, []
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name].astype(dtype)).astype(np.dtype(dtype).newbyteorder("<"))
        b = a.tobytes()
        header[name] = {"dtype": {np.float16: "F16", np.float32: "F32"}[dtype],
                        "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def reference_entry(m, sd, cfg, dtype):
    """What the Rust test checks: every tensor's shape, first values, sum, sum of squares."""
    tensors = {}
    for name, a in sorted(sd.items()):
        v = a.astype(dtype).astype(np.float64).reshape(-1)
        tensors[name] = {"shape": list(a.shape), "first": v[:4].tolist(),
                         "sum": float(v.sum()), "sumsq": float((v * v).sum())}
    return {
        "binary_version": m.header["binary_version"],
        "spec": m.header["spec"],
        "spec_revision": m.header["revision"],
        "aliases": m.aliases,
        "attributes": {n: m.attr(n) for n in ("encoder/num_heads", "decoder/num_heads",
                                              "decoder/activation", "decoder/pre_norm")},
        "config": {k: cfg[k] for k in ("vocab_size", "num_mel_bins", "d_model",
                                       "encoder_layers", "decoder_layers")},
        "tensors": tensors,
    }


def dump_reference(ref):
    """JSON with one tensor a line, so that a diff shows which tensors changed."""
    def items(d):
        return sorted(d.items())

    lines = ["{"]
    for mi, (model, entry) in enumerate(items(ref)):
        lines.append(f" {json.dumps(model)}: {{")
        for i, (k, v) in enumerate(items(entry)):
            comma = "," if i + 1 < len(entry) else ""
            if k != "tensors":
                lines.append(f"  {json.dumps(k)}: {json.dumps(v, sort_keys=True)}{comma}")
                continue
            lines.append('  "tensors": {')
            for j, (t, tv) in enumerate(items(v)):
                lines.append(f"   {json.dumps(t)}: {json.dumps(tv)}"
                             + ("," if j + 1 < len(v) else ""))
            lines.append("  }" + comma)
        lines.append(" }" + ("," if mi + 1 < len(ref) else ""))
    lines.append("}")
    return "\n".join(lines) + "\n"


def convert(src, out, dtype, reference=None, name=None):
    src, out = Path(src), Path(out)
    m = Ct2Model(src / "model.bin")
    if m.header["spec"] != "WhisperSpec":
        raise ConvertError(f"{src}/model.bin is a {m.header['spec']!r}, not a WhisperSpec")
    ct2_config = json.loads((src / "config.json").read_text(encoding="utf-8"))
    specials = special_tokens(src / "tokenizer.json")
    sd = state_dict(m)
    cfg, gen = build_configs(m, ct2_config, specials, "proj_out.weight" in sd)
    np_dtype = {"f16": np.float16, "f32": np.float32}[dtype]
    cfg["dtype"] = {"f16": "float16", "f32": "float32"}[dtype]
    out.mkdir(parents=True, exist_ok=True)
    write_safetensors(out / "model.safetensors", sd, np_dtype)
    for fname, obj in (("config.json", cfg), ("generation_config.json", gen),
                       ("preprocessor_config.json", {
                           "feature_extractor_type": "WhisperFeatureExtractor",
                           "feature_size": cfg["num_mel_bins"],
                           "sampling_rate": SAMPLING_RATE,
                           "hop_length": 160,
                           "n_fft": 400,
                           "chunk_length": 30,
                           "n_samples": 30 * SAMPLING_RATE,
                           "nb_max_frames": 3000,
                           "padding_side": "right",
                           "padding_value": 0.0,
                           "processor_class": "WhisperProcessor",
                           "return_attention_mask": False,
                       })):
        (out / fname).write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")
    shutil.copyfile(src / "tokenizer.json", out / "tokenizer.json")
    stored = {m.stored[n] for n in m.variables if m.variables[n].ndim >= 2}
    print(f"{out}: {len(sd)} tensors ({sum(a.size for a in sd.values()):,} parameters, "
          f"stored {'/'.join(sorted(stored))}, written {dtype}), d_model {cfg['d_model']}, "
          f"layers {cfg['encoder_layers']}+{cfg['decoder_layers']}, vocab {cfg['vocab_size']}, "
          f"multilingual {gen['is_multilingual']}")
    if reference:
        ref_path = Path(reference)
        ref = json.loads(ref_path.read_text(encoding="utf-8")) if ref_path.exists() else {}
        ref[name or src.name] = reference_entry(m, sd, cfg, np_dtype)
        ref_path.parent.mkdir(parents=True, exist_ok=True)
        ref_path.write_text(dump_reference(ref), encoding="utf-8")
        print(f"{ref_path}: recorded {name or src.name}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src", help="CTranslate2 Whisper directory (model.bin, config.json, "
                                "tokenizer.json)")
    ap.add_argument("out", help="Hugging Face directory to write")
    ap.add_argument("--dtype", choices=["f16", "f32"], default="f16")
    ap.add_argument("--reference", help="JSON file to record tensor checksums in")
    ap.add_argument("--name", help="the entry's name in --reference (default: the source "
                                   "directory's name)")
    args = ap.parse_args()
    try:
        convert(args.src, args.out, args.dtype, args.reference, args.name)
    except (ConvertError, OSError, KeyError, ValueError) as e:
        sys.exit(f"ct2_to_hf.py: error: {e}")


if __name__ == "__main__":
    main()
