"""Training records: LLaVA-style JSON/JSONL conversations and the official offline sample format.

Accepted record shapes (one JSON object per sample):

* ``{"messages": [{"role": "user"|"assistant"|"system", "content": str | [{"type": "text"|"image"|"video", ...}]}]}``
  (the official format and the Hugging Face chat format), or
* ``{"conversations": [{"from": "human"|"gpt"|"system", "value": str}]}`` (LLaVA),

with ``<image>`` / ``<video>`` placeholders in the text and media under ``image`` / ``images`` / ``video`` /
``videos`` (paths relative to the media root, or absolute). The **official offline format** adds
``patch_positions`` (one ``.npy`` of ``[n, 3]`` row-major ``(t, h, w)`` per image), ``fps`` and
``timestamp_decimal``: its images are the frames or canvases of one video. An optional ``modality`` key
(``image``/``frames``/``codec``/``text``) overrides the classification; offline records count as ``codec``
unless they say ``"modality": "frames"``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["BadRecord", "Record", "Turn", "classify", "iter_raw_records", "parse_record"]

IMAGE_PLACEHOLDER = "<image>"
VIDEO_PLACEHOLDER = "<video>"
_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}


class BadRecord(Exception):
    """A record that cannot train; ``reason`` is a short counted key (``missing_file``, ``too_long``...)."""

    def __init__(self, reason: str, detail: str = ""):
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


@dataclass(frozen=True)
class Turn:
    """One chat turn; ``text`` keeps ``<image>``/``<video>`` placeholders."""

    role: str
    text: str


@dataclass(frozen=True)
class Record:
    """A parsed record (paths resolved against the media root).

    Attributes:
        index: position in the data file.
        turns: chat turns in order (an optional leading system turn).
        images: image files, in placeholder order.
        videos: video files, in placeholder order.
        patch_positions: offline format: one ``.npy`` per image (``None`` otherwise).
        fps: offline format: frame rate that turns ``t`` into seconds.
        timestamp_decimals: offline format: decimals of the timestamp tags.
        modality: one of ``image``, ``frames``, ``codec``, ``text``, or ``video`` (either video back end).
    """

    index: int
    turns: tuple[Turn, ...]
    images: tuple[Path, ...] = ()
    videos: tuple[Path, ...] = ()
    patch_positions: tuple[Path, ...] | None = None
    fps: float | None = None
    timestamp_decimals: int | None = None
    modality: str = "text"

    @property
    def is_offline(self) -> bool:
        return self.patch_positions is not None


def iter_raw_records(path: str | os.PathLike) -> Iterator[tuple[int, Any]]:
    """``(index, raw)`` for each record of a ``.json`` list or a ``.jsonl`` file; bad lines give ``(i, None)``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"training data file {path} does not exist")
    with path.open(encoding="utf-8") as fh:
        head = fh.read(1)
        while head and head.isspace():
            head = fh.read(1)
        fh.seek(0)
        if head == "[":
            data = json.load(fh)
            yield from enumerate(data)
            return
        for i, line in enumerate(fh):
            if not line.strip():
                continue
            try:
                yield i, json.loads(line)
            except json.JSONDecodeError:
                yield i, None


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def classify(raw: Any) -> str:
    """Cheap modality of a raw record, without touching media: ``image``/``video``/``codec``/``frames``/``text``."""
    if not isinstance(raw, dict):
        return "text"
    declared = raw.get("modality")
    if declared in ("image", "frames", "codec", "text"):
        return declared
    if _as_list(raw.get("video")) or _as_list(raw.get("videos")):
        return "video"
    if raw.get("patch_positions"):
        return "codec"
    if _as_list(raw.get("image")) or _as_list(raw.get("images")):
        return "image"
    return "text"


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for item in content:
            if not isinstance(item, dict):
                raise BadRecord("bad_format", f"content item {item!r} is not an object")
            kind = item.get("type")
            if kind == "image" or (kind is None and "image" in item):
                parts.append(IMAGE_PLACEHOLDER)
            elif kind == "video" or (kind is None and "video" in item):
                parts.append(VIDEO_PLACEHOLDER)
            elif "text" in item:
                parts.append(str(item["text"]))
        return "".join(parts)
    raise BadRecord("bad_format", f"message content must be a string or a list, got {type(content).__name__}")


def _turns(raw: dict[str, Any]) -> tuple[Turn, ...]:
    if "messages" in raw:
        items, role_key, text_key = raw["messages"], "role", "content"
    elif "conversations" in raw:
        items, role_key, text_key = raw["conversations"], "from", "value"
    else:
        raise BadRecord("bad_format", "no 'messages' or 'conversations' list")
    if not isinstance(items, list) or not items:
        raise BadRecord("bad_format", "the conversation is empty or not a list")
    turns = []
    for item in items:
        if not isinstance(item, dict):
            raise BadRecord("bad_format", f"turn {item!r} is not an object")
        role = _ROLES.get(str(item.get(role_key, item.get("role", ""))).lower())
        if role is None:
            raise BadRecord("bad_format", f"unknown role {item.get(role_key)!r}")
        turns.append(Turn(role, _content_text(item.get(text_key, item.get("content", "")))))
    if not any(t.role == "assistant" and t.text.strip() for t in turns):
        raise BadRecord("no_assistant_turn", "no non-empty assistant turn to learn from")
    return tuple(turns)


def _paths(raw: dict[str, Any], keys: tuple[str, ...], root: Path) -> tuple[Path, ...]:
    out = []
    for key in keys:
        for value in _as_list(raw.get(key)):
            if isinstance(value, dict):  # {"path": ...} / {"image": ...}
                value = value.get("path") or value.get("image") or value.get("video")
            if not isinstance(value, (str, os.PathLike)):
                raise BadRecord("bad_format", f"{key} entry {value!r} is not a path")
            p = Path(value)
            out.append(p if p.is_absolute() else root / p)
    return tuple(out)


def parse_record(index: int, raw: Any, media_root: str | os.PathLike) -> Record:
    """Parse and check one raw record; raises :class:`BadRecord` with a counted reason."""
    if not isinstance(raw, dict):
        raise BadRecord("bad_json", f"record {index} is not a JSON object")
    root = Path(media_root)
    turns = _turns(raw)
    images = _paths(raw, ("image", "images"), root)
    videos = _paths(raw, ("video", "videos"), root)
    text = "".join(t.text for t in turns)
    positions = None
    if raw.get("patch_positions"):
        positions = _paths(raw, ("patch_positions",), root)
        if len(positions) != len(images):
            raise BadRecord(
                "placeholder_mismatch", f"{len(positions)} patch_positions files for {len(images)} images"
            )
        if videos:
            raise BadRecord("bad_format", "an offline (patch_positions) record cannot also list videos")
        n_img, n_vid = text.count(IMAGE_PLACEHOLDER), text.count(VIDEO_PLACEHOLDER)
        if not ((n_vid == 1 and n_img == 0) or (n_vid == 0 and n_img == len(images))):
            raise BadRecord(
                "placeholder_mismatch",
                f"offline record: {n_img} <image> / {n_vid} <video> placeholders for {len(images)} images "
                "(expected one <image> per image or a single <video>)",
            )
    else:
        for name, tag, media in (("image", IMAGE_PLACEHOLDER, images), ("video", VIDEO_PLACEHOLDER, videos)):
            if text.count(tag) != len(media):
                raise BadRecord(
                    "placeholder_mismatch", f"{text.count(tag)} {tag} placeholders for {len(media)} {name}(s)"
                )
    for p in (*images, *videos, *(positions or ())):
        if not p.is_file():
            raise BadRecord("missing_file", str(p))
    fps = raw.get("fps")
    decimals = raw.get("timestamp_decimal", raw.get("timestamp_decimals"))
    if positions is not None and (not isinstance(fps, (int, float)) or fps <= 0):
        raise BadRecord("bad_format", f"offline record without a positive 'fps' (got {fps!r})")
    return Record(
        index=index,
        turns=turns,
        images=images,
        videos=videos,
        patch_positions=positions,
        fps=float(fps) if fps is not None else None,
        timestamp_decimals=int(decimals) if decimals is not None else None,
        modality=classify(raw),
    )
