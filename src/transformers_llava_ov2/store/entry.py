"""One store entry on disk: atomic write (temporary folder + rename + done marker) and checked read.

Layout of an entry folder (``<store>/entries/<key[:2]>/<key>/``)::

    meta.json     what the entry is (source, config, timings, the typed result's scalars) and, under
                  "files", the size and BLAKE2b-128 checksum of every other file
    arrays.npz    per-token / per-frame metadata arrays (exact dtypes)
    images/...    canvases or frames (png / jpeg files, or one images.npy)
    _DONE         written last: {"key": ..., "meta_blake2b": checksum of meta.json}

A writer fills ``<store>/tmp/<key>.<pid>.<random>/``, fsyncs it, and renames it to the entry path. The
rename is atomic and fails when the entry already exists, so a killed writer leaves only a temporary
folder (never read), and of two concurrent writers of the same entry one wins and the other discards
its copy. A reader checks ``_DONE`` and, with ``verify=True``, every checksum.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from ..errors import LlavaOnevision2Error

__all__ = [
    "DONE_MARKER",
    "CorruptEntryError",
    "StoreError",
    "checksum",
    "discard_entry",
    "read_entry_files",
    "write_entry_files",
]

DONE_MARKER = "_DONE"
META_FILE = "meta.json"


class StoreError(LlavaOnevision2Error):
    """A problem with a video store (its folder, an entry, a lookup)."""


class CorruptEntryError(StoreError):
    """A store entry failed its integrity check.

    Attributes:
        key: the entry's key.
        path: the entry's folder.
        reason: what is wrong (missing marker, checksum mismatch, unreadable file, ...).
    """

    def __init__(self, key: str, path: str | os.PathLike, reason: str, source: str | None = None):
        self.key, self.path, self.reason = key, str(path), reason
        what = f" (video {source!r})" if source else ""
        super().__init__(
            f"store entry {key} at {self.path}{what} is corrupt: {reason}; it is recomputed by "
            "VideoStore.get_or_compute / `llava-ov2 precompute`, or remove it with VideoStore.delete(key)"
        )


def checksum(data: bytes) -> str:
    """BLAKE2b-128 hex digest of ``data`` (the integrity checksum of entry files)."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_entry_files(
    final: Path, tmp_root: Path, key: str, files: dict[str, bytes], meta: dict[str, Any]
) -> bool:
    """Write an entry atomically; returns ``True`` if this call created it, ``False`` if it already existed.

    Args:
        final: the entry folder to create.
        tmp_root: where the temporary folder is built (same file system as ``final``).
        key: the entry key (recorded in the done marker).
        files: relative path -> bytes of every payload file.
        meta: the metadata; ``"files"`` (sizes and checksums) is added here.
    """
    tmp = tmp_root / f"{key}.{os.getpid()}.{uuid.uuid4().hex[:12]}"
    tmp.mkdir(parents=True)
    try:
        records = {}
        for rel, data in files.items():
            _write_file(tmp / rel, data)
            records[rel] = {"bytes": len(data), "blake2b": checksum(data)}
        meta_bytes = json.dumps({**meta, "files": records}, indent=1, sort_keys=True).encode()
        _write_file(tmp / META_FILE, meta_bytes)
        done = json.dumps({"key": key, "meta_blake2b": checksum(meta_bytes)}).encode()
        _write_file(tmp / DONE_MARKER, done)
        _fsync_dir(tmp)
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(tmp, final)
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST) or final.exists():
                shutil.rmtree(tmp, ignore_errors=True)  # another writer committed this entry first
                return False
            raise
        _fsync_dir(final.parent)
        return True
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_entry_files(
    final: Path, key: str, *, verify: bool = True
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """``(meta, files)`` of a committed entry.

    Raises:
        FileNotFoundError: there is no entry folder.
        CorruptEntryError: no done marker, unreadable or missing files, or (``verify``) a checksum mismatch.
    """
    if not final.is_dir():
        raise FileNotFoundError(f"no store entry {key} at {final}")
    try:
        done = json.loads((final / DONE_MARKER).read_bytes())
    except FileNotFoundError:
        raise CorruptEntryError(key, final, f"no {DONE_MARKER} marker") from None
    except (OSError, ValueError) as exc:
        raise CorruptEntryError(key, final, f"unreadable {DONE_MARKER} marker ({exc})") from None
    try:
        meta_bytes = (final / META_FILE).read_bytes()
    except OSError as exc:
        raise CorruptEntryError(key, final, f"cannot read {META_FILE} ({exc})") from None
    if verify and checksum(meta_bytes) != done.get("meta_blake2b"):
        raise CorruptEntryError(key, final, f"{META_FILE} checksum mismatch")
    try:
        meta = json.loads(meta_bytes)
    except ValueError as exc:
        raise CorruptEntryError(key, final, f"{META_FILE} is not valid JSON ({exc})") from None
    source = meta.get("source", {}).get("path")
    files: dict[str, bytes] = {}
    for rel, rec in meta.get("files", {}).items():
        try:
            data = (final / rel).read_bytes()
        except OSError as exc:
            raise CorruptEntryError(key, final, f"cannot read {rel} ({exc})", source) from None
        if len(data) != rec["bytes"]:
            raise CorruptEntryError(
                key, final, f"{rel} has {len(data)} bytes, expected {rec['bytes']}", source
            )
        if verify and checksum(data) != rec["blake2b"]:
            raise CorruptEntryError(key, final, f"{rel} checksum mismatch", source)
        files[rel] = data
    return meta, files


def discard_entry(final: Path, trash_root: Path) -> None:
    """Remove an entry folder safely with concurrent readers and writers: rename it away, then delete."""
    trash = trash_root / f"{final.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}"
    trash_root.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(final, trash)
    except FileNotFoundError:
        return  # somebody else removed it
    shutil.rmtree(trash, ignore_errors=True)
