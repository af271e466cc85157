"""Registration of the package's classes with the transformers ``Auto*`` factories: the one place it happens.

:func:`register_auto_classes` runs on ``import transformers_llava_ov2`` (deferred in the ``llava-ov2``
launcher until a command needs the model). The processor classes are registered through module paths and
under both image/video back-end keys (``"pil"`` and ``"torchvision"``), because the top-level
``AutoVideoProcessor`` is a placeholder without torchvision (``docs/processor.md``). Remote-code export
(``auto_map`` in saved folders) is a different mechanism: :mod:`.hub`.
"""

from __future__ import annotations

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForImageTextToText,
    AutoModelForMultimodalLM,
)
from transformers.models.auto.image_processing_auto import AutoImageProcessor
from transformers.models.auto.processing_auto import AutoProcessor
from transformers.models.auto.video_processing_auto import AutoVideoProcessor

from .configuration_llava_onevision2 import LlavaOnevision2Config, LlavaOnevision2VisionConfig
from .configuration_llava_onevision2_moe import LlavaOnevision2MoeConfig
from .image_processing_llava_onevision2 import LlavaOnevision2ImageProcessor
from .modeling_llava_onevision2 import (
    LlavaOnevision2ForConditionalGeneration,
    LlavaOnevision2Model,
    LlavaOnevision2VisionModel,
)
from .modeling_llava_onevision2_moe import LlavaOnevision2MoeForConditionalGeneration, LlavaOnevision2MoeModel
from .processing_llava_onevision2 import LlavaOnevision2Processor
from .video_processing_llava_onevision2 import LlavaOnevision2VideoProcessor

__all__ = ["register_auto_classes"]


def register_auto_classes() -> None:
    """Registers configs, models (dense and the MoE twin) and processors with the ``Auto*`` classes.

    Idempotent. The MoE twin shares the dense model's image, video and multimodal processors.
    """
    AutoConfig.register(LlavaOnevision2Config.model_type, LlavaOnevision2Config, exist_ok=True)
    AutoConfig.register(LlavaOnevision2VisionConfig.model_type, LlavaOnevision2VisionConfig, exist_ok=True)
    AutoConfig.register(LlavaOnevision2MoeConfig.model_type, LlavaOnevision2MoeConfig, exist_ok=True)
    AutoModel.register(LlavaOnevision2Config, LlavaOnevision2Model, exist_ok=True)
    AutoModel.register(LlavaOnevision2VisionConfig, LlavaOnevision2VisionModel, exist_ok=True)
    AutoModel.register(LlavaOnevision2MoeConfig, LlavaOnevision2MoeModel, exist_ok=True)
    generation = (
        (LlavaOnevision2Config, LlavaOnevision2ForConditionalGeneration),
        (LlavaOnevision2MoeConfig, LlavaOnevision2MoeForConditionalGeneration),
    )
    both = ("pil", "torchvision")
    for config_class, model_class in generation:
        for auto_class in (AutoModelForImageTextToText, AutoModelForCausalLM, AutoModelForMultimodalLM):
            auto_class.register(config_class, model_class, exist_ok=True)
        AutoImageProcessor.register(
            config_class,
            image_processor_classes=dict.fromkeys(both, LlavaOnevision2ImageProcessor),
            exist_ok=True,
        )
        AutoVideoProcessor.register(
            config_class,
            video_processor_classes=dict.fromkeys(both, LlavaOnevision2VideoProcessor),
            exist_ok=True,
        )
        AutoProcessor.register(config_class, LlavaOnevision2Processor, exist_ok=True)
