"""The videos of a dataset: a JSONL file of records with a video field, or a folder of video files.

Records that cannot be used (invalid JSON, no video field) are returned as :class:`BadRecord` s, so that
a long job counts them instead of stopping. Sharding is by a hash of the path, so that ``--shard i/n``
splits any listing the same way on every machine.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["VIDEO_EXTENSIONS", "BadRecord", "list_videos", "parse_shard", "select_shard"]

VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".flv", ".ts", ".mts", ".mpg", ".mpeg", ".wmv", ".3gp"}
)
"""File name endings a folder walk picks up (case-insensitive)."""


@dataclass(frozen=True)
class BadRecord:
    """A JSONL line that names no usable video: ``where`` is ``FILE:LINE``, ``reason`` says why."""

    where: str
    reason: str


def _record_videos(record: object, key: str) -> list[str] | str:
    if not isinstance(record, dict):
        return f"expected a JSON object, got {type(record).__name__}"
    value = record.get(key)
    if isinstance(value, str) and value:
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return list(value)
    if value is None:
        return f"no {key!r} field"
    return f"field {key!r} must be a path or a list of paths, got {type(value).__name__}"


def _from_jsonl(path: Path, key: str, root: Path) -> tuple[list[str], list[BadRecord]]:
    videos: list[str] = []
    bad: list[BadRecord] = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                found = _record_videos(json.loads(line), key)
            except ValueError as exc:
                found = f"invalid JSON ({exc})"
            if isinstance(found, str):
                bad.append(BadRecord(f"{path}:{n}", found))
                continue
            for v in found:
                p = Path(v[len("file://") :] if v.startswith("file://") else v).expanduser()
                videos.append(str(p if p.is_absolute() else root / p))
    return videos, bad


def list_videos(
    data: str | os.PathLike, *, video_key: str = "video", video_root: str | os.PathLike | None = None
) -> tuple[list[str], list[BadRecord]]:
    """``(videos, bad_records)`` of a dataset, videos deduplicated in first-seen order.

    Args:
        data: a ``.jsonl`` file (one JSON object per line, ``video_key`` holding a path or a list of paths)
            or a folder (searched recursively for :data:`VIDEO_EXTENSIONS`, sorted).
        video_key: the record field naming the video(s).
        video_root: folder that relative paths in the JSONL are relative to (default: the JSONL's folder).

    Raises:
        FileNotFoundError: ``data`` does not exist.
        ValueError: ``data`` is a file that is not JSONL.
    """
    path = Path(data).expanduser()
    if path.is_dir():
        found = sorted(
            str(p) for p in path.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file()
        )
        return found, []
    if not path.exists():
        raise FileNotFoundError(f"dataset {str(data)!r} does not exist")
    if path.suffix.lower() not in (".jsonl", ".ndjson"):
        raise ValueError(f"dataset {str(data)!r}: expected a .jsonl file or a folder of videos")
    root = Path(video_root).expanduser() if video_root is not None else path.parent
    videos, bad = _from_jsonl(path, video_key, root)
    return list(dict.fromkeys(videos)), bad


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` to ``(i, n)`` with ``0 <= i < n``; ``ValueError`` otherwise."""
    try:
        i_text, n_text = text.split("/")
        i, n = int(i_text), int(n_text)
    except ValueError:
        raise ValueError(f"shard must be written i/n (e.g. 0/4), got {text!r}") from None
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"shard {text!r}: need n >= 1 and 0 <= i < n")
    return i, n


def select_shard(videos: list[str], index: int, count: int) -> list[str]:
    """The videos of shard ``index`` of ``count``: those whose path's SHA-1 is ``index`` modulo ``count``."""
    if count == 1:
        return list(videos)
    return [v for v in videos if int(hashlib.sha1(v.encode()).hexdigest(), 16) % count == index]
