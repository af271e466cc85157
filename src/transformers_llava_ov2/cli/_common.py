"""Shared pieces of the ``llava-ov2`` commands: the user-error type, argument types, status and progress.

Imports nothing heavy at module level (no torch, transformers or matplotlib), so ``llava-ov2 --help`` and
``llava-ov2 COMMAND --help`` stay fast; each command imports what it needs inside its ``run``.
"""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import contextmanager
from pathlib import Path

PROG = "llava-ov2"
RELEASED_CHECKPOINT = "lmms-lab-encoder/LLaVA-OneVision-2-8B-Instruct"


class CliError(Exception):
    """A user error: printed as ``llava-ov2: error: <message>`` and exit status 2."""


def print_error(msg: str) -> None:
    """Prints ``llava-ov2: <msg>`` to stderr."""
    print(f"{PROG}: {msg}", file=sys.stderr, flush=True)


def positive_int(text: str) -> int:
    """``argparse`` type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def positive_float(text: str) -> float:
    """``argparse`` type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


@contextmanager
def status(message: str, *, quiet: bool = False):
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


def progress(total: int, desc: str, quiet: bool):
    """A tqdm bar on stderr (disabled when ``quiet``)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, file=sys.stderr, disable=True if quiet else None, leave=False)


def resolve_video(video: str | None, *, quiet: bool) -> Path:
    """The video file to work on: ``video`` checked to open, or the embedded default clip when ``None``."""
    from ..video.demo import DemoClipError, default_demo_clip

    if video is None:
        with status("Preparing the embedded default clip", quiet=quiet):
            try:
                return default_demo_clip()
            except DemoClipError as exc:
                raise CliError(str(exc)) from None
    from ..video.container import open_video, resolve_video_path

    with open_video(video):  # VideoDecodeError (exit 2) names a missing, empty, remote or unreadable input
        pass
    return resolve_video_path(video)


def check_model_dir(model_dir: str) -> Path:
    """A local checkpoint folder with a ``config.json``, or a :class:`CliError` saying what is wrong."""
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


class Parser(argparse.ArgumentParser):
    """``ArgumentParser`` whose errors name the sub-command and end with a hint."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n(run `{self.prog} --help` for all options)\n")
