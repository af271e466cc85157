"""Registration of the package's classes with the transformers ``Auto*`` factories (run on import)."""

from __future__ import annotations

import importlib

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForImageTextToText,
    AutoModelForMultimodalLM,
)

from .configuration_llava_onevision2 import LlavaOnevision2Config, LlavaOnevision2VisionConfig
from .configuration_llava_onevision2_moe import LlavaOnevision2MoeConfig
from .modeling_llava_onevision2 import (
    LlavaOnevision2ForConditionalGeneration,
    LlavaOnevision2Model,
    LlavaOnevision2VisionModel,
)
from .modeling_llava_onevision2_moe import LlavaOnevision2MoeForConditionalGeneration, LlavaOnevision2MoeModel

_PROCESSOR_MODULE = "transformers_llava_ov2.processing_llava_onevision2"


def register_auto_classes() -> None:
    """Registers configs, models and (when present) processors. Idempotent."""
    AutoConfig.register(LlavaOnevision2Config.model_type, LlavaOnevision2Config, exist_ok=True)
    AutoConfig.register(LlavaOnevision2VisionConfig.model_type, LlavaOnevision2VisionConfig, exist_ok=True)
    AutoModel.register(LlavaOnevision2Config, LlavaOnevision2Model, exist_ok=True)
    AutoModel.register(LlavaOnevision2VisionConfig, LlavaOnevision2VisionModel, exist_ok=True)
    AutoConfig.register(LlavaOnevision2MoeConfig.model_type, LlavaOnevision2MoeConfig, exist_ok=True)
    AutoModel.register(LlavaOnevision2MoeConfig, LlavaOnevision2MoeModel, exist_ok=True)
    for auto_class in (AutoModelForImageTextToText, AutoModelForCausalLM, AutoModelForMultimodalLM):
        auto_class.register(LlavaOnevision2Config, LlavaOnevision2ForConditionalGeneration, exist_ok=True)
        auto_class.register(
            LlavaOnevision2MoeConfig, LlavaOnevision2MoeForConditionalGeneration, exist_ok=True
        )
    try:
        processing = importlib.import_module(_PROCESSOR_MODULE)
    except ModuleNotFoundError as err:  # the processor module is optional while it is being built
        if err.name != _PROCESSOR_MODULE:
            raise
        return
    register = getattr(processing, "register_processor_classes", None)
    if register is not None:
        register()
        _register_moe_processors(processing)


def _register_moe_processors(processing) -> None:
    """The MoE twin uses the dense model's processor classes."""
    from transformers.models.auto.image_processing_auto import AutoImageProcessor
    from transformers.models.auto.processing_auto import AutoProcessor
    from transformers.models.auto.video_processing_auto import AutoVideoProcessor

    image, video = processing.LlavaOnevision2ImageProcessor, processing.LlavaOnevision2VideoProcessor
    AutoImageProcessor.register(
        LlavaOnevision2MoeConfig, image_processor_classes={"pil": image, "torchvision": image}, exist_ok=True
    )
    AutoVideoProcessor.register(
        LlavaOnevision2MoeConfig, video_processor_classes={"pil": video, "torchvision": video}, exist_ok=True
    )
    AutoProcessor.register(LlavaOnevision2MoeConfig, processing.LlavaOnevision2Processor, exist_ok=True)
