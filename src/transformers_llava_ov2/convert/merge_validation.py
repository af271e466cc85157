"""Validation of a stage-0 merge: the merged vision tower equals the standalone encoder, the merged text
logits equal the standalone LLM's. One model is in memory at a time (merged, then the LLM)."""

from __future__ import annotations

import gc
from collections.abc import Callable
from pathlib import Path

import torch

from .checks import ConversionError
from .reference_encoder import standalone_encoder_forward
from .safetensors_io import SafetensorsFolder


def _tolerance(dtype: torch.dtype) -> float:
    return 1e-4 if dtype == torch.float32 else 3e-2


def _compare(what: str, got: torch.Tensor, ref: torch.Tensor) -> str:
    diff = (got.float() - ref.float()).abs().max().item()
    scale = max(1.0, ref.float().abs().max().item())
    if not diff <= _tolerance(ref.dtype) * scale:
        raise ConversionError(
            f"merge validation failed: {what} differs from the standalone model (max |diff| {diff:.3g}, "
            f"allowed {_tolerance(ref.dtype) * scale:.3g}); the weights were mapped wrongly"
        )
    return f"validated: {what} matches the standalone model (max |diff| {diff:.3g})"


def _encoder_getter(vit: SafetensorsFolder) -> Callable[[str], torch.Tensor]:
    by_key = {name.replace("_orig_mod.", ""): name for name in vit.names()}
    return lambda key: vit.get(by_key[key])


@torch.no_grad()
def validate_merge(
    merged: Path, vit: SafetensorsFolder, vit_config: dict, llm: Path, log: Callable[[str], None] = print
) -> list[str]:
    """Raises :class:`ConversionError` when an output differs; returns the report notes."""
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText

    from ..modeling_onevision_encoder import image_patch_positions
    from ..registration import register_auto_classes

    register_auto_classes()

    model = AutoModelForImageTextToText.from_pretrained(str(merged)).eval()
    vision, text = model.config.vision_config, model.config.text_config
    m = vision.spatial_merge_size
    grid = torch.tensor([[1, 2 * m, 2 * m]])
    generator = torch.Generator().manual_seed(0)
    pixels = torch.randn(int(grid.prod()), vision.num_channels * vision.patch_size**2, generator=generator)
    positions = image_patch_positions(grid, m)
    tower = model.model.visual(pixels.to(model.model.visual.dtype), grid, positions).last_hidden_state
    ids = torch.randint(0, text.vocab_size, (1, 12), generator=generator)
    logits = model(input_ids=ids).logits
    del model
    gc.collect()
    notes = []
    reference = standalone_encoder_forward(
        _encoder_getter(vit), vit_config, pixels, positions, vit_config["num_hidden_layers"]
    )
    notes.append(_compare("vision tower output (last encoder layer)", tower, reference))
    llm_model = AutoModelForCausalLM.from_pretrained(str(llm)).eval()
    notes.append(_compare("text logits", logits, llm_model(input_ids=ids).logits))
    del llm_model
    gc.collect()
    return notes
