"""The ``llava-ov2`` command line: ``tokenize`` (look at what a video front end keeps) and ``chat``.

``llava-ov2 tokenize [VIDEO] --out DIR`` runs the codec (default) or frames back end on a video (or on the
embedded default clip), prints a summary table and writes pictures plus ``summary.json`` to ``DIR``.
``llava-ov2 chat MODEL_DIR --video V --prompt "..."`` loads a checkpoint folder in the released layout and
streams the answer. See ``docs/cli.md``.

User errors (missing files, unreadable videos, out-of-range budgets, bad arguments) print one clear message
to stderr and exit with status 2; they never show a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from .errors import VideoDecodeError

__all__ = ["CliError", "build_parser", "default_demo_clip", "main"]

PROG = "llava-ov2"
DEMO_CLIP_NAME = "demo_clip_v1.mp4"
DEMO_CLIP_FRAMES = 250  # write_demo_clip: 10 s at 25 fps
RELEASED_CHECKPOINT = "lmms-lab-encoder/LLaVA-OneVision-2-8B-Instruct"


class CliError(Exception):
    """A user error: printed as ``llava-ov2: error: <message>`` and exit status 2."""


# ----------------------------------------------------------------------------------------------- helpers
def _err(msg: str) -> None:
    print(f"{PROG}: {msg}", file=sys.stderr, flush=True)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


@contextmanager
def _status(message: str, *, quiet: bool = False):
    """Print ``message ...`` to stderr, then ``done (x.xx s)`` when the block finishes."""
    if not quiet:
        print(f"{message} ...", end="", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    try:
        yield
    except BaseException:
        if not quiet:
            print(" failed", file=sys.stderr, flush=True)
        raise
    if not quiet:
        print(f" done ({time.perf_counter() - t0:.2f} s)", file=sys.stderr, flush=True)


def _progress(total: int, desc: str, quiet: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, file=sys.stderr, disable=True if quiet else None, leave=False)


def _cache_dir() -> Path:
    env = os.environ.get("LLAVA_OV2_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "transformers_llava_ov2"


def _valid_demo_clip(path: Path) -> bool:
    if not path.is_file() or path.stat().st_size == 0:
        return False
    try:
        import av

        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            frames = stream.frames
        return frames in (0, DEMO_CLIP_FRAMES)  # some muxers do not record the count
    except Exception:
        return False


def default_demo_clip(cache_dir: str | os.PathLike | None = None) -> Path:
    """Path of the embedded default clip, generated deterministically on first use and cached.

    The clip is written with :func:`~transformers_llava_ov2.codec.synthetic.write_demo_clip` into
    ``cache_dir`` (default ``$LLAVA_OV2_CACHE``, else ``$XDG_CACHE_HOME/transformers_llava_ov2``, else
    ``~/.cache/transformers_llava_ov2``); when that folder is not writable a temporary folder is used.
    """
    from .codec.synthetic import write_demo_clip

    candidates = [Path(cache_dir)] if cache_dir is not None else [_cache_dir()]
    candidates.append(Path(tempfile.gettempdir()) / "transformers_llava_ov2")
    last_error: Exception | None = None
    for folder in candidates:
        path = folder / DEMO_CLIP_NAME
        if _valid_demo_clip(path):
            return path
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f".{DEMO_CLIP_NAME}.{os.getpid()}.mp4"
            write_demo_clip(tmp)
            os.replace(tmp, path)
            return path
        except OSError as exc:
            last_error = exc
    raise CliError(f"cannot write the default demo clip to {candidates[0]}: {last_error}")


def _resolve_video(video: str | None, *, quiet: bool) -> Path:
    if video is None:
        with _status("Preparing the embedded default clip", quiet=quiet):
            return default_demo_clip()
    path = Path(video).expanduser()
    if not path.exists():
        raise CliError(f"video {video!r} does not exist")
    if path.is_dir():
        raise CliError(f"video {video!r} is a directory, not a video file")
    from .codec.container import open_video

    with open_video(path):  # raises VideoDecodeError (exit 2) before any slow work starts
        pass
    return path


# ----------------------------------------------------------------------------------------------- tokenize
def _tokenize_codec(args: argparse.Namespace, path: Path) -> tuple[Any, dict[str, Any]]:
    try:
        from .codec import CodecConfig, tokenize_video
    except ImportError as exc:  # the codec tokenizer is an in-tree module; this guards partial installs
        raise CliError(f"the codec back end is not available in this installation ({exc})") from None
    overrides: dict[str, Any] = {}
    if args.max_visual_tokens is not None:
        overrides["max_visual_tokens"] = args.max_visual_tokens
    if args.num_canvases is not None:
        overrides["num_canvases"] = args.num_canvases
    if args.max_pixels is not None:
        overrides["max_pixels"] = args.max_pixels
    for name in ("fps", "max_frames", "num_frames", "min_frames"):
        if getattr(args, name) is not None:
            _err(f"note: --{name.replace('_', '-')} applies to --backend frames only; ignored")
    try:
        config = CodecConfig(**overrides)
    except (ValueError, TypeError) as exc:
        raise CliError(f"invalid codec settings: {exc}") from None
    try:
        tokens = tokenize_video(path, config)
    except VideoDecodeError:
        raise
    except ValueError as exc:  # budget too small for one group, and other input-dependent limits
        raise CliError(f"cannot tokenize {str(path)!r} with these settings: {exc}") from None
    return tokens, {"config": _jsonable(getattr(config, "__dict__", {}))}


def _tokenize_frames(args: argparse.Namespace, path: Path) -> tuple[Any, Any, Any, dict[str, float]]:
    from .codec.uniform import sample_uniform_frames

    if args.num_frames is not None and args.fps is not None:
        raise CliError("pass either --fps or --num-frames, not both")
    if args.num_canvases is not None:
        _err("note: --num-canvases applies to --backend codec only; ignored")
    stages: dict[str, float] = {}
    t0 = time.perf_counter()
    sampled = sample_uniform_frames(
        path,
        fps=None if args.num_frames is not None else (args.fps or 1.0),
        num_frames=args.num_frames,
        min_frames=args.min_frames or 4,
        max_frames=args.max_frames or 32,
    )
    stages["decode"] = time.perf_counter() - t0
    frames_needed = sampled.num_frames + sampled.num_frames % 2
    if args.max_visual_tokens is not None and args.max_visual_tokens < frames_needed:
        raise CliError(
            f"--max-visual-tokens {args.max_visual_tokens} is below the minimum of {frames_needed} "
            f"(one token per sampled frame, {frames_needed} frames); raise it or lower --max-frames/--fps"
        )
    from .video_processing_llava_onevision2 import LlavaOnevision2VideoProcessor

    kwargs: dict[str, Any] = {"video_backend": "frames"}
    if args.max_visual_tokens is not None:
        kwargs["max_visual_tokens"] = args.max_visual_tokens
    if args.max_pixels is not None:
        kwargs["max_pixels"] = args.max_pixels
        kwargs["min_pixels"] = min(args.max_pixels, LlavaOnevision2VideoProcessor.min_pixels)
    t0 = time.perf_counter()
    arrays, info = LlavaOnevision2VideoProcessor().process_one(sampled, **kwargs)
    stages["preprocess"] = time.perf_counter() - t0
    return sampled, arrays, info, stages


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], align: str | None = None) -> str:
    """A plain-text table; ``align`` holds one ``<``/``>`` per column (default: right-aligned)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    align = align or ">" * len(headers)
    lines = []
    for k, row in enumerate(cells):
        lines.append("  ".join(f"{c:{a}{w}}" for c, a, w in zip(row, align, widths)).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _stage_line(stages: dict[str, float]) -> str:
    """``stage t | ... | total t``; a reported ``total`` wins (stages may overlap, e.g. the decode thread)."""
    parts = [f"{k} {v:.3f}s" for k, v in stages.items() if k != "total"]
    total = stages.get("total", sum(stages.values()))
    return " | ".join(parts) + f" | total {total:.3f}s"


def _codec_summary(tokens: Any, budget: int | None) -> tuple[str, dict[str, Any]]:
    from .video_types import ROLE_I

    m2 = tokens.merge_size**2
    rows, groups = [], []
    for g in tokens.groups:
        n_tok = int((tokens.token_group == g.index).sum()) // m2
        anchor_s = g.anchor_frame / tokens.fps if tokens.fps else float("nan")
        rows.append(
            [
                g.index,
                f"{g.start:.2f}",
                f"{g.end:.2f}",
                f"{g.end - g.start:.2f}",
                f"{g.anchor_frame} @ {anchor_s:.2f}s",
                f"{g.bit_cost:.4g}",
                g.num_canvases,
                n_tok,
            ]
        )
        groups.append(
            {
                "index": g.index,
                "start": g.start,
                "end": g.end,
                "anchor_frame": g.anchor_frame,
                "anchor_time": anchor_s,
                "bit_cost": g.bit_cost,
                "num_canvases": g.num_canvases,
                "num_tokens": n_tok,
            }
        )
    covered = float(sum(g.end - g.start for g in tokens.groups))
    n_i = int((tokens.canvas_roles == ROLE_I).sum())
    hc, wc = tokens.canvases.shape[1:3]
    gh, gw = tokens.grid_hw
    src_frames = len(np.unique(tokens.source_positions[:, 0]))
    duration = float(tokens.duration)
    lines = [
        f"Codec tokenization of {tokens.source}",
        f"  stream: {duration:.2f} s, {tokens.fps:.2f} fps, {tokens.total_frames} frames; "
        f"source frames resized to {tokens.source_frame_size[0]}x{tokens.source_frame_size[1]} px",
        "",
        _table(
            [
                "group",
                "start s",
                "end s",
                "span s",
                "anchor (frame @ time)",
                "bit cost",
                "canvases",
                "tokens",
            ],
            rows,
            ">>>><>>>",
        ),
        "",
        f"  canvases : {tokens.num_canvases} ({n_i} I + {tokens.num_canvases - n_i} P), {hc}x{wc} px, "
        f"{gh}x{gw} patches of {tokens.patch_size} px, merge {tokens.merge_size}",
        f"  tokens   : {tokens.num_tokens} LLM tokens ({tokens.num_patches} patches)"
        + (f", budget {budget}" if budget is not None else ""),
        f"  coverage : {covered:.2f} of {duration:.2f} s in groups"
        + (f" ({100 * covered / duration:.0f}%)" if duration else "")
        + f"; {src_frames} of {tokens.total_frames} source frames contribute tokens",
        f"  stages   : {_stage_line(dict(tokens.stage_seconds))}",
    ]
    facts = [f"{k}={v}" for k, v in tokens.backend_info.items() if isinstance(v, (str, int, float, bool))]
    if facts:
        lines.append(f"  signals  : {', '.join(facts[:8])}" + (" ..." if len(facts) > 8 else ""))
    summary = {
        "backend": "codec",
        "source": str(tokens.source),
        "duration": duration,
        "fps": float(tokens.fps),
        "total_frames": int(tokens.total_frames),
        "source_frame_size": list(tokens.source_frame_size),
        "max_visual_tokens": budget,
        "num_canvases": tokens.num_canvases,
        "num_i_canvases": n_i,
        "canvas_size": [int(hc), int(wc)],
        "grid_hw": [int(gh), int(gw)],
        "patch_size": tokens.patch_size,
        "merge_size": tokens.merge_size,
        "num_patches": tokens.num_patches,
        "num_tokens": tokens.num_tokens,
        "seconds_covered": covered,
        "source_frames_used": src_frames,
        "groups": groups,
        "canvases": [
            {"index": i, "role": "I" if int(r) == ROLE_I else "P", "group": int(g)}
            for i, (r, g) in enumerate(zip(tokens.canvas_roles, tokens.canvas_groups))
        ],
        "stage_seconds": dict(tokens.stage_seconds),
        "backend_info": dict(tokens.backend_info),
    }
    if tokens.timeline is not None:
        tl = tokens.timeline
        summary["timeline"] = {
            "bin_seconds": tl.bin_seconds,
            "quota": tl.quota,
            "boundaries": tl.boundaries,
            "anchor_times": tl.anchor_times,
            "energy": tl.energy,
            "smoothed": tl.smoothed,
        }
    return "\n".join(lines), summary


def _frames_summary(
    sampled: Any, info: Any, stages: dict[str, float], budget: int | None
) -> tuple[str, dict[str, Any]]:
    h, w = info.extra.get("frame_size", (0, 0))
    rows = [
        [k, idx, f"{ts:.2f}", n]
        for k, (idx, ts, n) in enumerate(zip(info.frame_indices, info.timestamps, info.block_tokens))
    ]
    duration = float(sampled.duration)
    step = duration / max(len(rows), 1)
    lines = [
        f"Uniform frames of {sampled.source}",
        f"  stream: {duration:.2f} s, {sampled.fps:.2f} fps, {sampled.total_frames} frames",
        "",
        _table(["#", "frame", "time s", "tokens"], rows),
        "",
        f"  frames   : {len(rows)} sampled (every {step:.2f} s), resized to {h}x{w} px"
        + (
            f", {info.extra['padded_frames']} repeated to reach an even count"
            if info.extra.get("padded_frames")
            else ""
        ),
        f"  tokens   : {info.num_tokens} LLM tokens ({info.num_patches} patches)"
        + (f", budget {budget}" if budget is not None else ""),
        f"  coverage : one frame per {step:.2f} s over {duration:.2f} s",
        f"  stages   : {_stage_line(stages)}",
    ]
    summary = {
        "backend": "frames",
        "source": str(sampled.source),
        "duration": duration,
        "fps": float(sampled.fps),
        "total_frames": int(sampled.total_frames),
        "max_visual_tokens": budget,
        "num_frames": len(rows),
        "frame_size": [int(h), int(w)],
        "num_patches": int(info.num_patches),
        "num_tokens": int(info.num_tokens),
        "seconds_covered": duration,
        "frames": [
            {"index": int(i), "time": float(t), "tokens": int(n)}
            for i, t, n in zip(info.frame_indices, info.timestamps, info.block_tokens)
        ],
        "grid_thw": info.grid_thw,
        "stage_seconds": stages,
    }
    return "\n".join(lines), summary


def _run_plots(jobs: list[tuple[str, Callable[[], Any]]], out: Path, quiet: bool) -> list[str]:
    from .visualize import save_figure

    written = []
    with _progress(len(jobs), "pictures", quiet) as bar:
        for name, make in jobs:
            fig = make()
            save_figure(fig, out / name)
            written.append(name)
            bar.update(1)
    return written


def cmd_tokenize(args: argparse.Namespace) -> int:
    """``llava-ov2 tokenize``: run a video front end, print a summary, write pictures and summary.json."""
    quiet = args.quiet
    path = _resolve_video(args.video, quiet=quiet)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CliError(f"--out {args.out!r} exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f"cannot create the output folder {args.out!r}: {exc}") from None

    from . import visualize as viz

    if args.backend == "codec":
        with _status(f"Codec tokenization of {path.name}", quiet=quiet):
            tokens, extra = _tokenize_codec(args, path)
        text, summary = _codec_summary(tokens, args.max_visual_tokens)
        summary.update(extra)
        jobs = [
            ("bitcost_timeline.png", lambda: viz.plot_bitcost_timeline(tokens)),
            ("canvases.png", lambda: viz.plot_canvases(tokens)),
            ("kept_heatmap.png", lambda: viz.plot_kept_heatmap(tokens)),
        ]
    else:
        with _status(f"Uniform frame sampling of {path.name}", quiet=quiet):
            sampled, _arrays, info, stages = _tokenize_frames(args, path)
        text, summary = _frames_summary(sampled, info, stages, args.max_visual_tokens)
        jobs = [("frames_contact_sheet.png", lambda: viz.plot_contact_sheet(sampled))]
    pictures = [] if args.no_pictures else _run_plots(jobs, out, quiet)
    summary["pictures"] = pictures
    summary["video"] = str(path)
    (out / "summary.json").write_text(json.dumps(_jsonable(summary), indent=2) + "\n")
    print(text)
    print(f"  output   : {out}/ " + ", ".join([*pictures, "summary.json"]))
    return 0


# ----------------------------------------------------------------------------------------------- chat
def _check_model_dir(model_dir: str) -> Path:
    path = Path(model_dir).expanduser()
    if not path.exists():
        hint = (
            f" (download the released checkpoint first, e.g. `hf download {RELEASED_CHECKPOINT} "
            "--local-dir DIR`)"
            if "/" in model_dir and not model_dir.startswith((".", "/", "~"))
            else ""
        )
        raise CliError(f"model folder {model_dir!r} does not exist{hint}")
    if not path.is_dir():
        raise CliError(f"model folder {model_dir!r} is a file, not a folder")
    if not (path / "config.json").is_file():
        raise CliError(f"model folder {model_dir!r} has no config.json; is it a checkpoint folder?")
    return path


def _resolve_dtype(name: str) -> Any:
    import torch

    return {"auto": "auto", "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[
        name
    ]


def _load_image(path_text: str) -> Any:
    from PIL import Image, UnidentifiedImageError

    path = Path(path_text).expanduser()
    if not path.is_file():
        raise CliError(f"image {path_text!r} does not exist or is not a file")
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise CliError(f"cannot read image {path_text!r}: {exc}") from None


def cmd_chat(args: argparse.Namespace) -> int:
    """``llava-ov2 chat``: load a checkpoint folder, process one image or video, stream the answer."""
    quiet = args.quiet
    model_path = _check_model_dir(args.model_dir)
    media: Any
    if args.video is not None:
        media = _resolve_video(args.video, quiet=quiet)
    else:
        media = _load_image(args.image)

    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor, TextStreamer
    from transformers.utils import logging as hf_logging

    if quiet:
        hf_logging.disable_progress_bar()

    from . import register_auto_classes

    register_auto_classes()
    try:
        with _status(f"Loading processor from {model_path}", quiet=quiet):
            processor = AutoProcessor.from_pretrained(str(model_path))
        with _status(f"Loading model from {model_path}", quiet=quiet):
            model = AutoModelForImageTextToText.from_pretrained(
                str(model_path), dtype=_resolve_dtype(args.dtype)
            )
    except (OSError, ValueError, KeyError) as exc:
        raise CliError(f"cannot load the checkpoint in {str(model_path)!r}: {exc}") from None
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = model.to(device).eval()

    content: list[dict[str, Any]] = []
    call_kwargs: dict[str, Any] = {}
    if args.video is not None:
        content.append({"type": "video"})
        video_kwargs: dict[str, Any] = {"video_backend": args.backend}
        if args.max_visual_tokens is not None:
            video_kwargs["max_visual_tokens"] = args.max_visual_tokens
        if args.backend == "frames":
            if args.fps is not None:
                video_kwargs["fps"] = args.fps
            if args.max_frames is not None:
                video_kwargs["max_frames"] = args.max_frames
        call_kwargs["videos"] = [str(media)]
        call_kwargs.update(video_kwargs)
    else:
        content.append({"type": "image"})
        call_kwargs["images"] = [media]
    content.append({"type": "text", "text": args.prompt})
    messages = [{"role": "user", "content": content}]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    what = f"{args.backend} video" if args.video is not None else "image"
    try:
        with _status(f"Processing the {what}", quiet=quiet):
            inputs = processor(text=[prompt], return_tensors="pt", **call_kwargs)
    except VideoDecodeError:
        raise
    except ValueError as exc:
        raise CliError(f"cannot process the input with these settings: {exc}") from None
    inputs = {k: (v.to(device) if hasattr(v, "to") else v) for k, v in inputs.items()}
    inputs = {k: v for k, v in inputs.items() if k not in ("video_metadata",)}
    if not quiet:
        n_vis = int((inputs["input_ids"] == model.config.image_token_id).sum())
        print(f"Prompt: {inputs['input_ids'].shape[-1]} tokens ({n_vis} visual). Answer:", file=sys.stderr)
    streamer = TextStreamer(processor.tokenizer, skip_prompt=True, skip_special_tokens=True)
    gen_kwargs: dict[str, Any] = {"max_new_tokens": args.max_new_tokens, "streamer": streamer}
    if args.temperature > 0:
        gen_kwargs.update(do_sample=True, temperature=args.temperature)
    else:
        gen_kwargs["do_sample"] = False
    with torch.inference_mode():
        model.generate(**inputs, **gen_kwargs)
    sys.stdout.flush()
    return 0


# ----------------------------------------------------------------------------------------------- parser
class _Parser(argparse.ArgumentParser):
    """``ArgumentParser`` whose errors name the sub-command and end with a hint."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n(run `{self.prog} --help` for all options)\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``llava-ov2`` argument parser."""
    parser = _Parser(
        prog=PROG,
        description="LLaVA-OneVision-2 tools: look at the video tokenization, chat with a checkpoint.",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    tok = sub.add_parser(
        "tokenize",
        help="tokenize a video (codec canvases or uniform frames); print a summary and write pictures",
        description="Run a video front end on VIDEO (default: the embedded demo clip), print a summary table "
        "and write pictures plus summary.json to --out.",
    )
    tok.add_argument("video", nargs="?", metavar="VIDEO", help="video file (default: embedded demo clip)")
    tok.add_argument("--backend", choices=("codec", "frames"), default="codec", help="video front end")
    tok.add_argument("--out", default="llava_ov2_out", metavar="DIR", help="output folder (created)")
    tok.add_argument(
        "--max-visual-tokens", type=_positive_int, metavar="N", help="LLM-token budget for the whole video"
    )
    tok.add_argument("--num-canvases", type=_positive_int, metavar="N", help="codec: canvas budget")
    tok.add_argument("--max-pixels", type=_positive_int, metavar="PX", help="max pixels of a canvas / frame")
    tok.add_argument("--fps", type=_positive_float, help="frames: sampling rate (default 1.0)")
    tok.add_argument("--num-frames", type=_positive_int, metavar="N", help="frames: fixed frame count")
    tok.add_argument(
        "--min-frames", type=_positive_int, metavar="N", help="frames: minimum count (default 4)"
    )
    tok.add_argument(
        "--max-frames", type=_positive_int, metavar="N", help="frames: maximum count (default 32)"
    )
    tok.add_argument("--no-pictures", action="store_true", help="skip the PNGs (table and summary.json only)")
    tok.add_argument("-q", "--quiet", action="store_true", help="no progress output on stderr")
    tok.set_defaults(func=cmd_tokenize)

    chat = sub.add_parser(
        "chat",
        help="answer a prompt about an image or a video with a checkpoint folder",
        description="Load a checkpoint folder in the released layout (config.json, weights, processor and "
        f"tokenizer files; e.g. a local copy of {RELEASED_CHECKPOINT}) and stream the answer.",
    )
    chat.add_argument("model_dir", metavar="MODEL_DIR", help="checkpoint folder")
    media = chat.add_mutually_exclusive_group(required=True)
    media.add_argument("--video", metavar="VIDEO", help="video file")
    media.add_argument("--image", metavar="IMAGE", help="image file")
    chat.add_argument("--prompt", required=True, help="the question")
    chat.add_argument("--backend", choices=("codec", "frames"), default="frames", help="video front end")
    chat.add_argument("--max-visual-tokens", type=_positive_int, metavar="N", help="video token budget")
    chat.add_argument("--fps", type=_positive_float, help="frames: sampling rate")
    chat.add_argument("--max-frames", type=_positive_int, metavar="N", help="frames: maximum count")
    chat.add_argument("--max-new-tokens", type=_positive_int, default=128, metavar="N")
    chat.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    chat.add_argument("--dtype", choices=("auto", "float32", "bfloat16", "float16"), default="auto")
    chat.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    chat.add_argument("-q", "--quiet", action="store_true", help="no status output on stderr")
    chat.set_defaults(func=cmd_chat)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``llava-ov2`` and ``python -m transformers_llava_ov2``; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and argument errors
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except CliError as exc:
        _err(f"error: {exc}")
        return 2
    except VideoDecodeError as exc:
        _err(f"error: {exc}")
        return 2
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
