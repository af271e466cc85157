"""Uniform sampling of 32 frames from a 10-minute clip vs a naive full decode to RGB.

Generates (once, cached in the temp dir) a 10-minute 320x180 25 fps H.264 clip with a keyframe every
2 s, then times, side by side in this process (best of ``--repeats``):

* naive: decode every frame and convert each to RGB (what a "read all, then index" loader does);
* sampler, sequential: ``read_frames(..., seek=False)`` (one decode, RGB only for sampled frames);
* sampler, auto: ``sample_uniform_frames(num_frames=32)`` (cost model picks seek or sequential).

Also estimates the cost of one seek in decoded-frame equivalents (``SEEK_COST_FRAMES``).

Usage: ``python perf/bench_uniform_sampling.py [--minutes 10] [--frames 32] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import time
from functools import partial
from pathlib import Path

import av
import numpy as np

from transformers_llava_ov2.video.demo import cached_clip
from transformers_llava_ov2.video.frame_count import compute_num_frames, sample_indices
from transformers_llava_ov2.video.readers import SEEK_COST_FRAMES, read_frames
from transformers_llava_ov2.video.synthetic import write_synthetic_clip
from transformers_llava_ov2.video.uniform import sample_uniform_frames


def naive_full_decode(path: Path, indices: np.ndarray) -> np.ndarray:
    """Decode every frame to RGB, then index (the baseline)."""
    with av.open(str(path)) as c:
        c.streams.video[0].codec_context.thread_type = "AUTO"
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    return np.stack([frames[i] for i in indices])


def seek_cost_seconds(path: Path, total: int, fps: float, trials: int = 20) -> float:
    """Mean time of one keyframe seek plus decoding the first frame after it."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.codec_context.thread_type = "AUTO"
        dur = 1 / (fps * s.time_base)
        targets = np.linspace(total * 0.1, total * 0.9, trials).astype(int)
        t = time.perf_counter()
        for i in targets:
            c.seek(int(i * dur), backward=True, any_frame=False, stream=s)
            next(c.decode(s))
        return (time.perf_counter() - t) / trials


def best_of(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--clip", type=Path, default=None, help="use this video instead of the generated clip")
    args = ap.parse_args()

    if args.clip is None:
        write = partial(
            write_synthetic_clip,
            seconds=args.minutes * 60,
            fps=25,
            size=(320, 180),
            bframes=2,
            gop=50,
            object_size=32,
            velocity=(3, 1),
            preset="ultrafast",
        )
        path = cached_clip(f"bench_uniform_{args.minutes:g}min_320x180.mp4", write)
    else:
        path = args.clip
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        total, fps = s.frames, float(s.average_rate)
    n = compute_num_frames(total, fps, num_frames=args.frames)
    idx = sample_indices(total, n)
    print(f"clip: {path.name}, {total} frames at {fps:g} fps, sampling {n} frames")

    t_naive, ref = best_of(lambda: naive_full_decode(path, idx), args.repeats)
    t_seq, (seq, seq_stats) = best_of(lambda: read_frames(path, idx, seek=False), args.repeats)
    t_auto, auto = best_of(lambda: sample_uniform_frames(path, num_frames=args.frames), args.repeats)
    _, (_, auto_stats) = best_of(lambda: read_frames(path, idx, seek="auto"), 1)
    assert np.array_equal(ref, seq.frames) and np.array_equal(ref, auto.frames), "paths disagree"

    per_frame = t_seq / max(1, seq_stats.decoded_frames)
    seek_only = max(0.0, seek_cost_seconds(path, total, fps) - per_frame)
    print(f"naive full decode + RGB of every frame : {t_naive:8.3f} s")
    print(f"sampler, sequential (RGB of {n} only)   : {t_seq:8.3f} s  ({t_naive / t_seq:5.1f}x faster)")
    print(
        f"sampler, auto -> {auto_stats.path:10s}            : {t_auto:8.3f} s  ({t_naive / t_auto:5.1f}x faster; "
        f"{auto_stats.seeks} seeks, {auto_stats.decoded_frames} frames decoded)"
    )
    print(f"ratio naive / sample_uniform_frames     : {t_naive / t_auto:.1f}")
    print(
        f"decode cost {per_frame * 1e3:.3f} ms/frame; one seek ~ {seek_only * 1e3:.2f} ms "
        f"~ {seek_only / per_frame:.1f} frames (SEEK_COST_FRAMES = {SEEK_COST_FRAMES})"
    )


if __name__ == "__main__":
    main()
