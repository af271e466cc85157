"""Module groups of the model (vision / merger / llm), stage freezing and optimizer parameter groups.

One rule per question: :func:`module_group` says which group a parameter belongs to (by name, so it also
works on peft / DDP wrapped models), :func:`apply_stage` sets ``requires_grad``, :func:`param_groups` builds
the optimizer groups (each group's own learning rate; no weight decay on 1-D parameters: biases and norm
weights).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from .stage import MODULE_GROUPS, StageConfig

__all__ = ["apply_stage", "find_vision_tower", "module_group", "param_groups", "trainable_summary"]


def module_group(name: str) -> str:
    """``merger`` for ``*visual.merger.*``, ``vision`` for the rest of ``*visual.*``, else ``llm``."""
    if "visual.merger." in name:
        return "merger"
    if name.startswith("visual.") or ".visual." in name:
        return "vision"
    return "llm"


def apply_stage(model: nn.Module, stage: StageConfig) -> None:
    """Freeze everything, then unfreeze the parameters of the stage's trainable groups (full fine-tuning)."""
    groups = set(stage.trainable)
    for name, param in model.named_parameters():
        param.requires_grad_(module_group(name) in groups)


def param_groups(
    model: nn.Module, stage: StageConfig, weight_decay: float | None = None
) -> list[dict[str, Any]]:
    """Optimizer groups ``{params, lr, weight_decay, name}`` over the trainable parameters.

    Learning rate: :meth:`StageConfig.group_lr` of the parameter's group; weight decay: the stage's (or
    ``weight_decay``) on parameters with ``ndim >= 2``, 0 on biases and norm weights.
    """
    wd = stage.weight_decay if weight_decay is None else weight_decay
    groups: dict[tuple[str, bool], dict[str, Any]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        group, decay = module_group(name), param.ndim >= 2
        entry = groups.setdefault(
            (group, decay),
            {
                "params": [],
                "lr": stage.group_lr(group),
                "weight_decay": wd if decay else 0.0,
                "name": f"{group}" + ("" if decay else "_no_decay"),
            },
        )
        entry["params"].append(param)
    order = {g: i for i, g in enumerate(MODULE_GROUPS)}
    return [groups[k] for k in sorted(groups, key=lambda k: (order[k[0]], not k[1]))]


def trainable_summary(model: nn.Module) -> dict[str, int]:
    """Trainable parameter count per module group."""
    out = dict.fromkeys(MODULE_GROUPS, 0)
    for name, param in model.named_parameters():
        if param.requires_grad:
            out[module_group(name)] += param.numel()
    return out


def find_vision_tower(model: nn.Module) -> nn.Module | None:
    """The ``LlavaOnevision2VisionModel`` inside a (possibly wrapped) model."""
    from ..modeling_llava_onevision2 import LlavaOnevision2VisionModel

    for module in model.modules():
        if isinstance(module, LlavaOnevision2VisionModel):
            return module
    return None
