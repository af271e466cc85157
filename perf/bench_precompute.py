"""Benchmark: dataset-scale precompute into a video store, and reading entries back vs tokenizing.

Generates (once, cached) a set of synthetic H.264 clips of mixed lengths and sizes, then measures

* ``llava-ov2 precompute``'s local engine with 1 and 2 workers on a fresh store each: videos/s, hours
  of video per wall hour, scaling efficiency ``(wall_1 / wall_2) / 2``;
* the store's size: bytes per LLM token and GB per hour of video, for the entry image formats
  ``png`` (default, lossless), ``npy`` (lossless raw) and ``jpeg`` (q95) — the same entries re-encoded;
* the peak RSS of one worker tokenizing the shortest and the longest clip of the largest frame size
  (fresh subprocesses), to show that memory does not grow with the clip length;
* reading an entry (``VideoStore.get``, checksums verified, and with ``verify=False``) vs tokenizing the
  video (the entry's recorded compute time), median over the set; target >= 20x.

Usage::

    python perf/bench_precompute.py            # 40 clips, 5-120 s, 320x240..1280x720
    python perf/bench_precompute.py --quick    # 12 clips, 5-40 s, 320x240..854x480
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

SIZES = ((320, 240), (640, 360), (854, 480), (1280, 720))


def clip_plan(n: int, max_seconds: float, sizes: tuple) -> list[tuple[float, tuple[int, int], int]]:
    """``(seconds, (w, h), fps)`` of ``n`` clips: lengths spread 5..max_seconds, sizes and rates cycled."""
    out = []
    for i in range(n):
        frac = ((i * 7) % n) / max(n - 1, 1)  # a fixed shuffle of the lengths
        out.append((round(5 + frac * (max_seconds - 5), 1), sizes[i % len(sizes)], (25, 30)[i % 2]))
    return out


def make_clips(plan: list, cache_dir: Path) -> list[Path]:
    from transformers_llava_ov2.video.synthetic import write_synthetic_clip

    cache_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    t0 = time.perf_counter()
    for i, (secs, size, fps) in enumerate(plan):
        path = cache_dir / f"clip_{i:02d}_{int(secs)}s_{size[0]}x{size[1]}_{fps}.mp4"
        if not path.exists():
            tmp = path.with_suffix(".tmp.mp4")
            write_synthetic_clip(
                tmp,
                seconds=secs,
                fps=fps,
                size=size,
                bframes=2,
                object_size=max(24, size[1] // 5),
                velocity=(3 + i % 4, 1 + i % 3),
                burst=(secs * 0.2, secs * 0.6),
                cut=secs * 0.7,
                preset="ultrafast",
                seed=i,
            )
            tmp.rename(path)
        paths.append(path)
    print(f"clips ready: {len(paths)} in {time.perf_counter() - t0:.1f} s ({cache_dir})")
    return paths


def _status_mb(field: str) -> float:
    """``VmRSS`` / ``VmHWM`` of this process in MB (Linux), else the peak from ``getrusage``."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_rss(path: str) -> None:
    """Run in a fresh subprocess: tokenize one clip with one torch thread, print RSS figures (MB).

    ``before_mb`` is the resident size after the imports; ``peak_mb`` the peak resident size of the
    process (imports included), so ``peak_mb - before_mb`` bounds what tokenizing the clip added.
    """
    import torch

    from transformers_llava_ov2.codec import tokenize_video

    torch.set_num_threads(1)
    before = _status_mb("VmRSS")
    tokenize_video(path)
    print(json.dumps({"before_mb": before, "peak_mb": _status_mb("VmHWM")}))


def run_workers(videos: list[str], workers: int, root: Path):
    from transformers_llava_ov2.codec import CodecConfig
    from transformers_llava_ov2.store.precompute import PrecomputeSpec, run_precompute

    spec = PrecomputeSpec.create(root / f"store_w{workers}", CodecConfig())
    summary = run_precompute(videos, spec, workers=workers, progress=False)
    print(
        f"workers={workers}: {summary.done} done, {summary.failed} failed in {summary.wall_seconds:.1f} s -> "
        f"{summary.videos_per_second:.3f} videos/s, {summary.video_hours_per_wall_hour:.1f} h video / wall h, "
        f"{summary.video_hours_per_compute_hour:.1f} h video / worker-h, peak worker RSS {summary.peak_rss_mb:.0f} MB"
        f" (load {os.getloadavg()[0]:.2f})"
    )
    return summary, spec


def store_sizes(store_root: str) -> dict[str, float]:
    """Bytes per LLM token and GB per hour of video of the store's entries, per image format."""
    from transformers_llava_ov2.store import VideoStore
    from transformers_llava_ov2.store.images import ImageCodec
    from transformers_llava_ov2.store.serialize import encode_result

    store = VideoStore(store_root)
    totals = {"png": 0, "npy": 0, "jpeg": 0}
    tokens = seconds = 0.0
    meta_bytes = 0
    for key in list(store.keys()):
        result = store.read(key)
        tokens += result.num_tokens
        seconds += result.duration
        meta_bytes += sum((store.entry_dir(key) / n).stat().st_size for n in ("meta.json", "_DONE"))
        for fmt in totals:
            files, _ = encode_result(result, ImageCodec(format=fmt))
            totals[fmt] += sum(len(b) for b in files.values())
    out = {}
    for fmt, b in totals.items():
        b += meta_bytes
        out[fmt] = {"bytes_per_token": b / tokens, "gb_per_video_hour": b / 1e9 / (seconds / 3600)}
    out["tokens"], out["video_seconds"] = tokens, seconds
    return out


def read_vs_tokenize(store_root: str, videos: list[str], tmp: Path) -> dict[str, dict[str, float]]:
    """Median (and min) of tokenize seconds / read seconds per entry, per image format and verification."""
    from transformers_llava_ov2.codec import CodecConfig
    from transformers_llava_ov2.store import VideoStore

    src = VideoStore(store_root)
    compute = {v: src.info(src.key(v, CodecConfig()))["timings"]["compute_seconds"] for v in videos}
    out = {}
    for fmt in ("png", "npy", "jpeg"):
        dst = VideoStore(tmp / f"read_{fmt}", image_format=fmt)
        for v in videos:
            dst.put(v, CodecConfig(), src.get(v, CodecConfig()))
        for verify in (True, False):
            store = VideoStore(tmp / f"read_{fmt}", verify=verify)
            ratios, reads = [], []
            for v in videos:
                store.key(v, CodecConfig())  # path index warm, as in a training epoch
                t0 = time.perf_counter()
                store.get(v, CodecConfig())
                reads.append(time.perf_counter() - t0)
                ratios.append(compute[v] / reads[-1])
            out[f"{fmt}{'' if verify else ' (verify=False)'}"] = {
                "median_read_ms": 1000 * statistics.median(reads),
                "median_ratio": statistics.median(ratios),
                "min_ratio": min(ratios),
            }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="12 clips of 5-40 s up to 854x480")
    parser.add_argument("--clips", type=int, default=None, help="number of clips (default 40, quick 12)")
    parser.add_argument(
        "--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "llava_ov2_bench_precompute"
    )
    parser.add_argument("--child-rss", metavar="PATH", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_rss:
        child_rss(args.child_rss)
        return
    n = args.clips or (12 if args.quick else 40)
    plan = clip_plan(n, 40.0 if args.quick else 120.0, SIZES[:3] if args.quick else SIZES)
    print(f"cpu count {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}")
    videos = [str(p) for p in make_clips(plan, args.cache_dir / ("quick" if args.quick else "full"))]
    print(
        f"set: {n} clips, {sum(p[0] for p in plan) / 60:.1f} min of video, lengths 5-{max(p[0] for p in plan)} s"
    )
    with tempfile.TemporaryDirectory(prefix="bench_precompute_") as tmp:
        s1, spec1 = run_workers(videos, 1, Path(tmp))
        s2, _ = run_workers(videos, 2, Path(tmp))
        eff = (s1.wall_seconds / s2.wall_seconds) / 2
        print(f"scaling 1 -> 2 workers: {s1.wall_seconds / s2.wall_seconds:.2f}x, efficiency {eff:.0%}")
        sizes = store_sizes(spec1.store)
        for fmt in ("png", "npy", "jpeg"):
            v = sizes[fmt]
            print(
                f"store {fmt:>4}: {v['bytes_per_token']:.0f} bytes/token, {v['gb_per_video_hour']:.3f} GB per video hour"
            )
        biggest = max(p[1] for p in plan)  # same frame size, shortest vs longest: memory vs length
        by_len = sorted((p[0], v) for p, v in zip(plan, videos) if p[1] == biggest)
        for secs, path in (by_len[0], by_len[-1]):
            out = subprocess.run(
                [sys.executable, __file__, "--child-rss", path], capture_output=True, text=True, check=True
            ).stdout
            rss = json.loads(out.strip().splitlines()[-1])
            print(
                f"peak RSS tokenizing a {secs:.0f} s clip: {rss['peak_mb']:.0f} MB "
                f"(resident after imports {rss['before_mb']:.0f} MB)"
            )
        print(
            f"mean tokenize time per clip (workers=1 run): {1000 * s1.task_seconds / max(s1.done, 1):.0f} ms"
        )
        for name, rv in read_vs_tokenize(spec1.store, videos, Path(tmp)).items():
            print(
                f"read entry [{name}]: median {rv['median_read_ms']:.1f} ms; tokenize / read = "
                f"{rv['median_ratio']:.0f}x median, {rv['min_ratio']:.0f}x min"
            )
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
