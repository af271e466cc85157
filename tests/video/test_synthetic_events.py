"""Jump-rope clips: the decoded motion matches the ground truth (take-offs at the annotated frames, the figure
inside its box, no cycle in a static stretch, camera offsets as recorded)."""

from __future__ import annotations

import av
import numpy as np
import pytest

from transformers_llava_ov2.video.synthetic_events import (
    JumpClipSpec,
    plan_cycles,
    random_jump_spec,
    write_jump_clip,
)


def _decode(path):
    with av.open(str(path)) as f:
        return [fr.to_ndarray(format="rgb24") for fr in f.decode(video=0)]


def _red_mask(img):
    r, g, b = (img[..., k].astype(np.int16) for k in range(3))
    return (r > 170) & (g < 80) & (b < 80)


def _figure_bottoms(frames, offsets):
    """Lowest red row of each decoded frame, in scene coordinates (camera offset added back)."""
    out = []
    for img, (_ox, oy) in zip(frames, offsets):
        rows = np.flatnonzero(_red_mask(img).sum(axis=1) >= 2)
        out.append(rows.max() + oy if rows.size else np.nan)
    return np.asarray(out, dtype=np.float64)


@pytest.fixture(scope="module")
def shaky_clip(tmp_path_factory):
    spec = JumpClipSpec(
        seconds=4.0,
        size=(96, 170),
        period=0.48,
        period_jitter=0.12,
        static=((1.6, 2.4),),
        camera_jitter=2,
        camera_drift=(4.0, 2.0),
        distractor=True,
        seed=5,
    )
    return write_jump_clip(tmp_path_factory.mktemp("jump") / "shaky.mp4", spec)


def test_take_offs_are_at_the_annotated_frames(shaky_clip):
    frames = _decode(shaky_clip.path)
    assert len(frames) == shaky_clip.num_frames == 100
    assert frames[0].shape == (170, 96, 3)  # portrait
    bottoms = _figure_bottoms(frames, shaky_clip.camera_offsets)
    ground = np.nanmax(bottoms)
    height = ground - bottoms
    # A take-off frame: on the ground (within a pixel of compression noise), higher in the next frame.
    detected = [i for i in range(len(height) - 1) if height[i] <= 1 and height[i + 1] >= 2]
    assert detected == list(shaky_clip.cycle_start_frames)
    assert len(detected) >= 4
    # Heights follow the ground truth within compression noise.
    assert np.nanmax(np.abs(height - shaky_clip.heights)) <= 2.0
    assert shaky_clip.cycle_starts == [round(f / 25, 2) for f in shaky_clip.cycle_start_frames]


def test_subject_box_holds_the_figure(shaky_clip):
    frames = _decode(shaky_clip.path)
    for img, (x0, y0, x1, y1) in zip(frames, shaky_clip.subject_boxes):
        red = _red_mask(img)
        inside = red[y0:y1, x0:x1].sum()
        assert inside >= 0.95 * red.sum() > 0


def test_static_stretch_has_no_cycles_and_no_motion(shaky_clip):
    f0, f1 = int(1.6 * 25), int(2.4 * 25)
    assert not any(f0 - 12 < f <= f1 for f in shaky_clip.cycle_start_frames)
    assert np.all(shaky_clip.heights[f0:f1] == 0)


def test_periods_vary_with_jitter_and_not_without():
    steady, _ = plan_cycles(JumpClipSpec(seconds=6.0, period=0.6, seed=1))
    starts = np.diff([c[0] for c in steady])
    assert set(starts.tolist()) == {15}
    jittered, _ = plan_cycles(JumpClipSpec(seconds=6.0, period=0.6, period_jitter=0.15, seed=1))
    assert len(set(np.diff([c[0] for c in jittered]).tolist())) > 1


def test_deterministic(tmp_path):
    spec = JumpClipSpec(seconds=1.0, size=(64, 64), camera_jitter=1, distractor=True, seed=9)
    a = write_jump_clip(tmp_path / "a.mp4", spec)
    b = write_jump_clip(tmp_path / "b.mp4", spec)
    assert a.path.read_bytes() == b.path.read_bytes()
    assert not list(tmp_path.glob(".*partial*"))


def test_random_specs_vary():
    rng = np.random.default_rng(0)
    specs = [random_jump_spec(rng, seconds=8.0) for _ in range(12)]
    assert len({s.period for s in specs}) == 12
    assert {s.size[0] > s.size[1] for s in specs} == {True, False}
    assert any(s.static for s in specs) and any(s.distractor for s in specs)
    assert any(s.camera_jitter for s in specs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"size": (63, 64)}, "size"),
        ({"airborne": 1.0}, "airborne"),
        ({"period": 0.1}, "period"),
        ({"jump_height": 0.5}, "jump_height"),
        ({"period_jitter": 0.6}, "period_jitter"),
    ],
)
def test_bad_spec(kwargs, match):
    with pytest.raises(ValueError, match=match):
        JumpClipSpec(**kwargs)
