"""Exception types of the package.

Every error caused by a user's input names that input and says what was expected.
"""

from __future__ import annotations


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
