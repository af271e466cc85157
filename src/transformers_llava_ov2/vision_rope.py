"""3D (t, h, w) rotary position embedding of the OneVision-Encoder, exactly as released.

``head_dim / 2`` frequencies are split 4:6:6 between time, height and width (8:12:12 for head_dim 64).
Each axis has its own inverse frequencies ``theta ** (-arange(n) / n)`` (note the per-axis denominator).
For a patch at ``(t, h, w)`` the angle vector is ``F = [t·inv_t | h·inv_h | w·inv_w]`` and the embedding is
``E = cat(F, F)``. It is applied with an *interleaved* rotation (pairs ``(2j, 2j+1)``) in float32:

    x' = x · cos(E) + rot(x) · sin(E),   rot(x)[2j] = -x[2j+1],  rot(x)[2j+1] = x[2j]

Because pair ``(2j, 2j+1)`` mixes two different angles ``E[2j]`` and ``E[2j+1]``, the map is not an
orthogonal rotation and attention logits depend on *absolute* positions, not only on their differences.
Positions therefore must be exactly what the processor emits (see ``video_types``).
"""

from __future__ import annotations

import torch
from torch import nn


def axis_sizes(head_dim: int) -> tuple[int, int, int]:
    """Number of frequencies for (t, h, w): ``(4u, 6u, 6u)`` with ``u = head_dim / 32``."""
    half = head_dim // 2
    if head_dim % 2 or half % 16:
        raise ValueError(f"3D RoPE needs head_dim/2 divisible by 16, got head_dim={head_dim}")
    unit = half // 16
    return 4 * unit, 6 * unit, 6 * unit


def axis_inverse_frequencies(head_dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(inv_t [4u], inv_h [6u], inv_w [6u])`` float32 inverse frequencies."""
    return tuple(theta ** -(torch.arange(n, dtype=torch.float32) / n) for n in axis_sizes(head_dim))


class VisionRotaryEmbedding3D(nn.Module):
    """Computes ``(cos, sin)`` of ``[N, head_dim]`` from explicit ``(t, h, w)`` patch positions.

    The inverse-frequency buffers are non-persistent (never in a checkpoint); ``reset_parameters``
    recomputes them, which ``_init_weights`` calls after meta-device loading.
    """

    inv_freq_t: torch.Tensor
    inv_freq_h: torch.Tensor
    inv_freq_w: torch.Tensor

    def __init__(self, head_dim: int, theta: float = 10000.0):
        super().__init__()
        self.head_dim = head_dim
        self.theta = theta
        inv_t, inv_h, inv_w = axis_inverse_frequencies(head_dim, theta)
        self.register_buffer("inv_freq_t", inv_t, persistent=False)
        self.register_buffer("inv_freq_h", inv_h, persistent=False)
        self.register_buffer("inv_freq_w", inv_w, persistent=False)

    def reset_parameters(self) -> None:
        for name, value in zip(
            ("inv_freq_t", "inv_freq_h", "inv_freq_w"), axis_inverse_frequencies(self.head_dim, self.theta)
        ):
            getattr(self, name).copy_(value.to(getattr(self, name).device))

    def forward(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Args: positions ``[N, 3]`` (t, h, w), any numeric dtype. Returns ``(cos, sin)``, float32 ``[N, head_dim]``."""
        if positions.ndim != 2 or positions.shape[-1] != 3:
            raise ValueError(
                f"patch_positions must have shape [N, 3] (t, h, w), got {tuple(positions.shape)}"
            )
        pos = positions.to(device=self.inv_freq_t.device, dtype=torch.float32)
        freqs = torch.cat(
            (pos[:, 0:1] * self.inv_freq_t, pos[:, 1:2] * self.inv_freq_h, pos[:, 2:3] * self.inv_freq_w),
            dim=-1,
        )
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos(), emb.sin()


def rotate_interleaved(x: torch.Tensor) -> torch.Tensor:
    """``rot(x)[..., 2j] = -x[..., 2j+1]``, ``rot(x)[..., 2j+1] = x[..., 2j]``."""
    even, odd = x[..., 0::2], x[..., 1::2]
    return torch.stack((-odd, even), dim=-1).flatten(-2)


def apply_vision_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Applies the 3D RoPE in float32 and casts back.

    Args:
        x: ``[N, heads, head_dim]``.
        cos, sin: ``[N, head_dim]``.
    """
    dtype = x.dtype
    xf = x.float()
    out = xf * cos.unsqueeze(-2) + rotate_interleaved(xf) * sin.unsqueeze(-2)
    return out.to(dtype)
