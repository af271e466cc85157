"""Deprecated: moved to ``transformers_llava_ov2.video`` (see ``docs/architecture.md``)."""

from ..video.frame_count import *  # noqa: F403
from ..video.readers import *  # noqa: F403
from ..video.uniform import *  # noqa: F403
from ._deprecated import warn_moved

warn_moved("transformers_llava_ov2.codec.uniform", "transformers_llava_ov2.video.uniform")
