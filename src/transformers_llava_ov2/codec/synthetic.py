"""Deprecated: moved to ``transformers_llava_ov2.video`` (see ``docs/architecture.md``)."""

from ..video.synthetic import *  # noqa: F403
from ._deprecated import warn_moved

warn_moved("transformers_llava_ov2.codec.synthetic", "transformers_llava_ov2.video.synthetic")
