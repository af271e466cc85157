"""OneVision-Encoder vision tower of LLaVA-OneVision-2 (checkpoint prefix ``model.visual.``).

Patch embedding (bias-free Conv2d) → ``layernorm_pre`` → pre-LN layers with fused ``qkv`` and 3D RoPE,
attention restricted to segments (see ``vision_segments``) → last-layer output → 2×2 patch merger MLP.
No CLS token, no absolute position embedding, no post-LN.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from .configuration_llava_onevision2 import LlavaOnevision2VisionConfig
from .vision_rope import apply_vision_rope
from .vision_segments import VisionSegments, segment_attention


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference attention, softmax in float32. q/k/v ``[B, H, L, D]`` → ``([B, L, H, D], weights)``."""
    weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        weights = weights + attention_mask
    weights = nn.functional.softmax(weights, dim=-1, dtype=torch.float32).to(query.dtype)
    weights = nn.functional.dropout(weights, p=dropout, training=module.training)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights


def make_norm(config: LlavaOnevision2VisionConfig, dim: int) -> nn.Module:
    if config.layer_norm_type == "rms_norm":
        return nn.RMSNorm(dim, eps=config.layer_norm_eps)
    return nn.LayerNorm(dim, eps=config.layer_norm_eps)


def image_patch_positions(grid_thw: torch.Tensor, spatial_merge_size: int) -> torch.Tensor:
    """Default ``(t, h, w)`` positions in merge-block order when a caller gives none.

    Image rows ``[1, h, w]`` get ``t = 0`` (the released image convention); rows with ``t > 1`` (frames given
    as one row) get ``t = 0..T-1``.

    Returns:
        ``int64 [sum(t*h*w), 3]``.
    """
    m = spatial_merge_size
    out = []
    for t, h, w in grid_thw.tolist():
        if h % m or w % m:
            raise ValueError(
                f"image_grid_thw row ({t}, {h}, {w}) is not divisible by spatial_merge_size={m}; resize images "
                f"to multiples of patch_size*{m}"
            )
        tt, hh, ww = torch.meshgrid(torch.arange(t), torch.arange(h), torch.arange(w), indexing="ij")
        pos = torch.stack((tt, hh, ww), dim=-1)  # [t, h, w, 3]
        pos = pos.view(t, h // m, m, w // m, m, 3).permute(0, 1, 3, 2, 4, 5).reshape(-1, 3)
        out.append(pos)
    return torch.cat(out).to(device=grid_thw.device, dtype=torch.long)


class OneVisionEncoderEmbeddings(nn.Module):
    """Flattened patches ``[N, C·p·p]`` → ``[N, hidden]`` with a bias-free Conv2d (checkpoint layout)."""

    def __init__(self, config: LlavaOnevision2VisionConfig):
        super().__init__()
        self.num_channels, self.patch_size = config.num_channels, config.patch_size
        self.patch_embedding = nn.Conv2d(
            config.num_channels,
            config.hidden_size,
            kernel_size=config.patch_size,
            stride=config.patch_size,
            bias=False,
        )

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        expected = self.num_channels * self.patch_size**2
        if pixel_values.ndim != 2 or pixel_values.shape[-1] != expected:
            raise ValueError(
                f"pixel_values must have shape [num_patches, {expected}] (channels*patch_size**2 with "
                f"temporal_patch_size=1), got {tuple(pixel_values.shape)}"
            )
        weight = self.patch_embedding.weight
        patches = pixel_values.to(weight.dtype).view(-1, self.num_channels, self.patch_size, self.patch_size)
        return self.patch_embedding(patches).view(pixel_values.shape[0], -1)


class OneVisionEncoderAttention(nn.Module):
    """Multi-head self-attention with fused ``qkv`` (rows ``[Q; K; V]``), 3D RoPE on q and k, segment-restricted."""

    def __init__(self, config: LlavaOnevision2VisionConfig):
        super().__init__()
        self.config = config
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // self.num_heads
        self.scaling = self.head_dim**-0.5
        self.attention_dropout = config.attention_dropout
        self.is_causal = False
        self.num_key_value_groups = 1
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size, bias=True)
        self.proj = nn.Linear(config.hidden_size, config.hidden_size, bias=True)

    def forward(
        self,
        hidden_states: torch.Tensor,
        position_embeddings: tuple[torch.Tensor, torch.Tensor],
        segments: VisionSegments,
        **kwargs,
    ) -> torch.Tensor:
        """Args: hidden_states ``[N, hidden]``; position_embeddings ``(cos, sin)`` ``[N, head_dim]``."""
        n = hidden_states.shape[0]
        q, k, v = self.qkv(hidden_states).view(n, 3, self.num_heads, self.head_dim).unbind(1)
        cos, sin = position_embeddings
        q, k = apply_vision_rope(q, cos, sin), apply_vision_rope(k, cos, sin)
        implementation = self.config._attn_implementation or "eager"
        attention_fn = ALL_ATTENTION_FUNCTIONS.get_interface(implementation, eager_attention_forward)
        out = segment_attention(
            attention_fn, self, q, k, v, segments,
            varlen=implementation.startswith("flash_attention") or implementation.startswith("paged|flash"),
            scaling=self.scaling, dropout=self.attention_dropout if self.training else 0.0,
        )  # fmt: skip
        return self.proj(out.reshape(n, -1))


class OneVisionEncoderMLP(nn.Module):
    def __init__(self, config: LlavaOnevision2VisionConfig):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = ACT2FN[config.hidden_act]
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class OneVisionEncoderEncoderLayer(GradientCheckpointingLayer):
    """Pre-LN transformer layer: ``x + attn(LN1(x))`` then ``x + mlp(LN2(x))``."""

    def __init__(self, config: LlavaOnevision2VisionConfig):
        super().__init__()
        self.layer_norm1 = make_norm(config, config.hidden_size)
        self.self_attn = OneVisionEncoderAttention(config)
        self.layer_norm2 = make_norm(config, config.hidden_size)
        self.mlp = OneVisionEncoderMLP(config)

    def forward(
        self,
        hidden_states: torch.Tensor,
        position_embeddings: tuple[torch.Tensor, torch.Tensor],
        segments: VisionSegments,
        **kwargs,
    ) -> torch.Tensor:
        hidden_states = hidden_states + self.self_attn(
            self.layer_norm1(hidden_states), position_embeddings, segments
        )
        return hidden_states + self.mlp(self.layer_norm2(hidden_states))


class OneVisionEncoderEncoder(nn.Module):
    def __init__(self, config: LlavaOnevision2VisionConfig):
        super().__init__()
        self.layers = nn.ModuleList(
            OneVisionEncoderEncoderLayer(config) for _ in range(config.num_hidden_layers)
        )


class LlavaOnevision2VisionPatchMerger(nn.Module):
    """``LN`` → group ``m²`` consecutive (block-ordered) tokens → ``Linear → GELU → Linear``."""

    def __init__(self, config: LlavaOnevision2VisionConfig):
        super().__init__()
        self.merged_dim = config.hidden_size * config.spatial_merge_size**2
        self.ln_q = make_norm(config, config.hidden_size)
        self.mlp = nn.Sequential(
            nn.Linear(self.merged_dim, self.merged_dim),
            nn.GELU(),
            nn.Linear(self.merged_dim, config.out_hidden_size),
        )

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """``[N, hidden]`` → ``[N / m², out_hidden_size]``."""
        return self.mlp(self.ln_q(hidden_states).view(-1, self.merged_dim))
