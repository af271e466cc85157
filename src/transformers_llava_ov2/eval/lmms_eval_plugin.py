"""lmms-eval model plugin: ``--model llava_ov2_hf`` runs this package's model and processor.

Registration uses lmms-eval's own plugin mechanism (lmms-eval >= 0.7: the ``lmms_eval.models`` entry-point
group, whose payload is a ``ModelManifest`` factory; this package declares it in ``setup.cfg``), so nothing in
lmms-eval is patched. Without an installed entry point (e.g. a source checkout on ``PYTHONPATH``), call
:func:`register` before ``lmms_eval.evaluator.simple_evaluate(model="llava_ov2_hf", ...)``.

What it fixes with respect to the official ``llava_onevision2`` wrapper (facts: the team's
``training_conversion.md`` §4.1):

* **any batch size**: every sample of a batch gets its own visuals (the official wrapper passes only the
  first document's images once ``batch_size > 1``, and its codec path raises unless the batch has one item);
* **codec or frames per run** (``backend=codec|frames``) through the same processor call, no
  ``trust_remote_code``, no ``qwen_vl_utils``/OpenCV/torchvision;
* **the task's timestamp decimals**: 2 for JumpScore (the official switch looks for ``jump_rope`` in the task
  name, which is now ``JumpScore``, so it never fires), 1 otherwise; ``timestamp_decimals=N`` forces N;
* **device_map** (``auto``/``balanced``/... shard the model; inputs go to the embedding's device);
* **generation settings from the task** (``max_new_tokens``, ``temperature`` > 0 turns sampling on,
  ``top_p``, ``num_beams``), like the official wrapper; ``until`` is ignored as the official wrapper does
  (``honor_until=True`` cuts answers at the first stop string instead).

Model arguments (``--model_args pretrained=DIR,backend=codec,...``): ``pretrained``, ``backend``,
``max_visual_tokens``, ``timestamp_decimals``, ``fps``, ``max_frames``, ``max_pixels``, ``max_new_tokens``
(used when the task sets none; 128 as the official wrapper), ``dtype`` (``bfloat16``), ``device``,
``device_map``, ``attn_implementation``, ``batch_size``, ``honor_until``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

from lmms_eval.api.instance import Instance
from lmms_eval.api.model import lmms
from lmms_eval.models.registry_v2 import ModelManifest

from .runner import GenerationSettings, VideoSettings, generate_with_fallback, load_model

__all__ = ["MODEL_ID", "LlavaOnevision2Lmms", "manifests", "register", "task_timestamp_decimals"]

MODEL_ID = "llava_ov2_hf"
_CLASS_PATH = f"{__name__}.LlavaOnevision2Lmms"
_SHARDED = {"auto", "balanced", "balanced_low_0", "sequential"}


def manifests() -> list[ModelManifest]:
    """The entry-point payload: one chat-model manifest (``llava_ov2_hf``, alias ``transformers_llava_ov2``)."""
    return [
        ModelManifest(model_id=MODEL_ID, chat_class_path=_CLASS_PATH, aliases=("transformers_llava_ov2",))
    ]


def register() -> None:
    """Register the plugin with lmms-eval's model registry at run time (for source checkouts)."""
    from lmms_eval.models import MODEL_REGISTRY_V2

    for manifest in manifests():
        MODEL_REGISTRY_V2.register_manifest(manifest, overwrite=True)


def task_timestamp_decimals(task: str, default: int = 1) -> int:
    """Timestamp decimals a task needs: 2 for JumpScore (``jumpscore`` or ``jump_rope`` in the name)."""
    name = task.lower()
    return 2 if "jumpscore" in name or "jump_rope" in name else default


def _optional(value: Any, kind: type) -> Any:
    return None if value in (None, "", "None", "none") else kind(value)


def _flag(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).strip().lower() in {"1", "true", "yes", "on"}


class LlavaOnevision2Lmms(lmms):
    """lmms-eval chat model over ``LlavaOnevision2ForConditionalGeneration`` + ``LlavaOnevision2Processor``."""

    is_simple = False

    def __init__(
        self,
        pretrained: str,
        backend: str = "frames",
        max_visual_tokens: int | None = None,
        timestamp_decimals: int | None = None,
        fps: float | None = None,
        max_frames: int | None = None,
        max_pixels: int | None = None,
        max_new_tokens: int = 128,
        dtype: str = "bfloat16",
        device: str | None = None,
        device_map: str | None = None,
        attn_implementation: str | None = None,
        batch_size: int | str = 1,
        honor_until: bool | str = False,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        import torch

        unknown = sorted(k for k in kwargs if k != "max_batch_size")
        if unknown:
            raise ValueError(f"{MODEL_ID}: unknown model argument(s) {', '.join(unknown)}")
        if str(batch_size).startswith("auto"):
            raise ValueError(f"{MODEL_ID}: batch_size must be a whole number >= 1, got {batch_size!r}")
        self.batch_size = int(batch_size)
        if self.batch_size < 1:
            raise ValueError(f"{MODEL_ID}: batch_size must be >= 1, got {batch_size}")
        dtypes = {
            "bfloat16": torch.bfloat16,
            "float16": torch.float16,
            "float32": torch.float32,
            "auto": "auto",
        }
        if dtype not in dtypes:
            raise ValueError(f"{MODEL_ID}: dtype must be one of {sorted(dtypes)}, got {dtype!r}")
        device_map = _optional(device_map, str)
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if device_map is None and world > 1 and torch.cuda.is_available():  # one model per accelerate rank
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        self.model, self.processor = load_model(
            pretrained,
            dtype=dtypes[dtype],
            device=_optional(device, str),
            device_map=device_map if device_map in _SHARDED or device_map is None else {"": device_map},
            attn_implementation=_optional(attn_implementation, str),
        )
        self.video = VideoSettings(
            backend=backend,  # type: ignore[arg-type]
            max_visual_tokens=_optional(max_visual_tokens, int),
            timestamp_decimals=1,
            fps=_optional(fps, float),
            max_frames=_optional(max_frames, int),
            max_pixels=_optional(max_pixels, int),
        )
        self.fixed_decimals = _optional(timestamp_decimals, int)
        self.default_max_new_tokens = int(max_new_tokens)
        self.honor_until = _flag(honor_until)

    @property
    def device(self) -> Any:
        from .runner import input_device

        return input_device(self.model)

    # ------------------------------------------------------------------ requests
    def _conversation(self, request: Instance) -> list[dict[str, Any]]:
        """HF messages of a chat request (``doc_to_messages`` of the task, validated by lmms-eval)."""
        from lmms_eval.protocol import ChatMessages

        _ctx, doc_to_messages, _gen, doc_id, task, split = request.args
        raw = doc_to_messages(self.task_dict[task][split][doc_id])
        messages = []
        for message in ChatMessages(messages=raw).messages:
            content = []
            for item in message.content:
                if item.type == "text":
                    content.append({"type": "text", "text": item.text})
                elif item.type == "image":
                    content.append({"type": "image", "image": item.url})
                elif item.type == "video":
                    content.append({"type": "video", "video": str(item.url)})
                else:
                    raise ValueError(f"{MODEL_ID}: {item.type} inputs are not supported (task {task})")
            messages.append({"role": message.role, "content": content})
        return messages

    def _settings(self, gen_kwargs: dict[str, Any], task: str) -> tuple[VideoSettings, GenerationSettings]:
        decimals = self.fixed_decimals if self.fixed_decimals is not None else task_timestamp_decimals(task)
        video = dataclasses.replace(self.video, timestamp_decimals=decimals)
        return video, GenerationSettings.from_task(gen_kwargs, self.default_max_new_tokens)

    def _cut(self, text: str, until: Any) -> str:
        if not self.honor_until or not until:
            return text
        for stop in [until] if isinstance(until, str) else until:
            if stop and stop in text:
                text = text[: text.index(stop)]
        return text

    def generate_until(self, requests: list[Instance]) -> list[str]:
        """Answers in request order; requests with equal task and generation settings are batched."""
        from tqdm.auto import tqdm

        groups: dict[str, list[int]] = {}
        for i, req in enumerate(requests):
            gen = dict(req.args[2] or {})
            key = json.dumps(
                [req.args[4], {k: v for k, v in gen.items() if k != "until"}], sort_keys=True, default=str
            )
            groups.setdefault(key, []).append(i)
        results: list[str | None] = [None] * len(requests)
        bar = tqdm(total=len(requests), desc="Model Responding", disable=self.rank != 0)
        for indices in groups.values():
            first = requests[indices[0]]
            gen_kwargs = dict(first.args[2] or {})
            video, generation = self._settings(gen_kwargs, first.args[4])
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start : start + self.batch_size]
                answers = generate_with_fallback(
                    self.model,
                    self.processor,
                    [self._conversation(requests[i]) for i in chunk],
                    video,
                    generation,
                )
                for i, answer in zip(chunk, answers):
                    if isinstance(answer, Exception):
                        from loguru import logger

                        logger.warning(f"{MODEL_ID}: request {i} failed ({answer}); answering ''")
                        answer = ""
                    results[i] = self._cut(answer, gen_kwargs.get("until"))
                    self.cache_hook.add_partial(
                        "generate_until", (requests[i].args[0], gen_kwargs), results[i]
                    )
                bar.update(len(chunk))
        bar.close()
        return [r if r is not None else "" for r in results]

    def loglikelihood(self, requests: list[Instance]) -> list[tuple[float, bool]]:
        raise NotImplementedError(f"{MODEL_ID} supports generate_until tasks only")

    def generate_until_multi_round(self, requests: list[Instance]) -> list[str]:
        raise NotImplementedError(f"{MODEL_ID} supports generate_until tasks only")
