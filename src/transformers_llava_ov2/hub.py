"""Writing Hub-ready checkpoint folders that also load with ``trust_remote_code=True`` (no package installed).

``save_pretrained`` of a class registered with ``register_for_auto_class`` copies its module files (and the
same-folder modules they import) next to the weights and writes ``auto_map`` into ``config.json``. Users who
install this package need none of that: importing ``transformers_llava_ov2`` registers everything.
"""

from __future__ import annotations

import json
import os

from .configuration_llava_onevision2 import LlavaOnevision2Config
from .modeling_llava_onevision2 import LlavaOnevision2ForConditionalGeneration

AUTO_MAP = {
    "AutoConfig": "configuration_llava_onevision2.LlavaOnevision2Config",
    "AutoModel": "modeling_llava_onevision2.LlavaOnevision2Model",
    "AutoModelForCausalLM": "modeling_llava_onevision2.LlavaOnevision2ForConditionalGeneration",
    "AutoModelForImageTextToText": "modeling_llava_onevision2.LlavaOnevision2ForConditionalGeneration",
}
"""``auto_map`` written into ``config.json`` (the released checkpoint's entries plus ``AutoModel``)."""


def register_for_remote_code() -> None:
    """Makes later ``save_pretrained`` calls copy the modeling code and write ``auto_map``."""
    LlavaOnevision2Config.register_for_auto_class()
    LlavaOnevision2ForConditionalGeneration.register_for_auto_class("AutoModelForImageTextToText")


def save_hub_ready(model, save_directory: str | os.PathLike, processor=None, **save_kwargs) -> None:
    """Saves ``model`` (and ``processor``) so the folder loads with or without this package.

    Args:
        model: a ``LlavaOnevision2ForConditionalGeneration``.
        save_directory: target folder.
        processor: optional processor, saved with its own ``auto_map`` when it supports it.
        save_kwargs: forwarded to ``model.save_pretrained``.
    """
    register_for_remote_code()
    model.save_pretrained(save_directory, **save_kwargs)
    config_path = os.path.join(save_directory, "config.json")
    with open(config_path) as f:
        config = json.load(f)
    config["auto_map"] = {**config.get("auto_map", {}), **AUTO_MAP}
    with open(config_path, "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
        f.write("\n")
    if processor is not None:
        register = getattr(processor, "register_for_auto_class", None)
        if register is not None:
            register()
        processor.save_pretrained(save_directory)
