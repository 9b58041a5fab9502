#!/usr/bin/env python3
"""Times CTranslate2 on the shapes of `seqbridge bench`.

The random-weight model of bench_transformers.py (assets/bench/<name>.json, same seed, same
source ids), converted in memory with ctranslate2's TransformersConverter to --compute-type
(CPU: float32, int8, int8_float32; CUDA adds float16, int8_float16...), then
Translator.translate_batch with the same batch, beams, source length and exactly --new-tokens
new tokens (EOS held off by min_decoding_length). Prints the JSON fields of `seqbridge bench`
that it can measure; the others are null.

    /work/venv/bin/python tools/baseline/bench_ctranslate2.py --config opus-mt --compute-type int8 --threads 2

The vocabulary is synthetic ("t<id>", with the config's special tokens at their ids): CTranslate2
translates token strings, and a random-weight model has no real tokenizer. Text configs only
(Marian, BART, M2M100, T5); vit-gpt2 is refused.

CTranslate2 exposes no encoder call on a Translator, so encoder_ms is null; first_token_ms is a
whole 1-token call (encoder and first step). step_ms_median / _p90 come from the per-token
callback at beam 1; beam search has no callback, so there both are the mean decode step,
(call of N tokens - call of 1 token) / (N - 1). `step_ms_source` says which. Also:
convert_ms (conversion and quantization, not in load_ms), weight_bytes (model.bin), and with
--check, check_token_agreement: the share of tokens equal to transformers' generate on the same
model, worst over the timed calls (float32 gave 1.0 on tiny, opus-mt, t5-small and bart-base).
"""

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import ctranslate2
import torch
from ctranslate2.converters import TransformersConverter
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from transformers import PreTrainedTokenizerFast

from random_model import build_model, load_config, percentile, print_result, random_source_ids

# Each special id's name in the Hugging Face tokenizers of these architectures; CTranslate2's
# loaders look them up by these names (Marian drops a trailing "<pad>" from its vocabulary).
SPECIAL_NAMES = {
    "pad_token": "<pad>",
    "eos_token": "</s>",
    "bos_token": "<s>",
    "unk_token": "<unk>",
}


def synthetic_tokenizer(config):
    """A word-level tokenizer over "t0".."t<vocab-1>" with the config's special tokens in place."""
    specials = {}
    for attr, name in SPECIAL_NAMES.items():
        i = getattr(config, f"{attr}_id", None)
        if i is not None and i not in specials:
            specials[i] = name
    # The configs name no unk id: give it the first free id (the source ids never hold it
    # below 3; at 3, as in BART, "<unk>" maps back to the same id).
    if "<unk>" not in specials.values():
        free = next(i for i in range(config.vocab_size) if i not in specials)
        specials[free] = "<unk>"
    vocab = {specials.get(i, f"t{i}"): i for i in range(config.vocab_size)}
    kwargs = {attr: name for attr, name in SPECIAL_NAMES.items() if name in specials.values()}
    return PreTrainedTokenizerFast(tokenizer_object=Tokenizer(WordLevel(vocab, unk_token="<unk>")), **kwargs)


class InMemoryConverter(TransformersConverter):
    """Converts a model already built in this process: the converter's load hooks return it
    and the synthetic tokenizer instead of reading them back from disk (m2m100-418m is 1.9 GB
    in float32). The directory holds only config.json, which the converter reads for the
    architecture."""

    def __init__(self, config_dir, model, tokenizer):
        super().__init__(config_dir)
        self.model, self.tokenizer = model, tokenizer

    def load_model(self, model_class, model_name_or_path, **kwargs):
        return self.model

    def load_tokenizer(self, tokenizer_class, model_name_or_path, **kwargs):
        return self.tokenizer


def reference_tokens(model, ids, args, tokenizer):
    """What transformers generates on the same model and shape (EOS held off likewise)."""
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), num_beams=args.beams,
                             max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens, do_sample=False,
                             early_stopping=False, forced_bos_token_id=None, forced_eos_token_id=None)
    # The first position is the decoder start token, which CTranslate2 does not return.
    return [tokenizer.convert_ids_to_tokens(row[1:]) for row in out.tolist()]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="tiny", help="name of assets/bench/<name>.json, or a path to a config.json")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--beams", type=int, default=1)
    ap.add_argument("--src-len", type=int, default=32)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--compute-type", default="float32",
                    help="CTranslate2 quantization and compute type (int8, float32, int8_float32, float16, ...)")
    ap.add_argument("--device", default="cuda" if ctranslate2.get_cuda_device_count() else "cpu")
    ap.add_argument("--threads", type=int, default=0, help="intra_threads (0: CTranslate2's default)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--check", action="store_true",
                    help="also generate with transformers on the same model and report the share of "
                         "tokens that agree (check_token_agreement; 1.0 expected at float32)")
    args = ap.parse_args()
    if args.new_tokens < 2:
        sys.exit("--new-tokens: need at least 2 (the step time is a difference against a 1-token call)")
    supported = ctranslate2.get_supported_compute_types(args.device)
    if args.compute_type not in supported:
        sys.exit(f"--compute-type {args.compute_type}: not supported on {args.device} "
                 f"(supported: {', '.join(sorted(supported))})")

    config, vision = load_config(args.config)
    if vision:
        sys.exit(f"--config {args.config}: a vision-encoder-decoder model; CTranslate2's Translator is text only")
    model = build_model(config, vision, args.seed)
    if config.model_type == "bart" and not hasattr(config, "normalize_before"):
        # CTranslate2 4.8's BART loader reads this transformers 4 attribute, which transformers
        # 5 dropped; BART is post-norm.
        model.config.normalize_before = False
    g = torch.Generator().manual_seed(args.seed)
    ids = random_source_ids(config, args.batch, args.src_len, g)
    tokenizer = synthetic_tokenizer(config)
    source = [tokenizer.convert_ids_to_tokens(row) for row in ids.tolist()]
    expected = reference_tokens(model, ids, args, tokenizer) if args.check else None

    with tempfile.TemporaryDirectory(prefix="seqbridge-ct2-") as tmp:
        config_dir, out_dir = Path(tmp) / "hf", Path(tmp) / "ct2"
        config.save_pretrained(config_dir)
        t0 = time.perf_counter()
        InMemoryConverter(str(config_dir), model, tokenizer).convert(
            str(out_dir), quantization=args.compute_type, force=True)
        convert_ms = (time.perf_counter() - t0) * 1e3
        del model
        t0 = time.perf_counter()
        translator = ctranslate2.Translator(str(out_dir), device=args.device, compute_type=args.compute_type,
                                            intra_threads=args.threads, inter_threads=1)
        load_ms = (time.perf_counter() - t0) * 1e3
        weight_bytes = (out_dir / "model.bin").stat().st_size

    def translate(n, callback=None):
        t0 = time.perf_counter()
        out = translator.translate_batch(
            source, beam_size=args.beams, num_hypotheses=1, max_batch_size=0,
            # Exactly n tokens: EOS is not allowed before n, and decoding stops at n.
            min_decoding_length=n, max_decoding_length=n, return_end_token=True,
            length_penalty=1.0, callback=callback)
        total = time.perf_counter() - t0
        for hyp in out:
            got = len(hyp.hypotheses[0])
            if got != n:
                sys.exit(f"CTranslate2 generated {got} tokens, asked for exactly {n}")
        if expected is not None and n == args.new_tokens:
            agreement.append(sum(a == b for r, e in zip(out, expected) for a, b in zip(r.hypotheses[0], e))
                             / (len(expected) * n))
        return total

    gen_s, first_s, steps, step_source, agreement = [], [], [], None, []
    for it in range(args.warmup + args.iters):
        arrivals = {}
        if args.beams == 1:
            # Called as each example's token of a step arrives; a step's time is the first.
            def on_token(step):
                arrivals.setdefault(step.step, time.perf_counter())
            total = translate(args.new_tokens, on_token)
        else:
            total = translate(args.new_tokens)
        first = translate(1)
        if it < args.warmup:
            continue
        gen_s.append(total)
        first_s.append(first)
        if arrivals:
            times = [arrivals[k] for k in sorted(arrivals)]
            steps += [(b - a) * 1e3 for a, b in zip(times, times[1:])]
            step_source = "callback: time between consecutive steps' first tokens"
        else:
            steps.append((total - first) * 1e3 / (args.new_tokens - 1))
            step_source = "mean: (call of new_tokens - call of 1 token) / (new_tokens - 1), no per-step hook in beam search"

    threads = args.threads or "default"
    result = {
        "tokens_per_s": args.batch * args.new_tokens / statistics.median(gen_s),
        "load_ms": load_ms,
        "convert_ms": convert_ms,
        "encoder_ms": None,
        "first_token_ms": statistics.median(first_s) * 1e3,
        "step_ms_median": statistics.median(steps),
        "step_ms_p90": percentile(steps, 0.9),
        "step_ms_source": step_source,
        "weight_bytes": weight_bytes,
        "check_token_agreement": min(agreement) if agreement else None,
        "adapter": (platform.processor() or platform.machine()) if args.device == "cpu" else args.device,
        "backend": f"{args.device}, {args.compute_type}, {threads} intra threads",
        "engine": f"ctranslate2 {ctranslate2.__version__}",
    }
    print_result(result, args, args.compute_type)


if __name__ == "__main__":
    main()
