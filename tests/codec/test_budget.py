"""Budget as a target, content allocation, camera-motion compensation, official candidate rules."""

from __future__ import annotations

import numpy as np
import pytest

from transformers_llava_ov2.codec.candidates import candidate_count, official_image_estimate, spread_in_bin
from transformers_llava_ov2.codec.canvas import (
    canvas_tokens,
    choose_layout,
    content_p_counts,
    fixed_p_counts,
    grown_layout,
    target_canvases,
)
from transformers_llava_ov2.codec.config import CodecConfig
from transformers_llava_ov2.codec.gop import plan_gops, plan_groups
from transformers_llava_ov2.codec.pipeline import tokenize_video
from transformers_llava_ov2.codec.probe import probe_video
from transformers_llava_ov2.codec.saliency import frame_activity, global_motion, motion_magnitude
from transformers_llava_ov2.video.synthetic_events import JumpClipSpec, write_jump_clip
from transformers_llava_ov2.video_types import ROLE_P, CodecBudget

HW = (720, 1280)


# ------------------------------------------------------------------------------------------ layout rules
def test_target_asks_for_more_canvases_only_when_the_layout_underspends():
    cfg = CodecConfig()
    tau = canvas_tokens(HW, cfg)
    layout = choose_layout(HW, 8, cfg.replace(max_visual_tokens=64 * tau))
    assert layout.num_canvases == 32  # the default layout caps at 8 x (1 + 3)
    assert target_canvases(HW, layout, cfg.replace(max_visual_tokens=64 * tau)) == 64
    ceiling = cfg.replace(max_visual_tokens=64 * tau, budget_policy="ceiling")
    assert target_canvases(HW, choose_layout(HW, 8, ceiling), ceiling) is None
    assert target_canvases(HW, choose_layout(HW, 8, cfg), cfg) is None  # no budget
    with_canvases = cfg.replace(max_visual_tokens=64 * tau, num_canvases=16)
    assert target_canvases(HW, choose_layout(HW, 8, with_canvases), with_canvases) is None


def test_target_prefers_full_canvases_over_shrunk_ones_that_lose_tokens():
    cfg = CodecConfig(max_visual_tokens=8 * canvas_tokens(HW, CodecConfig()))
    shrunk = choose_layout(HW, 8, cfg)  # the ceiling rule keeps 8 groups with smaller canvases
    assert shrunk.max_tokens < cfg.max_visual_tokens
    assert target_canvases(HW, shrunk, cfg) == 8


def test_grown_layout_caps_p_canvases_per_group():
    cfg = CodecConfig(max_p_canvases_per_group=5)
    lay = grown_layout(HW, 4, 100, cfg)
    assert lay.num_groups == 4 and lay.total_p == 20 and lay.num_canvases == 24
    assert lay.canvas_hw == choose_layout(HW, 4, CodecConfig()).canvas_hw  # full resolution
    lay = grown_layout(HW, 4, 14, cfg)
    assert lay.total_p == 10 and lay.max_tokens == 14 * lay.tokens_per_canvas


def test_fixed_counts_are_m_g_each_and_spread_a_remainder_by_bit_cost():
    lay = grown_layout(HW, 4, 4 + 13, CodecConfig())
    counts = fixed_p_counts(lay, np.array([1.0, 5.0, 3.0, 2.0]))
    assert counts.tolist() == [3, 4, 3, 3]
    even = choose_layout(HW, 8, CodecConfig())
    assert fixed_p_counts(even, np.arange(8.0)).tolist() == [3] * 8


def test_content_counts_follow_weights_within_caps():
    counts = content_p_counts(12, np.array([0.0, 1.0, 3.0, 0.0]), np.array([10, 10, 10, 10]))
    assert counts.tolist() == [0, 3, 9, 0]
    counts = content_p_counts(12, np.array([0.0, 1.0, 3.0, 0.0]), np.array([8, 8, 6, 8]))
    assert counts.sum() == 12 and counts[2] == 6 and counts[1] >= 3
    assert content_p_counts(5, np.zeros(3), np.array([1, 1, 1])).tolist() == [1, 1, 1]  # caps bind
    assert content_p_counts(4, np.zeros(2), np.array([4, 4])).sum() == 4  # no weight: evenly


# ------------------------------------------------------------------------------------------ candidates
def test_official_spread_truncates_and_centres_a_single_frame():
    assert spread_in_bin(15, 29, 4, "official").tolist() == [15, 19, 24, 29]
    assert spread_in_bin(15, 29, 4, "legacy").tolist() == [15, 20, 24, 29]
    assert spread_in_bin(10, 14, 1, "official").tolist() == [12]
    assert spread_in_bin(10, 14, 1, "legacy").tolist() == [10]


def test_centered_spread_keeps_the_spacing_across_bin_edges():
    assert spread_in_bin(15, 29, 4, "centered").tolist() == [16, 20, 24, 28]
    assert spread_in_bin(10, 14, 1, "centered").tolist() == [12]  # a single frame: the middle, as official
    assert spread_in_bin(0, 4, 5, "centered").tolist() == [0, 1, 2, 3, 4]  # a full bin: every frame
    for rule, widest, narrowest in (("official", 14, 1), ("centered", 8, 7)):
        # two candidates in each of four 15-frame bins: official pairs them up at the bin edges
        frames = np.concatenate([spread_in_bin(15 * b, 15 * b + 14, 2, rule) for b in range(4)])
        gaps = np.diff(frames)
        assert (int(gaps.max()), int(gaps.min())) == (widest, narrowest), (rule, frames.tolist())


def test_candidates_per_second_floor_only_lifts_long_clips():
    cfg = CodecConfig()
    assert cfg.candidates_per_second == 6.0
    # 60 s, 8 canvases: 8 x 8 = 64 < ceil(6 x 60) = 360
    assert candidate_count(8, 1800, cfg, duration=60.0) == 360
    assert candidate_count(8, 1800, cfg.replace(candidates_per_second=0.0), duration=60.0) == 64
    # 16 s, 24 canvases: 8 x 24 = 192 > 96 (the phone-clip case: unchanged)
    assert candidate_count(24, 487, cfg, duration=16.2) == 192
    assert candidate_count(8, 300, cfg, duration=600.0) == 300  # at most the frames
    assert candidate_count(8, 100_000, cfg, duration=600.0) == cfg.max_candidates
    with pytest.raises(ValueError, match="candidates_per_second"):
        CodecConfig(candidates_per_second=-1.0)


def test_official_image_estimate():
    # 60 s at 280x504 (720 patches): min(ceil(72), 28, 41) -> 28; max(4 * 8, 28) = 32
    assert official_image_estimate(60.0, 720, 8) == 32
    assert official_image_estimate(5.0, 720, 1) == 8
    assert official_image_estimate(60.0, 3000, 2) == 8  # min(72, 12, 30000 // 3000) -> 8
    assert official_image_estimate(5.0, 8000, 1) == 4


def test_anchor_subsampling_counts_the_clip_end_as_a_boundary(burst_clip):
    probe = probe_video(burst_clip.path)
    cfg = CodecConfig()
    plan = plan_gops(probe, cfg)
    assert len(plan_groups(plan, probe, cfg)) > 3
    two = plan_groups(plan, probe, cfg, max_groups=2)
    assert len(two) == 2 and two[0].start == 0.0
    # the second group starts near the middle, not at the last anchor (a short tail group)
    assert 0.3 * probe.duration <= two[1].start <= 0.7 * probe.duration, [(g.start, g.end) for g in two]


# ------------------------------------------------------------------------------------------ camera motion
def _field(h=48, w=64):
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    v = np.stack([1.5 + 2.0 * xs / w, -0.5 + 1.0 * ys / h])  # pan + zoom-like affine field
    v[:, 10:20, 10:20] += 12.0  # a moving subject
    return v


def test_affine_compensation_removes_camera_motion_but_keeps_the_subject():
    v = _field()
    g = global_motion(v, "affine")
    resid = np.hypot(*(v - g))
    assert float(np.median(resid)) < 0.05
    assert float(resid[10:20, 10:20].min()) > 10.0
    med = np.hypot(*(v - global_motion(v, "median")))
    assert float(np.median(med)) > float(np.median(resid))  # a median leaves the zoom in
    with pytest.raises(ValueError, match="mv_compensate"):
        global_motion(v, "bogus")


def test_compensated_magnitude_of_a_pure_pan_is_zero():
    flow = np.zeros((4, 32, 32), dtype=np.float32)
    flow[0] = 8.0  # every vector 2 px right after the /4 unit
    for mode in ("median", "affine"):
        assert float(motion_magnitude(flow, compensate=mode).max()) < 1e-4
    assert float(motion_magnitude(flow, compensate="none").min()) == pytest.approx(2.0)
    res = np.full((32, 32), 128, dtype=np.uint8)
    cfg = CodecConfig()
    assert frame_activity(motion_magnitude(flow, compensate="median"), res, cfg) == pytest.approx(
        0.0, abs=1e-6
    )
    assert frame_activity(None, res + 8, cfg) == 0.0  # coding noise
    assert frame_activity(None, res + 16, cfg) == pytest.approx(1.0)  # residual only: (16 - 8) / 8


# ------------------------------------------------------------------------------------------ result facts
def test_codec_budget_validation():
    b = CodecBudget(policy="target", requested_tokens=100, planned_tokens=90, spent_tokens=90)
    assert b.spent_fraction == pytest.approx(0.9)
    with pytest.raises(ValueError, match="policy"):
        CodecBudget(policy="max", requested_tokens=1, planned_tokens=1, spent_tokens=1)
    with pytest.raises(ValueError, match="requested_tokens"):
        CodecBudget(policy="target", requested_tokens=0, planned_tokens=1, spent_tokens=1)
    with pytest.raises(ValueError, match="spent_tokens"):
        CodecBudget(policy="target", requested_tokens=None, planned_tokens=1, spent_tokens=-1)


def test_config_validates_new_options():
    for name in ("budget_policy", "p_allocation", "candidate_rule", "mv_compensate"):
        with pytest.raises(ValueError, match=name):
            CodecConfig(**{name: "bogus"})
    with pytest.raises(ValueError, match="max_p_canvases_per_group"):
        CodecConfig(max_p_canvases_per_group=0)


@pytest.fixture(scope="module")
def jump_clip(tmp_path_factory):
    """24 s 320x240 jump-rope clip, steady camera, still between 6 and 18 s."""
    path = tmp_path_factory.mktemp("budget") / "jump.mp4"
    return write_jump_clip(path, JumpClipSpec(seconds=24, size=(320, 240), static=((6.0, 18.0),), seed=2))


def test_target_spends_the_budget_and_ceiling_says_why_not(jump_clip):
    tau = canvas_tokens((240, 320), CodecConfig())
    budget = 40 * tau
    target = tokenize_video(jump_clip.path, max_visual_tokens=budget)
    assert target.budget is not None and target.budget.requested_tokens == budget
    assert target.num_tokens >= 0.9 * budget and target.num_tokens <= budget
    assert target.budget.spent_tokens == target.num_tokens and target.budget.reason is None
    assert target.backend_info["budget"]["spent_tokens"] == target.num_tokens
    ceiling = tokenize_video(jump_clip.path, max_visual_tokens=budget, budget_policy="ceiling")
    assert ceiling.num_tokens < 0.9 * budget
    assert "ceiling" in ceiling.budget.reason


def test_content_allocation_gives_the_still_stretch_fewer_p_tokens(jump_clip):
    def still_share(tok):
        t = tok.token_timestamps[tok.token_role == ROLE_P]
        return float(((t >= 6.0) & (t < 11.0)).mean())

    fixed = tokenize_video(jump_clip.path, p_allocation="fixed")
    content = tokenize_video(jump_clip.path, p_allocation="content")
    assert content.num_tokens == fixed.num_tokens  # same spend, different places
    assert still_share(content) < still_share(fixed)
    assert {g.num_canvases for g in fixed.groups} == {4}


def test_activity_frame_power_moves_p_tokens_off_still_frames(jump_clip):
    def still_share(tok):
        t = tok.token_timestamps[tok.token_role == ROLE_P]
        return float(((t >= 6.0) & (t < 18.0)).mean())

    budget = 8 * canvas_tokens((240, 320), CodecConfig())
    plain = tokenize_video(jump_clip.path, max_visual_tokens=budget, activity_frame_power=0.0)
    weighted = tokenize_video(jump_clip.path, max_visual_tokens=budget, activity_frame_power=1.0)
    assert weighted.num_tokens == plain.num_tokens
    assert still_share(weighted) <= still_share(plain)
    assert not np.array_equal(weighted.source_positions, plain.source_positions)


def test_short_clip_reports_why_the_target_is_not_reached(mv_clip):
    tok = tokenize_video(mv_clip.path, max_visual_tokens=100_000)
    assert tok.budget.policy == "target" and tok.budget.requested_tokens == 100_000
    assert tok.num_tokens < 90_000 and tok.budget.spent_tokens == tok.num_tokens
    assert "holds" in tok.budget.reason or "filled" in tok.budget.reason, tok.budget.reason


# ------------------------------------------------------------------------------------------ still lead-in
def _members(activities, bad=()):
    from transformers_llava_ov2.codec.groups import Candidate
    from transformers_llava_ov2.codec.saliency import FrameQuality

    good = FrameQuality(False, False, 100.0, 20.0, 0.0)
    black = FrameQuality(True, False, 0.0, 0.0, 0.0)
    return [
        Candidate(i, i / 25, 0, np.zeros(4), black if i in bad else good, np.zeros((1, 1, 3), np.uint8), a)
        for i, a in enumerate(activities)
    ]


def test_still_lead_in_ends_at_the_most_active_frame_of_the_first_active_window():
    from transformers_llava_ov2.codec.gop import GroupSpec
    from transformers_llava_ov2.codec.groups import STILL_WINDOW, choose_anchor, still_lead_in

    action = [0.0, 0.02, 0.004, 0.03, 0.003, 0.02, 0.01, 0.025]  # alternating, as picture types make it
    still = [0.001] * 12
    members = _members(still + action * 3)
    lead = still_lead_in(members, 0.25)
    # thr = 0.25 x mean = 0.0024: the first window reaching it is [9, 14) (3 still, 0.0, 0.02); its max: 13
    assert lead == 13
    assert still_lead_in(members, 0.0) == 0  # off: the official anchor
    assert still_lead_in(_members(action * 3 + still), 0.25) == 0  # the group starts active (I-frame 0)
    assert still_lead_in(_members(still * 2), 0.25) == 0  # all still: nothing to skip to
    assert still_lead_in(_members(still[:STILL_WINDOW]), 0.25) == 0  # too short to judge
    g = GroupSpec(index=0, anchor_frame=0, frame_start=0, frame_end=36, start=0.0, end=36 / 25, bit_cost=1.0)
    assert choose_anchor(g, members, 0.25).index == 13
    assert choose_anchor(g, members, 0.0).index == 0
    assert choose_anchor(g, _members(still + action * 3, bad={13}), 0.25).index == 14  # first good after


def test_still_anchor_moves_the_i_canvas_out_of_a_still_stretch(jump_clip):
    budget = 16 * canvas_tokens((240, 320), CodecConfig())
    moved = tokenize_video(jump_clip.path, max_visual_tokens=budget)
    planned = tokenize_video(jump_clip.path, max_visual_tokens=budget, anchor_still_fraction=0.0)
    assert [g.start for g in moved.groups] == [g.start for g in planned.groups]  # same groups

    def in_still(t: float) -> bool:
        return 6.0 <= t < 18.0

    fps = moved.fps
    skipped = [
        (a, b)
        for a, b in zip(moved.groups, planned.groups, strict=True)
        if in_still(b.anchor_frame / fps) and a.anchor_frame != b.anchor_frame
    ]
    assert skipped, [(g.start, g.end, g.anchor_frame / fps) for g in planned.groups]
    for a, _planned in skipped:
        assert not in_still(a.anchor_frame / fps) and a.start <= a.anchor_frame / fps < a.end
        i_times = moved.token_timestamps[(moved.token_group == a.index) & (moved.token_role != ROLE_P)]
        assert np.allclose(i_times, a.anchor_frame / fps)  # the I-canvas shows the new anchor
