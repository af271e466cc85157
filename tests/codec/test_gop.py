"""Stage 2: bit-cost timeline and adaptive GOP plan."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import numpy as np
import pytest

from transformers_llava_ov2.codec.config import CodecConfig
from transformers_llava_ov2.codec.gop import (
    bin_energy,
    detect_scene_cuts,
    plan_gops,
    plan_groups,
    segment_energy,
)
from transformers_llava_ov2.codec.probe import probe_video


def test_bin_energy_excludes_keyframes_and_smooths():
    times = np.array([0.0, 0.1, 0.6, 0.7, 1.2])
    sizes = np.array([1000, 9, 99, 999, 9])
    key = np.array([True, False, False, False, False])
    energy, smoothed = bin_energy(times, sizes, key, 1.5, bin_seconds=0.5, smooth_bins=1)
    np.testing.assert_allclose(energy, [np.log1p(9), np.log1p(99) + np.log1p(999), np.log1p(9)])
    np.testing.assert_allclose(smoothed, [energy[:2].mean(), energy.mean(), energy[1:].mean()])
    raw, _ = bin_energy(times, sizes, key, 1.5, bin_seconds=0.5, smooth_bins=0, mode="raw")
    np.testing.assert_allclose(raw, [9, 1098, 9])


def test_valley_refinement_and_tie_break():
    # trigger at bin 3 (min 3 bins, quota reached); window [2, 6]: lowest energy 1.0 at bins 2 and 4,
    # equally far from the trigger -> the earlier one
    e = np.array([5.0, 5.0, 1.0, 5.0, 1.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0])
    segs = segment_energy(e, quota=15.0, min_bins=3, max_bins=12, valley_radius=3)
    assert segs[0] == (0, 2)
    # a unique lowest bin after the trigger wins over a closer higher one
    e2 = np.array([5.0, 5.0, 5.0, 4.0, 9.0, 0.5, 9.0, 9.0, 9.0, 9.0, 9.0, 9.0])
    assert segment_energy(e2, quota=15.0, min_bins=3, max_bins=12, valley_radius=3)[0] == (0, 5)


@pytest.mark.parametrize("seed", range(40))
def test_spans_hold_on_random_energy(seed):
    rng = np.random.default_rng(seed)
    nb = int(rng.integers(1, 120))
    e = rng.gamma(0.6, 3.0, size=nb) * (rng.random(nb) < 0.8)
    min_bins = int(rng.integers(1, 5))
    max_bins = int(rng.integers(2 * min_bins, 3 * min_bins + 8))
    k = int(rng.integers(1, 10))
    sections = tuple(sorted(set(rng.integers(1, max(2, nb), size=int(rng.integers(0, 3))).tolist())))
    # forced sections must leave room for T_min on both sides (plan_gops guarantees it)
    sections = tuple(b for b in sections if b >= min_bins and nb - b >= min_bins)
    kept: list[int] = []
    for b in sections:
        if not kept or b - kept[-1] >= min_bins:
            kept.append(b)
    segs = segment_energy(
        e, quota=max(e.sum(), 1e-9) / k, min_bins=min_bins, max_bins=max_bins, sections=tuple(kept)
    )
    assert segs[0][0] == 0 and segs[-1][1] == nb - 1
    for (_a0, a1), (b0, _) in itertools.pairwise(segs):
        assert b0 == a1 + 1
    bounds = [0, *kept, nb]
    for s0, s1 in itertools.pairwise(bounds):
        inside = [s for s in segs if s0 <= s[0] <= s1 - 1]
        assert inside[0][0] == s0 and inside[-1][1] == s1 - 1
        for a, b in inside:
            span = b - a + 1
            assert span <= max_bins
            if s1 - s0 >= min_bins:
                assert span >= min_bins


def test_code_tail_rule_when_not_strict():
    e = np.ones(13)
    strict = segment_energy(e, quota=100.0, min_bins=3, max_bins=12, strict=True)
    loose = segment_energy(e, quota=100.0, min_bins=3, max_bins=12, strict=False)
    assert all(3 <= b - a + 1 <= 12 for a, b in strict)
    assert loose == [(0, 12)]  # the 1-bin tail (< 0.5 * T_min) merges and exceeds T_max, as in the code


def test_scene_cut_detection_rule():
    def fake(keys, n):
        kf = np.zeros(n, dtype=bool)
        kf[keys] = True
        return SimpleNamespace(keyframe=kf, total_frames=n)

    assert detect_scene_cuts(fake([0, 50, 100, 150], 180)).tolist() == []  # periodic GOP
    assert detect_scene_cuts(fake([0, 50, 70, 120, 170], 200)).tolist() == [70]  # cut resets the GOP
    assert detect_scene_cuts(fake([0, 137], 250)).tolist() == [137]  # no repeated interval
    assert detect_scene_cuts(fake(list(range(30)), 30)).tolist() == []  # intra-only


def test_burst_gets_short_segments_static_long(burst_clip):
    probe = probe_video(burst_clip.path)
    burst = (18.0, 21.0)
    for energy in ("raw", "log1p"):
        plan = plan_gops(probe, energy=energy)
        spans = [(s.start, s.end) for s in plan.segments]
        assert spans[0][0] == 0 and spans[-1][1] == pytest.approx(probe.duration)
        static = [b - a for a, b in spans if b <= burst[0] - 1.0 or a >= burst[1] + 1.0]
        around = [b - a for a, b in spans if a < burst[1] and b > burst[0]]
        assert all(1.5 - 1e-9 <= b - a <= 6.0 + 1e-9 for a, b in spans[:-1])
        assert min(static) >= 4.0, (energy, spans)
        if energy == "raw":  # paper variant: bit cost proportional to size, short groups in the burst
            assert max(around) <= 3.0, spans
            assert len(around) >= 2
        else:  # code default (log1p): still no longer than the static segments
            assert max(around) <= np.median(static) + 1e-9, spans


def test_scene_cut_is_a_boundary(cut_clip):
    probe = probe_video(cut_clip.path)
    cut_t = cut_clip.events["cut_frame"] / cut_clip.fps
    plan = plan_gops(probe)
    assert plan.scene_cuts == (pytest.approx(cut_t),)
    assert any(abs(b - cut_t) < 1e-6 for b in plan.boundaries)
    cfg = CodecConfig(anchor_mode="start")
    groups = plan_groups(plan_gops(probe, cfg), probe, cfg)
    assert cut_clip.events["cut_frame"] in [g.anchor_frame for g in groups]
    # no cut boundaries at all when disabled
    assert plan_gops(probe, scene_cut_boundaries=False).scene_cuts == ()


def test_static_stream_still_gets_groups(static_clip):
    probe = probe_video(static_clip.path)
    cfg = CodecConfig()
    plan = plan_gops(probe, cfg)
    groups = plan_groups(plan, probe, cfg)
    assert plan.segments and groups
    assert groups[0].frame_start == 0 and groups[-1].frame_end == probe.total_frames
    for a, b in itertools.pairwise(groups):
        assert a.frame_end == b.frame_start


def test_k_target_rule(burst_clip):
    probe = probe_video(burst_clip.path)
    assert plan_gops(probe).k_target == 5  # round(40 / 8)
    assert plan_gops(probe, num_groups=3).k_target == 3
