"""Writing Hub-ready checkpoint folders that also load with ``trust_remote_code=True``.

* **Model**: ``save_pretrained`` of a class registered with ``register_for_auto_class`` copies its module
  files (and the same-folder modules they import) next to the weights; with ``auto_map`` in
  ``config.json`` the folder loads in a process that never installed this package (the model files import
  only same-folder modules).
* **Processor**: its back ends live in the ``video/`` and ``codec/`` subpackages, which remote code cannot
  copy. The folder gets three small entry-point modules that delegate to the installed package and raise
  an ``ImportError`` naming ``pip install transformers-llava-ov2`` when it is missing, so a client such as
  lmms-eval never falls back to the bare tokenizer (which would silently drop images and videos).

Users who install this package need none of that: importing ``transformers_llava_ov2`` registers everything.
See ``docs/model.md`` ("Hub export").
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from transformers.utils import logging

from .configuration_llava_onevision2 import LlavaOnevision2Config
from .modeling_llava_onevision2 import LlavaOnevision2ForConditionalGeneration

__all__ = [
    "AUTO_MAP",
    "PACKAGE_HINT",
    "PROCESSOR_AUTO_MAP",
    "auto_map_for",
    "register_for_remote_code",
    "save_hub_ready",
]

logger = logging.get_logger(__name__)

AUTO_MAP = {
    "AutoConfig": "configuration_llava_onevision2.LlavaOnevision2Config",
    "AutoModel": "modeling_llava_onevision2.LlavaOnevision2Model",
    "AutoModelForCausalLM": "modeling_llava_onevision2.LlavaOnevision2ForConditionalGeneration",
    "AutoModelForImageTextToText": "modeling_llava_onevision2.LlavaOnevision2ForConditionalGeneration",
}
"""``auto_map`` of the dense model (the released checkpoint's entries plus ``AutoModel``); the MoE twin's
is :func:`auto_map_for` of its model."""

PROCESSOR_AUTO_MAP = {
    "AutoProcessor": ("processing_llava_onevision2", "LlavaOnevision2Processor", "processor_config.json"),
    "AutoImageProcessor": (
        "image_processing_llava_onevision2",
        "LlavaOnevision2ImageProcessor",
        "preprocessor_config.json",
    ),
    "AutoVideoProcessor": (
        "video_processing_llava_onevision2",
        "LlavaOnevision2VideoProcessor",
        "video_preprocessor_config.json",
    ),
}
"""Auto class → (entry-point module, class, config file that carries its ``auto_map``)."""

_NESTED_KEYS = {"AutoImageProcessor": "image_processor", "AutoVideoProcessor": "video_processor"}

PACKAGE_HINT = "pip install transformers-llava-ov2"

_ENTRY_POINT = '''"""Remote-code entry point of {cls}: delegates to the installed transformers-llava-ov2 package.

Written by transformers_llava_ov2.hub.save_hub_ready. The processor's video back ends (frames, codec
stream) live in that package; without it this checkpoint cannot process images or videos.
"""

try:
    from transformers_llava_ov2.{module} import {cls}
except ImportError as err:
    raise ImportError(
        "This checkpoint's processor ({cls}) is provided by the transformers-llava-ov2 package, which is "
        "not installed here: {hint}"
    ) from err

__all__ = ["{cls}"]
'''


def _entry(cls: type) -> str:
    """``module.Class`` as ``auto_map`` names it (the module file sits next to the weights)."""
    return f"{cls.__module__.rsplit('.', 1)[-1]}.{cls.__name__}"


def auto_map_for(model: LlavaOnevision2ForConditionalGeneration) -> dict[str, str]:
    """``auto_map`` for ``model``'s own classes: the dense model gives :data:`AUTO_MAP`, the MoE twin
    ``configuration_llava_onevision2_moe.LlavaOnevision2MoeConfig`` etc. (a dense entry would load the
    MoE weights into the dense class)."""
    head = _entry(type(model))
    return {
        "AutoConfig": _entry(type(model.config)),
        "AutoModel": _entry(type(model.model)),
        "AutoModelForCausalLM": head,
        "AutoModelForImageTextToText": head,
    }


def register_for_remote_code(model: LlavaOnevision2ForConditionalGeneration | None = None) -> None:
    """Makes later ``save_pretrained`` calls of ``model``'s classes (default: the dense ones) copy the
    modeling code and write ``auto_map``."""
    config_cls = LlavaOnevision2Config if model is None else type(model.config)
    model_cls = LlavaOnevision2ForConditionalGeneration if model is None else type(model)
    config_cls.register_for_auto_class()
    model_cls.register_for_auto_class("AutoModelForImageTextToText")


def _update_json(path: Path, update: dict[str, Any]) -> None:
    data = json.loads(path.read_text()) if path.is_file() else {}
    data["auto_map"] = {**data.get("auto_map", {}), **update}
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def _save_processor(processor: Any, folder: Path) -> None:
    """``processor.save_pretrained`` plus the entry-point modules and their ``auto_map`` entries.

    transformers 5 nests the image and video processor configs inside ``processor_config.json``: the file
    gets the ``AutoProcessor`` entry and each nested config its own entry (as does a separate
    ``preprocessor_config.json`` / ``video_preprocessor_config.json`` where one is written).
    """
    processor.save_pretrained(folder)
    config_path = folder / "processor_config.json"
    config = json.loads(config_path.read_text()) if config_path.is_file() else {}
    for auto_class, (module, cls, config_name) in PROCESSOR_AUTO_MAP.items():
        (folder / f"{module}.py").write_text(_ENTRY_POINT.format(module=module, cls=cls, hint=PACKAGE_HINT))
        entry = {auto_class: f"{module}.{cls}"}
        nested = _NESTED_KEYS.get(auto_class)
        target = config if nested is None else config.get(nested)
        if isinstance(target, dict):
            target["auto_map"] = {**target.get("auto_map", {}), **entry}
        if config_name != config_path.name and (folder / config_name).is_file():
            _update_json(folder / config_name, entry)
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def save_hub_ready(
    model: LlavaOnevision2ForConditionalGeneration,
    save_directory: str | os.PathLike,
    processor: Any = None,
    **save_kwargs: Any,
) -> None:
    """Saves ``model`` (and ``processor``) so the folder loads with or without this package.

    Args:
        model: a ``LlavaOnevision2ForConditionalGeneration`` or its MoE twin
            (``auto_map`` names the model's own classes, :func:`auto_map_for`).
        save_directory: target folder.
        processor: the ``LlavaOnevision2Processor`` (strongly recommended: without it, clients that load
            ``AutoProcessor`` from the folder get no image or video processing).
        save_kwargs: forwarded to ``model.save_pretrained``.
    """
    folder = Path(save_directory)
    register_for_remote_code(model)
    model.save_pretrained(folder, **save_kwargs)
    _update_json(folder / "config.json", auto_map_for(model))
    if processor is None:
        logger.warning(
            f"save_hub_ready: no processor given; {folder} holds the model only. Pass processor= so that "
            "AutoProcessor.from_pretrained(folder, trust_remote_code=True) processes images and videos."
        )
        return
    _save_processor(processor, folder)
    _update_json(
        folder / "config.json", {"AutoProcessor": "processing_llava_onevision2.LlavaOnevision2Processor"}
    )
