"""The per-vector form of the motion field and of its statistics (``MotionField``, weighted order
statistics), and the one-ranking block selection: each equals the per-pixel / per-call rule exactly."""

from __future__ import annotations

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from transformers_llava_ov2.codec.config import CodecConfig
from transformers_llava_ov2.codec.motion import (
    MotionField,
    densify_motion_vectors,
    mc_residual,
    sample_motion,
    warp_bilinear,
)
from transformers_llava_ov2.codec.saliency import (
    motion_magnitude,
    percentile,
    saliency_and_activity,
    weighted_median,
    weighted_order_stats,
    weighted_percentile,
)
from transformers_llava_ov2.codec.selection import rank_blocks, select_blocks


def _decoded_vectors(clip_path, limit=12):
    """``(mvs, height, width)`` of the first frames that export motion vectors."""
    out = []
    with av.open(str(clip_path)) as c:
        stream = c.streams.video[0]
        stream.codec_context.options = {"flags2": "+export_mvs"}
        for frame in c.decode(stream):
            sd = frame.side_data.get("MOTION_VECTORS")
            if sd is not None and len(sd):
                out.append((sd.to_ndarray(), frame.height, frame.width))
            if len(out) >= limit:
                break
    assert out
    return out


# ------------------------------------------------------------------------------ weighted order statistics
@pytest.mark.parametrize("seed", range(6))
def test_weighted_statistics_equal_the_repeated_multiset(seed):
    rng = np.random.default_rng(seed)
    m = int(rng.integers(1, 40))
    values = rng.choice(rng.normal(size=8).astype(np.float32), size=m)  # ties on purpose
    counts = rng.integers(0, 6, size=m)
    counts[int(rng.integers(m))] += 1  # at least one element
    full = np.repeat(values, counts)
    ranks = np.arange(full.size)
    np.testing.assert_array_equal(weighted_order_stats(values, counts, ranks), np.sort(full))
    for q in (0.0, 5.0, 50.0, 95.0, 100.0):
        assert weighted_percentile(values, counts, q) == percentile(full, q)
    med = weighted_median(values, counts)
    assert med == np.median(full) and med.dtype == np.float32  # even and odd sizes over the seeds
    order = np.argsort(values)
    assert weighted_percentile(values[order], counts[order], 95.0, presorted=True) == percentile(full, 95.0)


def test_weighted_percentile_of_nothing_is_zero():
    assert weighted_percentile(np.ones(3, np.float32), np.zeros(3, np.int64), 95.0) == 0.0


# ----------------------------------------------------------------------------------------- MotionField
def _reference_field(mvs, height, width, out_hw):
    """The 4x4-cell grid (itself tested against the reader's loop) sampled at the output pixel centres."""
    oh, ow = out_hw
    grid, mask = densify_motion_vectors(mvs, height, width)
    ys = np.minimum(((np.arange(oh) + 0.5) * height / oh // 4).astype(np.int64), grid.shape[1] - 1)
    xs = np.minimum(((np.arange(ow) + 0.5) * width / ow // 4).astype(np.int64), grid.shape[2] - 1)
    flow = grid[:, ys][:, :, xs].astype(np.float32)
    flow[0::2] *= ow / width
    flow[1::2] *= oh / height
    return flow, mask[:, ys][:, :, xs], bool(mask[1].any())


def test_sample_motion_is_the_sampled_cell_grid(h264_b_clip, mpeg4_clip):
    for clip in (h264_b_clip, mpeg4_clip):
        for mvs, height, width in _decoded_vectors(clip.path):
            for out_hw in ((height // 2, width // 2), (height // 3, width // 5)):
                field = sample_motion(mvs, height, width, out_hw)
                flow, covered, has_l1 = _reference_field(mvs, height, width, out_hw)
                np.testing.assert_array_equal(field.flow(), flow)
                assert field.has_l1 == has_l1
                if has_l1:
                    np.testing.assert_array_equal(field.weights(), covered.astype(np.float32))
                # the pixel counts are the owner map's histogram, per list
                for lst in (0, 1):
                    np.testing.assert_array_equal(
                        field.pixels[lst], np.bincount(field.owner[lst], minlength=len(field.vx))
                    )
                assert field.vx[field.none] == 0 and field.vy[field.none] == 0


def test_from_flow_round_trip():
    rng = np.random.default_rng(1)
    flow = rng.normal(size=(4, 6, 7)).astype(np.float32)
    dense = MotionField.from_flow(flow)
    np.testing.assert_array_equal(dense.flow(), flow)
    assert dense.weights() is None and not dense.has_l1
    weights = np.ones((2, 6, 7), np.float32)
    weights[1, :3] = 0
    covered = MotionField.from_flow(flow, weights)
    np.testing.assert_array_equal(covered.weights(), weights)
    expect = flow.copy()
    expect[2:4, :3] = 0  # uncovered: "no vector"
    np.testing.assert_array_equal(covered.flow(), expect)


def _reference_residual(cur, past, fut, flow, weights):
    """``clip(rint(cur - pred) + 128)`` spelled out pixel by pixel (float32 scalars): the source position
    ``(x + vx, y + vy)`` split into floor and fraction, neighbour indices clamped to the frame (border
    padding), ``top = a + (b - a) fx``, ``bottom = c + (d - c) fx``, ``top + (bottom - top) fy``; where
    both lists cover the pixel the mean of the two predictions, one list that list's, none the past."""
    h, w = cur.shape
    f32 = np.float32

    def sample(ref, x, y, vx, vy):
        fx0, fy0 = np.floor(vx), np.floor(vy)
        ix, iy, fx, fy = int(fx0), int(fy0), f32(vx - fx0), f32(vy - fy0)
        x0, x1 = min(max(x + ix, 0), w - 1), min(max(x + ix + 1, 0), w - 1)
        y0, y1 = min(max(y + iy, 0), h - 1), min(max(y + iy + 1, 0), h - 1)
        a, b, c, d = (f32(ref[yy, xx]) for yy, xx in ((y0, x0), (y0, x1), (y1, x0), (y1, x1)))
        top = f32(a + f32(f32(b - a) * fx))
        bottom = f32(c + f32(f32(d - c) * fx))
        return f32(top + f32(f32(bottom - top) * fy))

    out = np.empty((h, w), np.uint8)
    for y in range(h):
        for x in range(w):
            if past is not None and fut is not None and weights is not None:
                p0 = sample(past, x, y, flow[0, y, x], flow[1, y, x])
                p1 = sample(fut, x, y, flow[2, y, x], flow[3, y, x])
                c0, c1 = weights[0, y, x] > 0, weights[1, y, x] > 0
                pred = f32(f32(p0 + p1) / f32(2)) if c0 and c1 else p1 if c1 else p0
            elif past is not None:
                pred = sample(past, x, y, flow[0, y, x], flow[1, y, x])
            else:
                pred = sample(fut, x, y, flow[2, y, x], flow[3, y, x])
            out[y, x] = int(min(max(np.rint(f32(f32(cur[y, x]) - pred)) + f32(128), f32(0)), f32(255)))
    return out


@pytest.mark.parametrize("kernels", ["numpy", "numba"])
def test_mc_residual_equals_the_spelled_out_rule(h264_b_clip, kernels):
    rng = np.random.default_rng(2)
    seen_l1 = checked = 0
    for mvs, height, width in _decoded_vectors(h264_b_clip.path, limit=30):
        out_hw = (height // 4, width // 4)
        field = sample_motion(mvs, height, width, out_hw)
        if checked >= 3 and not field.has_l1:
            continue  # the pure-Python rule is slow: a few L0-only frames and every bi-predicted one
        flow, weights = field.flow(), field.weights()
        cur, past, fut = (rng.integers(0, 256, size=out_hw).astype(np.uint8) for _ in range(3))
        for refs in ((past, fut), (past, None), (None, fut)):
            expect = _reference_residual(cur, *refs, flow, weights)
            got = mc_residual(cur, *refs, field, kernels=kernels)
            np.testing.assert_array_equal(got, expect, err_msg=str(refs))
            dense_w = None if weights is None else torch.from_numpy(weights)
            dense = mc_residual(cur, *refs, torch.from_numpy(flow), dense_w, kernels=kernels)
            np.testing.assert_array_equal(dense, expect)
        seen_l1 += field.has_l1
        checked += 1
    assert seen_l1  # B-frames: the bi-predicted branch was compared too


def test_exact_warp_is_grid_sample_without_its_coordinate_rounding(h264_b_clip):
    """The prediction equals torch's bilinear ``grid_sample`` (border padding, ``align_corners=False``)
    up to the float32 rounding of its normalised coordinates (< 0.05 grey levels)."""
    rng = np.random.default_rng(3)
    for mvs, height, width in _decoded_vectors(h264_b_clip.path, limit=6):
        out_hw = (height // 2, width // 2)
        h, w = out_hw
        field = sample_motion(mvs, height, width, out_hw)
        ref = rng.integers(0, 256, size=out_hw).astype(np.uint8)
        flow = field.flow()
        ys = (np.arange(h, dtype=np.float32) + 0.5) * np.float32(2.0 / h) - 1
        xs = (np.arange(w, dtype=np.float32) + 0.5) * np.float32(2.0 / w) - 1
        grid = np.stack(
            [xs[None, :] + flow[0] * np.float32(2.0 / w), ys[:, None] + flow[1] * np.float32(2.0 / h)], -1
        )
        src = torch.from_numpy(ref)[None, None].float()
        gs = F.grid_sample(src, torch.from_numpy(grid)[None], "bilinear", "border", align_corners=False)
        exact = warp_bilinear(ref, field, 0)
        assert np.abs(exact - gs[0, 0].numpy()).max() < 0.05


def test_dense_fields_are_validated():
    with pytest.raises(ValueError, match=r"\[4, h, w\]"):
        MotionField.from_flow(np.zeros((2, 3, 3), np.float32))
    with pytest.raises(ValueError, match="0/1 coverage"):
        MotionField.from_flow(np.zeros((4, 3, 3), np.float32), np.full((2, 3, 3), 0.5, np.float32))


def test_bi_prediction_rule_per_coverage():
    """Covered by both lists: the mean; by one: that list; by neither: the past at zero motion."""
    cur = np.zeros((2, 2), np.uint8)
    past = np.full((2, 2), 100, np.uint8)
    fut = np.full((2, 2), 50, np.uint8)
    weights = torch.tensor([[[1.0, 1.0], [0.0, 0.0]], [[1.0, 0.0], [1.0, 0.0]]])
    res = mc_residual(cur, past, fut, torch.zeros(4, 2, 2), weights).astype(int) - 128
    assert res.tolist() == [[-75, -100], [-50, -100]]


# ------------------------------------------------------------------------------- saliency on the tables
@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"mv_compensate": "none", "mv_norm_floor": 0.0},
        {"mv_compensate": "affine"},
        {"mv_direction": "both"},
        {"mv_compensate": "median", "mv_direction": "both", "w_mv": 0.0},
    ],
)
def test_saliency_of_the_vector_table_equals_the_pixel_rule(h264_b_clip, overrides):
    cfg = CodecConfig().replace(**overrides)
    rng = np.random.default_rng(3)
    for mvs, height, width in _decoded_vectors(h264_b_clip.path, limit=20):
        field = sample_motion(mvs, height, width, (height // 2, width // 2))
        flow = field.flow()
        res = np.clip(rng.normal(128, 6, size=field.hw), 0, 255).astype(np.uint8)
        table, act_t = saliency_and_activity(field, res, cfg, has_motion=True)
        dense, act_d = saliency_and_activity(flow, res, cfg, has_motion=True)
        np.testing.assert_array_equal(table, dense)
        assert act_t == pytest.approx(act_d, rel=1e-12, abs=1e-15)
        # against numpy's own median / percentile over the pixels (l0, median compensation)
        if overrides == {}:
            v = flow[0:2] / np.float32(cfg.mv_unit_div)
            v = v - np.median(v.reshape(2, -1), axis=1).astype(np.float32)[:, None, None]
            mag = np.sqrt(v[0] * v[0] + v[1] * v[1])
            np.testing.assert_array_equal(motion_magnitude(field, compensate="median"), mag)
            floor = cfg.mv_norm_floor / (cfg.analysis_downsample * cfg.mv_unit_div)
            scale = np.float32(max(float(np.percentile(mag, cfg.mv_percentile)), 1e-6, floor))
            m = np.clip(mag / scale, 0, 1)
            x = np.abs(res.astype(np.float32) - 128)
            r = np.clip(x / np.float32(max(float(np.percentile(x, 95.0)), cfg.res_norm_floor)), 0, 1)
            expect = np.clip((cfg.w_mv * m + cfg.w_res * r) / (cfg.w_mv + cfg.w_res), 0, 1)
            np.testing.assert_allclose(table, expect, rtol=0, atol=2e-7)


def test_saliency_rejects_a_float_residual():
    with pytest.raises(TypeError, match="uint8"):
        saliency_and_activity(None, np.zeros((4, 4), np.float32), CodecConfig(), has_motion=False)


# ---------------------------------------------------------------------------------- one ranking, any m
def _reference_selection(scores, m, per_canvas, prior):
    """Steps 1-4 of ``selection.py`` spelled out per call: a fresh ranking and a taken-set."""
    f, nb = scores.shape
    ranks = np.argsort(np.argsort(-scores, axis=1, kind="stable"), axis=1)
    att = scores / np.sqrt(1.0 + 0.35 * ranks)
    mass = np.maximum(1e-6, att.sum(axis=1) + 0.35 * att.max(axis=1))
    cdf = np.cumsum(mass) / mass.sum()
    pri = np.zeros(nb) if prior is None else prior
    items = sorted((-att[j, b], -pri[b], j, b) for j in range(f) for b in range(nb))
    taken, picks = set(), []
    for k in range(m):
        lo, mid, hi = (
            int(min(max(np.searchsorted(cdf, x, side="left"), 0), f - 1))
            for x in (k / m, (k + 0.5) / m, (k + 1) / m - 1e-12)
        )
        mid = max(lo, min(mid, hi))
        width = max(1, hi - lo)
        need = per_canvas
        for a, b in ((lo, hi + 1), (max(0, mid - width), min(f, mid + width + 1)), (0, f)):
            for _, _, j, blk in items:
                if need and a <= j < b and (j, blk) not in taken:
                    taken.add((j, blk))
                    picks.append((j, blk, k, att[j, blk]))
                    need -= 1
    return picks


def test_one_ranking_serves_every_stratum_count():
    rng = np.random.default_rng(4)
    scores = rng.integers(0, 4, size=(9, 12)).astype(np.float64)  # many ties
    scores[3] = 0.0  # a still frame
    for prior in (None, scores.mean(axis=0)):
        ranked = rank_blocks(scores, prior=prior)
        for m in range(1, 6):
            sel = ranked.select(m, 7)
            got = list(
                zip(sel.frame_pos.tolist(), sel.block.tolist(), sel.stratum.tolist(), sel.score.tolist())
            )
            assert got == _reference_selection(scores, m, 7, prior), (m, prior is None)
    assert len(select_blocks(scores, 0, 7)) == 0 and len(select_blocks(scores, 3, 0)) == 0
