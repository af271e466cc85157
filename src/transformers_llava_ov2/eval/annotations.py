"""The JumpScore dataset's annotation format: reading a local benchmark folder and writing one.

A benchmark folder ``DIR`` holds ``annotations.jsonl`` (or ``annotations.json``: a JSON list, or
``annotations.parquet``, read with pyarrow or pandas when installed): one record per video with

* ``id`` — unique (kept as a string);
* ``video_path`` — relative to ``DIR`` (also tried under ``DIR/videos/``, as the official task looks under
  its cache's ``videos/``) or absolute;
* ``question`` — the prompt text;
* ``answer`` — the annotated start times: a JSON list of numbers or ``"x.xs"`` strings (kept raw; the
  scorer parses it exactly as the official task does).

Records that lack a field, have an empty id or repeat an id are skipped and counted (``LoadedAnnotations``),
never fatal; a folder with no annotation file, or a file that does not parse, raises ``ValueError``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "ANNOTATION_NAMES",
    "Annotation",
    "LoadedAnnotations",
    "find_annotation_file",
    "load_annotations",
    "write_annotations",
]

ANNOTATION_NAMES: tuple[str, ...] = ("annotations.jsonl", "annotations.json", "annotations.parquet")
_FIELDS = ("id", "video_path", "question", "answer")


@dataclass(frozen=True)
class Annotation:
    """One benchmark record; ``video`` is the resolved path (it may not exist: the runner reports that)."""

    id: str
    video: Path
    question: str
    answer: Any
    video_path: str


@dataclass(frozen=True)
class LoadedAnnotations:
    """Records in file order, the file they came from, and ``(line/row, reason)`` of each skipped record."""

    records: list[Annotation]
    source: Path
    skipped: list[tuple[int, str]]


def find_annotation_file(data: str | os.PathLike) -> Path:
    """``data`` itself when it is a file, else the first of :data:`ANNOTATION_NAMES` inside the folder."""
    path = Path(data).expanduser()
    if path.is_file():
        return path
    if not path.is_dir():
        raise ValueError(
            f"benchmark data {str(data)!r} does not exist (expected a folder or annotation file)"
        )
    for name in ANNOTATION_NAMES:
        if (path / name).is_file():
            return path / name
    raise ValueError(f"benchmark folder {str(data)!r} has none of {', '.join(ANNOTATION_NAMES)}")


def _raw_records(path: Path) -> list[Any]:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        rows: list[Any] = []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                rows.append(ValueError(f"line {n} is not JSON ({exc.msg})"))
        return rows
    if suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"annotation file {str(path)!r} is not valid JSON: {exc}") from None
        if not isinstance(data, list):
            raise ValueError(f"annotation file {str(path)!r} must hold a JSON list of records")
        return data
    if suffix == ".parquet":
        return _parquet_rows(path)
    raise ValueError(f"annotation file {str(path)!r}: expected .jsonl, .json or .parquet")


def _parquet_rows(path: Path) -> list[Any]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        try:
            import pandas as pd
        except ImportError:
            raise ValueError(
                f"reading {str(path)!r} needs pyarrow or pandas (pip install pyarrow); or convert it to .jsonl"
            ) from None
        return pd.read_parquet(path).to_dict(orient="records")
    return pq.read_table(path).to_pylist()


def _resolve_video(root: Path, video_path: str) -> Path:
    p = Path(video_path).expanduser()
    if p.is_absolute():
        return p
    candidates = [root / p, root / "videos" / p]
    return next((c for c in candidates if c.exists()), candidates[0])


def load_annotations(data: str | os.PathLike) -> LoadedAnnotations:
    """Read a benchmark folder (or annotation file); see the module docstring for the format."""
    path = find_annotation_file(data)
    root = path.parent
    records: list[Annotation] = []
    skipped: list[tuple[int, str]] = []
    seen: set[str] = set()
    for n, row in enumerate(_raw_records(path), start=1):
        if isinstance(row, Exception):
            skipped.append((n, str(row)))
            continue
        if not isinstance(row, dict):
            skipped.append((n, "not an object"))
            continue
        missing = [f for f in _FIELDS if row.get(f) is None]
        if missing:
            skipped.append((n, f"missing {', '.join(missing)}"))
            continue
        vid = str(row["id"]).strip()
        if not vid:
            skipped.append((n, "empty id"))
            continue
        if vid in seen:
            skipped.append((n, f"repeated id {vid!r}"))
            continue
        seen.add(vid)
        video_path = str(row["video_path"])
        records.append(
            Annotation(vid, _resolve_video(root, video_path), str(row["question"]), row["answer"], video_path)
        )
    return LoadedAnnotations(records, path, skipped)


def write_annotations(path: str | os.PathLike, rows: Iterable[dict[str, Any]]) -> Path:
    """Write records as JSON lines (temporary file, then rename); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    with tmp.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    return path
