"""LLaVA-OneVision-2 for Hugging Face transformers, with codec-stream video tokenization.

Importing the package registers the model with the ``Auto*`` classes, so a checkpoint folder in the
released layout loads with ``AutoModelForImageTextToText.from_pretrained(dir)`` (no ``trust_remote_code``).
The public names below load on first use (PEP 562). The ``llava-ov2`` launcher
(:mod:`transformers_llava_ov2_cli`) sets ``TRANSFORMERS_LLAVA_OV2_DEFER_REGISTRATION=1`` so that ``--help``
imports neither torch nor transformers; then registration runs on the first use of a public name or an
explicit :func:`register_auto_classes` call.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "RELEASED_VARIANTS": "configuration_llava_onevision2",
    "LlavaOnevision2Config": "configuration_llava_onevision2",
    "LlavaOnevision2VisionConfig": "configuration_llava_onevision2",
    "LlavaOnevision2MoeConfig": "configuration_llava_onevision2_moe",
    "LlavaOnevision2MoeForConditionalGeneration": "modeling_llava_onevision2_moe",
    "LlavaOnevision2MoeModel": "modeling_llava_onevision2_moe",
    "tiny_moe_config": "configuration_llava_onevision2_moe",
    "tiny_config": "configuration_llava_onevision2",
    "LlavaOnevision2Error": "errors",
    "VideoDecodeError": "errors",
    "LlavaOnevision2ImageProcessor": "image_processing_llava_onevision2",
    "LlavaOnevision2CausalLMOutputWithPast": "modeling_llava_onevision2",
    "LlavaOnevision2ForConditionalGeneration": "modeling_llava_onevision2",
    "LlavaOnevision2Model": "modeling_llava_onevision2",
    "LlavaOnevision2PreTrainedModel": "modeling_llava_onevision2",
    "LlavaOnevision2VisionModel": "modeling_llava_onevision2",
    "LlavaOnevision2Processor": "processing_llava_onevision2",
    "register_auto_classes": "registration",
    "LlavaOnevision2VideoProcessor": "video_processing_llava_onevision2",
    "CodecTokens": "video_types",
    "SampledFrames": "video_types",
}
_LIGHT = frozenset({"LlavaOnevision2Error", "VideoDecodeError", "register_auto_classes"})
DEFER_REGISTRATION_ENV = "TRANSFORMERS_LLAVA_OV2_DEFER_REGISTRATION"

__all__ = [
    "RELEASED_VARIANTS",
    "CodecTokens",
    "LlavaOnevision2CausalLMOutputWithPast",
    "LlavaOnevision2Config",
    "LlavaOnevision2Error",
    "LlavaOnevision2ForConditionalGeneration",
    "LlavaOnevision2ImageProcessor",
    "LlavaOnevision2Model",
    "LlavaOnevision2MoeConfig",
    "LlavaOnevision2MoeForConditionalGeneration",
    "LlavaOnevision2MoeModel",
    "LlavaOnevision2PreTrainedModel",
    "LlavaOnevision2Processor",
    "LlavaOnevision2VideoProcessor",
    "LlavaOnevision2VisionConfig",
    "LlavaOnevision2VisionModel",
    "SampledFrames",
    "VideoDecodeError",
    "register_auto_classes",
    "tiny_config",
    "tiny_moe_config",
]

if TYPE_CHECKING:
    from .configuration_llava_onevision2 import (
        RELEASED_VARIANTS,
        LlavaOnevision2Config,
        LlavaOnevision2VisionConfig,
        tiny_config,
    )
    from .configuration_llava_onevision2_moe import LlavaOnevision2MoeConfig, tiny_moe_config
    from .errors import LlavaOnevision2Error, VideoDecodeError
    from .image_processing_llava_onevision2 import LlavaOnevision2ImageProcessor
    from .modeling_llava_onevision2 import (
        LlavaOnevision2CausalLMOutputWithPast,
        LlavaOnevision2ForConditionalGeneration,
        LlavaOnevision2Model,
        LlavaOnevision2PreTrainedModel,
        LlavaOnevision2VisionModel,
    )
    from .modeling_llava_onevision2_moe import (
        LlavaOnevision2MoeForConditionalGeneration,
        LlavaOnevision2MoeModel,
    )
    from .processing_llava_onevision2 import LlavaOnevision2Processor
    from .registration import register_auto_classes
    from .video_processing_llava_onevision2 import LlavaOnevision2VideoProcessor
    from .video_types import CodecTokens, SampledFrames


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if name not in _LIGHT:
        importlib.import_module(".registration", __name__).register_auto_classes()
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


if os.environ.get(DEFER_REGISTRATION_ENV) != "1":
    importlib.import_module(".registration", __name__).register_auto_classes()
