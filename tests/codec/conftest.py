"""Session-scoped synthetic clips for the codec tokenizer tests (small, generated with PyAV)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest


@pytest.fixture(scope="session")
def h264_b_clip(make_clip):
    """2 s, 25 fps, 192x128 H.264 MP4 with up to 3 B-frames (b-pyramid), moving object (50 frames)."""
    return make_clip(
        "codec_h264_b.mp4",
        seconds=2.0,
        size=(192, 128),
        bframes=3,
        preset="veryfast",
        object_size=40,
        velocity=(5, 3),
    )


@pytest.fixture(scope="session")
def mv_clip(make_clip):
    """P-only H.264 (x264 ultrafast: 1 reference, 16x16 partitions), object moving (4, 2) px/frame."""
    return make_clip(
        "codec_mv.mp4",
        seconds=1.2,
        size=(192, 128),
        bframes=0,
        preset="ultrafast",
        velocity=(4, 2),
        object_size=48,
        object_start=(20, 20),
    )


@pytest.fixture(scope="session")
def burst_clip(make_clip):
    """40 s, 10 fps, 192x144, object still except a burst of fast motion in [18 s, 21 s)."""
    return make_clip(
        "codec_burst.mp4",
        seconds=40.0,
        fps=10,
        size=(192, 144),
        bframes=0,
        preset="ultrafast",
        velocity=(8, 5),
        object_size=72,
        burst=(18.0, 21.0),
        texture_cell=3,
        gop=1000,
    )


@pytest.fixture(scope="session")
def cut_clip(make_clip):
    """20 s, 10 fps, hard scene cut at 9 s (x264 scene-change keyframe there), object moving."""
    return make_clip(
        "codec_cut.mp4",
        seconds=20.0,
        fps=10,
        size=(320, 192),
        bframes=2,
        preset="veryfast",
        scenecut=True,
        cut=9.0,
        velocity=(3, 1),
        object_size=32,
    )


@pytest.fixture(scope="session")
def events_clip(make_clip):
    """24 s, 10 fps, P-only: still object and camera except an object burst [5, 6.5) s and a pan [15, 16.5) s."""
    return make_clip(
        "codec_events.mp4",
        seconds=24.0,
        fps=10,
        size=(224, 168),
        bframes=0,
        preset="ultrafast",
        velocity=(8, 4),
        object_size=64,
        burst=(5.0, 6.5),
        pan=(6, 0),
        pan_window=(15.0, 16.5),
    )


@pytest.fixture(scope="session")
def hevc_clip(make_clip):
    return make_clip("codec_hevc.mp4", seconds=1.6, size=(160, 96), codec="hevc", bframes=2, object_size=32)


@pytest.fixture(scope="session")
def hevc_mkv_clip(make_clip):
    return make_clip("codec_hevc.mkv", seconds=1.2, size=(160, 96), codec="hevc", bframes=0, object_size=32)


@pytest.fixture(scope="session")
def mpeg4_clip(make_clip):
    return make_clip("codec_mpeg4.avi", seconds=1.6, size=(160, 96), codec="mpeg4", bframes=2, object_size=32)


@pytest.fixture(scope="session")
def mjpeg_clip(make_clip):
    return make_clip("codec_mjpeg.avi", seconds=1.2, size=(160, 96), codec="mjpeg", object_size=32)


@pytest.fixture(scope="session")
def static_clip(make_clip):
    return make_clip("codec_static.mp4", seconds=3.0, size=(160, 96), velocity=(0, 0), object_size=32)


@pytest.fixture(scope="session")
def one_frame_clip(make_clip):
    return make_clip("codec_one.mp4", seconds=0.04, fps=25, size=(160, 96), object_size=32)


@pytest.fixture(scope="session")
def short_clip(make_clip):
    return make_clip("codec_short.mp4", seconds=0.24, fps=25, size=(160, 96), bframes=2, object_size=32)


@pytest.fixture(scope="session")
def annexb_clip(tmp_path_factory, h264_b_clip) -> Path:
    """The B-frame H.264 clip remuxed to a raw Annex-B ``.h264`` elementary stream."""
    out = tmp_path_factory.mktemp("annexb") / "clip.h264"
    with av.open(str(h264_b_clip.path)) as src, av.open(str(out), "w", format="h264") as dst:
        vin = src.streams.video[0]
        vout = dst.add_stream_from_template(vin)
        for packet in src.demux(vin):
            if packet.dts is None:
                continue
            packet.stream = vout
            dst.mux(packet)
    return out


def working_copy_signals(clip_path, cands, convert_rgb):
    """``iter_frame_signals`` of ``cands`` at analysis size 32x48 with a 64x96 working copy."""
    from transformers_llava_ov2.codec.probe import probe_video
    from transformers_llava_ov2.codec.signals import DecodeReport, iter_frame_signals

    probe = probe_video(clip_path)
    return list(
        iter_frame_signals(
            clip_path,
            probe,
            np.asarray(cands),
            (32, 48),
            use_mvs=True,
            report=DecodeReport(),
            convert_rgb=convert_rgb,
            work_hw=(64, 96),
        )
    )
