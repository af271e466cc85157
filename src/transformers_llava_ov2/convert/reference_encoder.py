"""A functional forward of a *standalone* OneVision-Encoder checkpoint (separate ``q/k/v_proj``,
``out_proj``), used by the stage-0 merge to validate the merged vision tower.

It reads the source tensors layer by layer (one layer in memory at a time) and runs them with plain
``torch.nn.functional`` calls: patch Conv2d → ``layernorm_pre`` → pre-LN layers with 3D RoPE and full
attention within each image → last layer output. The 3D RoPE comes from the package's ``vision_rope``
(the rule under test is the weight mapping, not the rotary maths).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..vision_rope import VisionRotaryEmbedding3D, apply_vision_rope


@torch.no_grad()
def standalone_encoder_forward(
    get: Callable[[str], torch.Tensor],
    config: dict,
    pixel_values: torch.Tensor,
    positions: torch.Tensor,
    num_layers: int,
) -> torch.Tensor:
    """Last-layer hidden states ``[N, hidden]`` of one image.

    Args:
        get: returns a standalone tensor by its (prefix-stripped) name, e.g. ``encoder.layers.0.self_attn.q_proj.weight``.
        config: the standalone ``config.json`` (``hidden_size``, ``num_attention_heads``, ``patch_size``,
            ``layer_norm_eps``, optional ``num_channels``, ``rope_theta``).
        pixel_values: ``[N, C·P·P]``; positions: ``[N, 3]`` (same order).
    """
    hidden, heads = config["hidden_size"], config["num_attention_heads"]
    patch, channels = config["patch_size"], config.get("num_channels", 3)
    eps = config.get("layer_norm_eps", 1e-6)
    head_dim = hidden // heads
    weight = get("embeddings.patch_embedding.weight")
    x = F.conv2d(pixel_values.to(weight.dtype).view(-1, channels, patch, patch), weight, stride=patch)
    x = x.view(pixel_values.shape[0], hidden)
    x = F.layer_norm(x, (hidden,), get("layernorm_pre.weight"), get("layernorm_pre.bias"), eps)
    cos, sin = VisionRotaryEmbedding3D(head_dim, config.get("rope_theta", 10000.0))(positions)
    n = x.shape[0]
    for i in range(num_layers):
        p = f"encoder.layers.{i}."
        w = {k: get(p + k) for k in _LAYER_KEYS}
        h = F.layer_norm(x, (hidden,), w["layer_norm1.weight"], w["layer_norm1.bias"], eps)
        q, k, v = (
            F.linear(h, w[f"self_attn.{t}_proj.weight"], w[f"self_attn.{t}_proj.bias"]).view(
                n, heads, head_dim
            )
            for t in "qkv"
        )
        q, k = apply_vision_rope(q, cos, sin), apply_vision_rope(k, cos, sin)
        scores = torch.einsum("qhd,khd->hqk", q.float(), k.float()) * head_dim**-0.5
        attn = torch.einsum("hqk,khd->qhd", scores.softmax(-1), v.float()).to(x.dtype).reshape(n, hidden)
        x = x + F.linear(attn, w["self_attn.out_proj.weight"], w["self_attn.out_proj.bias"])
        h = F.layer_norm(x, (hidden,), w["layer_norm2.weight"], w["layer_norm2.bias"], eps)
        x = x + F.linear(
            F.gelu(F.linear(h, w["mlp.fc1.weight"], w["mlp.fc1.bias"])),
            w["mlp.fc2.weight"],
            w["mlp.fc2.bias"],
        )
    return x


_LAYER_KEYS = tuple(
    f"{m}.{p}"
    for m in (
        "layer_norm1",
        "layer_norm2",
        "self_attn.q_proj",
        "self_attn.k_proj",
        "self_attn.v_proj",
        "self_attn.out_proj",
        "mlp.fc1",
        "mlp.fc2",
    )
    for p in ("weight", "bias")
)
