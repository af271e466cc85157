"""Writing an HF checkpoint folder in the released layout: streamed weights, config, generation config,
tokenizer/processor files (from a source folder when given, else the package's defaults)."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .checks import ConversionError, check_finite
from .safetensors_io import StreamingShardWriter, TensorSpec, assign_shards

DEFAULT_MAX_SHARD_BYTES = 5 * 1024**3
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.json",
    "merges.txt",
    "special_tokens_map.json",
    "added_tokens.json",
)


@dataclass
class ConversionReport:
    """What a conversion did (or would do, with ``dry_run``)."""

    tensors: int = 0
    bytes: int = 0
    seconds: float = 0.0
    dry_run: bool = False
    output: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def gb_per_s(self) -> float:
        return self.bytes / 1e9 / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        verb = "would write" if self.dry_run else "wrote"
        where = "" if self.dry_run else f" to {self.output}"
        return (
            f"{verb} {self.tensors} tensors, {self.bytes / 1e9:.3f} GB{where} in {self.seconds:.2f} s "
            f"({self.gb_per_s:.2f} GB/s)"
        )


def describe_plan(plan: list[TensorSpec], max_shard_bytes: int, header: str, limit: int = 12) -> str:
    """A human-readable plan: shard count, total size, and the first tensors."""
    shards = assign_shards(plan, max_shard_bytes)
    total = sum(s.nbytes for s in plan)
    lines = [header, f"  {len(plan)} tensors, {total / 1e9:.3f} GB, {len(shards)} shard(s)"]
    for spec in plan[:limit]:
        lines.append(f"  {spec.name}  {list(spec.shape)}  {str(spec.dtype).removeprefix('torch.')}")
    if len(plan) > limit:
        lines.append(f"  ... and {len(plan) - limit} more")
    return "\n".join(lines)


def stream_weights(
    folder: Path | None,
    plan: list[TensorSpec],
    produce: Iterable[tuple[str, torch.Tensor]],
    *,
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
    progress: Callable[[int], object] | None = None,
) -> ConversionReport:
    """Checks every produced tensor (finite, planned shape/dtype) and writes it (``folder=None``: dry run)."""
    report = ConversionReport(dry_run=folder is None)
    expected = {spec.name: spec for spec in plan}
    writer = StreamingShardWriter(folder, plan, max_shard_bytes) if folder is not None else None
    t0 = time.perf_counter()
    try:
        for name, tensor in produce:
            spec = expected.get(name)
            if spec is None:
                raise ConversionError(f"internal: tensor {name!r} is not in the plan")
            if tuple(tensor.shape) != spec.shape or tensor.dtype != spec.dtype:
                raise ConversionError(
                    f"tensor {name!r} came out as {list(tensor.shape)} {tensor.dtype}, expected {list(spec.shape)} "
                    f"{spec.dtype}"
                )
            check_finite(name, tensor)
            if writer is not None:
                writer.write(name, tensor)
            report.tensors += 1
            report.bytes += spec.nbytes
            if progress is not None:
                progress(1)
        if writer is not None:
            writer.finish()
    finally:
        if writer is not None:
            writer.close()
    if report.tensors != len(plan):
        raise ConversionError(f"internal: {report.tensors} of {len(plan)} planned tensors were produced")
    report.seconds = time.perf_counter() - t0
    return report


def save_config(folder: Path, config, dtype: torch.dtype | None) -> None:
    """``config.json`` (no ``auto_map``) and ``generation_config.json``."""
    from transformers import GenerationConfig

    config = copy.deepcopy(config)  # never change the caller's config
    if dtype is not None:
        config.dtype = dtype
    config.save_pretrained(folder)
    path = folder / "config.json"
    data = json.loads(path.read_text())
    data.pop("auto_map", None)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    GenerationConfig.from_model_config(config).save_pretrained(folder)


def has_tokenizer(folder: Path | None) -> bool:
    return (folder is not None and (folder / "tokenizer.json").is_file()) or (
        folder is not None and (folder / "vocab.json").is_file()
    )


def save_processor_files(folder: Path, config, source: Path | None) -> str:
    """Processor files in the package's native format; returns a note for the report.

    With a ``source`` folder holding a tokenizer (a skeleton, the LLM's folder or a release), the processor is
    loaded from it (its released-layout processor configs included, remote code never run) and saved natively.
    Otherwise the image/video processor defaults for the config's patch/merge sizes and the chat template
    are written, and the note says that the tokenizer is missing.
    """
    from ..image_processing_llava_onevision2 import LlavaOnevision2ImageProcessor
    from ..processing_llava_onevision2 import CHAT_TEMPLATE, LlavaOnevision2Processor
    from ..video_processing_llava_onevision2 import LlavaOnevision2VideoProcessor

    vision = config.vision_config
    if has_tokenizer(source):
        try:
            if (source / "preprocessor_config.json").is_file():
                processor = LlavaOnevision2Processor.from_pretrained(str(source))
            else:
                from transformers import AutoTokenizer

                tokenizer = AutoTokenizer.from_pretrained(str(source))
                image = LlavaOnevision2ImageProcessor(
                    patch_size=vision.patch_size, merge_size=vision.spatial_merge_size
                )
                processor = LlavaOnevision2Processor(image_processor=image, tokenizer=tokenizer)
        except Exception as exc:
            raise ConversionError(f"cannot load the tokenizer/processor of {str(source)!r}: {exc}") from None
        processor.save_pretrained(str(folder))
        return f"processor and tokenizer from {source}"
    image = LlavaOnevision2ImageProcessor(patch_size=vision.patch_size, merge_size=vision.spatial_merge_size)
    image.save_pretrained(str(folder))
    LlavaOnevision2VideoProcessor(
        patch_size=vision.patch_size, merge_size=vision.spatial_merge_size
    ).save_pretrained(str(folder))
    (folder / "chat_template.jinja").write_text(CHAT_TEMPLATE, encoding="utf-8")
    return "no tokenizer given (--skeleton/--tokenizer): wrote default image/video processor files only"
