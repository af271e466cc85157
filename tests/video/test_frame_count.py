"""compute_num_frames / sample_indices against qwen-vl-utils ``smart_nframes`` semantics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from transformers_llava_ov2.video.frame_count import compute_num_frames, sample_indices


def qwen_oracle(total, video_fps, *, fps=None, nframes=None, min_frames=4, max_frames=None, factor=2):
    """Independent transcription of qwen-vl-utils ``smart_nframes`` (QwenLM/Qwen3-VL, qwen-vl-utils).

    ``max_frames=None`` means the upstream default ``min(FPS_MAX_FRAMES=768, total_frames)``.
    """
    if nframes is not None:
        n = round(nframes / factor) * factor
    else:
        rate = 2.0 if fps is None else fps
        lo = math.ceil(min_frames / factor) * factor
        hi = math.floor((min(768, total) if max_frames is None else max_frames) / factor) * factor
        n = total / video_fps * rate
        n = min(min(max(n, lo), hi), total)
        n = math.floor(n / factor) * factor
    if not (factor <= n <= total):
        raise ValueError(n)
    return n


# (total_frames, video_fps, kwargs, expected)
TABLE = [
    (487, 30.0, {"fps": 1.0}, 16),  # the 16.2 s sample clip at 1 fps -> floor(16.23) = 16
    (487, 30.0, {"fps": 2.0}, 32),
    (487, 30.0, {}, 32),  # default fps = 2.0
    (487, 30.0, {"fps": 1.0, "max_frames": 8}, 8),
    (487, 30.0, {"fps": 0.1}, 4),  # min_frames
    (487, 30.0, {"fps": 0.1, "min_frames": 5}, 6),  # ceil_by_factor(5) = 6
    (487, 30.0, {"fps": 1.0, "max_frames": 9}, 8),  # floor_by_factor(9) = 8
    (100, 25.0, {"fps": 1.0}, 4),  # 4 s -> 4
    (100, 25.0, {"fps": 1.5}, 6),
    (125, 25.0, {"fps": 1.0}, 4),  # 5 s -> floor_by_factor(5) = 4
    (10, 25.0, {"fps": 30.0}, 10),  # capped at total_frames
    (3, 25.0, {"fps": 1.0}, 2),  # min 4 > total 3 -> floor(min(4, 2, 3)) = 2
    (15000, 25.0, {"fps": 2.0}, 768),  # FPS_MAX_FRAMES
    (15000, 25.0, {"num_frames": 32}, 32),
    (15000, 25.0, {"num_frames": 33}, 32),  # round_by_factor(33) = round(16.5)*2 = 32 (half to even)
    (15000, 25.0, {"num_frames": 35}, 36),
    (15000, 25.0, {"num_frames": 31, "frame_factor": 1}, 31),
    (487, 30.0, {"fps": 1.0, "frame_factor": 4}, 16),
]


@pytest.mark.parametrize(("total", "vfps", "kwargs", "expected"), TABLE)
def test_rule_table(total, vfps, kwargs, expected):
    assert compute_num_frames(total, vfps, **kwargs) == expected
    assert compute_num_frames(total, vfps, strict=True, **kwargs) == expected


def test_matches_oracle_on_a_grid():
    checked = 0
    for total in [1, 2, 3, 4, 5, 7, 8, 31, 100, 487, 1000, 5000, 30000]:
        for vfps in [1.0, 23.976, 25.0, 30.0, 60.0]:
            for fps in [0.1, 0.5, 1.0, 2.0, 4.0]:
                for mn, mx in [(4, 768), (5, 33), (2, 32), (8, 8)]:
                    try:
                        want = qwen_oracle(total, vfps, fps=fps, min_frames=mn, max_frames=mx)
                    except ValueError:
                        with pytest.raises(ValueError):
                            compute_num_frames(
                                total, vfps, fps=fps, min_frames=mn, max_frames=mx, strict=True
                            )
                        continue
                    got = compute_num_frames(total, vfps, fps=fps, min_frames=mn, max_frames=mx)
                    assert got == want, (total, vfps, fps, mn, mx)
                    checked += 1
    assert checked > 1000


def test_default_max_is_total_like_upstream():
    # Upstream's default max_frames is min(768, total); ours is 768 then clamped by total: same result.
    for total in [5, 9, 100, 767, 768, 769, 2000]:
        assert compute_num_frames(total, 1.0, fps=100.0) == qwen_oracle(total, 1.0, fps=100.0)


@pytest.mark.parametrize(
    ("total", "kwargs", "graceful"),
    [
        (1, {"fps": 1.0}, 2),  # upstream raises (0 frames); we pad to 2
        (1, {"num_frames": 8}, 2),  # upstream raises (8 > 1)
        (3, {"num_frames": 8}, 4),  # all 3 frames + 1 repeated
        (5, {"num_frames": 100}, 6),
        (100, {"num_frames": 1}, 2),  # round_by_factor(1) = 0 -> factor
    ],
)
def test_out_of_range_strict_raises_graceful_pads(total, kwargs, graceful):
    with pytest.raises(ValueError, match="nframes should be in interval"):
        compute_num_frames(total, 25.0, strict=True, **kwargs)
    n = compute_num_frames(total, 25.0, **kwargs)
    assert n == graceful and n % 2 == 0


def test_argument_errors():
    with pytest.raises(ValueError, match="either fps or num_frames"):
        compute_num_frames(100, 25.0, fps=1.0, num_frames=4)
    with pytest.raises(ValueError):
        compute_num_frames(0, 25.0)
    with pytest.raises(ValueError):
        compute_num_frames(100, 0.0, fps=1.0)


@pytest.mark.parametrize(("total", "n"), [(487, 16), (487, 32), (100, 4), (10, 10), (1500, 32), (7, 2)])
def test_indices_are_rounded_linspace(total, n):
    idx = sample_indices(total, n)
    assert idx.dtype == np.int64 and len(idx) == n
    np.testing.assert_array_equal(idx, np.linspace(0, total - 1, n).round().astype(np.int64))
    assert idx[0] == 0 and idx[-1] == total - 1
    assert np.all(np.diff(idx) > 0)


def test_indices_known_values():
    assert sample_indices(487, 16).tolist() == [
        0,
        32,
        65,
        97,
        130,
        162,
        194,
        227,
        259,
        292,
        324,
        356,
        389,
        421,
        454,
        486,
    ]
    assert sample_indices(10, 4).tolist() == [0, 3, 6, 9]
    assert sample_indices(4, 3).tolist() == [0, 2, 3]  # 1.5 rounds half to even -> 2


def test_indices_match_torch_linspace():
    torch = pytest.importorskip("torch")
    for total in range(1, 400, 7):
        for n in range(2, min(total, 64) + 1, 2):
            ref = torch.linspace(0, total - 1, n).round().long().numpy()
            np.testing.assert_array_equal(sample_indices(total, n), ref)


def test_padding_repeats_last_frame():
    assert sample_indices(3, 4).tolist() == [0, 1, 2, 2]
    assert sample_indices(1, 2).tolist() == [0, 0]
