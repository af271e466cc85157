"""End to end: tokenize_video invariants, determinism, budgets, saliency on the moving object."""

from __future__ import annotations

import numpy as np
import pytest

from transformers_llava_ov2.codec.config import CodecConfig
from transformers_llava_ov2.codec.pipeline import tokenize_video
from transformers_llava_ov2.video.frame_count import sample_indices
from transformers_llava_ov2.video_types import ROLE_I, ROLE_P, CodecTokens, raster_to_block_order


def check_invariants(tok: CodecTokens, total_frames: int) -> None:
    """Every contract the processor and the CLI rely on."""
    n_canvas, hc, wc, _ = tok.canvases.shape
    gh, gw = tok.grid_hw
    m = tok.merge_size
    assert (hc, wc) == tok.source_frame_size
    assert tok.num_patches == n_canvas * gh * gw == len(tok.source_positions)
    assert tok.num_tokens * m * m == tok.num_patches
    t, h, w = tok.source_positions.T
    assert t.min() >= 0 and t.max() < total_frames
    assert h.min() >= 0 and h.max() < gh and w.min() >= 0 and w.max() < gw
    # each merge block of a canvas comes from one source frame, as one aligned source block
    perm = raster_to_block_order(gh, gw, m)
    for c in range(n_canvas):
        pos = tok.source_positions[c * gh * gw : (c + 1) * gh * gw][perm].reshape(-1, m * m, 3)
        assert np.all(pos[:, :, 0] == pos[:, :1, 0])
        assert np.all(pos[:, 0, 1] % m == 0) and np.all(pos[:, 0, 2] % m == 0)
        np.testing.assert_array_equal(pos[:, :, 1] - pos[:, :1, 1], np.repeat([[0, 0, 1, 1]], len(pos), 0))
        np.testing.assert_array_equal(pos[:, :, 2] - pos[:, :1, 2], np.repeat([[0, 1, 0, 1]], len(pos), 0))
    # roles / groups / canvases per token
    np.testing.assert_array_equal(tok.token_canvas, np.repeat(np.arange(n_canvas), gh * gw))
    np.testing.assert_array_equal(tok.token_role, tok.canvas_roles[tok.token_canvas])
    np.testing.assert_array_equal(tok.token_group, tok.canvas_groups[tok.token_canvas])
    # groups: one I-canvas first, then P-canvases; the I-canvas is a full anchor frame
    order = tok.block_order()
    for g in tok.groups:
        idx = np.flatnonzero(tok.canvas_groups == g.index)
        assert len(idx) == g.num_canvases >= 1
        assert tok.canvas_roles[idx[0]] == ROLE_I and np.all(tok.canvas_roles[idx[1:]] == ROLE_P)
        i_pos = tok.source_positions[idx[0] * gh * gw : (idx[0] + 1) * gh * gw]
        assert np.all(i_pos[:, 0] == g.anchor_frame)
        # timestamps non-decreasing within the group, in the processor's block order
        sel = order[np.isin(tok.token_canvas[order], idx)]
        assert np.all(np.diff(tok.token_timestamps[sel]) >= 0)
        # no (frame, patch) twice in a group's P-canvases
        p_tok = tok.source_positions[np.isin(tok.token_canvas, idx[1:])]
        assert len(np.unique(p_tok, axis=0)) == len(p_tok)
    runs = tok.timestamp_runs()
    assert sum(n for _, n in runs) == tok.num_tokens
    assert tok.timeline is not None and tok.timeline.boundaries[0] == 0.0
    assert len(tok.timeline.boundaries) == len(tok.groups) + 1
    assert {"probe", "gop", "decode", "signals", "saliency", "selection", "canvas", "total"} <= set(
        tok.stage_seconds
    )
    assert tok.backend_info["motion"] in ("mv", "residual-only", "mv (re-encoded to h264)")


def test_invariants_and_determinism(h264_b_clip):
    a = tokenize_video(h264_b_clip.path)
    check_invariants(a, h264_b_clip.num_frames)
    assert a.backend_info["motion"] == "mv" and a.backend_info["codec"] == "h264"
    assert a.patch_size == 14 and a.merge_size == 2
    assert a.canvases.shape[1] % 28 == 0 and a.canvases.shape[2] % 28 == 0
    b = tokenize_video(str(h264_b_clip.path))
    np.testing.assert_array_equal(a.canvases, b.canvases)
    np.testing.assert_array_equal(a.source_positions, b.source_positions)
    np.testing.assert_array_equal(a.token_timestamps, b.token_timestamps)
    assert a.groups == b.groups


def test_options_and_patch16(h264_b_clip):
    tok = tokenize_video(
        h264_b_clip.path,
        patch_size=16,
        energy="raw",
        rank_attenuation="linear",
        bitcost_prior_beta=0.5,
        anchor_mode="start",
        mv_direction="both",
        mv_compensate="median",
        analysis_downsample=1,
    )
    check_invariants(tok, h264_b_clip.num_frames)
    assert tok.canvases.shape[1] % 32 == 0


def test_token_and_canvas_budgets(events_clip):
    for budget in (300, 1000, 2500):
        tok = tokenize_video(events_clip.path, max_visual_tokens=budget)
        check_invariants(tok, events_clip.num_frames)
        assert tok.num_tokens <= budget
    tok = tokenize_video(events_clip.path, num_canvases=6)
    assert tok.num_canvases <= 6
    check_invariants(tok, events_clip.num_frames)


def _object_path_hit(
    tok: CodecTokens, clip, frames: np.ndarray, bh: np.ndarray, bw: np.ndarray
) -> np.ndarray:
    """Whether each 2x2 block (in canvas-resolution source coordinates) overlaps the object path."""
    sy = clip.size[1] / tok.source_frame_size[0]
    sx = clip.size[0] / tok.source_frame_size[1]
    s = tok.patch_size * tok.merge_size
    boxes = clip.object_boxes
    # the object's path within +-2 frames of the block's frame
    hit = np.zeros(len(frames), dtype=bool)
    for k, (t, r, c) in enumerate(zip(frames, bh, bw)):
        y0, y1 = r * s * sy, (r + 1) * s * sy
        x0, x1 = c * s * sx, (c + 1) * s * sx
        near = boxes[max(0, t - 2) : t + 3]
        hit[k] = np.any((near[:, 0] < x1) & (near[:, 2] > x0) & (near[:, 1] < y1) & (near[:, 3] > y0))
    return hit


def test_p_blocks_concentrate_on_the_moving_object(mv_clip):
    tok = tokenize_video(mv_clip.path)
    check_invariants(tok, mv_clip.num_frames)
    p = tok.token_role == ROLE_P
    assert p.any()
    pos = tok.block_positions()[tok.block_order().argsort()]  # back to raster (identity check below)
    np.testing.assert_array_equal(pos, tok.source_positions)
    pos = tok.source_positions[p]
    top_left = (pos[:, 1] % 2 == 0) & (pos[:, 2] % 2 == 0)
    blocks = pos[top_left]
    hit = _object_path_hit(tok, mv_clip, blocks[:, 0], blocks[:, 1] // 2, blocks[:, 2] // 2)
    assert hit.mean() > 0.8, hit.mean()


def test_codec_covers_motion_events_uniform_misses(events_clip):
    tok = tokenize_video(events_clip.path, num_canvases=8)
    check_invariants(tok, events_clip.num_frames)
    events = [events_clip.events["burst_frames"], events_clip.events["pan_frames"]]
    used = np.unique(tok.source_positions[:, 0])
    codec_cov = sum(any(a <= f < b for f in used) for a, b in events)
    uniform = sample_indices(events_clip.num_frames, tok.num_canvases)  # same number of full frames
    uniform_cov = sum(any(a <= f < b for f in uniform) for a, b in events)
    assert codec_cov == 2
    assert uniform_cov < codec_cov
    # in groups that contain a motion event, the P-canvas tokens come from the events
    fps = events_clip.fps
    with_events = [g.index for g in tok.groups if any(g.start <= a / fps < g.end for a, _ in events)]
    assert with_events
    sel = (tok.token_role == ROLE_P) & np.isin(tok.token_group, with_events)
    p_frames = tok.source_positions[sel, 0]
    in_event = np.zeros(len(p_frames), dtype=bool)
    for a, b in events:
        in_event |= (p_frames >= a - 2) & (p_frames < b + 2)
    assert in_event.mean() > 0.8, in_event.mean()


@pytest.mark.real_video
def test_real_sample_clip(shared_videos_dir):
    path = shared_videos_dir / "beach_puzzle_360x640.mp4"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    tok = tokenize_video(path)
    check_invariants(tok, 487)
    assert tok.total_frames == 487 and tok.fps == pytest.approx(30.0)
    assert tok.canvases.shape[1:3] == (504, 280)  # portrait, smart_resize(640, 360, 28, max 150000)
    assert tok.backend_info["motion"] == "mv" and len(tok.groups) >= 4
    assert len(tok.backend_info["scene_cuts"]) >= 3
    small = tokenize_video(path, CodecConfig(max_visual_tokens=2048))
    assert small.num_tokens <= 2048
    check_invariants(small, 487)
