"""The compiled kernels (``CodecConfig.kernels="numba"``) compute exactly what the numpy rules compute:
every kernel against its numpy function on decoded and adversarial inputs, and whole tokenizations."""

from __future__ import annotations

import av
import numpy as np
import pytest

from transformers_llava_ov2.codec import kernels
from transformers_llava_ov2.codec.config import CodecConfig
from transformers_llava_ov2.codec.motion import MotionField, mc_residual, sample_motion, thumbnail_rgb
from transformers_llava_ov2.codec.pipeline import tokenize_video
from transformers_llava_ov2.codec.saliency import (
    _magnitude,
    _residual_hist,
    _residual_scale,
    frame_block_scores,
    frame_quality,
    letterbox_mask,
    weighted_order_stats,
)
from transformers_llava_ov2.codec.selection import rank_blocks
from transformers_llava_ov2.codec.signals import block_mean_u8

from .test_motion_tables import _decoded_vectors
from .test_signals import MV_DTYPE

numba = pytest.importorskip("numba")


def _adversarial_vectors(rng, n, height, width):
    """Unaligned, empty, overlapping, off-frame and negative partitions, both lists."""
    mvs = np.zeros(n, dtype=MV_DTYPE)
    mvs["source"] = rng.choice([-1, -2, 1], size=n)
    mvs["w"] = rng.choice([0, 4, 8, 12, 16, 24], size=n)
    mvs["h"] = rng.choice([0, 4, 8, 16], size=n)
    mvs["dst_x"] = rng.integers(-40, width + 40, size=n)
    mvs["dst_y"] = rng.integers(-40, height + 40, size=n)
    mvs["src_x"] = mvs["dst_x"] + rng.integers(-60, 60, size=n)
    mvs["src_y"] = mvs["dst_y"] + rng.integers(-60, 60, size=n)
    return mvs


def _same_field(a: MotionField, b: MotionField) -> None:
    for name in ("vx", "vy", "owner", "pixels"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.hw == b.hw and a.has_l1 == b.has_l1


def _fields(clip_path, out_div=2):
    return [
        sample_motion(mvs, h, w, (h // out_div, w // out_div), kernels="numpy")
        for mvs, h, w in _decoded_vectors(clip_path)
    ]


# ---------------------------------------------------------------------------------------------- choice
def test_kernel_choice_is_validated_and_resolved(monkeypatch):
    assert kernels.use_numba("numpy") is False
    assert kernels.use_numba("auto") is True and kernels.use_numba("numba") is True
    with pytest.raises(ValueError, match="kernels must be one of"):
        kernels.use_numba("gpu")
    with pytest.raises(ValueError, match=r"CodecConfig\.kernels"):
        CodecConfig(kernels="gpu")
    monkeypatch.setattr(kernels, "numba_available", lambda: False)
    assert kernels.use_numba("auto") is False
    with pytest.raises(ImportError, match=r"\[fast\]"):
        kernels.use_numba("numba")


# ---------------------------------------------------------------------------------------------- motion
def test_motion_field_kernel_equals_numpy_on_decoded_vectors(h264_b_clip, mv_clip):
    for clip in (h264_b_clip, mv_clip):
        for mvs, h, w in _decoded_vectors(clip.path):
            for out_hw in ((h // 2, w // 2), (h, w), (h // 7, w // 3)):
                a = sample_motion(mvs, h, w, out_hw, kernels="numpy")
                _same_field(a, sample_motion(mvs, h, w, out_hw, kernels="numba"))


@pytest.mark.parametrize("seed", range(8))
def test_motion_field_kernel_equals_numpy_on_adversarial_vectors(seed):
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(20, 90)), int(rng.integers(20, 90))
    mvs = _adversarial_vectors(rng, int(rng.integers(1, 200)), h, w)
    if seed % 2:  # aligned 16x16 partitions: the coarse-grid path
        mvs["w"] = mvs["h"] = 16
        mvs["dst_x"] = mvs["dst_x"] // 16 * 16 + 8
        mvs["dst_y"] = mvs["dst_y"] // 16 * 16 + 8
    for out_hw in ((h // 2, w // 2), (max(1, h // 5), max(1, w // 3))):
        _same_field(
            sample_motion(mvs, h, w, out_hw, kernels="numpy"),
            sample_motion(mvs, h, w, out_hw, kernels="numba"),
        )


def _same_residual_with_both_kernels(field: MotionField, rng: np.random.Generator) -> None:
    """numpy and numba residuals of ``field`` over random lumas agree in every prediction mode."""
    h, w = field.hw
    cur, past, fut = (rng.integers(0, 256, size=(h, w), dtype=np.uint8) for _ in range(3))
    for refs in ((past, fut), (past, None), (None, fut)):
        a = mc_residual(cur, *refs, field, kernels="numpy")
        np.testing.assert_array_equal(a, mc_residual(cur, *refs, field, kernels="numba"))


def test_residual_kernel_equals_numpy_in_every_prediction_mode(h264_b_clip):
    rng = np.random.default_rng(0)
    fields = _fields(h264_b_clip.path)
    h, w = fields[0].hw
    big = MotionField.from_flow(rng.normal(scale=30, size=(4, h, w)).astype(np.float32))  # borders
    covered = MotionField.from_flow(
        rng.normal(scale=3, size=(4, h, w)).astype(np.float32), rng.integers(0, 2, size=(2, h, w))
    )
    assert any(f.has_l1 for f in fields)
    for field in [*fields, big, covered]:
        _same_residual_with_both_kernels(field, rng)


@pytest.mark.parametrize("seed", range(6))
def test_residual_kernel_equals_numpy_on_block_runs_of_whole_and_fractional_vectors(seed):
    """Runs of pixels sharing a vector (the kernel's run path): zero, whole-pixel and fractional vectors,
    runs reaching over every border, L1 coverage with holes."""
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(9, 70)), int(rng.integers(9, 90))
    m = 40
    whole = rng.integers(-25, 26, size=(2, m)).astype(np.float32)
    frac = (whole + rng.choice([0.0, 0.25, 0.5, -0.75, 0.125], size=(2, m))).astype(np.float32)
    kind = rng.integers(0, 3, size=m)  # zero / whole / fractional
    vx, vy = (  # the last entry is "no vector"
        np.append(np.where(kind == 0, 0, np.where(kind == 1, whole[i], frac[i])), 0).astype(np.float32)
        for i in (0, 1)
    )
    by, bx = int(rng.integers(1, 8)), int(rng.integers(1, 12))  # block grid: horizontal runs up to bx
    grid = rng.integers(0, m, size=(2, -(-h // by), -(-w // bx)))
    owner = np.stack([np.kron(g, np.ones((by, bx), np.int64))[:h, :w].reshape(-1) for g in grid])
    owner[1][rng.random(h * w) < 0.2] = m  # L1 holes ("no vector")
    owner[0][rng.random(h * w) < 0.1] = m
    pixels = np.stack([np.bincount(o, minlength=m + 1) for o in owner])
    field = MotionField(vx, vy, owner, pixels, (h, w), True)
    _same_residual_with_both_kernels(field, rng)


@pytest.mark.parametrize("seed", range(4))
def test_block_mean_kernel_equals_numpy_on_padded_planes(seed):
    """The 2x2 analysis luma: strided views of padded planes (as ``plane_u8`` gives), ties at .5, extremes."""
    rng = np.random.default_rng(seed)
    h, w = 2 * int(rng.integers(1, 60)), 2 * int(rng.integers(1, 90))
    padded = rng.integers(0, 256, size=(h, w + int(rng.integers(0, 40))), dtype=np.uint8)
    if seed == 1:
        padded[:] = rng.choice([0, 1, 254, 255], size=padded.shape)
    plane = padded[:, :w]
    a = block_mean_u8(plane, 2, kernels="numpy")
    assert a.shape == (h // 2, w // 2)
    np.testing.assert_array_equal(a, block_mean_u8(plane, 2, kernels="numba"))
    # the converter's form: the padded rows themselves (contiguous, the fast path) and the width
    np.testing.assert_array_equal(a, block_mean_u8(padded, 2, kernels="numba", width=w))
    np.testing.assert_array_equal(a, block_mean_u8(padded, 2, kernels="numpy", width=w))


def test_block_mean_kernel_takes_only_contiguous_rows():
    padded = np.zeros((4, 10), dtype=np.uint8)
    with pytest.raises(ValueError, match="C-contiguous"):
        kernels.block_mean2(padded[:, :6], 6)
    with pytest.raises(ValueError, match="C-contiguous"):
        kernels.block_mean2(padded, 12)


# ---------------------------------------------------------------------------------------------- statistics
@pytest.mark.parametrize("seed", range(10))
def test_order_statistics_kernel_equals_numpy(seed):
    rng = np.random.default_rng(seed)
    m = int(rng.integers(1, 3000))
    values = rng.choice(rng.normal(size=int(rng.integers(1, 50))).astype(np.float32), size=m)  # ties
    counts = rng.integers(0, 40, size=m)
    counts[int(rng.integers(m))] += 1
    n = int(counts.sum())
    ranks = np.unique(np.concatenate([[0, n - 1, (n - 1) // 2, n // 2], rng.integers(0, n, size=20)]))
    np.testing.assert_array_equal(
        weighted_order_stats(values, counts, ranks, kernels="numba"),
        weighted_order_stats(values, counts, ranks, kernels="numpy"),
    )


@pytest.mark.parametrize("compensate", ["none", "median"])
def test_magnitude_table_kernel_equals_numpy(h264_b_clip, compensate):
    for field in _fields(h264_b_clip.path):
        for pct in (95.0, 50.0, 100.0, 0.5):
            ref = _magnitude(field, 4.0, compensate, "l0")
            table, p = kernels.magnitude_table(
                field.vx, field.vy, field.pixels[0], 4.0, compensate == "median", pct
            )
            np.testing.assert_array_equal(table, ref.lists[0][0])
            assert p == ref.percentile(pct)


@pytest.mark.parametrize("case", ["random", "flat", "extremes", "sparse"])
def test_residual_scale_kernel_equals_numpy(case):
    rng = np.random.default_rng(1)
    res = {
        "random": rng.integers(0, 256, size=(37, 53)),
        "flat": np.full((10, 12), 128),
        "extremes": rng.choice([0, 255], size=(9, 31)),
        "sparse": np.where(rng.random((40, 40)) < 0.03, rng.integers(0, 256, (40, 40)), 128),
    }[case].astype(np.uint8)
    for pct, floor in ((95.0, 1.0), (50.0, 0.0), (99.9, 8.0)):
        hist, scale = kernels.residual_scale(res, pct, floor)
        np.testing.assert_array_equal(hist, _residual_hist(res))
        assert scale == _residual_scale(_residual_hist(res), pct, floor)


# ---------------------------------------------------------------------------------------------- saliency
_CONFIGS = [
    {},
    {"mv_compensate": "none"},
    {"mv_direction": "both"},
    {"mv_compensate": "affine"},
    {"w_mv": 0.0},
    {"w_res": 0.0},
    {"mv_norm_floor": 4.0, "res_norm_floor": 8.0},
    {"analysis_downsample": 1},
]


@pytest.mark.parametrize(
    "overrides", _CONFIGS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default"
)
def test_block_scores_kernel_equals_numpy(h264_b_clip, overrides):
    rng = np.random.default_rng(4)
    cfg = CodecConfig(**overrides)
    ds = cfg.analysis_downsample
    for field in _fields(h264_b_clip.path, out_div=ds)[:8]:
        h, w = field.hw
        h, w = h // 28 * 28, w // 28 * 28  # whole merge blocks at ds = 1 and 2
        field = MotionField.from_flow(field.flow()[:, :h, :w], field.covered()[:, :h, :w])
        residual = np.clip(rng.normal(128, 20, size=(h, w)), 0, 255).astype(np.uint8)
        luma = rng.integers(0, 256, size=(h, w), dtype=np.uint8)
        luma[:, :14] = 0  # a letterbox bar
        for flow, has_motion in ((field, True), (None, True), (None, False)):
            for mask in (None, letterbox_mask(luma)):
                a_cfg, b_cfg = (CodecConfig(**overrides, kernels=k) for k in ("numpy", "numba"))
                a = frame_block_scores(flow, residual, a_cfg, has_motion=has_motion, mask=mask)
                b = frame_block_scores(flow, residual, b_cfg, has_motion=has_motion, mask=mask)
                np.testing.assert_array_equal(a[0], b[0])
                assert a[1] == b[1]
    assert cfg.kernels == "auto"


@pytest.mark.parametrize("fmt", ["yuv420p", "yuvj420p", "yuv422p", "yuv444p", "yuvj444p", "nv12", "gray"])
def test_thumbnail_and_quality_kernels_equal_numpy(fmt):
    rng = np.random.default_rng(5)
    rgb = rng.integers(0, 256, size=(72, 130, 3), dtype=np.uint8)
    rgb[:, :40] = (10, 240, 10)  # saturated green: the corrupt-frame count is not trivially 0
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=fmt)
    from av.video.reformatter import VideoReformatter

    a = thumbnail_rgb(frame, 64, 36, VideoReformatter(), kernels="numpy")
    b = thumbnail_rgb(frame, 64, 36, VideoReformatter(), kernels="numba")
    np.testing.assert_array_equal(a, b)
    luma = rng.integers(0, 256, size=(36, 64), dtype=np.uint8)
    for luma_in in (luma, np.zeros_like(luma), luma[::2, ::3]):
        qa = frame_quality(luma_in, a, CodecConfig(kernels="numpy"))
        qb = frame_quality(luma_in, a, CodecConfig(kernels="numba"))
        assert qa == qb
    assert fmt == "gray" or 0 < qa.green_fraction < 1


def test_quality_statistics_are_the_exact_mean_and_std():
    rng = np.random.default_rng(6)
    luma = rng.integers(0, 256, size=(57, 91), dtype=np.uint8)
    thumb = np.zeros((4, 4, 3), np.uint8)
    for k in ("numpy", "numba"):
        q = frame_quality(luma, thumb, CodecConfig(kernels=k))
        assert q.luma_mean == pytest.approx(float(luma.mean()), rel=1e-15)
        assert q.luma_std == pytest.approx(float(luma.astype(np.float64).std()), rel=1e-12)


# ---------------------------------------------------------------------------------------------- end to end
@pytest.mark.parametrize(
    "overrides", [{}, {"mv_direction": "both", "mv_compensate": "none"}, {"mv_compensate": "affine"}]
)
def test_tokens_do_not_depend_on_the_kernels(h264_b_clip, mv_clip, overrides):
    for clip in (h264_b_clip, mv_clip):
        a = tokenize_video(clip.path, kernels="numpy", **overrides)
        b = tokenize_video(clip.path, kernels="numba", **overrides)
        np.testing.assert_array_equal(a.canvases, b.canvases)
        np.testing.assert_array_equal(a.source_positions, b.source_positions)
        np.testing.assert_array_equal(a.token_role, b.token_role)
        assert a.timestamp_runs() == b.timestamp_runs()
        assert (a.backend_info.pop("kernels"), b.backend_info.pop("kernels")) == ("numpy", "numba")
        assert a.backend_info == b.backend_info


# ------------------------------------------------------------------------------------------ block selection
def _strata_literal(mass, m):
    """Step 3 as the module docstring states it, one stratum at a time in Python floats."""
    cdf = np.cumsum(mass) / float(mass.sum())
    out = []
    for k in range(m):
        idx = np.searchsorted(cdf, [k / m, (k + 0.5) / m, (k + 1) / m - 1e-12], side="left")
        lo, mid, hi = (int(min(max(i, 0), len(mass) - 1)) for i in idx)
        out.append((lo, max(lo, min(mid, hi)), hi))
    return out


@pytest.mark.parametrize("seed", range(8))
def test_block_picking_kernel_equals_numpy(seed):
    """Step 4 of the selection with either kernel: the same blocks in the same order, for every stratum
    count, with groups too small to fill their strata (fallback windows, whole-group window, short picks),
    still frames (all-zero scores, ties) and the group prior; the strata equal the per-stratum rule."""
    rng = np.random.default_rng(seed)
    f, nb = int(rng.integers(1, 30)), int(rng.integers(1, 40))
    scores = rng.random((f, nb)) ** 4
    scores[rng.random(f) < 0.3] = 0.0
    prior = scores.mean(axis=0) if seed % 2 else None
    ranked = {k: rank_blocks(scores, prior=prior, kernels=k) for k in ("numpy", "numba")}
    for m in range(1, 10):
        b = int(rng.integers(1, 2 * nb))
        a, n = (ranked[k].select(m, b) for k in ("numpy", "numba"))
        for field in ("frame_pos", "block", "score", "stratum"):
            np.testing.assert_array_equal(getattr(a, field), getattr(n, field))
        assert list(a.strata_ranges) == _strata_literal(ranked["numpy"].mass, m)
        assert len(a) == min(m * b, f * nb) and len(set(zip(a.frame_pos, a.block))) == len(a)
