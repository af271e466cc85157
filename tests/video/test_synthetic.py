"""write_synthetic_clip / write_demo_clip: ground truth matches what is encoded."""

from __future__ import annotations

import av
import numpy as np
import pytest

from transformers_llava_ov2.video.container import open_video, stream_info
from transformers_llava_ov2.video.synthetic import CODECS, write_demo_clip, write_synthetic_clip


def _decode_gray(path) -> np.ndarray:
    with open_video(path) as c:
        return np.stack([f.to_ndarray(format="gray").astype(np.float32) for f in c.decode(video=0)])


def test_constant_velocity_ground_truth(make_clip):
    clip = make_clip("vel.mp4", seconds=1.0, size=(192, 128), velocity=(3, 2), object_size=32, gop=50)
    boxes = clip.object_boxes
    assert boxes.shape == (25, 4) and boxes.dtype == np.int64
    assert np.all(boxes[:, 2:] - boxes[:, :2] == 32)
    assert np.all(clip.velocities[1:] == [3, 2])  # no border reached in 1 s
    assert clip.moving_mask.tolist() == [False] + [True] * 24
    # The decoded frames show the object where the ground truth says: a patch tracked along the boxes
    # matches much better than the same patch at a fixed position.
    gray = _decode_gray(clip.path)
    assert gray.shape == (25, 128, 192)

    def crop(i, b):
        x0, y0, x1, y1 = b
        return gray[i, y0:y1, x0:x1]

    tracked = np.mean([np.abs(crop(i, boxes[i]) - crop(0, boxes[0])).mean() for i in range(1, 25)])
    fixed = np.mean([np.abs(crop(i, boxes[0]) - crop(0, boxes[0])).mean() for i in range(5, 25)])
    assert tracked < 4.0 < fixed


def test_reflection_at_border(make_clip):
    clip = make_clip("bounce.mp4", seconds=1.0, size=(96, 64), velocity=(8, 0), object_size=16)
    x0 = clip.object_boxes[:, 0]
    assert x0.min() >= 0 and x0.max() <= 96 - 16
    assert np.all(np.abs(np.diff(x0)) <= 8)
    assert (np.diff(x0) < 0).any()  # bounced back


def test_burst_cut_and_pan_events(make_clip):
    clip = make_clip(
        "events.mp4",
        seconds=4.0,
        size=(160, 96),
        object_size=24,
        velocity=(2, 1),
        burst=(1.0, 2.0),
        cut=3.0,
        pan=(2, 0),
        pan_window=(2.2, 2.6),
    )
    ev = clip.events
    assert ev["burst"] == (1.0, 2.0) and ev["burst_frames"] == (25, 50)
    assert ev["cut"] == 3.0 and ev["cut_frame"] == 75
    assert ev["pan_frames"] == (55, 65)
    moving = np.flatnonzero(clip.moving_mask)
    assert moving.min() == 25 and moving.max() == 49 and len(moving) == 25
    pan = clip.pan_offsets[:, 0]
    assert (
        np.all(np.diff(pan)[54:64] == 2) and np.all(np.diff(pan)[:54] == 0) and np.all(np.diff(pan)[64:] == 0)
    )
    gray = _decode_gray(clip.path)
    diffs = np.abs(np.diff(gray, axis=0)).mean(axis=(1, 2))  # diffs[i-1] = frame i vs i-1
    assert int(np.argmax(diffs)) + 1 == 75  # the cut is the biggest change
    assert diffs[74] > 5 * np.median(diffs)
    assert diffs[5:20].max() < 1.0  # static stretch: only coding noise


def test_deterministic_bytes(tmp_path):
    a = write_synthetic_clip(
        tmp_path / "a.mp4", seconds=0.5, size=(64, 48), object_size=16, bframes=2, seed=3
    )
    b = write_synthetic_clip(
        tmp_path / "b.mp4", seconds=0.5, size=(64, 48), object_size=16, bframes=2, seed=3
    )
    c = write_synthetic_clip(
        tmp_path / "c.mp4", seconds=0.5, size=(64, 48), object_size=16, bframes=2, seed=4
    )
    assert a.path.read_bytes() == b.path.read_bytes() != c.path.read_bytes()


@pytest.mark.parametrize(
    ("codec", "ext"),
    [("h264", ".mp4"), ("hevc", ".mp4"), ("mpeg4", ".mp4"), ("mjpeg", ".mkv"), ("vp9", ".webm")],
)
def test_every_codec_encodes_and_decodes(tmp_path, codec, ext):
    assert codec in CODECS
    clip = write_synthetic_clip(
        tmp_path / f"c{ext}", seconds=0.4, size=(64, 48), object_size=16, codec=codec, bframes=1, gop=5
    )
    with open_video(clip.path) as c:
        info = stream_info(c)
        n = sum(1 for _ in c.decode(video=0))
    assert n == clip.num_frames == 10
    assert info.codec_name == {"h264": "h264", "hevc": "hevc", "mpeg4": "mpeg4", "mjpeg": "mjpeg"}.get(
        codec, info.codec_name
    )


def test_gop_gives_periodic_keyframes(make_clip):
    clip = make_clip("gop.mp4", seconds=2.0, size=(96, 64), object_size=16, bframes=2, gop=10)
    with av.open(str(clip.path)) as c:
        keys = [i for i, p in enumerate(p for p in c.demux(video=0) if p.size) if p.is_keyframe]
    assert keys == [0, 10, 20, 30, 40]


def test_invalid_arguments(tmp_path):
    with pytest.raises(ValueError, match="codec"):
        write_synthetic_clip(tmp_path / "x.mp4", codec="av2")
    with pytest.raises(ValueError, match="even"):
        write_synthetic_clip(tmp_path / "x.mp4", size=(65, 48))


def test_demo_clip(tmp_path):
    clip = write_demo_clip(tmp_path / "demo.mp4")
    assert clip.size == (640, 360) and clip.fps == 25.0 and clip.num_frames == 250
    assert clip.events["burst_frames"] == (50, 100)
    assert clip.events["cut_frame"] == 138
    assert clip.events["pan_frames"] == (163, 213)
    with open_video(clip.path) as c:
        info = stream_info(c)
        pict = [
            (f.pict_type.name if hasattr(f.pict_type, "name") else int(f.pict_type), f.key_frame)
            for f in c.decode(video=0)
        ]
    assert info.has_b_frames and info.total_frames == 250 and info.duration == pytest.approx(10.0)
    keys = [i for i, (_, k) in enumerate(pict) if k]
    assert 138 in keys  # x264 scene-cut detection placed a keyframe at the cut
    assert any(t in ("B", 3) for t, _ in pict)


def test_scene_background_and_ball_are_what_a_person_sees(tmp_path):
    """The demo's drawn scene: sky above (blue), road below (grey), a red ball inside its ground-truth box."""
    clip = write_synthetic_clip(
        tmp_path / "scene.mp4",
        seconds=0.4,
        size=(320, 180),
        background="scene",
        object_style="ball",
        object_size=40,
        crf=12,
        cut=0.2,
    )
    with open_video(clip.path) as c:
        frames = [f.to_ndarray(format="rgb24").astype(int) for f in c.decode(video=0)]
    first, last = frames[0], frames[-1]
    sky, road = first[5, :, :].mean(axis=0), first[-5, :, :].mean(axis=0)
    assert sky[2] > sky[0] + 40  # blue sky
    assert abs(road[0] - road[2]) < 25 and road.mean() < 110  # grey asphalt
    x0, y0, x1, y1 = clip.object_boxes[0]
    centre = first[(y0 + y1) // 2 - 3 : (y0 + y1) // 2 + 3, (x0 + x1) // 2 - 3 : (x0 + x1) // 2 + 3].mean(
        axis=(0, 1)
    )
    assert centre[0] > 150 and centre[1] < 110 and centre[2] < 110  # red ball
    assert np.abs(first[: y0 - 2] - last[: y0 - 2]).mean() > 20  # the cut changed the scene (indoor)
    with pytest.raises(ValueError, match="background must be"):
        write_synthetic_clip(tmp_path / "x.mp4", background="plasma")
    with pytest.raises(ValueError, match="object_style must be"):
        write_synthetic_clip(tmp_path / "x.mp4", object_style="cube")
