"""Content-addressed keys of store entries: file digest + configuration digest + format version.

What is hashed, exactly:

* **the file** — BLAKE2b with a 32-byte digest over the file's bytes, read in 8 MiB chunks from the first
  byte to the last (nothing else: not the name, the folder, the modification time or the size). Written
  ``"blake2b-256:<64 hex>"``. Renaming or copying a video keeps its key; re-encoding or editing it changes it.
* **the configuration** — SHA-256 of the canonical JSON of :func:`~.config.canonical_config` (back end
  name plus every output-affecting field, keys sorted, no spaces), ``"sha256:<64 hex>"``.
* **the entry key** — the first 40 hex digits of SHA-256 over the canonical JSON of
  ``{"format": FORMAT_VERSION, "file": <file digest>, "config": <config digest>}``.

``FORMAT_VERSION`` changes whenever the on-disk layout or a front end's output for a given file and
configuration changes, so old entries are never served to a newer package.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from .config import FrontEndConfig, canonical_config

__all__ = ["FORMAT_VERSION", "canonical_json", "config_digest", "entry_key", "file_digest"]

FORMAT_VERSION = 1
"""Version of the store format and of the front ends' outputs it holds (part of every key)."""

CHUNK_BYTES = 8 << 20


def canonical_json(obj: Any) -> str:
    """Deterministic JSON: sorted keys, no spaces, ``repr`` floats (exact round trip)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=True)


def file_digest(path: str | os.PathLike) -> str:
    """``"blake2b-256:<hex>"`` of the file's bytes (streamed; see the module docstring).

    Raises:
        FileNotFoundError / IsADirectoryError: ``path`` is not a readable file (the message names it).
    """
    h = hashlib.blake2b(digest_size=32)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            h.update(chunk)
    return "blake2b-256:" + h.hexdigest()


def config_digest(config: FrontEndConfig) -> str:
    """``"sha256:<hex>"`` of the canonical configuration."""
    return "sha256:" + hashlib.sha256(canonical_json(canonical_config(config)).encode()).hexdigest()


def entry_key(file_hash: str, config: FrontEndConfig, *, format_version: int = FORMAT_VERSION) -> str:
    """The 40-hex-digit key of the entry for a file digest and a configuration."""
    payload = {"format": format_version, "file": file_hash, "config": config_digest(config)}
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()[:40]
