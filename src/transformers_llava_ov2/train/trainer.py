"""``LlavaOnevision2Trainer``: the HF ``Trainer`` applying a :class:`StageConfig`.

* Freezing and parameter groups from the stage (per-group learning rates, no decay on 1-D parameters).
* Loss: token-level cross entropy summed and divided by the number of target tokens of the whole optimizer
  step (across gradient accumulation and, with ``average_tokens_across_devices``, across ranks), the official
  per-token normalisation; the model runs with ``use_cache=False`` (needed for exact packing). Logits are
  computed only at positions that predict a target (``logits_to_keep`` = positions with a label in any row),
  so prompts and visual tokens never go through the vocabulary projection.
* **Every step runs the vision tower**: a text-only batch sends a zero-cost dummy (one ``m x m`` patch block)
  through ``visual`` before the decoder, added to the loss with weight 0, so every rank calls the same
  modules in the same order (no ZeRO-3 / FSDP hang on mixed modality mixes) and no trainable parameter is
  left without a gradient: DDP runs with ``find_unused_parameters=False`` (set when left unset; the
  Trainer would otherwise enable it without gradient checkpointing, and DDP would then count the dummy's
  parameters twice). A user who sets it to ``True`` explicitly gets no dummy (DDP then handles the unused
  tower itself; do not do that under ZeRO-3/FSDP).
* Logs, per logging window: samples and tokens per modality, the visual/text token ratio, the packing
  efficiency, and skipped records by reason; :attr:`run_stats` keeps the totals (saved in checkpoints and
  restored on resume).
* The MoE twin's router auxiliary loss (``outputs.aux_loss``, when its config sets
  ``output_router_logits``) is added times ``config.router_aux_loss_coef``, as the model's own loss does.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any

import torch
from transformers import Trainer
from transformers.modeling_utils import unwrap_model

from .dataset import ConversationDataset
from .modules import apply_stage, find_vision_tower, param_groups
from .sampler import ModalityMixSampler
from .stage import StageConfig

__all__ = ["LlavaOnevision2Trainer", "RunStats"]

STATS_FILE = "train_stats.json"


class RunStats:
    """Running totals of what the trainer saw (from the collator's ``batch_stats``)."""

    def __init__(self) -> None:
        self.samples: Counter[str] = Counter()
        self.tokens: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()
        self.visual_tokens = self.text_tokens = self.real_tokens = self.slots = 0

    def add(self, stats: dict[str, Any] | None) -> None:
        if not stats:
            return
        self.samples.update(stats["samples"])
        self.tokens.update(stats["tokens"])
        self.skipped.update(stats["skipped"])
        self.visual_tokens += stats["visual_tokens"]
        self.text_tokens += stats["text_tokens"]
        self.real_tokens += stats["real_tokens"]
        self.slots += stats["slots"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "samples": dict(self.samples),
            "tokens": dict(self.tokens),
            "skipped": dict(self.skipped),
            "visual_tokens": self.visual_tokens,
            "text_tokens": self.text_tokens,
            "real_tokens": self.real_tokens,
            "slots": self.slots,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunStats:
        out = cls()
        out.samples.update(data.get("samples", {}))
        out.tokens.update(data.get("tokens", {}))
        out.skipped.update(data.get("skipped", {}))
        for key in ("visual_tokens", "text_tokens", "real_tokens", "slots"):
            setattr(out, key, int(data.get(key, 0)))
        return out

    def log_fields(self, since: RunStats | None = None) -> dict[str, float]:
        """Flat metrics (differences from ``since`` when given) for ``Trainer.log``."""
        base = since or RunStats()
        out: dict[str, float] = {}
        for m in sorted(set(self.samples) | set(base.samples)):
            out[f"samples_{m}"] = self.samples[m] - base.samples[m]
            out[f"tokens_{m}"] = self.tokens[m] - base.tokens[m]
        visual, text = self.visual_tokens - base.visual_tokens, self.text_tokens - base.text_tokens
        out["visual_text_ratio"] = round(visual / text, 4) if text else 0.0
        slots = self.slots - base.slots
        out["packing_efficiency"] = round((self.real_tokens - base.real_tokens) / slots, 4) if slots else 0.0
        for reason in sorted(set(self.skipped)):
            out[f"skipped_{reason}"] = self.skipped[reason]
        return out


class LlavaOnevision2Trainer(Trainer):
    """``Trainer`` for one stage (see the module docstring).

    Args:
        stage: the :class:`StageConfig`; applied to the model at construction (unless ``apply_freezing=False``,
            e.g. for a peft model whose trainable parameters are already set).
        sampler_seed: seed of the modality-mix sampler (default ``args.seed``).
        Everything else as ``transformers.Trainer``.
    """

    def __init__(
        self,
        *args: Any,
        stage: StageConfig,
        apply_freezing: bool = True,
        sampler_seed: int | None = None,
        **kw: Any,
    ) -> None:
        model = kw.get("model", args[0] if args else None)
        if model is None:
            raise ValueError("LlavaOnevision2Trainer needs a model")
        if apply_freezing:
            apply_stage(model, stage)
        args_obj = kw.get("args", args[1] if len(args) > 1 else None)
        if args_obj is not None and args_obj.ddp_find_unused_parameters is None:
            # never needed (the vision dummy below); the Trainer would otherwise turn it on without
            # gradient checkpointing, and DDP would then mark the dummy's parameters ready twice
            args_obj.ddp_find_unused_parameters = False
        self.stage = stage
        self.sampler_seed = sampler_seed
        self.run_stats = RunStats()
        self._logged_stats = RunStats()
        super().__init__(*args, **kw)
        self.model_accepts_loss_kwargs = True  # let the Trainer count target tokens over the whole step
        self._vision = find_vision_tower(model)
        # with find_unused_parameters explicitly on, DDP handles an unused vision tower itself
        self._vision_dummy_on = self._vision is not None and not self.args.ddp_find_unused_parameters

    # ------------------------------------------------------------------ optimizer and sampler
    def create_optimizer(self, model: torch.nn.Module | None = None) -> torch.optim.Optimizer:
        if self.optimizer is None:
            opt_model = self.model if model is None else model
            groups = param_groups(opt_model, self.stage, self.args.weight_decay)
            if not groups:
                raise ValueError(f"stage {self.stage.name!r} leaves no trainable parameter")
            cls, kwargs = self.get_optimizer_cls_and_kwargs(self.args, opt_model)
            kwargs.pop("lr", None)
            self.optimizer = cls(
                [{k: v for k, v in g.items() if k != "name"} for g in groups],
                lr=self.args.learning_rate,
                **kwargs,
            )
            self.param_group_names = [g["name"] for g in groups]
        return self.optimizer

    def _get_train_sampler(self, train_dataset: Any = None) -> Any:
        dataset = self.train_dataset if train_dataset is None else train_dataset
        if not isinstance(dataset, ConversationDataset):
            return super()._get_train_sampler(train_dataset)
        return ModalityMixSampler(
            dataset,
            self.stage.modality_mix,
            batch_size=self.args.per_device_train_batch_size * max(1, self.args.world_size),
            group_by_length=self.stage.length_grouping,
            seed=self.args.seed if self.sampler_seed is None else self.sampler_seed,
        )

    # ------------------------------------------------------------------ loss
    def _vision_dummy(self) -> torch.Tensor:
        """Sum of the vision tower's output on one zero ``m x m`` block (its gradient is multiplied by 0)."""
        visual = self._vision
        m = visual.spatial_merge_size
        cfg = visual.config
        width = getattr(cfg, "num_channels", 3) * cfg.patch_size**2
        param = next(visual.parameters())
        pixels = torch.zeros(m * m, width, dtype=param.dtype, device=param.device)
        grid = torch.tensor([[1, m, m]], device=param.device)
        return visual(pixels, grid).pooler_output.float().sum()

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> Any:
        stats = inputs.pop("batch_stats", None)
        if model.training:
            self.run_stats.add(stats)
        labels = inputs.pop("labels")
        dummy = self._vision_dummy() if ("pixel_values" not in inputs and self._vision_dummy_on) else None
        shift = torch.nn.functional.pad(labels, (0, 1), value=-100)[..., 1:]
        keep = (shift != -100).any(0).nonzero().squeeze(-1)  # positions that predict a target, in any row
        outputs = model(**inputs, use_cache=False, logits_to_keep=keep.to(labels.device))
        logits = outputs.logits
        shift = shift[:, keep].to(logits.device)
        loss = torch.nn.functional.cross_entropy(
            logits.float().reshape(-1, logits.shape[-1]),
            shift.reshape(-1),
            ignore_index=-100,
            reduction="sum",
        )
        count = num_items_in_batch if num_items_in_batch is not None else (shift != -100).sum()
        loss = loss / torch.as_tensor(count, device=loss.device).clamp(min=1)
        if (
            num_items_in_batch is not None
            and self.args.average_tokens_across_devices
            and self.args.world_size > 1
        ):
            loss = loss * self.accelerator.num_processes
        if dummy is not None:
            loss = loss + 0.0 * dummy
        aux = getattr(outputs, "aux_loss", None)
        if aux is not None:  # the MoE twin's load-balancing loss (unweighted in the outputs)
            coef = float(getattr(unwrap_model(model).config, "router_aux_loss_coef", 1.0))
            loss = loss + coef * aux.to(loss.device)
        return (loss, outputs) if return_outputs else loss

    # ------------------------------------------------------------------ logging and checkpoints
    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        if "loss" in logs:
            logs.update(self.run_stats.log_fields(since=self._logged_stats))
            self._logged_stats = RunStats.from_dict(self.run_stats.to_dict())
        super().log(logs, *args, **kwargs)

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        super()._save_checkpoint(model, trial)
        folder = os.path.join(self.args.output_dir, f"checkpoint-{self.state.global_step}")
        if self.args.should_save and os.path.isdir(folder):
            with open(os.path.join(folder, STATS_FILE), "w", encoding="utf-8") as fh:
                json.dump(self.run_stats.to_dict(), fh)

    def train(self, resume_from_checkpoint: str | bool | None = None, **kwargs: Any) -> Any:
        if isinstance(resume_from_checkpoint, str):
            path = os.path.join(resume_from_checkpoint, STATS_FILE)
            if os.path.isfile(path):
                with open(path, encoding="utf-8") as fh:
                    self.run_stats = RunStats.from_dict(json.load(fh))
                self._logged_stats = RunStats.from_dict(self.run_stats.to_dict())
        return super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)
