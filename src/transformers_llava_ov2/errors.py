"""Exception types of the package.

Every error caused by a user's input names that input and says what was expected.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlparse


class LlavaOnevision2Error(Exception):
    """Base class of the package's own exceptions."""


class VideoDecodeError(LlavaOnevision2Error, ValueError):
    """A video could not be read: missing/empty/corrupt file, no video stream, unsupported format.

    Attributes:
        source: the path (or a short description of the in-memory input) that failed.
        reason: what went wrong, in words.
    """

    def __init__(self, source: object, reason: str):
        self.source = str(source)
        self.reason = reason
        super().__init__(f"cannot read video {self.source!r}: {reason}")


class ImageDecodeError(LlavaOnevision2Error, ValueError):
    """An image could not be read or used: missing/empty/corrupt file, not an image, an unusable shape.

    Attributes:
        source: the path (or a short description of the in-memory input) that failed.
        reason: what went wrong and what was expected, in words.
    """

    def __init__(self, source: object, reason: str):
        self.source = str(source)
        self.reason = reason
        super().__init__(f"cannot use image {self.source!r}: {reason}")


def local_media_path(
    source: str | os.PathLike, error: type[VideoDecodeError | ImageDecodeError], *, must_exist: bool = True
) -> Path:
    """A path, ``PathLike`` or ``file://`` URL as a local :class:`~pathlib.Path` (of an existing file).

    The one rule for media paths (videos and images): an empty string, another URL scheme, a remote
    ``file://`` host and (when ``must_exist``) a missing file or a folder each raise ``error`` naming the
    input.
    """
    if isinstance(source, os.PathLike):
        path = Path(os.fspath(source))
    elif not isinstance(source, str):
        raise error(source, f"expected a path or file:// URL, got {type(source).__name__}")
    elif not source.strip():
        raise error(source, "the path is empty; expected a local file path or file:// URL")
    elif "://" in source:
        parsed = urlparse(source)
        if parsed.scheme != "file":
            raise error(
                source, f"only local files and file:// URLs are supported, got scheme {parsed.scheme!r}"
            )
        if parsed.netloc not in ("", "localhost"):
            raise error(
                source, f"file:// URL names a remote host {parsed.netloc!r}; only local files are read"
            )
        path = Path(unquote(parsed.path))
    else:
        path = Path(source)
    path = path.expanduser()
    if not must_exist:
        return path
    if not path.exists():
        raise error(source, "file does not exist")
    if path.is_dir():
        raise error(source, "is a directory, not a file")
    if not path.is_file():
        raise error(source, "is not a regular file")
    return path
