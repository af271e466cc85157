"""Benchmark: codec-stream tokenization vs a plain PyAV decode of the same clip (the floor).

Generates (once, cached) a 720p H.264 clip with camera pan and object motion, then measures in one run,
interleaved, the median wall time of

* ``decode``: ``for frame in container.decode(stream)`` with ``thread_type="AUTO"`` (no conversion);
* ``tokenize``: :func:`transformers_llava_ov2.codec.pipeline.tokenize_video` with default settings;

prints their ratio, their CPU time (all threads) and the per-stage times (``decode`` = time the main
thread waited for decoded frames; ``decode_thread`` = the decode thread's own busy time, overlapped with
the rest), and the peak RSS of each (in fresh subprocesses) for two clip lengths to show that memory
does not grow with the clip length.

Usage::

    python perf/bench_codec_frontend.py            # 60 s and 30 s clips, 3 repeats
    python perf/bench_codec_frontend.py --quick    # 12 s and 6 s clips, 2 repeats
    python perf/bench_codec_frontend.py --side-by-side-only --video clip.mp4  # ratios only
    python perf/bench_codec_frontend.py --side-by-side-only --variant candidates_per_canvas=4  # + an option
    python perf/bench_codec_frontend.py --side-by-side-only --skip-synthetic --variant kernels=numpy
    python perf/bench_codec_frontend.py --alternate 5 --variant kernels=numpy  # A/B in fresh processes

Every clip (the synthetic one and ``--video`` clips, by default the real phone clip
``shared/videos/beach_puzzle_360x640.mp4`` when present) is also measured side by side: plain AUTO decode,
the physical floor (slice-threaded decode with motion-vector export, what the tokenizer must do), the
same floor with two decoders on the decode chunks (``codec.chunks``) and ``tokenize_video``.
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
DEFAULT_REAL = [
    REPO.parent / "shared" / "videos" / "beach_puzzle_360x640.mp4",
    Path("/work/shared/videos/beach_puzzle_360x640.mp4"),
]


def make_clip(seconds: float, cache_dir: Path) -> Path:
    """The cached benchmark clip: 1280x720, 30 fps, H.264 (B-frames, scene-cut keyframes)."""
    from functools import partial

    from transformers_llava_ov2.video.demo import cached_clip
    from transformers_llava_ov2.video.synthetic import write_synthetic_clip

    write = partial(
        write_synthetic_clip,
        seconds=seconds,
        fps=30,
        size=(1280, 720),
        codec="h264",
        bframes=3,
        crf=23,
        object_size=160,
        velocity=(7, 3),
        burst=(seconds * 0.3, seconds * 0.55),
        cut=seconds * 0.7,
        pan=(3, 1),
        pan_window=(seconds * 0.1, seconds * 0.25),
        preset="veryfast",
        scenecut=True,
        texture_cell=10,
        seed=7,
    )
    return cached_clip(f"bench_codec_720p_{int(seconds)}s.mp4", write, folder=cache_dir)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def decode_only(path: Path) -> float:
    import av

    t0 = time.perf_counter()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for _ in container.decode(stream):
            pass
    return time.perf_counter() - t0


def decode_mvs_slice(path: Path) -> float:
    """The physical floor of the tokenizer's decode: slice threading (deterministic motion-vector export,
    as ``CodecConfig.thread_type="SLICE"``), ``flags2=+export_mvs`` and the vectors read as arrays."""
    import av

    t0 = time.perf_counter()
    with av.open(str(path)) as container:
        _read_vectors(container.decode(_mv_stream(container)))
    return time.perf_counter() - t0


def _mv_stream(container):
    """The video stream set up as the floor decodes it: SLICE threading, ``flags2=+export_mvs``."""
    stream = container.streams.video[0]
    stream.thread_type = "SLICE"
    stream.codec_context.options = {"flags2": "+export_mvs"}
    return stream


def _read_vectors(frames) -> None:
    """Read every frame's motion vectors as an array (what the tokenizer does with them at least)."""
    for frame in frames:
        sd = frame.side_data.get("MOTION_VECTORS")
        if sd is not None:
            sd.to_ndarray()


def decode_mvs_chunks(path: Path, workers: int = 2) -> tuple[float, int]:
    """The floor with ``workers`` decoders at once on the decode chunks (``codec.chunks``: closed GOPs cut
    at IDR pictures, each in a fresh SLICE decoder with vector export, vectors read as arrays); returns
    the wall time and the number of chunks."""
    import threading

    from transformers_llava_ov2.codec.chunks import plan_chunks
    from transformers_llava_ov2.codec.decode import open_chunk
    from transformers_llava_ov2.codec.probe import probe_video

    t0 = time.perf_counter()
    probe = probe_video(path)
    chunks = list(plan_chunks(probe, probe.total_frames - 1))
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                if not chunks:
                    return
                chunk = chunks.pop(0)
            container, packets = open_chunk(path, probe, chunk)
            with container:
                stream = _mv_stream(container)
                _read_vectors(f for packet in packets for f in packet.decode())
                if not chunk.last:
                    _read_vectors(stream.codec_context.decode(None))

    n = len(chunks)
    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - t0, n


def side_by_side(path: Path, repeats: int, variants: dict[str, dict] | None = None) -> None:
    """Plain AUTO decode, the SLICE + MV-export floor and ``tokenize_video`` (defaults, then each of
    ``variants``: name -> ``CodecConfig`` overrides), interleaved (medians)."""
    variants = variants or {}
    decode_only(path)
    tokenize(path)
    runs: dict[str, list[float]] = {
        "decode": [],
        "floor": [],
        "floor2": [],
        "tokenize": [],
        **{k: [] for k in variants},
    }
    n_chunks = 0
    tokens = None
    facts: dict[str, str] = {}
    for _ in range(repeats):
        runs["decode"].append(decode_only(path))
        runs["floor"].append(decode_mvs_slice(path))
        seconds, n_chunks = decode_mvs_chunks(path)
        runs["floor2"].append(seconds)
        seconds, tokens = tokenize(path)
        runs["tokenize"].append(seconds)
        for name, overrides in variants.items():
            seconds, vt = tokenize(path, **overrides)
            runs[name].append(seconds)
            facts[name] = f"{vt.backend_info.get('candidates')} candidates, {vt.num_tokens} tokens"
    assert tokens is not None
    med = {k: statistics.median(v) for k, v in runs.items()}
    print(
        f"\n{path.name}: {tokens.total_frames} frames, {tokens.duration:.1f} s, "
        f"{tokens.backend_info.get('candidates')} candidates, {tokens.num_tokens} tokens; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print(
        f"  plain decode (AUTO) {med['decode']:.3f} s | decode SLICE + MV export (floor) {med['floor']:.3f} s "
        f"| tokenize_video {med['tokenize']:.3f} s"
    )
    print(
        f"  tokenize / plain decode = {med['tokenize'] / med['decode']:.2f}x (target <= 1.5x); "
        f"floor / plain decode = {med['floor'] / med['decode']:.2f}x; "
        f"tokenize / floor = {med['tokenize'] / med['floor']:.2f}x"
    )
    print(
        f"  floor with 2 decoders on {n_chunks} decode chunks (probe included) {med['floor2']:.3f} s = "
        f"{med['floor2'] / med['decode']:.2f}x plain decode"
    )
    for name in variants:
        print(f"  {name} ({facts[name]}): {med[name]:.3f} s = {med[name] / med['decode']:.2f}x plain decode")
    stages = tokens.stage_seconds
    print("  stages (last run): " + ", ".join(f"{k} {v:.3f}" for k, v in stages.items()))


def ab_child(path: str, overrides_json: str) -> None:
    """One fresh process of :func:`alternate`: after a warm-up, 5 interleaved plain decodes and
    ``tokenize_video`` runs; prints the medians (wall, CPU of the tokenize runs) as JSON."""
    overrides = json.loads(overrides_json)
    clip = Path(path)
    decode_only(clip)
    tokenize(clip, **overrides)
    plain, wall, cpu = [], [], []
    for _ in range(5):
        plain.append(decode_only(clip))
        c0 = _cpu_seconds()
        seconds, _ = tokenize(clip, **overrides)
        wall.append(seconds)
        cpu.append(_cpu_seconds() - c0)
    med = statistics.median
    print(json.dumps({"plain": med(plain), "wall": med(wall), "cpu": med(cpu)}))


def alternate(path: Path, rounds: int, variants: dict[str, dict]) -> None:
    """``tokenize_video`` with the defaults and each variant in fresh processes, alternating, ``rounds``
    times: the median wall / CPU over the rounds and the ratio to the plain decode of the same process
    (what an A/B of two settings needs on a machine whose speed drifts)."""
    settings = {"defaults": {}, **variants}
    rows: dict[str, list[dict]] = {k: [] for k in settings}
    for _ in range(rounds):
        for name, overrides in settings.items():
            out = subprocess.run(
                [sys.executable, __file__, "--ab-child", str(path), json.dumps(overrides)],
                check=True,
                capture_output=True,
                text=True,
            )
            rows[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"\n{path.name}: {rounds} rounds of fresh processes, load average {os.getloadavg()[0]:.2f}")
    med = statistics.median
    for name, rs in rows.items():
        ratios = [r["wall"] / r["plain"] for r in rs]
        print(
            f"  {name}: wall {med(r['wall'] for r in rs):.3f} s, CPU {med(r['cpu'] for r in rs):.3f} s, "
            f"tokenize / plain decode {med(ratios):.2f}x (rounds {min(ratios):.2f}-{max(ratios):.2f}x)"
        )


def parse_variant(text: str) -> tuple[str, dict]:
    """``"field=value[,field=value...]"`` -> (the text, ``CodecConfig`` overrides with typed values)."""
    from transformers_llava_ov2.codec.config import CodecConfig

    defaults = CodecConfig()
    overrides: dict = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        if not sep or not hasattr(defaults, key):
            raise SystemExit(f"--variant {text!r}: expected CodecConfig field=value, got {item!r}")
        kind = type(getattr(defaults, key))
        overrides[key] = (value == "True") if kind is bool else kind(value)
    return text, overrides


def tokenize(path: Path, **overrides):
    from transformers_llava_ov2.codec.pipeline import tokenize_video

    t0 = time.perf_counter()
    tokens = tokenize_video(path, **overrides)
    return time.perf_counter() - t0, tokens


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) of this process (Linux >= 4.0); False if unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _rss_mb(key: str) -> float:
    """``VmHWM`` (peak) or ``VmRSS`` (current) of this process in MiB, else ``ru_maxrss``."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(mode: str, path: str) -> None:
    """Run one measurement in this fresh process; print JSON with the peak RSS during the measured call."""
    import av  # noqa: F401
    import numpy  # noqa: F401
    import torch  # noqa: F401

    from transformers_llava_ov2.codec import pipeline  # noqa: F401

    _reset_peak_rss()
    base = _rss_mb("VmRSS")
    extra: dict = {}
    if mode == "decode":
        seconds = decode_only(Path(path))
    else:
        # the same output budget for both clip lengths, so only the input length differs
        seconds, tokens = tokenize(Path(path), num_canvases=16)
        extra = {"tokens": tokens.num_tokens, "canvases": tokens.num_canvases}
    peak = _rss_mb("VmHWM")
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak, "delta_rss_mb": peak - base, **extra}))


def run_child(mode: str, path: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short clips (12 s / 6 s), 2 repeats")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "llava_ov2_bench")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    parser.add_argument("--ab-child", nargs=2, metavar=("PATH", "OVERRIDES"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--alternate",
        type=int,
        metavar="ROUNDS",
        help="instead: defaults vs each --variant in fresh processes, alternating ROUNDS times (--video clips)",
    )
    parser.add_argument(
        "--video",
        type=Path,
        nargs="*",
        default=[p for p in DEFAULT_REAL if p.exists()],
        help="real clips measured side by side too (plain decode, floor, tokenize)",
    )
    parser.add_argument("--side-by-side-only", action="store_true", help="skip the per-stage and RSS parts")
    parser.add_argument(
        "--skip-synthetic", action="store_true", help="side by side on the --video clips only (no 720p clip)"
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="FIELD=VALUE[,...]",
        help="also time tokenize_video with these CodecConfig overrides, side by side (repeatable)",
    )
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    if args.ab_child:
        ab_child(*args.ab_child)
        return
    variants = dict(parse_variant(v) for v in args.variant)
    if args.alternate:
        for path in dict.fromkeys(p.resolve() for p in args.video):
            alternate(path, args.alternate, variants)
        return

    long_s, short_s = (12.0, 6.0) if args.quick else (60.0, 30.0)
    repeats = args.repeats or (2 if args.quick else 3)
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    clip = make_clip(long_s, args.cache_dir)
    clip_short = make_clip(short_s, args.cache_dir)
    print(f"cpu count {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}")

    real = list(dict.fromkeys(p.resolve() for p in args.video))  # the default lists one file twice
    for path in real if args.skip_synthetic else [clip, *real]:
        side_by_side(path, repeats, variants)
    if args.side_by_side_only:
        return

    # warm up (imports, page cache)
    decode_only(clip)
    tokenize(clip)
    dec_times, tok_times, stages, dec_cpu, tok_cpu = [], [], [], [], []
    tokens = None
    for _ in range(repeats):  # interleaved, so both see the same machine load
        c0 = _cpu_seconds()
        dec_times.append(decode_only(clip))
        c1 = _cpu_seconds()
        seconds, tokens = tokenize(clip)
        tok_cpu.append(_cpu_seconds() - c1)
        dec_cpu.append(c1 - c0)
        tok_times.append(seconds)
        stages.append(tokens.stage_seconds)
    dec, tok = statistics.median(dec_times), statistics.median(tok_times)
    assert tokens is not None
    print(f"\nclip {clip.name}: {tokens.total_frames} frames, {tokens.duration:.1f} s")
    print(
        f"tokens: {tokens.num_tokens} LLM tokens, {tokens.num_canvases} canvases "
        f"{tokens.canvases.shape[1]}x{tokens.canvases.shape[2]}, {len(tokens.groups)} groups, "
        f"{tokens.backend_info.get('candidates')} candidate frames, motion={tokens.backend_info.get('motion')}"
    )
    print(f"decode only (floor): median {dec:.3f} s  ({tokens.total_frames / dec:.0f} fps)  runs {dec_times}")
    print(f"tokenize_video:      median {tok:.3f} s  runs {[round(t, 3) for t in tok_times]}")
    print(f"ratio tokenize / decode = {tok / dec:.2f}x (target <= 1.5x)")
    print(
        f"CPU time (user+sys, all threads): decode only {statistics.median(dec_cpu):.3f} s, "
        f"tokenize_video {statistics.median(tok_cpu):.3f} s; load average now {os.getloadavg()[0]:.2f}"
    )
    print("per-stage seconds (median over runs):")
    for key in stages[0]:
        print(f"  {key:10s} {statistics.median(s.get(key, 0.0) for s in stages):.3f}")

    print("\npeak memory (fresh subprocess each; tokenize with num_canvases=16 for both lengths):")
    rows = []
    for path, label in ((clip_short, f"{short_s:.0f} s"), (clip, f"{long_s:.0f} s")):
        d = run_child("decode", path)
        t = run_child("tokenize", path)
        rows.append((label, d, t))
        print(
            f"  {label:6s} decode-only: peak +{d['delta_rss_mb']:.0f} MB | tokenize: peak "
            f"+{t['delta_rss_mb']:.0f} MB over the process after imports "
            f"(peak RSS {t['peak_rss_mb']:.0f} MB), {t['tokens']} tokens, {t['canvases']} canvases"
        )
    grow = rows[1][2]["delta_rss_mb"] / max(rows[0][2]["delta_rss_mb"], 1e-9)
    print(f"tokenize peak-RSS growth ratio {rows[1][0]} / {rows[0][0]} = {grow:.2f}x (clip length ratio 2x)")


if __name__ == "__main__":
    main()
