"""Default preprocessing constants of the released checkpoint, in one import-light module.

The image processor, the video options (:mod:`.video.options`) and the CLI's help texts all read these, so
the defaults are stated once; the module imports nothing (``llava-ov2 --help`` reads it without torch).
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_FRAME_MAX_PIXELS",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MIN_PIXELS",
    "DEFAULT_TOTAL_PIXELS",
    "IMAGE_MEAN",
    "IMAGE_STD",
    "MERGE_SIZE",
    "PATCH_SIZE",
]

PATCH_SIZE = 14
"""Vision patch side in pixels of the released checkpoints (``p14`` variants)."""
MERGE_SIZE = 2
"""Spatial merge of the patch merger (2x2 patches per LLM token)."""
DEFAULT_MIN_PIXELS = 256 * 28 * 28
"""200704: the released processor's and the official evaluation's ``min_pixels``."""
DEFAULT_MAX_PIXELS = 2048 * 28 * 28
"""1605632: the released processor's and the official evaluation's ``max_pixels``."""
DEFAULT_FRAME_MAX_PIXELS = 768 * 28 * 28
"""602112: ``qwen_vl_utils``' per-frame cap (VIDEO_MAX_TOKEN_NUM * 28²) that the official evaluation applies."""
DEFAULT_TOTAL_PIXELS = int(128000 * 28 * 28 * 0.9)
"""90316800: ``qwen_vl_utils``' whole-video pixel budget (MODEL_SEQ_LEN * 28² * 0.9)."""
IMAGE_MEAN = (0.48145466, 0.4578275, 0.40821073)
"""OpenAI-CLIP mean (= ``transformers.image_utils.OPENAI_CLIP_MEAN``, checked by a test)."""
IMAGE_STD = (0.26862954, 0.26130258, 0.27577711)
"""OpenAI-CLIP std (= ``transformers.image_utils.OPENAI_CLIP_STD``, checked by a test)."""
