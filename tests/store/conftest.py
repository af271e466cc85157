"""Fixtures of the store tests: two small synthetic clips, results compared field by field."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest


@pytest.fixture(scope="session")
def clip_a(make_clip):
    """2 s, 25 fps, 160x96 H.264 with B-frames (50 frames)."""
    return make_clip("store_a.mp4", seconds=2.0, size=(160, 96), bframes=2, gop=10, object_size=24)


@pytest.fixture(scope="session")
def clip_b(make_clip):
    """A different 1.6 s clip (other content, other size)."""
    return make_clip("store_b.mp4", seconds=1.6, size=(128, 96), object_size=20, velocity=(3, 2), seed=3)


def assert_same_result(a, b, ignore: tuple[str, ...] = ()) -> None:
    """Every field of two CodecTokens / SampledFrames identical (arrays: dtype, shape and values).

    ``ignore``: fields to skip (``stage_seconds`` differs between two runs of a tokenizer).
    """
    assert type(a) is type(b)
    for f in dataclasses.fields(a):
        if f.name in ignore:
            continue
        x, y = getattr(a, f.name), getattr(b, f.name)
        if dataclasses.is_dataclass(x) and not isinstance(x, type):
            assert_same_result(x, y)
        elif isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and x.shape == y.shape, f.name
            assert np.array_equal(x, y), f.name
        else:
            assert x == y, f.name
            assert type(x) is type(y), f.name
