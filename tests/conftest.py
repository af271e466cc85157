"""Fixtures shared by all test suites.

``make_clip`` generates small deterministic synthetic videos (PyAV + libx264, see
``transformers_llava_ov2.video.synthetic``) into a session temp dir, cached by their arguments.
``shared_videos_dir`` is ``../shared/videos`` next to the repository root (skips when absent).
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_VIDEOS = REPO_ROOT.parent / "shared" / "videos"


@pytest.fixture(scope="session")
def make_clip(tmp_path_factory):
    """``make_clip(name, **write_synthetic_clip_kwargs) -> SyntheticClip`` (cached per session by name)."""
    from transformers_llava_ov2.video.synthetic import write_synthetic_clip

    root = tmp_path_factory.mktemp("synthetic_clips")
    cache: dict[str, object] = {}

    def _make(name: str, **kwargs):
        if name not in cache:
            cache[name] = write_synthetic_clip(root / name, **kwargs)
        return cache[name]

    return _make


@pytest.fixture(scope="session")
def small_h264_clip(make_clip):
    """2 s, 25 fps, 160x96 H.264 MP4 with B-frames and a keyframe every 10 frames (50 frames)."""
    return make_clip("small_h264.mp4", seconds=2.0, size=(160, 96), bframes=2, gop=10, object_size=24)


@pytest.fixture(scope="session")
def shared_videos_dir() -> Path:
    """``../shared/videos`` (real sample clips); skips the test when the folder is absent."""
    if not SHARED_VIDEOS.is_dir():
        pytest.skip(f"real sample videos not available: {SHARED_VIDEOS} is absent (fresh clone)")
    return SHARED_VIDEOS
