"""``llava-ov2 precompute``: tokenize a dataset's videos into a video store (resumable, parallel).

``llava-ov2 precompute --data FILE.jsonl|DIR --store DIR --backend codec|frames [overrides]
[--workers N] [--engine local|ray] [--shard i/n]`` walks the dataset, skips the videos already stored,
tokenizes the rest on a local process pool or a Ray Data job, logs failures to a JSONL file and prints a
summary. See ``docs/store.md``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ._common import CliError, positive_float, positive_int, print_error

NAME = "precompute"

_CODEC_FLAGS = ("max_visual_tokens", "num_canvases", "max_pixels")
_FRAMES_FLAGS = ("fps", "num_frames", "min_frames", "max_frames")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Registers ``precompute`` on the ``llava-ov2`` sub-parsers."""
    p = subparsers.add_parser(
        "precompute",
        help="tokenize a dataset's videos into a video store (resumable; local processes or Ray)",
        description="Tokenize every video of --data (a JSONL file with a video field, or a folder) into the "
        "video store --store, skipping videos already stored. Failures are logged, never fatal.",
    )
    p.add_argument(
        "--data", required=True, metavar="FILE.jsonl|DIR", help="dataset: JSONL records or a folder"
    )
    p.add_argument("--store", required=True, metavar="DIR", help="video store folder (created)")
    p.add_argument("--backend", choices=("codec", "frames"), default="codec", help="video front end")
    p.add_argument("--max-visual-tokens", type=positive_int, metavar="N", help="codec: LLM-token budget")
    p.add_argument("--num-canvases", type=positive_int, metavar="N", help="codec: canvas budget")
    p.add_argument("--max-pixels", type=positive_int, metavar="PX", help="codec: max pixels of a canvas")
    p.add_argument("--fps", type=positive_float, help="frames: sampling rate (default 1.0)")
    p.add_argument("--num-frames", type=positive_int, metavar="N", help="frames: fixed frame count")
    p.add_argument("--min-frames", type=positive_int, metavar="N", help="frames: minimum count (default 4)")
    p.add_argument("--max-frames", type=positive_int, metavar="N", help="frames: maximum count (default 32)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="any other config field (CodecConfig / FramesConfig), VALUE as JSON or text; repeatable",
    )
    p.add_argument("--workers", type=positive_int, metavar="N", help="processes / Ray tasks (default: CPUs)")
    p.add_argument(
        "--engine", choices=("local", "ray"), default="local", help="local process pool or Ray Data"
    )
    p.add_argument("--ray-address", metavar="ADDR", help="Ray cluster to join (default: start a local one)")
    p.add_argument("--shard", default="0/1", metavar="i/n", help="process only shard i of n (by path hash)")
    p.add_argument(
        "--image-format",
        choices=("npy", "png", "jpeg"),
        default="npy",
        help="entry images: npy (lossless raw, fastest to read), png (lossless, smaller) or jpeg (lossy)",
    )
    p.add_argument("--jpeg-quality", type=positive_int, default=95, metavar="Q", help="JPEG quality (1-100)")
    p.add_argument("--video-key", default="video", metavar="FIELD", help="JSONL field naming the video(s)")
    p.add_argument("--video-root", metavar="DIR", help="folder relative JSONL paths start from")
    p.add_argument("--failure-log", metavar="FILE", help="JSONL failure log (default <store>/failures.jsonl)")
    p.add_argument("--summary-json", metavar="FILE", help="also write the summary as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


def _parse_sets(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise CliError(f"--set expects FIELD=VALUE, got {item!r}")
        try:
            out[name.strip().replace("-", "_")] = json.loads(text)
        except ValueError:
            out[name.strip().replace("-", "_")] = text
    return out


def build_config(args: argparse.Namespace) -> Any:
    """The resolved front-end config of the arguments (the one the processor looks up with the same options)."""
    from ..store.config import resolve_config

    mine, other = (_CODEC_FLAGS, _FRAMES_FLAGS) if args.backend == "codec" else (_FRAMES_FLAGS, _CODEC_FLAGS)
    overrides = {n: getattr(args, n) for n in mine if getattr(args, n) is not None}
    for n in other:
        if getattr(args, n) is not None:
            print_error(f"note: --{n.replace('_', '-')} does not apply to --backend {args.backend}; ignored")
    if args.backend == "frames" and args.num_frames is not None and args.fps is None:
        overrides["fps"] = None  # as the video processor passes a fixed frame count
    overrides.update(_parse_sets(args.set))
    try:
        return resolve_config(args.backend, None, **overrides)
    except (ValueError, TypeError) as exc:
        raise CliError(f"invalid {args.backend} settings: {exc}") from None


def run(args: argparse.Namespace) -> int:
    from ..store import StoreError
    from ..store.dataset import list_videos, parse_shard, select_shard
    from ..store.precompute import PrecomputeSpec, run_precompute

    config = build_config(args)
    try:
        shard = parse_shard(args.shard)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if not 1 <= args.jpeg_quality <= 100:
        raise CliError(f"--jpeg-quality must be in 1..100, got {args.jpeg_quality}")
    try:
        videos, bad = list_videos(args.data, video_key=args.video_key, video_root=args.video_root)
    except (FileNotFoundError, ValueError, OSError) as exc:
        raise CliError(str(exc)) from None
    videos = select_shard(videos, *shard)
    if shard[1] > 1:
        bad = [b for b in bad if select_shard([b.where], *shard)]
    spec = PrecomputeSpec.create(
        args.store, config, image_format=args.image_format, jpeg_quality=args.jpeg_quality
    )
    try:
        summary = run_precompute(
            videos,
            spec,
            workers=args.workers,
            engine=args.engine,
            ray_address=args.ray_address,
            failure_log=args.failure_log,
            pre_failed=[(b.where, "BadRecord", b.reason) for b in bad],
            progress=not args.quiet,
        )
    except StoreError as exc:
        raise CliError(str(exc)) from None
    except ImportError as exc:
        raise CliError(str(exc)) from None
    print(summary.text())
    if summary.failed:
        log = args.failure_log or str(Path(spec.store) / "failures.jsonl")
        print(f"failures logged to {log}")
    if args.summary_json:
        Path(args.summary_json).write_text(json.dumps(summary.as_dict(), indent=1) + "\n")
    return 0
