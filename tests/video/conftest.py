"""Session-scoped synthetic clips for the video tests (all tiny, generated in a temp dir)."""

from __future__ import annotations

from pathlib import Path

import pytest

from transformers_llava_ov2.video.synthetic import write_audio_only_file


@pytest.fixture(scope="session")
def cfr_mp4(make_clip):
    """3 s, 25 fps, 160x96 H.264 MP4, IBBP, GOP 25 (75 frames), with an audio track."""
    return make_clip("cfr.mp4", seconds=3.0, size=(160, 96), bframes=2, gop=25, object_size=24, audio=True)


@pytest.fixture(scope="session")
def cfr_mkv(make_clip):
    """2 s, 25 fps, 160x96 H.264 Matroska (no frame count in the header: counted by demux)."""
    return make_clip("cfr.mkv", seconds=2.0, size=(160, 96), bframes=2, gop=10, object_size=24)


@pytest.fixture(scope="session")
def long_mp4(make_clip):
    """60 s, 25 fps, 128x72 H.264 MP4, keyframe every 25 frames (1500 frames): exercises seeking."""
    return make_clip("long.mp4", seconds=60.0, size=(128, 72), bframes=2, gop=25, object_size=16)


@pytest.fixture(scope="session")
def bad_files(tmp_path_factory, small_h264_clip) -> dict[str, Path]:
    """Bad inputs: missing, directory, empty, text renamed .mp4, audio-only, truncated mp4."""
    root = tmp_path_factory.mktemp("bad_inputs")
    text = root / "notes.mp4"
    text.write_text("this is not a video\n" * 20)
    empty = root / "empty.mp4"
    empty.write_bytes(b"")
    directory = root / "a_dir.mp4"
    directory.mkdir()
    data = Path(small_h264_clip.path).read_bytes()
    truncated = root / "truncated.mp4"
    truncated.write_bytes(data[: len(data) // 3])  # PyAV writes moov at the end: header lost
    return {
        "missing": root / "does_not_exist.mp4",
        "directory": directory,
        "empty": empty,
        "text": text,
        "audio_only": write_audio_only_file(root / "audio_only.m4a", seconds=0.5),
        "truncated_mp4": truncated,
    }
