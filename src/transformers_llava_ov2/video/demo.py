"""The embedded default clip and the one on-disk clip cache (CLI, benchmarks and notebooks share it).

:func:`default_demo_clip` generates the demo clip deterministically on first use
(:func:`~.synthetic.write_demo_clip`) and caches it in :func:`cache_dir`; :func:`cached_clip` does the
same for any generated clip, keyed by its name, so benchmarks do not re-encode their inputs every run.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import av

from .container import AV_ERRORS

__all__ = [
    "DEMO_CLIP_FRAMES",
    "DEMO_CLIP_NAME",
    "DemoClipError",
    "cache_dir",
    "cached_clip",
    "default_demo_clip",
]

DEMO_CLIP_NAME = "demo_clip_v2.mp4"
DEMO_CLIP_FRAMES = 250  # write_demo_clip: 10 s at 25 fps


class DemoClipError(OSError):
    """No folder could hold a generated clip (every candidate cache folder failed)."""


def cache_dir() -> Path:
    """``$LLAVA_OV2_CACHE``, else ``$XDG_CACHE_HOME/transformers_llava_ov2``, else ``~/.cache/...``."""
    env = os.environ.get("LLAVA_OV2_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "transformers_llava_ov2"


def _frame_count_ok(path: Path, expected_frames: int | None) -> bool:
    if not path.is_file() or path.stat().st_size == 0:
        return False
    try:
        with av.open(str(path)) as container:
            frames = container.streams.video[0].frames
    except (*AV_ERRORS, IndexError):
        return False
    return expected_frames is None or frames in (0, expected_frames)  # some muxers record no count


def cached_clip(
    name: str,
    write: Callable[[Path], object],
    *,
    expected_frames: int | None = None,
    folder: str | os.PathLike | None = None,
) -> Path:
    """Path of the generated clip ``name``, written with ``write(path)`` on first use and reused after.

    The clip is written to a temporary name and renamed, so concurrent first uses never see half a file.
    Candidate folders: ``folder`` (default :func:`cache_dir`), then the system temporary folder.

    Raises:
        DemoClipError: no candidate folder is writable.
    """
    candidates = [Path(folder) if folder is not None else cache_dir()]
    candidates.append(Path(tempfile.gettempdir()) / "transformers_llava_ov2")
    last_error: Exception | None = None
    for base in candidates:
        path = base / name
        if _frame_count_ok(path, expected_frames):
            return path
        try:
            base.mkdir(parents=True, exist_ok=True)
            tmp = base / f".{name}.{os.getpid()}{path.suffix}"
            write(tmp)
            os.replace(tmp, path)
            return path
        except OSError as exc:
            last_error = exc
    raise DemoClipError(f"cannot write the generated clip {name!r} to {candidates[0]}: {last_error}")


def default_demo_clip(cache_dir: str | os.PathLike | None = None) -> Path:
    """Path of the embedded default clip (what ``make demo`` tokenizes), generated once and cached."""
    from .synthetic import write_demo_clip

    return cached_clip(DEMO_CLIP_NAME, write_demo_clip, expected_frames=DEMO_CLIP_FRAMES, folder=cache_dir)
