"""Bounded fuzz: corrupted copies of a valid clip either decode or raise VideoDecodeError, quickly."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from transformers_llava_ov2.errors import VideoDecodeError
from transformers_llava_ov2.video.readers import VideoTruncatedWarning
from transformers_llava_ov2.video.uniform import sample_uniform_frames

N_CASES = 30


def _mutate(data: bytes, rng: np.random.Generator) -> bytes:
    buf = bytearray(data)
    mode = rng.integers(0, 3)
    if mode in (0, 2):  # byte flips, anywhere (header included)
        for pos in rng.integers(0, len(buf), size=int(rng.integers(1, 40))):
            buf[pos] ^= int(rng.integers(1, 256))
    if mode in (1, 2):  # truncation
        buf = buf[: int(rng.integers(1, len(buf)))]
    return bytes(buf)


@pytest.fixture(scope="module")
def fuzz_sources(make_clip):
    mp4 = make_clip("fuzz.mp4", seconds=1.0, size=(96, 64), bframes=2, gop=8, object_size=16, faststart=True)
    mkv = make_clip("fuzz.mkv", seconds=1.0, size=(96, 64), bframes=2, gop=8, object_size=16)
    return [mp4.path.read_bytes(), mkv.path.read_bytes()]


@pytest.mark.timeout(20)
@pytest.mark.parametrize("case", range(N_CASES))
def test_fuzzed_clip_decodes_or_raises_video_decode_error(fuzz_sources, tmp_path, case):
    rng = np.random.default_rng(1000 + case)
    ext = [".mp4", ".mkv"][case % 2]
    path = tmp_path / f"fuzz_{case}{ext}"
    path.write_bytes(_mutate(fuzz_sources[case % 2], rng))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VideoTruncatedWarning)
        try:
            out = sample_uniform_frames(path, num_frames=4, seek=bool(case % 3 == 0) or "auto")
        except VideoDecodeError as exc:
            assert str(path) in str(exc)
            return
    assert out.frames.ndim == 4 and out.frames.shape[-1] == 3 and out.num_frames >= 2
    assert np.all(out.frame_indices < out.total_frames)
