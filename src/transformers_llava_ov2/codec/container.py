"""Deprecated: moved to ``transformers_llava_ov2.video`` (see ``docs/architecture.md``)."""

from ..video.container import *  # noqa: F403
from ._deprecated import warn_moved

warn_moved("transformers_llava_ov2.codec.container", "transformers_llava_ov2.video.container")
