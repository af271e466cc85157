"""Release folder (as downloaded from the Hub) → a folder this package loads and saves natively.

``config.json`` is rewritten by the package's config class (``auto_map`` and legacy keys dropped),
processor files are rewritten by :class:`LlavaOnevision2Processor` (loaded from the release's
``preprocessor_config.json`` / tokenizer without running remote code), remote-code ``*.py`` files are dropped
unless asked to keep them, other files are copied, and the weights are copied byte for byte (SHA-256 checked).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from .check import check_folder
from .checks import ConversionError
from .fsutil import atomic_output_dir, check_output_dir
from .hf_folder import TOKENIZER_FILES, ConversionReport, save_processor_files
from .layout import load_config

LEGACY_VISION_KEYS = ("use_patch_position_encoding", "patch_position_encoding_type", "max_position_embeddings",
                      "text_hidden_size")  # fmt: skip
PROCESSOR_FILES = ("preprocessor_config.json", "video_preprocessor_config.json", "processor_config.json",
                   "chat_template.jinja", "chat_template.json", *TOKENIZER_FILES)  # fmt: skip
_CHUNK = 64 * 1024 * 1024


def _copy_hashed(src: Path, dst: Path) -> str:
    """Copies ``src`` to ``dst`` in chunks; returns the SHA-256 of what was read."""
    digest = hashlib.sha256()
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        while chunk := fin.read(_CHUNK):
            digest.update(chunk)
            fout.write(chunk)
    return digest.hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def native_config_dict(src: Path, keep_remote_code: bool) -> dict:
    """The release ``config.json`` rewritten by the package's config class."""
    config = load_config(src)
    data = config.to_dict()
    for key in LEGACY_VISION_KEYS:
        data.get("vision_config", {}).pop(key, None)
    raw = json.loads((src / "config.json").read_text())
    if keep_remote_code and "auto_map" in raw:
        data["auto_map"] = raw["auto_map"]
    else:
        data.pop("auto_map", None)
    return data


def release_to_native(
    source: str | Path,
    out: str | Path | None,
    *,
    keep_remote_code: bool = False,
    check_values: bool = True,
    dry_run: bool = False,
    log: Callable[[str], None] = print,
) -> ConversionReport:
    """Converts a release folder into ``out``; the weights are not touched (hashes are compared)."""
    src = Path(source)
    out_path = None if dry_run else check_output_dir(out, src)
    checked = check_folder(src, values=check_values)
    if not checked.ok:
        raise ConversionError(
            f"release folder {str(src)!r} has problems:\n  " + "\n  ".join(checked.problems)
        )
    config_data = native_config_dict(src, keep_remote_code)
    weights = sorted(p.name for p in src.glob("*.safetensors")) + (
        ["model.safetensors.index.json"] if (src / "model.safetensors.index.json").is_file() else []
    )
    code = sorted(p.name for p in src.glob("*.py"))
    skip = {"config.json", *PROCESSOR_FILES, *weights, *([] if keep_remote_code else code)}
    others = sorted(p.name for p in src.iterdir() if p.is_file() and p.name not in skip)
    log(f"release {src} -> native: {len(weights)} weight files copied unchanged, config and processor rewritten, "
        f"remote code {'kept' if keep_remote_code else 'dropped'} ({', '.join(code) or 'none'}), "
        f"other files copied: {', '.join(others) or 'none'}")  # fmt: skip
    report = ConversionReport(dry_run=dry_run, tensors=checked.tensors)
    if dry_run:
        log(report.summary())
        return report
    t0 = time.perf_counter()
    with atomic_output_dir(out_path) as tmp:
        for name in weights:
            digest = _copy_hashed(src / name, tmp / name)
            if _sha256(tmp / name) != digest:
                raise ConversionError(f"weights file {name!r} changed while copying (hash mismatch)")
            report.bytes += (src / name).stat().st_size
        (tmp / "config.json").write_text(json.dumps(config_data, indent=2, sort_keys=True) + "\n")
        report.notes.append(save_processor_files(tmp, load_config(tmp), src))
        for name in others:
            shutil.copy2(src / name, tmp / name)
    report.seconds = time.perf_counter() - t0
    report.output = str(out_path)
    log(report.summary())
    return report
