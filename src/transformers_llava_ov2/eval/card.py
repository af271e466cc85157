"""Hub-ready model cards (``README.md``) for checkpoint folders saved by this package.

:func:`render_model_card` builds the card from the folder alone, without loading the model: YAML front
matter (``library_name``, ``pipeline_tag: image-text-to-text``, ``base_model``, ``license``, ``tags`` and,
when results exist, a ``model-index``), usage through this package (image, frames video, codec video,
pipelines), the video back ends and their budgets, limitations, the parameter count (from the safetensors
headers), and the benchmark figures of ``eval_results.json`` (written by ``llava-ov2 eval``).
:func:`write_model_card` writes it; :func:`save_with_card` saves a model (and processor) and its card, and can
push the folder to the Hub.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .results import read_eval_results

__all__ = [
    "DEFAULT_BASE_MODEL",
    "ParameterCount",
    "count_parameters",
    "render_model_card",
    "save_with_card",
    "write_model_card",
]

DEFAULT_BASE_MODEL = "lmms-lab-encoder/LLaVA-OneVision-2-8B-Instruct"
_DEFAULT_TAGS = (
    "llava-onevision-2",
    "transformers-llava-ov2",
    "video-text-to-text",
    "codec-video",
    "multimodal",
)
_MAX_HEADER = 100 * 1024 * 1024


@dataclass(frozen=True)
class ParameterCount:
    """Parameters by part (``model.visual.*``, ``model.language_model.*``, ``lm_head.*``, other) and dtypes."""

    vision: int
    language: int
    lm_head: int
    other: int
    dtypes: tuple[str, ...]

    @property
    def total(self) -> int:
        return self.vision + self.language + self.lm_head + self.other


def _safetensors_header(path: Path) -> dict[str, Any]:
    with path.open("rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            raise ValueError(f"{path} is not a safetensors file (shorter than its 8-byte header length)")
        (length,) = struct.unpack("<Q", raw)
        if length > _MAX_HEADER:
            raise ValueError(f"{path} is not a safetensors file (header of {length} bytes)")
        try:
            return json.loads(f.read(length))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ValueError(f"{path} is not a safetensors file (unreadable header)") from None


def count_parameters(model_dir: str | os.PathLike) -> ParameterCount | None:
    """Parameter counts read from the safetensors headers (the index's shards, or ``model.safetensors``);
    ``None`` when the folder has no safetensors weights."""
    folder = Path(model_dir)
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        weight_map = json.loads(index.read_text()).get("weight_map", {})
        files = sorted({folder / name for name in weight_map.values()})
    elif (folder / "model.safetensors").is_file():
        files = [folder / "model.safetensors"]
    else:
        return None
    parts = {"vision": 0, "language": 0, "lm_head": 0, "other": 0}
    dtypes: set[str] = set()
    for file in files:
        for name, info in _safetensors_header(file).items():
            if name == "__metadata__":
                continue
            n = 1
            for dim in info["shape"]:
                n *= int(dim)
            dtypes.add(str(info["dtype"]))
            if name.startswith("model.visual."):
                parts["vision"] += n
            elif name.startswith("model.language_model."):
                parts["language"] += n
            elif name.startswith("lm_head."):
                parts["lm_head"] += n
            else:
                parts["other"] += n
    return ParameterCount(**parts, dtypes=tuple(sorted(dtypes)))


def _human(n: int) -> str:
    for unit, scale in (("B", 10**9), ("M", 10**6), ("K", 10**3)):
        if n >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(n)


def _yaml_str(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid YAML scalar


def _front_matter(
    base_model: str | None, license: str, tags: Sequence[str], results: list[dict[str, Any]], name: str
) -> str:
    lines = ["---", "library_name: transformers", "pipeline_tag: image-text-to-text", f"license: {license}"]
    if base_model:
        lines.append(f"base_model: {_yaml_str(base_model)}")
    lines.append("tags:")
    lines.extend(f"- {_yaml_str(t)}" for t in tags)
    if results:
        lines += ["model-index:", f"- name: {_yaml_str(name)}", "  results:"]
        for r in results:
            dataset = str(r.get("dataset") or r.get("task"))
            title = f"{r.get('task')} ({dataset})"
            lines += [
                "  - task:",
                "      type: video-text-to-text",
                "    dataset:",
                f"      name: {_yaml_str(title)}",
                f"      type: {_yaml_str(dataset)}",
                "    metrics:",
                f"    - type: {_yaml_str(str(r.get('metric', 'score')))}",
                f"      value: {float(r.get('value', 0.0))!r}",
                f"      name: {_yaml_str(_result_label(r))}",
            ]
    lines.append("---")
    return "\n".join(lines)


def _result_label(r: dict[str, Any]) -> str:
    budget = r.get("max_visual_tokens")
    return f"{r.get('task')} {r.get('metric', '')} ({r.get('backend')}, {budget or 'default'} visual tokens)"


def _config_summary(model_dir: Path) -> list[str]:
    try:
        cfg = json.loads((model_dir / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        return []
    v, t = cfg.get("vision_config") or {}, cfg.get("text_config") or {}
    rows = [
        ("vision encoder", f"{v.get('num_hidden_layers', '?')} layers, hidden {v.get('hidden_size', '?')}, "
         f"patch {v.get('patch_size', '?')}, merge {v.get('spatial_merge_size', '?')}"),
        ("language model", f"{t.get('num_hidden_layers', '?')} layers, hidden {t.get('hidden_size', '?')}, "
         f"vocabulary {t.get('vocab_size', '?')}"),
    ]  # fmt: skip
    return [f"| {k} | {val} |" for k, val in rows]


def _parameters_section(params: ParameterCount | None, model_dir: Path) -> list[str]:
    lines = ["## Model", "", "| part | value |", "|---|---|"]
    if params is None:
        lines.append("| parameters | unknown (no safetensors weights in the folder) |")
    else:
        lines += [
            f"| parameters | {params.total:,} ({_human(params.total)}) |",
            f"| vision tower + merger | {params.vision:,} |",
            f"| language model | {params.language:,} |",
            f"| lm_head (untied) | {params.lm_head:,} |",
            f"| weight dtypes | {', '.join(params.dtypes)} |",
        ]
    return [*lines, *_config_summary(model_dir), ""]


def _usage_section(repo: str) -> list[str]:
    return [
        "## Usage",
        "",
        "With the `transformers-llava-ov2` package installed (`pip install transformers-llava-ov2`; no "
        "`trust_remote_code`, no torchvision):",
        "",
        "```python",
        "import transformers_llava_ov2  # registers the model and processor with the Auto* classes",
        "from transformers import AutoModelForImageTextToText, AutoProcessor",
        "",
        f'model = AutoModelForImageTextToText.from_pretrained("{repo}", dtype="auto")',
        f'processor = AutoProcessor.from_pretrained("{repo}")',
        "",
        "def ask(content, **options):",
        '    messages = [{"role": "user", "content": content}]',
        "    inputs = processor.apply_chat_template(messages, tokenize=True, add_generation_prompt=True,",
        '                                           return_dict=True, return_tensors="pt", processor_kwargs=options)',
        "    out = model.generate(**inputs.to(model.device), max_new_tokens=128)",
        '    return processor.batch_decode(out[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)[0]',
        "",
        "# an image",
        'ask([{"type": "image", "path": "photo.jpg"}, {"type": "text", "text": "Describe the image."}])',
        "# a video as uniform frames (1 fps, 4-32 frames)",
        'ask([{"type": "video", "path": "clip.mp4"}, {"type": "text", "text": "What happens?"}],',
        '    video_backend="frames", fps=1.0, max_frames=32)',
        "# a video as codec-stream canvases under a visual-token budget",
        'ask([{"type": "video", "path": "clip.mp4"}, {"type": "text", "text": "When does the jump start?"}],',
        '    video_backend="codec", max_visual_tokens=4096, timestamp_decimals=2)',
        "```",
        "",
        "Pipelines:",
        "",
        "```python",
        "import transformers_llava_ov2",
        "from transformers import pipeline",
        "",
        f'pipe = pipeline("image-text-to-text", model="{repo}")',
        'messages = [{"role": "user", "content": [{"type": "image", "path": "photo.jpg"},',
        '                                         {"type": "text", "text": "What is shown?"}]}]',
        "print(pipe(text=messages, max_new_tokens=64))",
        "```",
        "",
        'Command line: `llava-ov2 chat MODEL_DIR --video clip.mp4 --prompt "..."`, '
        "`llava-ov2 eval jumpscore --model MODEL_DIR --data DIR`.",
        "",
    ]


_BACKENDS = [
    "## Video back ends and budgets",
    "",
    "| back end | what the model sees | budget knobs |",
    "|---|---|---|",
    "| `frames` (default) | uniformly sampled frames (qwen-vl-utils rule: 1 fps, 4-32 frames, even count), "
    "each as `<t seconds>` + image tokens | `fps`, `num_frames`, `min_frames`/`max_frames`, "
    "`min_pixels`/`max_pixels` per frame, `max_visual_tokens` per video |",
    "| `codec` | I/P canvases packed from the salient 2x2 patch blocks of adaptive groups of pictures "
    "(bit cost, motion vectors, residuals), with their source times | `max_visual_tokens` per video, "
    "`codec_config` (canvases, groups) |",
    "",
    "Images use the native-resolution path (`min_pixels`/`max_pixels`). Timestamps have one decimal by "
    "default; pass `timestamp_decimals=2` for fine temporal grounding (JumpScore is evaluated with 2).",
    "",
]

_LIMITATIONS = [
    "## Limitations",
    "",
    "- Detail-sensitive questions about static content favour the `frames` back end: codec canvases keep "
    "the blocks that change, not every detail of a still scene.",
    "- The codec back end needs motion vectors: H.264/MPEG-4 streams have them; HEVC, VP9, AV1, MJPEG and "
    "image sequences fall back to residual-only saliency (frame differences of decoded frames; "
    "documented, never a crash), which tracks motion less precisely than motion vectors.",
    "- Counting answers: JumpScore's official parser turns any bare number of an answer into a timestamp "
    "when no `<n>s` token or JSON list is found; compare the strict-parser score beside it.",
    "- The evaluation figures above were produced by `llava-ov2 eval` on the dataset named in each row; a "
    "generated (synthetic) set measures the pipeline, not the model's quality.",
    "",
]


def _results_section(results: list[dict[str, Any]]) -> list[str]:
    lines = ["## Evaluation", ""]
    if not results:
        return [
            *lines,
            "No results recorded yet (`llava-ov2 eval jumpscore --model DIR --data DIR` adds them).",
            "",
        ]
    lines += [
        "| task | dataset | back end | visual tokens | videos | score | strict parser | bad predictions | date |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        strict = r.get("strict_value")
        lines.append(
            f"| {r.get('task')} {r.get('metric', '')} | {r.get('dataset')} | {r.get('backend')} | "
            f"{r.get('max_visual_tokens') or 'default'} | {r.get('num_videos', '?')} | "
            f"{float(r.get('value', 0.0)):.4f} | {'-' if strict is None else f'{float(strict):.4f}'} | "
            f"{r.get('bad_predictions', '?')} | {r.get('date', '')} |"
        )
    return [*lines, "", "Scored exactly as lmms-eval's JumpScore task scores (mAP over 0.1/0.2/0.3 s).", ""]


def render_model_card(
    model_dir: str | os.PathLike,
    *,
    repo_id: str | None = None,
    base_model: str | None = DEFAULT_BASE_MODEL,
    license: str = "apache-2.0",
    tags: Sequence[str] = (),
    results: list[dict[str, Any]] | None = None,
) -> str:
    """The card's Markdown text (see the module docstring); ``results`` default to ``eval_results.json``."""
    folder = Path(model_dir)
    name = repo_id or folder.resolve().name
    results = read_eval_results(folder) if results is None else results
    all_tags = list(dict.fromkeys([*_DEFAULT_TAGS, *tags]))
    params = count_parameters(folder)
    title = [
        _front_matter(base_model, license, all_tags, results, name),
        "",
        f"# {name}",
        "",
        "LLaVA-OneVision-2 (OneVision-Encoder vision tower with 3D RoPE, 2x2 patch merger, Qwen3 decoder) "
        "for Hugging Face transformers through the `transformers-llava-ov2` package, with codec-stream video "
        "tokenization."
        + (f" Based on [{base_model}](https://huggingface.co/{base_model})." if base_model else ""),
        "",
    ]
    body = [
        *_parameters_section(params, folder),
        *_usage_section(repo_id or str(folder)),
        *_BACKENDS,
        *_results_section(results),
        *_LIMITATIONS,
    ]
    return "\n".join([*title, *body]).rstrip() + "\n"


def write_model_card(
    model_dir: str | os.PathLike, *, out: str | os.PathLike | None = None, **kwargs: Any
) -> Path:
    """Write :func:`render_model_card` to ``out`` (default ``MODEL_DIR/README.md``) via a temporary file."""
    text = render_model_card(model_dir, **kwargs)
    path = Path(out) if out is not None else Path(model_dir) / "README.md"
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def save_with_card(
    model: Any,
    save_directory: str | os.PathLike,
    processor: Any = None,
    *,
    push_to_hub: bool = False,
    repo_id: str | None = None,
    private: bool | None = None,
    **card_kwargs: Any,
) -> Path:
    """``save_pretrained`` of ``model`` (and ``processor``) plus its ``README.md``; with ``push_to_hub``,
    uploads the folder to ``repo_id`` (created if needed). Returns the card's path."""
    model.save_pretrained(save_directory)
    if processor is not None:
        processor.save_pretrained(save_directory)
    card = write_model_card(save_directory, repo_id=repo_id, **card_kwargs)
    if push_to_hub:
        if not repo_id:
            raise ValueError("push_to_hub needs a repo_id (e.g. 'user/llava-ov2-finetune')")
        from huggingface_hub import HfApi

        api = HfApi()
        api.create_repo(repo_id, private=private, exist_ok=True)
        api.upload_folder(repo_id=repo_id, folder_path=str(save_directory))
    return card
