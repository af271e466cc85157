"""``VideoStore``: a content-addressed, multi-writer store of tokenized videos (codec canvases, frames).

Folder layout (see ``docs/store.md``)::

    <store>/STORE.json                      format marker {"format": "llava-ov2-video-store", "version": 1}
    <store>/entries/<key[:2]>/<key>/        one entry per (file content, resolved config, format version)
    <store>/paths/<h[:2]>/<h>.json          path index: absolute path -> file digest, with size and mtime
    <store>/tmp/, <store>/trash/            writers' temporary folders, entries being removed

Lookups hash the video's bytes (:func:`~.keys.file_digest`) unless the path index (or this process's
memory) holds a digest for the same path, size and modification time, so repeated lookups cost a
``stat``. When the video file is absent (training on a machine without the videos) the path index alone
resolves it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import time
import uuid
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..video.container import resolve_video_path
from ..video_types import CodecTokens, SampledFrames
from .config import FramesConfig, FrontEndConfig, backend_of, canonical_config, resolve_config
from .entry import (
    DONE_MARKER,
    CorruptEntryError,
    StoreError,
    discard_entry,
    read_entry_files,
    write_entry_files,
)
from .images import ImageCodec
from .keys import FORMAT_VERSION, config_digest, entry_key, file_digest
from .serialize import decode_result, encode_result

__all__ = ["STORE_NAME", "StoreWarning", "VideoStore", "compute_result"]

STORE_NAME = "llava-ov2-video-store"
Result = CodecTokens | SampledFrames


class StoreWarning(UserWarning):
    """A store event worth knowing about (a corrupt entry recomputed)."""


def compute_result(video: str | os.PathLike, config: FrontEndConfig) -> Result:
    """Run the front end of ``config`` on ``video`` (no store involved)."""
    if backend_of(config) == "codec":
        from ..codec.pipeline import tokenize_video

        return tokenize_video(video, config)  # type: ignore[arg-type]
    from ..video.uniform import sample_uniform_frames

    return sample_uniform_frames(video, **config.sampling_kwargs())  # type: ignore[union-attr]


def _source_text(video: str | os.PathLike) -> str:
    return os.fspath(video) if isinstance(video, os.PathLike) else str(video)


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
    tmp.write_text(text)
    os.replace(tmp, path)


class VideoStore:
    """A folder of tokenized videos, keyed by file content + resolved front-end config + format version.

    Args:
        root: the store folder (created with its marker when absent and ``create``).
        image_format: image encoding of new entries (reading handles every format): ``"npy"`` (default;
            lossless raw, fastest to read), ``"png"`` (lossless, about half the size on real video, several
            times slower to read) or ``"jpeg"`` (lossy, smallest; quality recorded). See ``docs/store.md``.
        jpeg_quality: JPEG quality of new entries (recorded in each entry).
        verify: check every checksum on read (``False`` trusts the files; the done marker is still needed).
        create: create the store when ``root`` does not exist.
        read_threads: threads decoding an entry's PNG / JPEG images (default ``min(4, CPUs)``; 1 = none).

    Example::

        store = VideoStore("/data/ov2_store")
        tokens = store.get("clip.mp4", CodecConfig())            # None when not stored yet
        tokens = store.get_or_compute("clip.mp4", CodecConfig())  # tokenizes and stores on a miss
    """

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        image_format: str = "npy",
        jpeg_quality: int = 95,
        verify: bool = True,
        create: bool = True,
        read_threads: int | None = None,
    ) -> None:
        self.root = Path(root).expanduser().absolute()
        self.read_threads = read_threads if read_threads is not None else min(4, os.cpu_count() or 1)
        self.codec = ImageCodec(format=image_format, jpeg_quality=jpeg_quality)
        self.verify = verify
        self._digests: dict[tuple[str, int, int], str] = {}
        marker = self.root / "STORE.json"
        if marker.is_file():
            try:
                info = json.loads(marker.read_text())
            except ValueError as exc:
                raise StoreError(f"{marker} is not valid JSON ({exc})") from None
            if info.get("format") != STORE_NAME:
                raise StoreError(
                    f"{self.root} is not a video store (STORE.json format {info.get('format')!r})"
                )
            if info.get("version") != FORMAT_VERSION:
                raise StoreError(
                    f"video store {self.root} has format version {info.get('version')}, this package reads "
                    f"version {FORMAT_VERSION}; precompute into a new store"
                )
        elif self.root.is_dir() and any(not p.name.startswith(".STORE.json") for p in self.root.iterdir()):
            raise StoreError(
                f"{self.root} exists and is not a video store (no STORE.json); pick an empty folder"
            )
        elif self.root.exists() and not self.root.is_dir():
            raise StoreError(f"video store path {self.root} is a file, not a folder")
        elif not create:
            raise StoreError(f"video store {self.root} does not exist")
        else:
            self.root.mkdir(parents=True, exist_ok=True)
            _atomic_write_text(marker, json.dumps({"format": STORE_NAME, "version": FORMAT_VERSION}) + "\n")

    def __repr__(self) -> str:
        return f"VideoStore({str(self.root)!r}, image_format={self.codec.format!r})"

    # ------------------------------------------------------------------ keys
    def _path_record(self, path: Path) -> Path:
        h = hashlib.sha256(str(path).encode()).hexdigest()
        return self.root / "paths" / h[:2] / f"{h}.json"

    def file_digest(self, video: str | os.PathLike) -> str:
        """The video's content digest; cached by (path, size, mtime) in memory and in the path index.

        Raises:
            FileNotFoundError: the file is absent and the path index does not know it.
        """
        path = resolve_video_path(video, must_exist=False).absolute()
        record = self._path_record(path)
        try:
            st = path.stat()
        except FileNotFoundError:
            try:
                return json.loads(record.read_text())["digest"]
            except (OSError, ValueError, KeyError):
                raise FileNotFoundError(
                    f"video {_source_text(video)!r} does not exist and the store {self.root} has no record of it"
                ) from None
        if not path.is_file():
            raise IsADirectoryError(f"video {_source_text(video)!r} is not a file")
        mem_key = (str(path), st.st_size, st.st_mtime_ns)
        digest = self._digests.get(mem_key)
        if digest is not None:
            return digest
        try:
            rec = json.loads(record.read_text())
            if rec["size"] == st.st_size and rec["mtime_ns"] == st.st_mtime_ns:
                digest = rec["digest"]
        except (OSError, ValueError, KeyError):
            digest = None
        if digest is None:
            digest = file_digest(path)
            rec = {"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "digest": digest}
            _atomic_write_text(record, json.dumps(rec) + "\n")
        self._digests[mem_key] = digest
        return digest

    def key(self, video: str | os.PathLike, config: FrontEndConfig) -> str:
        """The entry key of ``video`` under ``config`` (see :mod:`.keys` for what is hashed)."""
        return entry_key(self.file_digest(video), config)

    def entry_dir(self, key: str) -> Path:
        """The folder of entry ``key`` (whether or not it exists)."""
        return self.root / "entries" / key[:2] / key

    def keys(self) -> Iterator[str]:
        """Keys of the committed entries (those with a done marker)."""
        base = self.root / "entries"
        if not base.is_dir():
            return
        for sub in sorted(base.iterdir()):
            for entry in sorted(sub.iterdir()) if sub.is_dir() else ():
                if (entry / DONE_MARKER).is_file():
                    yield entry.name

    # ------------------------------------------------------------------ read
    def has(self, video: str | os.PathLike, config: FrontEndConfig) -> bool:
        """Whether a committed entry exists (done marker present; checksums not checked)."""
        try:
            key = self.key(video, config)
        except FileNotFoundError:
            return False
        return (self.entry_dir(key) / DONE_MARKER).is_file()

    def info(self, key: str) -> dict[str, Any]:
        """The ``meta.json`` of entry ``key`` (checked against its done marker when ``verify``)."""
        meta, _ = read_entry_files(self.entry_dir(key), key, verify=self.verify)
        return meta

    def read(self, key: str, *, source: str | None = None) -> Result:
        """The typed result of entry ``key``; ``source`` (default: the recorded path) becomes ``.source``.

        Raises:
            FileNotFoundError: no such entry.
            CorruptEntryError: the entry failed its integrity check (names the entry).
        """
        final = self.entry_dir(key)
        meta, files = read_entry_files(final, key, verify=self.verify)
        src = source if source is not None else meta["source"]["path"]
        try:
            return decode_result(meta["result"], files, src, threads=self.read_threads)
        except (KeyError, ValueError, OSError) as exc:
            raise CorruptEntryError(key, final, f"cannot decode the stored result ({exc})", src) from None

    def get(
        self, video: str | os.PathLike, config: FrontEndConfig | None = None, **overrides: Any
    ) -> Result | None:
        """The stored result of ``video`` under ``config`` (+ field ``overrides``), or ``None`` when absent.

        ``config`` defaults to ``CodecConfig()``; pass a ``FramesConfig`` for the frames back end.

        Raises:
            CorruptEntryError: the entry exists but failed its integrity check.
        """
        cfg = self._config(config, overrides)
        try:
            key = self.key(video, cfg)
            return self.read(key, source=_source_text(video))
        except FileNotFoundError:
            return None

    # ------------------------------------------------------------------ write
    def put(
        self,
        video: str | os.PathLike,
        config: FrontEndConfig,
        result: Result,
        *,
        compute_seconds: float | None = None,
        extra: dict[str, Any] | None = None,
    ) -> str:
        """Store ``result`` (computed from ``video`` with ``config``); returns the key.

        An existing committed entry is kept as it is (first writer wins). ``extra`` (JSON-ready) is
        recorded under ``meta["extra"]`` (e.g. where imported assets came from).
        """
        expected = CodecTokens if backend_of(config) == "codec" else SampledFrames
        if not isinstance(result, expected):
            raise TypeError(
                f"a {type(config).__name__} entry holds {expected.__name__}, got {type(result).__name__}"
            )
        digest = self.file_digest(video)
        key = entry_key(digest, config)
        self._write(key, video, digest, config, result, compute_seconds, extra)
        return key

    def _write(
        self,
        key: str,
        video: str | os.PathLike,
        digest: str,
        config: FrontEndConfig,
        result: Result,
        compute_seconds: float | None,
        extra: dict[str, Any] | None = None,
    ) -> bool:
        from .. import __version__

        t0 = time.perf_counter()
        files, scalars = encode_result(result, self.codec)
        path = resolve_video_path(video, must_exist=False).absolute()
        canon = canonical_config(config)
        meta = {
            "format": {"name": STORE_NAME, "version": FORMAT_VERSION},
            "key": key,
            "package_version": __version__,
            "source": {
                "path": str(path),
                "digest": digest,
                "bytes": path.stat().st_size if path.is_file() else None,
            },
            "backend": canon["backend"],
            "config": canon["config"],
            "config_digest": config_digest(config),
            "duration": float(result.duration),
            "num_tokens": int(result.num_tokens) if isinstance(result, CodecTokens) else None,
            "num_images": int(scalars["images"]["shape"][0]),
            "timings": {
                "compute_seconds": compute_seconds,
                "encode_seconds": time.perf_counter() - t0,
            },
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "host": socket.gethostname(),
            "result": scalars,
        }
        if extra:
            meta["extra"] = extra
        return write_entry_files(self.entry_dir(key), self.root / "tmp", key, files, meta)

    def get_or_compute(
        self, video: str | os.PathLike, config: FrontEndConfig | None = None, **overrides: Any
    ) -> Result:
        """The stored result, or compute it, store it and return it. A corrupt entry is recomputed
        (with a :class:`StoreWarning`)."""
        cfg = self._config(config, overrides)
        result, _ = self.fetch_or_compute(video, cfg)
        return result

    def fetch_or_compute(self, video: str | os.PathLike, config: FrontEndConfig) -> tuple[Result, str]:
        """``(result, status)`` with status ``"stored"`` (read), ``"computed"`` or ``"recomputed"``."""
        source = _source_text(video)
        digest = self.file_digest(video)
        key = entry_key(digest, config)
        status = "computed"
        try:
            return self.read(key, source=source), "stored"
        except FileNotFoundError:
            pass
        except CorruptEntryError as exc:
            warnings.warn(f"{exc}: recomputing", StoreWarning, stacklevel=3)
            discard_entry(self.entry_dir(key), self.root / "trash")
            status = "recomputed"
        t0 = time.perf_counter()
        result = compute_result(video, config)
        self._write(key, video, digest, config, result, time.perf_counter() - t0)
        if not self.codec.lossless:
            result = self.read(key, source=source)  # what later reads return
        return result, status

    def delete(self, key: str) -> None:
        """Remove entry ``key`` (no error when absent)."""
        discard_entry(self.entry_dir(key), self.root / "trash")

    def clean_tmp(self, max_age_seconds: float = 24 * 3600) -> int:
        """Remove writers' temporary folders older than ``max_age_seconds`` (killed jobs); returns how many.

        Use an age well above the longest tokenization, as live writers keep their folders there.
        """
        removed = 0
        for base in (self.root / "tmp", self.root / "trash"):
            if not base.is_dir():
                continue
            now = time.time()
            for p in base.iterdir():
                try:
                    if now - p.stat().st_mtime > max_age_seconds:
                        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink()
                        removed += 1
                except FileNotFoundError:
                    continue
        return removed

    # ------------------------------------------------------------------ front-end shaped lookups
    def tokenize_video(self, video: str | os.PathLike, config: Any = None, **overrides: Any) -> CodecTokens:
        """:func:`~transformers_llava_ov2.codec.tokenize_video` through the store (same arguments)."""
        return self.get_or_compute(video, resolve_config("codec", config, **overrides))  # type: ignore[return-value]

    def sample_uniform_frames(self, video: str | os.PathLike, **kwargs: Any) -> SampledFrames:
        """:func:`~transformers_llava_ov2.video.uniform.sample_uniform_frames` through the store.

        Same keyword arguments; ``seek`` (a decoding strategy with the same output) is accepted and not
        part of the key.
        """
        kwargs.pop("seek", None)
        return self.get_or_compute(video, FramesConfig(**kwargs))  # type: ignore[return-value]

    @staticmethod
    def _config(config: FrontEndConfig | None, overrides: dict[str, Any]) -> FrontEndConfig:
        if config is None:
            return resolve_config("codec", None, **overrides)
        return resolve_config(backend_of(config), config, **overrides)
