"""Stage 3: motion-vector densification, motion field, motion-compensated residual, decode pass."""

from __future__ import annotations

import av
import numpy as np
import pytest
import torch
from av.video.reformatter import VideoReformatter

from tests.codec.conftest import working_copy_signals
from transformers_llava_ov2.codec.motion import plane_u8
from transformers_llava_ov2.codec.probe import probe_video
from transformers_llava_ov2.codec.signals import (
    DecodeReport,
    block_mean_u8,
    densify_motion_vectors,
    iter_frame_signals,
    mc_residual,
    motion_field,
    plan_references,
    scale_to_work,
)

MV_DTYPE = np.dtype(
    [
        ("source", "<i4"),
        ("w", "u1"),
        ("h", "u1"),
        ("src_x", "<i2"),
        ("src_y", "<i2"),
        ("dst_x", "<i2"),
        ("dst_y", "<i2"),
        ("flags", "<u8"),
        ("motion_x", "<i4"),
        ("motion_y", "<i4"),
        ("motion_scale", "<u2"),
    ]
)


def _reference_densify(mvs, height, width):
    """The official reader's loop, transcribed literally (C integer division)."""
    gh, gw = -(-height // 4), -(-width // 4)
    grid = np.zeros((4, gh, gw), dtype=np.int32)
    for v in mvs:
        lst = 1 if v["source"] > 0 else 0
        w, h = int(v["w"]), int(v["h"])
        cx, cy = int(v["dst_x"]) // 4, int(v["dst_y"]) // 4
        for y in range(cy - h // 8, cy + h // 8):
            for x in range(cx - w // 8, cx + w // 8):
                if 0 <= y < gh and 0 <= x < gw:
                    grid[2 * lst, y, x] = int(v["src_x"]) - int(v["dst_x"])
                    grid[2 * lst + 1, y, x] = int(v["src_y"]) - int(v["dst_y"])
    return grid


def _mv(source, w, h, dst_x, dst_y, mx, my, scale=4):
    src_x = dst_x + int(mx / scale)  # C truncation, as FFmpeg exports it
    src_y = dst_y + int(my / scale)
    return (source, w, h, src_x, src_y, dst_x, dst_y, 0, mx, my, scale)


def test_densify_matches_reference_semantics():
    mvs = np.array(
        [
            _mv(-1, 16, 16, 8, 8, -9, 6),  # quarter-pel -9/4 truncates to -2
            _mv(-1, 16, 8, 24, 4, 13, -3),
            _mv(-1, 16, 8, 24, 12, 4, 4),
            _mv(1, 16, 16, 8, 8, 20, -20),  # L1 of the first macroblock
            _mv(-1, 8, 8, 36, 4, -4, 0),
            _mv(-1, 8, 8, 44, 12, 8, 8),
            _mv(-1, 16, 16, 40, 24, 0, 7),  # straddles the right border
            _mv(-1, 8, 8, 36, 4, 16, 16),  # overwrites an earlier vector: last one wins
        ],
        dtype=MV_DTYPE,
    )
    grid, mask = densify_motion_vectors(mvs, 32, 44)
    np.testing.assert_array_equal(grid, _reference_densify(mvs, 32, 44))
    assert grid[0, 0, 0] == -2 and grid[1, 0, 0] == 1
    assert grid[2, 0, 0] == 5 and grid[3, 0, 0] == -5
    assert mask[1, :4, :4].all() and not mask[1, :, 4:].any()
    assert grid[0, 0, 9] == 4  # the later (16, 16) vector at cells (0..1, 8..9)


def test_densify_fast_path_equals_reference_on_real_vectors(h264_b_clip, mpeg4_clip):
    for clip in (h264_b_clip, mpeg4_clip):
        with av.open(str(clip.path)) as c:
            stream = c.streams.video[0]
            stream.codec_context.options = {"flags2": "+export_mvs"}
            checked = 0
            for frame in c.decode(stream):
                sd = frame.side_data.get("MOTION_VECTORS")
                if sd is None:
                    continue
                mvs = sd.to_ndarray()
                grid, _ = densify_motion_vectors(mvs, frame.height, frame.width)
                np.testing.assert_array_equal(grid, _reference_densify(mvs, frame.height, frame.width))
                flow, _ = motion_field(mvs, frame.height, frame.width, (frame.height // 4, frame.width // 4))
                np.testing.assert_allclose(flow[:2].numpy() * 4, grid[:2], atol=1e-5)
                checked += 1
        assert checked >= 10


def test_known_displacement_on_the_moving_object(mv_clip):
    """x264 P-frames with one reference: the object's cells carry src - dst = -velocity."""
    hits = 0
    with av.open(str(mv_clip.path)) as c:
        stream = c.streams.video[0]
        stream.codec_context.options = {"flags2": "+export_mvs"}
        for i, frame in enumerate(c.decode(stream)):
            sd = frame.side_data.get("MOTION_VECTORS")
            if i == 0 or sd is None:
                continue
            grid, _mask = densify_motion_vectors(sd.to_ndarray(), frame.height, frame.width)
            x0, y0, x1, y1 = mv_clip.object_boxes[i]
            cells = grid[:2, (y0 + 8) // 4 : (y1 - 8) // 4, (x0 + 8) // 4 : (x1 - 8) // 4].reshape(2, -1)
            vx, vy = mv_clip.velocities[i]
            frac = np.mean((cells[0] == -vx) & (cells[1] == -vy))
            assert frac >= 0.9, (i, frac)
            # static background far from the object: zero motion
            assert np.all(grid[:2, -4:, :4] == 0)
            hits += 1
    assert hits == mv_clip.num_frames - 1


def test_mc_residual_undoes_a_known_shift():
    rng = np.random.default_rng(0)
    ref = rng.integers(0, 256, size=(40, 48)).astype(np.uint8)
    cur = np.roll(ref, shift=(2, -3), axis=(0, 1))  # cur(y, x) = ref(y - 2, x + 3)
    flow = torch.zeros(4, 40, 48)
    flow[0], flow[1] = 3.0, -2.0  # src - dst
    res = mc_residual(cur, ref, None, flow, None).astype(int) - 128
    assert np.abs(res[4:-4, 4:-4]).max() == 0
    plain = mc_residual(cur, ref, None, None, None).astype(int) - 128
    assert np.abs(plain).mean() > 20
    # bi-prediction: average of both references where both lists cover the cell
    weights = torch.ones(2, 40, 48)
    flow2 = flow.clone()
    flow2[2], flow2[3] = 3.0, -2.0
    res2 = mc_residual(cur, ref, ref, flow2, weights).astype(int) - 128
    assert np.abs(res2[4:-4, 4:-4]).max() == 0
    assert mc_residual(cur, None, None).tolist() == np.full((40, 48), 128).tolist()


def test_references_and_decode_pass(h264_b_clip):
    probe = probe_video(h264_b_clip.path)
    cands = np.arange(0, 50, 3)
    refs = plan_references(probe, cands, use_mvs=True)
    for c, (past, future) in refs.items():
        if c > 0:
            assert past < c and probe.pict_type[past] in (1, 2)
        if probe.pict_type[c] == 3:
            assert future > c and probe.pict_type[future] in (1, 2)
    report = DecodeReport()
    sigs = list(iter_frame_signals(h264_b_clip.path, probe, cands, (32, 48), use_mvs=True, report=report))
    assert [s.index for s in sigs] == cands.tolist()  # display order, every candidate once
    assert report.frames_with_mvs > 0 and not report.errors
    assert report.frames_skipped > 0  # unneeded non-reference B frames are not decoded
    for s in sigs:
        assert s.luma.shape == s.residual.shape == (32, 48) and s.residual.dtype == np.uint8
        assert s.bits == 8 * probe.sizes[s.index]
        assert s.time == pytest.approx(s.index / 25.0)
        if s.pict_type != 1:
            assert s.flow is not None and s.flow.shape == (4, 32, 48)


def _random_mvs(rng, height, width, n, sizes, inside=True, both_lists=True):
    rows = []
    for _ in range(n):
        w, h = sizes[int(rng.integers(len(sizes)))]
        if inside:  # block-aligned partitions inside the frame, like the decoder exports them
            dst_x = int(rng.integers(0, width // w)) * w + w // 2
            dst_y = int(rng.integers(0, height // h)) * h + h // 2
        else:  # anywhere, also across the right/bottom border (dst >= 0: the reference uses floor division)
            dst_x, dst_y = int(rng.integers(0, width + 20)), int(rng.integers(0, height + 20))
        source = int(rng.choice([-1, 1])) if both_lists else -1
        rows.append(_mv(source, w, h, dst_x, dst_y, int(rng.integers(-64, 65)), int(rng.integers(-64, 65))))
    return np.array(rows, dtype=MV_DTYPE)


@pytest.mark.parametrize("seed", range(12))
def test_densify_and_motion_field_match_the_reference_loop(seed):
    rng = np.random.default_rng(seed)
    height, width = 96, 160
    cases = [
        ([(16, 16)], True, False),  # one cell per vector on the 16-px grid
        ([(16, 16)], True, True),  # B-frame: both lists
        ([(16, 16), (16, 8), (8, 16), (8, 8)], True, True),  # mixed partitions on the 8-px grid
        ([(8, 8)], True, False),
        ([(16, 16), (8, 8), (4, 4), (16, 4)], False, True),  # overlaps, borders, dropped 4-px partitions
    ]
    for sizes, inside, both in cases:
        n = int(rng.integers(1, 120))
        mvs = _random_mvs(rng, height, width, n, sizes, inside=inside, both_lists=both)
        grid, mask = densify_motion_vectors(mvs, height, width)
        ref = _reference_densify(mvs, height, width)
        np.testing.assert_array_equal(grid, ref)
        # motion_field = the 4x4 grid sampled at the output pixel centres, scaled to output pixels
        oh, ow = 40, 72
        flow, weights = motion_field(mvs, height, width, (oh, ow))
        ys = np.minimum(((np.arange(oh) + 0.5) * height / oh // 4).astype(np.int64), grid.shape[1] - 1)
        xs = np.minimum(((np.arange(ow) + 0.5) * width / ow // 4).astype(np.int64), grid.shape[2] - 1)
        expect = ref[:, ys][:, :, xs].astype(np.float32)
        expect[0::2] *= ow / width
        expect[1::2] *= oh / height
        if weights is None:
            assert not mask[1].any()
            expect[2:] = 0
        else:
            np.testing.assert_array_equal(weights.numpy(), mask[:, ys][:, :, xs].astype(np.float32))
        np.testing.assert_array_equal(flow.numpy(), expect)


@pytest.mark.parametrize("ds", [1, 2, 7, 14, 16, 32])
def test_block_mean_u8_is_the_rounded_block_mean(ds):
    rng = np.random.default_rng(ds)
    plane = rng.integers(0, 256, size=(ds * 6, ds * 9), dtype=np.uint8)
    plane[:ds, :ds] = 255  # the largest sums must not overflow
    want = (plane.reshape(6, ds, 9, ds).astype(np.int64).sum(axis=(1, 3)) + ds * ds // 2) // (ds * ds)
    got = block_mean_u8(plane, ds)
    assert got.dtype == np.uint8 and np.array_equal(got, want)


@pytest.mark.parametrize(
    ("pix_fmt", "work_fmt"),
    [
        ("yuv420p", "yuv420p"),
        ("yuvj420p", "yuv420p"),
        ("nv12", "yuv420p"),
        ("yuv420p10le", "yuv420p"),
        ("yuv422p", "yuv444p"),
        ("yuv444p", "yuv444p"),
        ("rgb24", "yuv444p"),
        ("gray", "yuv444p"),
    ],
)
def test_scale_to_work_keeps_chroma_and_gives_full_range_luma(pix_fmt, work_fmt):
    rgb = np.zeros((64, 96, 3), dtype=np.uint8)
    rgb[:, 48:] = 255  # black left half, white right half
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=pix_fmt)
    small = scale_to_work(VideoReformatter(), frame, (32, 48))
    assert (small.height, small.width, small.format.name) == (32, 48, work_fmt)
    y = plane_u8(small, 0)[:, :48]
    # limited-range black (16) and white (235) come out as full-range 0 and 255 (as swscale's gray gives)
    assert y[:, :20].max() <= 1 and y[:, 28:].min() >= 254


def test_luma_and_rgb_come_from_one_working_copy(h264_b_clip):
    """The luma is the 2x2 mean of the working-size Y plane; the RGB is that copy converted unscaled."""
    cands = np.asarray([0, 7, 20])
    sigs = working_copy_signals(h264_b_clip.path, cands, lambda f: f.to_ndarray(format="rgb24"))
    scaler = VideoReformatter()
    with av.open(str(h264_b_clip.path)) as c:
        frames = {i: f for i, f in enumerate(c.decode(video=0)) if i in set(cands.tolist())}
    for s in sigs:
        small = scale_to_work(scaler, frames[s.index], (64, 96))
        y = plane_u8(small, 0)[:, :96]
        assert np.array_equal(s.luma, block_mean_u8(y, 2))
        assert np.array_equal(s.rgb, small.to_ndarray(format="rgb24"))


def test_work_size_must_be_an_integer_multiple_of_the_analysis_size(h264_b_clip):
    probe = probe_video(h264_b_clip.path)
    with pytest.raises(ValueError, match="work_hw"):
        list(
            iter_frame_signals(
                h264_b_clip.path,
                probe,
                np.asarray([0]),
                (32, 48),
                use_mvs=True,
                report=DecodeReport(),
                work_hw=(64, 90),
            )
        )
