"""The released HF checkpoint layout of a config (names and shapes), and loading configs without remote code."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from .checks import ConversionError

_TEXT_MOE = "qwen3_moe"


def is_moe(config) -> bool:
    return getattr(config.text_config, "model_type", None) == _TEXT_MOE


def model_class(config):
    """The generation class of a (dense or MoE) LLaVA-OneVision-2 config."""
    from ..modeling_llava_onevision2 import LlavaOnevision2ForConditionalGeneration
    from ..modeling_llava_onevision2_moe import LlavaOnevision2MoeForConditionalGeneration

    return (
        LlavaOnevision2MoeForConditionalGeneration
        if is_moe(config)
        else LlavaOnevision2ForConditionalGeneration
    )


def checkpoint_shapes(config) -> dict[str, tuple[int, ...]]:
    """Every tensor name and shape of a checkpoint folder of ``config`` (what ``save_pretrained`` writes:
    experts one by one), computed on the ``meta`` device."""
    from transformers.core_model_loading import revert_weight_conversion

    with torch.device("meta"):
        model = model_class(config)(config)
    state = revert_weight_conversion(model, model.state_dict())
    return {name: tuple(t.shape) for name, t in state.items()}


def load_config(path: str | os.PathLike):
    """A LLaVA-OneVision-2 (dense or MoE) config from a folder or a ``config.json`` file; no remote code."""
    path = Path(path)
    file = path / "config.json" if path.is_dir() else path
    if not file.is_file():
        raise ConversionError(f"no config.json at {str(path)!r}")
    try:
        raw = json.loads(file.read_text())
    except ValueError as exc:
        raise ConversionError(f"{str(file)!r} is not valid JSON: {exc}") from None
    if raw.get("model_type") not in ("llava_onevision2", "llava_onevision2_moe"):
        raise ConversionError(
            f"{str(file)!r} has model_type={raw.get('model_type')!r}; expected 'llava_onevision2' or "
            "'llava_onevision2_moe'"
        )
    raw.pop("auto_map", None)
    config_class = _config_class(raw["model_type"])
    try:
        return config_class.from_dict(raw)
    except Exception as exc:
        raise ConversionError(f"config {str(file)!r} is invalid: {exc}") from None


def _config_class(model_type: str):
    from ..configuration_llava_onevision2 import LlavaOnevision2Config
    from ..configuration_llava_onevision2_moe import LlavaOnevision2MoeConfig

    return (
        LlavaOnevision2MoeConfig
        if model_type == LlavaOnevision2MoeConfig.model_type
        else LlavaOnevision2Config
    )


def config_from_variant(variant: str):
    """The config of a released variant name (``8b``, ``4b-p14m2``, ..., ``2b``, ``30b-a3b``)."""
    from ..configuration_llava_onevision2 import RELEASED_VARIANTS, LlavaOnevision2Config
    from ..configuration_llava_onevision2_moe import RELEASED_MOE_VARIANTS, LlavaOnevision2MoeConfig

    if variant in RELEASED_MOE_VARIANTS:
        return LlavaOnevision2MoeConfig.from_variant(variant)
    if variant in RELEASED_VARIANTS:
        return LlavaOnevision2Config.from_variant(variant)
    raise ConversionError(
        f"unknown variant {variant!r}; expected one of {sorted({*RELEASED_VARIANTS, *RELEASED_MOE_VARIANTS})}"
    )
