"""Stage 4/5 units: saliency normalisation, block scores, stratified selection, geometry and budget."""

from __future__ import annotations

import numpy as np
import pytest

from transformers_llava_ov2.codec.canvas import (
    choose_layout,
    gather_blocks,
    gather_tiles,
    pack_p_canvas,
    smart_resize,
    tile_blocks,
)
from transformers_llava_ov2.codec.config import CodecConfig
from transformers_llava_ov2.codec.saliency import (
    block_scores,
    letterbox_mask,
    motion_saliency,
    percentile,
    residual_saliency,
    saliency_and_activity,
)
from transformers_llava_ov2.codec.selection import attenuate, frame_mass, select_blocks, strata


def test_percentile_matches_numpy():
    x = np.random.default_rng(1).random((37, 53)).astype(np.float32)
    for q in (50, 95, 99.5):
        assert percentile(x, q) == pytest.approx(float(np.percentile(x, q)), rel=1e-6)


def test_official_normalisations():
    res = np.full((20, 20), 128, dtype=np.uint8)
    res[:2, :2] = 200  # 1 % of pixels: P95 of |r - 128| is 0 -> divided by max(P95, 1) = 1 -> clipped at 1
    r = residual_saliency(res)
    assert r[0, 0] == 1.0 and r[10, 10] == 0.0
    flow = np.zeros((4, 20, 20), dtype=np.float32)
    flow[0, 5:7, 5:7] = 8.0  # tiny moving patch, P95 = 0 -> max(P95, 1e-6) saturates it
    m = motion_saliency(flow)
    assert m[5, 5] == 1.0 and m.sum() == 4.0
    flow[0] += 4.0  # camera pan: median compensation removes it
    comp = motion_saliency(flow, compensate="median")
    assert comp[0, 0] == 0.0 and comp[5, 5] == 1.0


def test_motion_normalisation_floor_keeps_weak_motion_weak():
    """Sub-floor motion (e.g. shake left after compensation) is not stretched to full saliency."""
    flow = np.zeros((4, 20, 20), dtype=np.float32)
    flow[0] = np.random.default_rng(0).uniform(0.0, 0.4, (20, 20)).astype(np.float32)  # noise < 0.5 px
    flow[0, :, :2] = 0.5
    official = motion_saliency(flow)  # P95 of the noise -> the noise's top 5 % become 1
    assert official.max() == 1.0
    floored = motion_saliency(flow, floor=0.5)  # mag = |v| / 4 <= 0.125 -> at most 0.25
    assert floored.max() == pytest.approx(0.25) and floored.min() >= 0.0
    strong = flow.copy()
    strong[0, 5:15, 5:15] = 40.0  # real motion (a quarter of the frame, above the floor): as before
    np.testing.assert_array_equal(motion_saliency(strong, floor=0.5), motion_saliency(strong))


@pytest.mark.parametrize(("ds", "floor_px"), [(1, 2.0), (2, 2.0), (2, 4.0)])
def test_motion_floor_is_in_canvas_pixels(ds, floor_px):
    """``mv_norm_floor`` is canvas pixels: the same physical motion saturates at the same floor at any
    ``analysis_downsample``."""
    analysis_px = 0.5 * floor_px / ds  # a uniform motion of half the floor, in analysis pixels
    flow = np.zeros((4, 16, 16), dtype=np.float32)
    flow[0] = analysis_px
    res = np.full((16, 16), 128, dtype=np.uint8)
    cfg = CodecConfig(mv_norm_floor=floor_px, analysis_downsample=ds, mv_compensate="none", w_res=0.0)
    smap, _ = saliency_and_activity(flow, res, cfg, has_motion=True)
    np.testing.assert_allclose(smap, 0.5, rtol=1e-6)  # half the floor -> half saliency
    official, _ = saliency_and_activity(flow, res, cfg.replace(mv_norm_floor=0.0), has_motion=True)
    np.testing.assert_allclose(official, 1.0)  # the official rule stretches it to 1


def test_block_scores_and_letterbox():
    s = np.zeros((8, 12), dtype=np.float32)
    s[0:4, 4:8] = 1.0
    b = block_scores(s, patch=2, merge=2)  # block = 4x4 pixels
    np.testing.assert_allclose(b, [[0, 16, 0], [0, 0, 0]])
    luma = np.full((20, 30), 100.0)
    luma[:3] = luma[-3:] = 2.0
    mask = letterbox_mask(luma)
    assert mask[:3].sum() == 0 and mask[3:-3].all() and mask[-3:].sum() == 0
    assert letterbox_mask(np.zeros((20, 30))).all()  # a black frame is not a letterbox


def test_attenuation_mass_and_strata():
    scores = np.array([[4.0, 1.0, 9.0], [0.0, 0.0, 0.0]])
    att = attenuate(scores, penalty=0.35)
    np.testing.assert_allclose(att[0], [4 / np.sqrt(1.35), 1 / np.sqrt(1.7), 9.0])
    np.testing.assert_allclose(attenuate(scores, 0.35, "linear")[0], [4 / 1.35, 1 / 1.7, 9.0])
    mass = frame_mass(att, alpha_peak=0.35)
    assert mass[0] == pytest.approx(att[0].sum() + 0.35 * 9.0) and mass[1] == 1e-6
    st = strata(np.ones(9), 3)
    assert st == [(0, 1, 2), (2, 4, 5), (5, 7, 8)]  # adjacent strata share a boundary frame


def test_select_blocks_dedup_strata_and_fallback():
    rng = np.random.default_rng(0)
    scores = rng.random((12, 6))
    scores[7, :] += 10.0  # one very salient frame
    sel = select_blocks(scores, num_strata=3, blocks_per_canvas=6)
    assert len(sel) == 18
    pairs = set(zip(sel.frame_pos.tolist(), sel.block.tolist()))
    assert len(pairs) == 18  # globally distinct (frame, block)
    assert 7 in sel.frame_pos.tolist()
    # fewer distinct blocks than requested: every block once, no padding, no duplicates
    small = select_blocks(scores[:2], num_strata=3, blocks_per_canvas=6)
    assert len(small) == 12 and len(set(zip(small.frame_pos.tolist(), small.block.tolist()))) == 12
    assert len(select_blocks(np.zeros((0, 6)), 3, 6)) == 0


def test_tie_break_prior_orders_only_equal_scores():
    """``prior`` decides among equal attenuated scores (a still frame's zero blocks), nothing else."""
    scores = np.zeros((4, 8))
    scores[0, 5] = 3.0  # one salient block in frame 0; frames 1-3 are still (all zero)
    prior = np.asarray([0.0, 0.0, 0.0, 0.0, 0.1, 0.9, 0.8, 0.0])  # the group's motion sits at blocks 4-6
    official = select_blocks(scores, num_strata=1, blocks_per_canvas=4)
    assert official.frame_pos.tolist() == [0, 0, 0, 0] and official.block.tolist() == [5, 0, 1, 2]
    group = select_blocks(scores, num_strata=1, blocks_per_canvas=4, prior=prior)
    # the still frames give the block where the group's motion is, not their top-left blocks
    assert group.block.tolist() == [5, 5, 5, 5] and group.frame_pos.tolist() == [0, 1, 2, 3]
    distinct = np.random.default_rng(3).random((6, 8))  # no ties: the prior changes nothing
    a = select_blocks(distinct, 2, 5)
    b = select_blocks(distinct, 2, 5, prior=np.arange(8.0))
    assert a.frame_pos.tolist() == b.frame_pos.tolist() and a.block.tolist() == b.block.tolist()


def test_residual_normalisation_floor_keeps_coding_noise_weak():
    noise = np.random.default_rng(1).integers(125, 132, size=(20, 20)).astype(np.uint8)  # |res| <= 3
    assert residual_saliency(noise).max() == 1.0  # official max(P95, 1): the noise is stretched to 1
    floored = residual_saliency(noise, floor=8.0)
    assert floored.max() == pytest.approx(3.0 / 8.0)
    edge = noise.copy()
    edge[:, :5] = 200  # a real change on a quarter of the frame: P95 = 72 > the floor, as before
    np.testing.assert_array_equal(residual_saliency(edge, floor=8.0), residual_saliency(edge))


def test_smart_resize_and_budget_rule():
    assert smart_resize(640, 360, 28, 3136, 150_000) == (504, 280)
    assert smart_resize(720, 1280, 28, 3136, 150_000) == (280, 504)
    assert smart_resize(10, 10, 28, 3136, 150_000) == (56, 56)
    cfg = CodecConfig()
    layout = choose_layout((720, 1280), 8, cfg)
    assert layout.canvas_hw == (280, 504) and layout.num_groups == 8 and layout.p_per_group == 3
    for budget in (1, 7, 64, 500, 2000, 5000, 100_000):
        lay = choose_layout((720, 1280), 8, cfg.replace(max_visual_tokens=budget))
        assert lay.max_tokens <= budget or budget >= layout.max_tokens
        assert lay.canvas_hw[0] % 28 == 0 and lay.canvas_hw[1] % 28 == 0
    assert choose_layout((720, 1280), 8, cfg.replace(max_visual_tokens=5000)).num_groups == 8
    lay = choose_layout((720, 1280), 8, cfg.replace(num_canvases=10))
    assert lay.num_groups == 2 and lay.p_per_group == 3
    lay = choose_layout((720, 1280), 8, cfg.replace(num_canvases=3))
    assert lay.num_groups == 1 and lay.p_per_group == 2


def test_pack_p_canvas_block_raster():
    cfg = CodecConfig(patch_size=2, merge_size=2, min_pixels=16, max_pixels=10_000)
    layout = choose_layout((8, 12), 1, cfg)
    assert layout.canvas_hw == (8, 12) and layout.blocks_hw == (2, 3)
    frames = {t: np.full((8, 12, 3), t, dtype=np.uint8) for t in (3, 5)}
    frames[5][4:8, 8:12] = 99
    ids = np.array([3, 3, 5, 5, 5, 5])
    blocks = np.array([0, 1, 5, 0, 1, 2])
    canvas, pos = pack_p_canvas(frames, ids, blocks, layout)
    assert canvas[0, 0, 0] == 3 and canvas[0, 8, 0] == 99 and canvas[4, 0, 0] == 5
    grid = pos.reshape(4, 6, 3)
    np.testing.assert_array_equal(grid[0:2, 4:6, 0], 5)  # slot 2 holds frame 5's block 5
    np.testing.assert_array_equal(grid[0:2, 4:6, 1], [[2, 2], [3, 3]])
    np.testing.assert_array_equal(grid[0:2, 4:6, 2], [[4, 5], [4, 5]])


def test_gather_tiles_is_the_gathered_blocks_tiled():
    """The one-copy tiling of the content allocation equals gathering the blocks, then tiling them; the
    positions of each canvas equal the block-raster rule of :func:`pack_p_canvas` (patch by patch)."""
    cfg = CodecConfig(patch_size=2, merge_size=2, min_pixels=16, max_pixels=10_000)
    layout = choose_layout((8, 12), 1, cfg)
    rng = np.random.default_rng(0)
    images = {t: rng.integers(0, 256, size=(8, 12, 3), dtype=np.uint8) for t in (3, 5, 9)}
    keys = np.asarray([(t, b) for t in (3, 5, 9) for b in range(6)])
    store = np.concatenate([gather_blocks(images[t], np.arange(6), layout) for t in (3, 5, 9)])
    rows = rng.permutation(len(keys))[:12]  # two canvases of 6 blocks from all three frames
    got = gather_tiles(store, rows, layout)
    np.testing.assert_array_equal(got, tile_blocks(store[rows], layout))
    for k in range(2):
        sel = rows[6 * k : 6 * (k + 1)]
        canvas, pos = pack_p_canvas(images, keys[sel, 0], keys[sel, 1], layout)
        np.testing.assert_array_equal(got[k], canvas)
        grid = pos.reshape(4, 6, 3)
        for slot, (t, b) in enumerate(keys[sel]):
            r, c = divmod(slot, 3)
            br, bc = divmod(int(b), 3)
            np.testing.assert_array_equal(grid[2 * r : 2 * r + 2, 2 * c : 2 * c + 2, 0], t)
            np.testing.assert_array_equal(
                grid[2 * r : 2 * r + 2, 2 * c : 2 * c + 2, 1], [[2 * br] * 2, [2 * br + 1] * 2]
            )
            np.testing.assert_array_equal(
                grid[2 * r : 2 * r + 2, 2 * c : 2 * c + 2, 2], [[2 * bc, 2 * bc + 1]] * 2
            )


@pytest.mark.parametrize(
    "field, value",
    [
        ("patch_size", 0),
        ("energy", "sqrt"),
        ("max_visual_tokens", 0),
        ("min_span_seconds", -1.0),
        ("max_span_seconds", 2.0),
        ("uniform_mix", 1.5),
        ("analysis_downsample", 3),
        ("anchor_mode", "end"),
    ],
)
def test_config_validation_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        CodecConfig(**{field: value})


def test_unknown_override_is_rejected():
    with pytest.raises(ValueError, match="no_such_field"):
        CodecConfig().replace(no_such_field=1)
