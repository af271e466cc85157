"""Output folders that appear whole or not at all, and the never-write-into-the-source rule."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .checks import ConversionError


def check_output_dir(out: str | os.PathLike | None, *sources: str | os.PathLike | None) -> Path:
    """The resolved output folder; fails if it exists or lies inside (or contains) a source folder."""
    if out is None:
        raise ConversionError("an output folder is required (or use a dry run)")
    out_path = Path(out).expanduser().resolve()
    if out_path.exists():
        raise ConversionError(f"output folder {str(out_path)!r} already exists; choose a new path")
    for source in sources:
        if source is None:
            continue
        src = Path(source).expanduser().resolve()
        if out_path == src or src in out_path.parents or out_path in src.parents:
            raise ConversionError(
                f"output folder {str(out_path)!r} overlaps the source {str(src)!r}; conversions never write "
                "into their source"
            )
    return out_path


@contextmanager
def atomic_output_dir(out: Path) -> Iterator[Path]:
    """Yields a temporary sibling folder, renamed to ``out`` on success and deleted on any failure."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(tmp, ignore_errors=True)
        raise ConversionError(f"output folder {str(out)!r} appeared while converting; nothing was written")
    os.replace(tmp, out)
