"""The multi-source encoder-decoder in PyTorch, built from transformers' own modules: the
numerics that seqbridge's `multi_source` checkpoints are checked against.

A checkpoint directory holds ``config.json``::

    {"model_type": "multi_source", "fusion": "concat" | "separate",
     "encoders": [<a BartConfig (model_type bart) or ViTConfig (model_type vit)>, ...],
     "decoder": <a BartConfig (model_type bart)>,
     "decoder_start_token_id": ..., "pad_token_id": ..., "eos_token_id": ..., "bos_token_id": ...}

and ``model.safetensors`` with, for source i, ``encoders.{i}.`` + the state dict of
``BartEncoder`` or ``ViTModel(add_pooling_layer=False)`` as ``save_pretrained`` writes it, ``enc_to_dec_proj.{i}`` (a linear to
the decoder's ``d_model``) when the encoder's width differs from it, and ``decoder.`` + the state
dict of ``BartDecoder``; the output projection is tied to ``decoder.embed_tokens``. With
``fusion: "concat"`` the decoder is BART's own: one cross-attention (``encoder_attn``) reads
the sources' states laid side by side, each with its own padding mask. With ``"separate"``
each decoder layer has one cross-attention block per source, in order, each with its own
residual and layer norm: ``encoder_attn.{i}`` and ``encoder_attn_layer_norm.{i}``
(self-attention → cross_0 → … → cross_{N-1} → feed-forward).
"""

from __future__ import annotations

import os
import tempfile

import torch
from safetensors.torch import load_file
from torch import nn
from transformers import BartConfig, BartForConditionalGeneration, ViTConfig, ViTModel
from transformers.modeling_outputs import BaseModelOutput
from transformers.models.bart.modeling_bart import BartAttention, BartDecoderLayer, BartEncoder


class SeparateDecoderLayer(BartDecoderLayer):
    """BART's decoder layer with one cross-attention block per source. The sources' states
    arrive side by side in ``encoder_hidden_states`` (as transformers' generate expands them
    for beams); ``segments`` (set by the model) says how many positions each one has."""

    def __init__(self, config: BartConfig, sources: int, layer_idx: int):
        super().__init__(config, layer_idx)
        d, h = config.d_model, config.decoder_attention_heads
        self.encoder_attn = nn.ModuleList(
            BartAttention(d, h, is_decoder=True, config=config) for _ in range(sources)
        )
        self.encoder_attn_layer_norm = nn.ModuleList(nn.LayerNorm(d) for _ in range(sources))
        self.segments: list[int] = []
        self.probs: list[torch.Tensor] | None = None

    def forward(self, hidden_states, attention_mask=None, encoder_hidden_states=None,
                encoder_attention_mask=None, cache=None, use_cache=None, **kwargs):
        residual = hidden_states
        hidden_states, _ = self.self_attn(hidden_states, attention_mask=attention_mask)
        hidden_states = self.self_attn_layer_norm(residual + hidden_states)
        states = torch.split(encoder_hidden_states, self.segments, dim=1)
        masks = (torch.split(encoder_attention_mask, self.segments, dim=-1)
                 if encoder_attention_mask is not None else [None] * len(states))
        for attn, norm, kv, mask in zip(self.encoder_attn, self.encoder_attn_layer_norm,
                                        states, masks):
            residual = hidden_states
            out, probs = attn(hidden_states, key_value_states=kv, attention_mask=mask)
            if self.probs is not None:
                self.probs.append(probs)
            hidden_states = norm(residual + out)
        residual = hidden_states
        hidden_states = self.fc2(self.activation_fn(self.fc1(hidden_states)))
        return self.final_layer_norm(residual + hidden_states)


class MultiSource(nn.Module):
    def __init__(self, config: dict):
        super().__init__()
        self.config = config
        self.fusion = config["fusion"]
        dec_cfg = BartConfig(**config["decoder"])
        dec_cfg._attn_implementation = "eager"
        self.encoders = nn.ModuleList()
        self.kinds = []
        projs = {}
        for i, e in enumerate(config["encoders"]):
            if e["model_type"] == "bart":
                cfg = BartConfig(**e)
                cfg._attn_implementation = "eager"
                enc, width = BartEncoder(cfg), cfg.d_model
            elif e["model_type"] == "vit":
                cfg = ViTConfig(**e)
                cfg._attn_implementation = "eager"
                enc, width = ViTModel(cfg, add_pooling_layer=False), cfg.hidden_size
            else:
                raise ValueError(f"encoders.{i}.model_type {e['model_type']!r}")
            self.encoders.append(enc)
            self.kinds.append(e["model_type"])
            if width != dec_cfg.d_model:
                projs[str(i)] = nn.Linear(width, dec_cfg.d_model)
        self.enc_to_dec_proj = nn.ModuleDict(projs)
        # A BartForConditionalGeneration whose encoder is never run: generate() is given the
        # encoder outputs, so its search is transformers' own.
        self.seq2seq = BartForConditionalGeneration(dec_cfg)
        if self.fusion == "separate":
            layers = self.seq2seq.model.decoder.layers
            for l in range(len(layers)):
                layers[l] = SeparateDecoderLayer(dec_cfg, len(self.encoders), l)
        elif self.fusion != "concat":
            raise ValueError(f"fusion {self.fusion!r}")

    @property
    def decoder(self):
        return self.seq2seq.model.decoder

    def encode(self, inputs: list) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
        """inputs[i]: token id lists (text) or pixel values ``[B, C, H, W]`` (image).
        Returns the states side by side ``[B, ΣS_i, D]``, their mask, and each S_i."""
        states, masks = [], []
        for i, (enc, kind, x) in enumerate(zip(self.encoders, self.kinds, inputs)):
            if kind == "bart":
                pad = self.config["encoders"][i].get("pad_token_id", 1)
                s = max(len(t) for t in x)
                ids = torch.tensor([t + [pad] * (s - len(t)) for t in x])
                mask = torch.tensor([[1] * len(t) + [0] * (s - len(t)) for t in x])
                h = enc(input_ids=ids, attention_mask=mask).last_hidden_state
            else:
                h = enc(pixel_values=x).last_hidden_state
                mask = torch.ones(h.shape[:2], dtype=torch.long)
            if str(i) in self.enc_to_dec_proj:
                h = self.enc_to_dec_proj[str(i)](h)
            states.append(h)
            masks.append(mask)
        segments = [h.shape[1] for h in states]
        for layer in self.decoder.layers:
            layer.segments = segments
        return torch.cat(states, 1), torch.cat(masks, 1), segments

    def generate(self, inputs: list, **kwargs):
        states, mask, _ = self.encode(inputs)
        return self.seq2seq.generate(
            encoder_outputs=BaseModelOutput(last_hidden_state=states), attention_mask=mask,
            use_cache=False, return_dict_in_generate=True, output_scores=True, **kwargs)

    def logits(self, inputs: list, decoder_input_ids: torch.Tensor) -> torch.Tensor:
        states, mask, _ = self.encode(inputs)
        return self.seq2seq(encoder_outputs=(states,), attention_mask=mask,
                            decoder_input_ids=decoder_input_ids, use_cache=False).logits

    def cross_attentions(self, inputs: list, decoder_input_ids: torch.Tensor):
        """Per source, per layer, ``[heads, T, S_i]`` of batch row 0 (its real positions)."""
        states, mask, segments = self.encode(inputs)
        n = len(segments)
        if self.fusion == "separate":
            for layer in self.decoder.layers:
                layer.probs = []
            self.seq2seq(encoder_outputs=(states,), attention_mask=mask,
                         decoder_input_ids=decoder_input_ids, use_cache=False)
            per_layer = [layer.probs for layer in self.decoder.layers]
            for layer in self.decoder.layers:
                layer.probs = None
        else:
            out = self.seq2seq(encoder_outputs=(states,), attention_mask=mask,
                               decoder_input_ids=decoder_input_ids, use_cache=False,
                               output_attentions=True)
            per_layer = [torch.split(p, segments, dim=-1) for p in out.cross_attentions]
        starts = [sum(segments[:i]) for i in range(n)]
        lengths = [int(mask[0, starts[i]:starts[i] + segments[i]].sum()) for i in range(n)]
        return [[per_layer[l][i][0, :, :, :lengths[i]] for l in range(len(per_layer))]
                for i in range(n)]

    def state_dict_hf(self) -> dict:
        """The checkpoint's tensors under the format's names."""
        out = {}
        for i, enc in enumerate(self.encoders):
            # The names save_pretrained writes (transformers 5 renames some modules inside,
            # ViT's among them, and maps them back to the checkpoint names on save).
            with tempfile.TemporaryDirectory() as tmp:
                enc.save_pretrained(tmp, safe_serialization=True)
                for k, v in load_file(os.path.join(tmp, "model.safetensors")).items():
                    out[f"encoders.{i}.{k}"] = v
        for k, v in self.enc_to_dec_proj.state_dict().items():
            out[f"enc_to_dec_proj.{k}"] = v
        for k, v in self.decoder.state_dict().items():
            out[f"decoder.{k}"] = v
        return {k: v.contiguous() for k, v in out.items()}
