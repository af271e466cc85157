"""LLaVA-OneVision-2 for Hugging Face transformers, with codec-stream video tokenization.

Importing the package registers the model with the ``Auto*`` classes, so a checkpoint folder in the
released layout loads with ``AutoModelForImageTextToText.from_pretrained(dir)`` (no ``trust_remote_code``).
"""

from .configuration_llava_onevision2 import (
    RELEASED_VARIANTS,
    LlavaOnevision2Config,
    LlavaOnevision2VisionConfig,
    tiny_config,
)
from .errors import LlavaOnevision2Error, VideoDecodeError
from .modeling_llava_onevision2 import (
    LlavaOnevision2CausalLMOutputWithPast,
    LlavaOnevision2ForConditionalGeneration,
    LlavaOnevision2Model,
    LlavaOnevision2PreTrainedModel,
    LlavaOnevision2VisionModel,
)
from .registration import register_auto_classes

__version__ = "0.1.0"

register_auto_classes()

__all__ = [
    "RELEASED_VARIANTS",
    "LlavaOnevision2CausalLMOutputWithPast",
    "LlavaOnevision2Config",
    "LlavaOnevision2Error",
    "LlavaOnevision2ForConditionalGeneration",
    "LlavaOnevision2Model",
    "LlavaOnevision2PreTrainedModel",
    "LlavaOnevision2VisionConfig",
    "LlavaOnevision2VisionModel",
    "VideoDecodeError",
    "register_auto_classes",
    "tiny_config",
]
