"""Synthetic Megatron checkpoints for the conversion tests, written here independently of ``convert/``.

``hf_truth`` makes a random tiny model folder (the expected HF result); ``write_legacy`` / ``write_dist``
lay the same weights out the way Megatron-Core stores them (spec training_conversion.md §1.2-1.3), using
explicit per-head / per-group loops rather than the package's reshapes.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import types
import warnings
from pathlib import Path

import torch
from safetensors.torch import load_file

from transformers_llava_ov2 import LlavaOnevision2MoeForConditionalGeneration, tiny_moe_config
from transformers_llava_ov2.testing import small_config, tiny_model

VOCAB = 520  # pads to 640 (TP=1) / 768 (TP=2): the padding must be trimmed


def hf_truth(folder: Path, moe: bool = False, seed: int = 0, dtype=torch.bfloat16):
    """Saves a random tiny model to ``folder``; returns (model, {name: tensor}) as stored."""
    if moe:
        torch.manual_seed(seed)
        model = LlavaOnevision2MoeForConditionalGeneration(tiny_moe_config(vocab_size=VOCAB)).to(dtype).eval()
    else:
        model = tiny_model(small_config(vocab_size=VOCAB), seed=seed, dtype=dtype)
    with torch.no_grad():  # layer norms and biases away from their init values so mix-ups show
        for _name, p in model.named_parameters():
            if p.ndim == 1:
                p.copy_(torch.randn_like(p.float()).to(dtype))
    model.save_pretrained(folder)
    return model, load_file(str(folder / "model.safetensors"))


_FAKE = types.ModuleType("megatron_fake_enums")
_FAKE.AttnBackend = type(
    "AttnBackend", (), {"__module__": _FAKE.__name__, "__reduce__": lambda self: (type(self), ())}
)


@contextlib.contextmanager
def fake_megatron_module():
    """Makes the fake Megatron enum importable (to write or edit checkpoints); it is gone again after, so
    readers must cope without it, as they must without Megatron."""
    sys.modules[_FAKE.__name__] = _FAKE
    try:
        yield _FAKE.AttnBackend()
    finally:
        del sys.modules[_FAKE.__name__]


def _llm_qkv(q, k, v, heads, kv, d):
    rows = []
    per = heads // kv
    for g in range(kv):
        for h in range(g * per, (g + 1) * per):
            rows.append(q[h * d : (h + 1) * d])
        rows.append(k[g * d : (g + 1) * d])
        rows.append(v[g * d : (g + 1) * d])
    return torch.cat(rows)


def _vit_qkv(qkv, heads):
    q, k, v = qkv.chunk(3)
    d = q.shape[0] // heads
    return torch.cat([t[h * d : (h + 1) * d] for h in range(heads) for t in (q, k, v)])


def megatron_full(truth: dict, config, vocab_pad_tp: int) -> dict[str, tuple[torch.Tensor, int | None]]:
    """Canonical Megatron name → (full tensor, TP dim); fc1 as [gate; up] (TP regroup done per rank later)."""
    text, vision = config.text_config, config.vision_config
    heads, kv, d = text.num_attention_heads, text.num_key_value_heads, text.head_dim
    out = {}
    vp, vh = "vision_model.", "model.visual."
    out[vp + "patch_embed.proj.weight"] = (truth[vh + "embeddings.patch_embedding.weight"], 0)
    out[vp + "pre_layernorm.weight"] = (truth[vh + "layernorm_pre.weight"], None)
    out[vp + "pre_layernorm.bias"] = (truth[vh + "layernorm_pre.bias"], None)
    for i in range(vision.num_hidden_layers):
        m, h = f"{vp}decoder.layers.{i}.", f"{vh}encoder.layers.{i}."
        for p in ("weight", "bias"):
            out[m + f"self_attention.linear_qkv.layer_norm_{p}"] = (truth[h + f"layer_norm1.{p}"], None)
            out[m + f"mlp.linear_fc1.layer_norm_{p}"] = (truth[h + f"layer_norm2.{p}"], None)
            out[m + f"self_attention.linear_qkv.{p}"] = (
                _vit_qkv(truth[h + f"self_attn.qkv.{p}"], vision.num_attention_heads),
                0,
            )
            out[m + f"mlp.linear_fc1.{p}"] = (truth[h + f"mlp.fc1.{p}"], 0)
        out[m + "self_attention.linear_proj.weight"] = (truth[h + "self_attn.proj.weight"], 1)
        out[m + "self_attention.linear_proj.bias"] = (truth[h + "self_attn.proj.bias"], None)
        out[m + "mlp.linear_fc2.weight"] = (truth[h + "mlp.fc2.weight"], 1)
        out[m + "mlp.linear_fc2.bias"] = (truth[h + "mlp.fc2.bias"], None)
    for a, b in (("layernorm", "ln_q"), ("linear_fc1", "mlp.0"), ("linear_fc2", "mlp.2")):
        for p in ("weight", "bias"):
            out[f"adapter.{a}.{p}"] = (truth[f"{vh}merger.{b}.{p}"], None)
    multiple = 128 * vocab_pad_tp
    padded = -(-text.vocab_size // multiple) * multiple
    g = torch.Generator().manual_seed(7)
    for mg, hf in (
        ("embedding.word_embeddings.weight", "model.language_model.embed_tokens.weight"),
        ("output_layer.weight", "lm_head.weight"),
    ):
        w = truth[hf]
        pad = torch.randn(padded - w.shape[0], w.shape[1], generator=g).to(w.dtype)
        out["language_model." + mg] = (torch.cat([w, pad]), 0)
    out["language_model.decoder.final_layernorm.weight"] = (truth["model.language_model.norm.weight"], None)
    for i in range(text.num_hidden_layers):
        m, h = f"language_model.decoder.layers.{i}.", f"model.language_model.layers.{i}."
        a = h + "self_attn."
        out[m + "self_attention.linear_qkv.layer_norm_weight"] = (truth[h + "input_layernorm.weight"], None)
        out[m + "self_attention.linear_qkv.weight"] = (
            _llm_qkv(
                truth[a + "q_proj.weight"],
                truth[a + "k_proj.weight"],
                truth[a + "v_proj.weight"],
                heads,
                kv,
                d,
            ),
            0,
        )
        out[m + "self_attention.q_layernorm.weight"] = (truth[a + "q_norm.weight"], None)
        out[m + "self_attention.k_layernorm.weight"] = (truth[a + "k_norm.weight"], None)
        out[m + "self_attention.linear_proj.weight"] = (truth[a + "o_proj.weight"], 1)
        if getattr(text, "num_experts", None):
            out[m + "pre_mlp_layernorm.weight"] = (truth[h + "post_attention_layernorm.weight"], None)
            out[m + "mlp.router.weight"] = (truth[h + "mlp.gate.weight"], None)
            for j in range(text.num_experts):
                e, x = f"{m}mlp.experts.local_experts.{j}.", f"{h}mlp.experts.{j}."
                out[e + "linear_fc1.weight"] = (
                    (truth[x + "gate_proj.weight"], truth[x + "up_proj.weight"]),
                    0,
                )
                out[e + "linear_fc2.weight"] = (truth[x + "down_proj.weight"], 1)
        else:
            out[m + "mlp.linear_fc1.layer_norm_weight"] = (truth[h + "post_attention_layernorm.weight"], None)
            out[m + "mlp.linear_fc1.weight"] = (
                (truth[h + "mlp.gate_proj.weight"], truth[h + "mlp.up_proj.weight"]),
                0,
            )
            out[m + "mlp.linear_fc2.weight"] = (truth[h + "mlp.down_proj.weight"], 1)
    return out


def _shard(value, dim, tp, t):
    if isinstance(value, tuple):  # SwiGLU fc1: each rank holds [gate_t; up_t]
        gate, up = value
        n = gate.shape[0] // tp
        return torch.cat([gate[t * n : (t + 1) * n], up[t * n : (t + 1) * n]])
    if dim is None:
        return value
    n = value.shape[dim] // tp
    return value.narrow(dim, t * n, n)


def write_legacy(
    root: Path, truth: dict, config, tp=1, pp=1, ep=1, patch="tp_linear", pp_layers=None, grouped=False
):
    """Writes a legacy ``torch`` checkpoint (tracker + release/mp_rank_*/model_optim_rng.pt)."""
    full = megatron_full(truth, config, tp)
    text = config.text_config
    layers = text.num_hidden_layers
    counts = pp_layers or [layers // pp] * pp
    experts = getattr(text, "num_experts", 0) or 0
    per_rank = experts // ep if experts else 0
    with fake_megatron_module() as enum_value:
        args = argparse.Namespace(tensor_model_parallel_size=tp, pipeline_model_parallel_size=pp,
                                  expert_model_parallel_size=ep, attention_backend=enum_value)  # fmt: skip
        for s in range(pp):
            first, last = sum(counts[:s]), sum(counts[: s + 1])
            for e in range(ep):
                for t in range(tp):
                    state = {}
                    for name, (value, dim) in full.items():
                        local = _local(name, s, pp, first, last, e, per_rank, grouped)
                        if local is None:
                            continue
                        if name.endswith("patch_embed.proj.weight"):
                            w = value if patch == "replicated_conv" else value.reshape(value.shape[0], -1)
                            shard = w if patch == "replicated_conv" else _shard(w, 0, tp, t)
                        else:
                            shard = _shard(value, dim, tp, t)
                        state[local] = shard.clone()
                        if local.endswith(("linear_qkv.weight", "linear_fc2.weight")):
                            state[local[: -len("weight")] + "_extra_state"] = io.BytesIO(b"")
                    name = (
                        f"mp_rank_{t:02d}"
                        + (f"_{s:03d}" if pp > 1 or ep > 1 else "")
                        + (f"_{e:03d}" if ep > 1 else "")
                    )
                    folder = root / "release" / name
                    folder.mkdir(parents=True)
                    torch.save(
                        {"model": state, "args": args, "checkpoint_version": 3.0, "iteration": 1},
                        folder / "model_optim_rng.pt",
                    )
    (root / "latest_checkpointed_iteration.txt").write_text("release")


def _local(name, stage, pp, first, last, ep_rank, per_rank, grouped=False):
    """Stage-local (and EP-local) name, or None when the tensor is not on this (stage, ep) rank."""
    if name.startswith("language_model.decoder.layers."):
        rest = name[len("language_model.decoder.layers.") :]
        i, sub = rest.split(".", 1)
        i = int(i)
        if not first <= i < last:
            return None
        if sub.startswith("mlp.experts.local_experts."):
            j, tail = sub[len("mlp.experts.local_experts.") :].split(".", 1)
            j = int(j)
            if j // per_rank != ep_rank:
                return None
            if grouped:  # TEGroupedMLP: mlp.experts.linear_fc1.weight<j>
                sub = f"mlp.experts.{tail.removesuffix('.weight')}.weight{j % per_rank}"
            else:
                sub = f"mlp.experts.local_experts.{j % per_rank}.{tail}"
        return f"language_model.decoder.layers.{i - first}.{sub}"
    if name.startswith(("language_model.decoder.final_layernorm", "language_model.output_layer")):
        return name if stage == pp - 1 else None
    return name if stage == 0 else None


def write_dist(root: Path, truth: dict, config) -> None:
    """Writes a ``torch_dist`` checkpoint: global tensors, layers stacked, experts stacked after layers."""
    import torch.distributed.checkpoint as dcp

    full = megatron_full(truth, config, 1)
    stacks: dict[str, dict] = {}
    state = {}
    for name, (value, _) in full.items():
        if isinstance(value, tuple):
            value = torch.cat(value)  # the swiglu factory stores [all gate; all up]
        if name.endswith("patch_embed.proj.weight"):
            value = value.reshape(value.shape[0], -1)
        for tower in ("language_model", "vision_model"):
            prefix = f"{tower}.decoder.layers."
            if name.startswith(prefix):
                i, sub = name[len(prefix) :].split(".", 1)
                index = (int(i),)
                if sub.startswith("mlp.experts.local_experts."):
                    j, tail = sub[len("mlp.experts.local_experts.") :].split(".", 1)
                    sub, index = f"mlp.experts.experts.{tail}", (int(i), int(j))
                stacks.setdefault(prefix + sub, {})[index] = value
                break
        else:
            state[name] = value
    for key, parts in stacks.items():
        shape = [max(ix[d] for ix in parts) + 1 for d in range(len(next(iter(parts))))]
        first = next(iter(parts.values()))
        stacked = torch.zeros(*shape, *first.shape, dtype=first.dtype)
        for ix, v in parts.items():
            stacked[ix] = v
        state[key] = stacked
    folder = root / "release"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.distributed is disabled")
        dcp.save(state, checkpoint_id=str(folder), no_dist=True)
    (root / "latest_checkpointed_iteration.txt").write_text("release")
