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
from .image_processing_llava_onevision2 import LlavaOnevision2ImageProcessor
from .modeling_llava_onevision2 import (
    LlavaOnevision2CausalLMOutputWithPast,
    LlavaOnevision2ForConditionalGeneration,
    LlavaOnevision2Model,
    LlavaOnevision2PreTrainedModel,
    LlavaOnevision2VisionModel,
)
from .processing_llava_onevision2 import LlavaOnevision2Processor
from .registration import register_auto_classes
from .video_processing_llava_onevision2 import LlavaOnevision2VideoProcessor
from .video_types import CodecTokens, SampledFrames

__version__ = "0.1.0"

register_auto_classes()

__all__ = [
    "RELEASED_VARIANTS",
    "CodecTokens",
    "LlavaOnevision2CausalLMOutputWithPast",
    "LlavaOnevision2Config",
    "LlavaOnevision2Error",
    "LlavaOnevision2ForConditionalGeneration",
    "LlavaOnevision2ImageProcessor",
    "LlavaOnevision2Model",
    "LlavaOnevision2PreTrainedModel",
    "LlavaOnevision2Processor",
    "LlavaOnevision2VideoProcessor",
    "LlavaOnevision2VisionConfig",
    "LlavaOnevision2VisionModel",
    "SampledFrames",
    "VideoDecodeError",
    "register_auto_classes",
    "tiny_config",
]
