"""The random-weight models and inputs of `seqbridge bench --config NAME`, built in PyTorch.

Shared by the baselines (bench_transformers.py, bench_ctranslate2.py) so that every engine
times the same seeded weights on the same seeded source ids.
"""

import json
import sys
from pathlib import Path

import torch
from transformers import (
    AutoConfig,
    AutoModelForSeq2SeqLM,
    VisionEncoderDecoderConfig,
    VisionEncoderDecoderModel,
)

ROOT = Path(__file__).resolve().parents[2]


def load_config(name):
    """(config, vision) for assets/bench/<name>.json, or for a path to a config.json."""
    path = Path(name)
    if not path.exists():
        path = ROOT / "assets" / "bench" / f"{name}.json"
    cfg_dict = json.loads(path.read_text())
    if cfg_dict.get("model_type") != "vision-encoder-decoder":
        return AutoConfig.for_model(**cfg_dict), False
    # Image captioning (vit-gpt2): the encoder and decoder configs are nested.
    config = VisionEncoderDecoderConfig.from_encoder_decoder_configs(
        AutoConfig.for_model(**cfg_dict["encoder"]), AutoConfig.for_model(**cfg_dict["decoder"])
    )
    for key in ("decoder_start_token_id", "pad_token_id", "bos_token_id", "eos_token_id"):
        setattr(config, key, cfg_dict.get(key))
    config.vocab_size = config.decoder.vocab_size
    return config, True


def build_model(config, vision, seed):
    """The float32 CPU model with the weights that `seed` draws."""
    torch.manual_seed(seed)
    if vision:
        return VisionEncoderDecoderModel(config).eval()
    return AutoModelForSeq2SeqLM.from_config(config).eval()


def special_ids(config):
    # getattr: transformers 5's T5Config has no bos_token_id at all.
    keys = ("pad_token_id", "eos_token_id", "bos_token_id", "decoder_start_token_id")
    return {i for i in (getattr(config, k, None) for k in keys) if i is not None}


def random_source_ids(config, batch, src_len, generator):
    """batch × src_len ids, none of them special, each row ending with EOS."""
    ids = torch.randint(3, config.vocab_size - 1, (batch, src_len), generator=generator)
    for s in special_ids(config):
        ids[ids == s] = 3
    ids[:, -1] = config.eos_token_id
    return ids


def percentile(xs, q):
    xs = sorted(xs)
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


# `seqbridge bench` fields that a baseline cannot measure print as null.
ENGINE_ONLY_FIELDS = ("host_ms_per_step", "dispatches_per_step", "submits_per_step", "gpu_bytes_allocated",
                      "gpu_ms_by_kernel")


def print_result(measured, args, dtype):
    """Prints the JSON of `seqbridge bench`: what the baseline measured, null for the rest,
    then the parameters it ran with."""
    result = dict(measured)
    for key in ENGINE_ONLY_FIELDS:
        result.setdefault(key, None)
    result.update(config=args.config, batch=args.batch, beams=args.beams, src_len=args.src_len,
                  new_tokens=args.new_tokens, dtype=dtype, warmup=args.warmup, iters=args.iters)
    json.dump(result, sys.stdout, indent=2)
    print()
