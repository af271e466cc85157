"""``llava-ov2 tokenize``: run a video front end on a video, print a summary table, write pictures.

``llava-ov2 tokenize [VIDEO] --out DIR`` runs the codec (default) or frames back end on VIDEO (or on the
embedded default clip) and writes ``bitcost_timeline.png``, ``canvases.png``, ``kept_heatmap.png`` (codec)
or ``frames_contact_sheet.png`` (frames) plus ``summary.json`` to DIR. See ``docs/cli.md``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import VideoDecodeError
from ..video.options import VideoOptions
from ._common import CliError, positive_float, positive_int, print_error, progress, resolve_video, status

NAME = "tokenize"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Registers ``tokenize`` on the ``llava-ov2`` sub-parsers."""
    tok = subparsers.add_parser(
        "tokenize",
        help="tokenize a video (codec canvases or uniform frames); print a summary and write pictures",
        description="Run a video front end on VIDEO (default: the embedded demo clip), print a summary table "
        "and write pictures plus summary.json to --out.",
    )
    tok.add_argument("video", nargs="?", metavar="VIDEO", help="video file (default: embedded demo clip)")
    tok.add_argument("--backend", choices=("codec", "frames"), default="codec", help="video front end")
    tok.add_argument("--out", default="llava_ov2_out", metavar="DIR", help="output folder (created)")
    tok.add_argument(
        "--max-visual-tokens", type=positive_int, metavar="N", help="LLM-token budget for the whole video"
    )
    tok.add_argument("--num-canvases", type=positive_int, metavar="N", help="codec: canvas budget")
    tok.add_argument("--max-pixels", type=positive_int, metavar="PX", help="max pixels of a canvas / frame")
    tok.add_argument(
        "--budget-policy",
        choices=("target", "ceiling"),
        help="codec: spend --max-visual-tokens (target, default) or only cap by it (ceiling)",
    )
    tok.add_argument("--fps", type=positive_float, help=f"frames: sampling rate (default {VideoOptions.fps})")
    tok.add_argument("--num-frames", type=positive_int, metavar="N", help="frames: fixed frame count")
    tok.add_argument(
        "--min-frames",
        type=positive_int,
        metavar="N",
        help=f"frames: minimum count (default {VideoOptions.min_frames})",
    )
    tok.add_argument(
        "--max-frames",
        type=positive_int,
        metavar="N",
        help=f"frames: maximum count (default {VideoOptions.max_frames})",
    )
    tok.add_argument("--no-pictures", action="store_true", help="skip the PNGs (table and summary.json only)")
    tok.add_argument("-q", "--quiet", action="store_true", help="no progress output on stderr")
    tok.set_defaults(func=run)
    return tok


def _options(args: argparse.Namespace, backend: str) -> Any:
    """The processor's :class:`~..video.options.VideoOptions` for these arguments (one validation)."""
    from ..video_processing_llava_onevision2 import LlavaOnevision2VideoProcessor

    if args.num_frames is not None and args.fps is not None:
        raise CliError("pass either --fps or --num-frames, not both")
    if backend == "codec":
        for name in ("fps", "max_frames", "num_frames", "min_frames"):
            if getattr(args, name) is not None:
                print_error(f"note: --{name.replace('_', '-')} applies to --backend frames only; ignored")
    elif args.num_canvases is not None:
        print_error("note: --num-canvases applies to --backend codec only; ignored")
    kwargs: dict[str, Any] = {"video_backend": backend, "max_visual_tokens": args.max_visual_tokens}
    if backend == "codec":
        codec = {"num_canvases": args.num_canvases, "max_pixels": args.max_pixels}
        codec["budget_policy"] = args.budget_policy
        kwargs["codec_config"] = {k: v for k, v in codec.items() if v is not None}
    else:
        kwargs.update(fps=args.fps, num_frames=args.num_frames, min_frames=args.min_frames)
        kwargs["max_frames"] = args.max_frames
        if args.max_pixels is not None:
            kwargs["max_pixels"] = args.max_pixels
            kwargs["min_pixels"] = min(args.max_pixels, LlavaOnevision2VideoProcessor.min_pixels)
    try:
        return LlavaOnevision2VideoProcessor().options(**kwargs)
    except (ValueError, TypeError) as exc:
        raise CliError(f"invalid video settings: {exc}") from None


def _tokenize_codec(args: argparse.Namespace, path: Path) -> tuple[Any, dict[str, Any]]:
    from ..codec.items import codec_config_for
    from ..codec.pipeline import tokenize_video
    from ..report.summary import jsonable

    try:
        config = codec_config_for(_options(args, "codec"))
    except (ValueError, TypeError) as exc:
        raise CliError(f"invalid codec settings: {exc}") from None
    try:
        tokens = tokenize_video(path, config)
    except VideoDecodeError:
        raise
    except ValueError as exc:  # budget too small for one group, and other input-dependent limits
        raise CliError(f"cannot tokenize {str(path)!r} with these settings: {exc}") from None
    return tokens, {"config": jsonable(getattr(config, "__dict__", {}))}


def _tokenize_frames(args: argparse.Namespace, path: Path) -> tuple[Any, Any, dict[str, float]]:
    """The processor's frames back end, in its two steps (decode, preprocess) so each can be timed."""
    from ..video.frames import sample_from_file, sampled_frames_item

    opts = _options(args, "frames")
    stages: dict[str, float] = {}
    t0 = time.perf_counter()
    sampled = sample_from_file(path, opts)
    stages["decode"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    try:
        item = sampled_frames_item(sampled, opts)
    except VideoDecodeError:
        raise
    except ValueError as exc:
        raise CliError(f"--max-visual-tokens {args.max_visual_tokens}: {exc}") from None
    stages["preprocess"] = time.perf_counter() - t0
    return sampled, item.info, stages


def _run_plots(jobs: list[tuple[str, Callable[[], Any]]], out: Path, quiet: bool) -> list[str]:
    from ..report.plots import save_figure

    written = []
    with progress(len(jobs), "pictures", quiet) as bar:
        for name, make in jobs:
            fig = make()
            save_figure(fig, out / name)
            written.append(name)
            bar.update(1)
    return written


def run(args: argparse.Namespace) -> int:
    """``llava-ov2 tokenize``: run a video front end, print a summary, write pictures and summary.json."""
    quiet = args.quiet
    path = resolve_video(args.video, quiet=quiet)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CliError(f"--out {args.out!r} exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f"cannot create the output folder {args.out!r}: {exc}") from None

    from ..report import plots as viz
    from ..report.summary import codec_summary, frames_summary, jsonable

    if args.backend == "codec":
        with status(f"Codec tokenization of {path.name}", quiet=quiet):
            tokens, extra = _tokenize_codec(args, path)
        text, summary = codec_summary(tokens, args.max_visual_tokens)
        summary.update(extra)
        jobs = [
            ("bitcost_timeline.png", lambda: viz.plot_bitcost_timeline(tokens)),
            ("canvases.png", lambda: viz.plot_canvases(tokens)),
            ("kept_heatmap.png", lambda: viz.plot_kept_heatmap(tokens)),
        ]
    else:
        with status(f"Uniform frame sampling of {path.name}", quiet=quiet):
            sampled, info, stages = _tokenize_frames(args, path)
        text, summary = frames_summary(sampled, info, stages, args.max_visual_tokens)
        jobs = [("frames_contact_sheet.png", lambda: viz.plot_contact_sheet(sampled))]
    pictures = [] if args.no_pictures else _run_plots(jobs, out, quiet)
    summary["pictures"] = pictures
    summary["video"] = str(path)
    (out / "summary.json").write_text(json.dumps(jsonable(summary), indent=2) + "\n")
    print(text)
    print(f"  output   : {out}/ " + ", ".join([*pictures, "summary.json"]))
    return 0
