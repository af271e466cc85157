"""Segment rules and grouped attention of the vision encoder."""

from __future__ import annotations

import pytest
import torch

from tests.model_factory import small_config, tiny_model
from transformers_llava_ov2.modeling_onevision_encoder import eager_attention_forward
from transformers_llava_ov2.vision_segments import (
    block_diagonal_mask,
    segment_attention,
    segment_lengths_from_grid,
    segments_from_cu_seqlens,
    segments_from_grid,
    segments_from_group_ids,
)


class _Module(torch.nn.Module):
    num_key_value_groups = 1
    is_causal = False


@pytest.mark.parametrize(
    ("rows", "window", "expected"),
    [
        ([(1, 4, 4)], 4, [16]),  # image
        ([(4, 2, 2)], 4, [16]),  # t == W: one segment
        ([(5, 2, 2)], 4, [16, 4]),  # t == W + 1: W chunk + remainder
        ([(8, 2, 2)], 4, [16, 16]),  # exact multiple: no empty remainder
        ([(9, 2, 4)], 4, [32, 32, 8]),
        ([(3, 2, 2)], 4, [12]),  # t < W
        ([(1, 2, 2), (6, 2, 2), (1, 4, 2)], 4, [4, 16, 8, 8]),  # mixed images and a video row
        ([(7, 2, 2)], 2, [8, 8, 8, 4]),  # other window size
        ([(1, 2, 2)] * 3, 4, [4, 4, 4]),  # per-frame rows stay separate
    ],
)
def test_release_segment_rule(rows, window, expected):
    grid = torch.tensor(rows)
    assert segment_lengths_from_grid(grid, window) == expected
    cu = segments_from_grid(grid, window).cu_seqlens
    assert cu.dtype == torch.int32
    assert cu.tolist() == [0, *torch.tensor(expected).cumsum(0).tolist()]
    assert int(cu[-1]) == int(grid.prod(-1).sum())


def _qkv(n, heads=2, dim=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, heads, dim, generator=g, dtype=torch.float64) for _ in range(3)]


def _dense_reference(q, k, v, segments):
    mask = block_diagonal_mask(segments, torch.float64)
    out, _ = eager_attention_forward(
        _Module(), *(t.transpose(0, 1)[None] for t in (q, k, v)), mask, scaling=0.5
    )
    return out[0]


@pytest.mark.parametrize(
    "segments",
    [
        segments_from_grid(torch.tensor([(1, 2, 2), (6, 2, 2), (1, 4, 2), (9, 2, 2)]), 4),
        segments_from_group_ids(torch.tensor([0] * 5 + [1] * 3 + [2] * 11 + [3]), 20),  # unequal GOPs
        segments_from_group_ids(torch.tensor([2, 0, 2, 1, 0, 1, 1, 2, 0, 0]), 10),  # non-contiguous ids
        segments_from_cu_seqlens(torch.tensor([0, 3, 3, 10, 12]), 12),
    ],
)
@pytest.mark.parametrize("varlen", [False, True])
def test_grouped_attention_equals_block_diagonal_mask(segments, varlen):
    n = segments.num_tokens
    q, k, v = _qkv(n)
    fn = _reference_varlen if varlen else eager_attention_forward
    ours = segment_attention(fn, _Module(), q, k, v, segments, varlen=varlen, scaling=0.5)
    # eager softmax runs in float32 (as released), hence the float32-level tolerance
    torch.testing.assert_close(ours, _dense_reference(q, k, v, segments), rtol=1e-6, atol=1e-6)


def _reference_varlen(module, q, k, v, mask, *, scaling, cu_seq_lens_q, max_length_q, **kwargs):
    """A pure-torch stand-in for flash-attention's varlen kernel: one call, packed (1, H, N, D) inputs."""
    assert q.shape[0] == 1 and mask is None and torch.equal(cu_seq_lens_q, kwargs["cu_seq_lens_k"])
    assert max_length_q == int((cu_seq_lens_q[1:] - cu_seq_lens_q[:-1]).max())
    outs = []
    for s, e in zip(cu_seq_lens_q[:-1].tolist(), cu_seq_lens_q[1:].tolist()):
        o, _ = eager_attention_forward(
            module, q[:, :, s:e], k[:, :, s:e], v[:, :, s:e], None, scaling=scaling
        )
        outs.append(o)
    return torch.cat(outs, dim=1), None


def test_batched_path_calls_attention_once_per_distinct_length():
    calls = []

    def counting(module, q, k, v, mask, **kwargs):
        calls.append(tuple(q.shape))
        return eager_attention_forward(module, q, k, v, mask, **kwargs)

    grid = torch.tensor([(512, 2, 2)])  # 512 one-frame... rows of t=512 -> 128 windows of 4 frames
    segments = segments_from_grid(grid, 4)
    q, k, v = _qkv(segments.num_tokens)
    segment_attention(counting, _Module(), q, k, v, segments, varlen=False, scaling=1.0)
    assert calls == [(128, 2, 16, 8)]


def test_perturbing_one_group_leaves_other_groups_unchanged():
    model = tiny_model(small_config(vision_layers=2), seed=0)
    visual = model.model.visual
    grid = torch.tensor([(1, 2, 2)] * 4)
    pixels = torch.randn(16, 588)
    groups = torch.tensor([0] * 4 + [1] * 8 + [2] * 4)  # GOP ids spanning rows, unequal lengths
    base = visual(pixels, grid, group_ids=groups).last_hidden_state
    perturbed = pixels.clone()
    perturbed[4:12] += torch.randn(8, 588)  # all tokens of group 1
    out = visual(perturbed, grid, group_ids=groups).last_hidden_state
    torch.testing.assert_close(out[:4], base[:4], rtol=0, atol=0)
    torch.testing.assert_close(out[12:], base[12:], rtol=0, atol=0)
    assert not torch.allclose(out[4:12], base[4:12])
    # with the release rule (one segment per row) group 1 spans two rows, which do not see each other
    rows = visual(perturbed, grid).last_hidden_state
    assert not torch.allclose(rows[4:12], out[4:12])


def test_group_ids_and_equivalent_cu_seqlens_agree():
    model = tiny_model(small_config(), seed=0)
    visual = model.model.visual
    grid = torch.tensor([(3, 2, 2)])
    pixels = torch.randn(12, 588)
    by_ids = visual(pixels, grid, group_ids=torch.tensor([0] * 8 + [1] * 4)).last_hidden_state
    by_cu = visual(pixels, grid, cu_seqlens=torch.tensor([0, 8, 12])).last_hidden_state
    torch.testing.assert_close(by_ids, by_cu, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"group_ids": torch.zeros(5, dtype=torch.long)},
            r"vision_group_ids must be an integer tensor of shape \[12\]",
        ),
        ({"cu_seqlens": torch.tensor([0, 5, 11])}, "vision_cu_seqlens must be a 1-D non-decreasing"),
        ({"group_ids": torch.zeros(12, dtype=torch.long), "cu_seqlens": torch.tensor([0, 12])}, "either"),
    ],
)
def test_grouping_input_errors(kwargs, match):
    visual = tiny_model(small_config(), seed=0).model.visual
    with pytest.raises(ValueError, match=match):
        visual(torch.randn(12, 588), torch.tensor([(3, 2, 2)]), **kwargs)
