"""LoRA through ``peft``: stage-driven targets and merge-and-save to a plain checkpoint folder.

Default targets: the LLM's ``q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj`` (names that only
exist in ``model.language_model``). ``lora_vision`` adds the vision encoder's ``qkv, proj, fc1, fc2``,
``lora_merger`` the merger's two linears; the patch embedding (a ``Conv2d``) is never adapted, and neither is
``lm_head``. With LoRA the base weights are frozen and the adapters train; the one exception is the merger:
when ``"merger"`` is in ``StageConfig.trainable`` and ``lora_merger`` is off, the merger (small, usually
trained in full by VLM LoRA recipes) trains fully next to the adapters. The vision encoder trains only
through adapters (``lora_vision``), never fully, in a LoRA stage.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from torch import nn

from .modules import module_group
from .stage import StageConfig

__all__ = ["apply_lora", "lora_config", "lora_target_regex", "merge_and_save"]

VISION_TARGETS = ("qkv", "proj", "fc1", "fc2")


def lora_target_regex(stage: StageConfig) -> str:
    """The ``target_modules`` regex (peft full-matches it against module names)."""
    parts = [rf".*language_model\.layers\.\d+\.(?:self_attn|mlp)\.(?:{'|'.join(stage.lora_targets)})"]
    if stage.lora_vision:
        parts.append(rf".*visual\.encoder\.layers\.\d+\.(?:self_attn|mlp)\.(?:{'|'.join(VISION_TARGETS)})")
    if stage.lora_merger:
        parts.append(r".*visual\.merger\.mlp\.(?:0|2)")
    return "|".join(f"(?:{p})" for p in parts)


def lora_config(stage: StageConfig) -> Any:
    """A ``peft.LoraConfig`` for the stage (rank, alpha, dropout, targets)."""
    from peft import LoraConfig

    return LoraConfig(
        r=stage.lora_r,
        lora_alpha=stage.lora_alpha,
        lora_dropout=stage.lora_dropout,
        target_modules=lora_target_regex(stage),
        bias="none",
    )


def apply_lora(model: nn.Module, stage: StageConfig) -> Any:
    """Wrap ``model`` with LoRA adapters; returns the ``PeftModel``.

    After wrapping, the adapters train, and so does the merger when it is in ``stage.trainable`` without
    ``lora_merger``; everything else is frozen.
    """
    from peft import get_peft_model

    if stage.lora_r <= 0:
        raise ValueError(f"stage {stage.name!r} has lora_r={stage.lora_r}; set lora_r > 0 to use LoRA")
    peft_model = get_peft_model(model, lora_config(stage))
    full = {"merger"} if ("merger" in stage.trainable and not stage.lora_merger) else set()
    for name, param in peft_model.named_parameters():
        if "lora_" in name:
            param.requires_grad_(True)
        else:
            param.requires_grad_(module_group(name) in full)
    return peft_model


def merge_and_save(peft_model: Any, output_dir: str | os.PathLike, processor: Any = None) -> Path:
    """Merge the adapters into the weights and save a plain ``from_pretrained`` folder (atomically).

    Returns the folder; the merged model has no peft modules and loads with
    ``LlavaOnevision2ForConditionalGeneration.from_pretrained`` / ``AutoModelForImageTextToText``.
    """
    out = Path(output_dir)
    merged = peft_model.merge_and_unload()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        merged.save_pretrained(tmp)
        if processor is not None:
            processor.save_pretrained(tmp)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out
