"""The 3D vision RoPE against a straightforward re-statement of the released formula."""

from __future__ import annotations

import math

import pytest
import torch

from transformers_llava_ov2.vision_rope import VisionRotaryEmbedding3D, apply_vision_rope, axis_sizes


def reference_rope(
    x: torch.Tensor, positions: list[tuple[int, int, int]], theta: float = 10000.0
) -> torch.Tensor:
    """Element by element: dims split 4:6:6 of head_dim/2, E = cat(F, F), interleaved pairs, float64."""
    n, heads, d = x.shape
    half = d // 2
    nt, nh, nw = 4 * (half // 16), 6 * (half // 16), 6 * (half // 16)
    out = torch.empty(n, heads, d, dtype=torch.float64)
    for i, (t, h, w) in enumerate(positions):
        freqs = (
            [t * theta ** (-j / nt) for j in range(nt)]
            + [h * theta ** (-j / nh) for j in range(nh)]
            + [w * theta ** (-j / nw) for j in range(nw)]
        )
        angles = freqs + freqs
        for head in range(heads):
            v = x[i, head].double()
            for j in range(0, d, 2):
                a, b = angles[j], angles[j + 1]
                out[i, head, j] = v[j] * math.cos(a) - v[j + 1] * math.sin(a)
                out[i, head, j + 1] = v[j + 1] * math.cos(b) + v[j] * math.sin(b)
    return out


@pytest.mark.parametrize("head_dim", [32, 64])
def test_rope_matches_reference_formula(head_dim):
    torch.manual_seed(0)
    positions = [(0, 0, 0), (3, 1, 2), (17, 5, 9), (250, 40, 60)]
    x = torch.randn(len(positions), 2, head_dim)
    rope = VisionRotaryEmbedding3D(head_dim)
    cos, sin = rope(torch.tensor(positions))
    ours = apply_vision_rope(x, cos, sin)
    torch.testing.assert_close(ours.double(), reference_rope(x, positions), rtol=1e-5, atol=1e-5)


def test_axis_split_is_8_12_12_for_head_dim_64():
    assert axis_sizes(64) == (8, 12, 12)
    with pytest.raises(ValueError, match="head_dim/2 divisible by 16"):
        axis_sizes(48)


def test_rope_runs_in_float32_and_casts_back():
    x = torch.randn(3, 2, 64, dtype=torch.bfloat16)
    cos, sin = VisionRotaryEmbedding3D(64)(torch.tensor([[1, 2, 3], [4, 5, 6], [100, 7, 8]]))
    out = apply_vision_rope(x, cos, sin)
    assert out.dtype == torch.bfloat16
    expected = (
        x.float() * cos[:, None]
        + torch.stack((-x.float()[..., 1::2], x.float()[..., 0::2]), -1).flatten(-2) * sin[:, None]
    )
    torch.testing.assert_close(out, expected.to(torch.bfloat16), rtol=0, atol=0)


def test_rope_depends_on_absolute_positions_not_only_differences():
    """Documented property of the released layout: cat(F, F) + interleaved pairs is not a rotation.

    Pair (2j, 2j+1) mixes angles E[2j] and E[2j+1], so shifting every position by the same offset changes
    the q·k logits (a standard RoPE would leave them unchanged) and changes vector norms.
    """
    torch.manual_seed(1)
    rope = VisionRotaryEmbedding3D(64)
    q, k = torch.randn(1, 1, 64), torch.randn(1, 1, 64)

    def logit(pq, pk):
        cq, sq = rope(torch.tensor([pq]))
        ck, sk = rope(torch.tensor([pk]))
        return (apply_vision_rope(q, cq, sq) * apply_vision_rope(k, ck, sk)).sum().item()

    base = logit((2, 3, 4), (5, 3, 1))
    shifted = logit((12, 3, 4), (15, 3, 1))  # same t difference, shifted by 10
    assert abs(base - shifted) > 1e-3
    cos, sin = rope(torch.tensor([[7, 0, 0]]))
    assert not torch.allclose(apply_vision_rope(q, cos, sin).norm(), q.norm(), rtol=1e-4)
    # position (0, 0, 0) is the identity
    cos0, sin0 = rope(torch.zeros(1, 3, dtype=torch.long))
    torch.testing.assert_close(apply_vision_rope(q, cos0, sin0), q)


def test_rope_rejects_bad_position_shape():
    with pytest.raises(ValueError, match=r"\[N, 3\]"):
        VisionRotaryEmbedding3D(64)(torch.zeros(4, 2))
