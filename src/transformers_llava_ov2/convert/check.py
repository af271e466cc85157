"""``llava-ov2 check``: a downloaded or produced checkpoint folder streamed tensor by tensor through the
same checks as the conversions, collecting every problem instead of stopping at the first."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .checks import ConversionError, check_finite
from .layout import checkpoint_shapes, load_config
from .safetensors_io import SafetensorsFolder


@dataclass
class CheckReport:
    """Problems (the folder would load wrongly or not at all) and notes (worth knowing)."""

    folder: str
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    tensors: int = 0
    bytes: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        rate = self.bytes / 1e9 / self.seconds if self.seconds else 0.0
        head = f"{self.folder}: {'OK' if self.ok else f'{len(self.problems)} problem(s)'}"
        return f"{head} ({self.tensors} tensors, {self.bytes / 1e9:.3f} GB read in {self.seconds:.2f} s, {rate:.2f} GB/s)"


def _structure(folder: SafetensorsFolder, shapes: dict, report: CheckReport) -> list[str]:
    names = set(folder.names())
    missing, unexpected = sorted(set(shapes) - names), sorted(names - set(shapes))
    for name in unexpected:
        report.problems.append(
            f"unexpected tensor {name!r}: the model has no such parameter (renamed?); it would be ignored"
        )
    for name in missing:
        report.problems.append(f"missing tensor {name!r}: it would be randomly initialised")
    dtypes: dict[torch.dtype, list[str]] = {}
    for name in sorted(names & set(shapes)):
        spec = folder.spec(name)
        if spec.shape != shapes[name]:
            report.problems.append(
                f"tensor {name!r} has shape {list(spec.shape)}, the config expects {list(shapes[name])}"
            )
        if not spec.dtype.is_floating_point:
            report.problems.append(
                f"tensor {name!r} is stored as {spec.dtype}; model weights must be floating point"
            )
        dtypes.setdefault(spec.dtype, []).append(name)
    if len(dtypes) > 1:
        counts = ", ".join(
            f"{len(v)} {str(k).removeprefix('torch.')} (e.g. {v[0]!r})" for k, v in dtypes.items()
        )
        report.problems.append(f"mixed dtypes: {counts}")
    return sorted(names & set(shapes))


def check_folder(
    path: str | Path, *, values: bool = True, progress: Callable[[int], object] | None = None
) -> CheckReport:
    """Checks config, weight files (index, truncation), names, shapes, dtypes and (``values``) NaN/Inf."""
    path = Path(path)
    report = CheckReport(str(path))
    t0 = time.perf_counter()
    try:
        config = load_config(path)
        folder = SafetensorsFolder(path)
    except ConversionError as exc:
        report.problems.append(str(exc))
        return report
    if list(path.glob("*.py")):
        report.notes.append(f"remote-code files present ({', '.join(sorted(p.name for p in path.glob('*.py')))}); "
                            "this package never runs them (see `llava-ov2 convert release-to-native`)")  # fmt: skip
    present = _structure(folder, checkpoint_shapes(config), report)
    if values:
        wanted = set(present)
        for name, tensor in folder.iter_tensors():
            if name not in wanted:
                continue
            try:
                check_finite(name, tensor)
            except ConversionError as exc:
                report.problems.append(str(exc))
            report.tensors += 1
            report.bytes += tensor.numel() * tensor.element_size()
            if progress is not None:
                progress(1)
    report.seconds = time.perf_counter() - t0
    return report
