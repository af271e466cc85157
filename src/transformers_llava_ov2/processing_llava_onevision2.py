"""``LlavaOnevision2Processor``: tokenizer + image processor + video processor, as a standard ``ProcessorMixin``.

Every visual input goes through the model's *image* path. Images keep their chat-template span
``<|vision_start|><|image_pad|><|vision_end|>`` with ``<|image_pad|>`` repeated once per merged token; a
video's whole ``<|vision_start|><|video_pad|><|vision_end|>`` span is *replaced* by its per-frame (frames
back end) or per-run (codec back end) blocks ``<t seconds><|vision_start|><|image_pad|>*n<|vision_end|>``.
All visual rows are concatenated in prompt order (sample by sample, left to right) into ``pixel_values``,
``image_grid_thw`` and ``patch_positions``; the model never sees ``<|video_pad|>``.

Works without torchvision (``docs/processor.md``, "Working without torchvision"): ``ProcessorMixin`` looks up the
``VideoProcessorMixin`` base class by name at construction, which fails when torchvision is absent because
transformers only exports that name with torchvision installed. The small
:meth:`LlavaOnevision2Processor.get_possibly_dynamic_module` override resolves it (and our own sub-processor
classes) from their module paths; :func:`~.registration.register_auto_classes` registers the classes with
the Auto factories through module paths, for both the ``"pil"`` and ``"torchvision"`` back-end keys.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
from transformers.feature_extraction_utils import BatchFeature
from transformers.processing_utils import ProcessorMixin
from transformers.video_processing_utils import VideoProcessorMixin

from .image_processing_llava_onevision2 import LlavaOnevision2ImageProcessor, build_patch_positions
from .video_processing_llava_onevision2 import (
    LlavaOnevision2VideoProcessor,
    flatten_video_inputs,
    render_video_prompt,
)
from .video_types import VisualItem

__all__ = ["CHAT_TEMPLATE", "LlavaOnevision2Processor"]

CHAT_TEMPLATE: str = (Path(__file__).parent / "chat_template.jinja").read_text(encoding="utf-8")
"""The default chat template (Qwen2-VL style; default system prompt "You are a helpful assistant.")."""

_OWN_CLASSES: dict[str, type] = {
    "VideoProcessorMixin": VideoProcessorMixin,
    "LlavaOnevision2ImageProcessor": LlavaOnevision2ImageProcessor,
    "LlavaOnevision2VideoProcessor": LlavaOnevision2VideoProcessor,
}


def _flatten_images(images: Any) -> list[Any]:
    """Flatten (possibly nested, per-sample) image inputs into a list of single images."""
    from PIL import Image

    if images is None:
        return []
    if isinstance(images, (Image.Image, str, os.PathLike)):
        return [images]
    if hasattr(images, "ndim"):
        if images.ndim == 4:
            return list(images)
        return [images]
    if isinstance(images, (list, tuple)):
        out: list[Any] = []
        for item in images:
            out.extend(_flatten_images(item))
        return out
    raise ValueError(f"unsupported image input of type {type(images).__name__}")


def _known_keys(config: dict[str, Any], cls: type) -> dict[str, Any]:
    """The entries of a saved sub-processor config that ``cls`` accepts (drops auto_map, *_type, legacy keys)."""
    names = set(cls.valid_kwargs.__annotations__) | {"size"}
    return {k: v for k, v in config.items() if k in names}


def _concat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    """``np.concatenate`` that hands a single part back without copying it (a video's rows can be ~1 GB).

    Only for arrays the processor created itself (pixel rows), so the result never aliases caller data.
    """
    if len(parts) == 1:
        return np.asarray(parts[0]).astype(dtype, copy=False)
    return np.concatenate(parts).astype(dtype, copy=False)


class LlavaOnevision2Processor(ProcessorMixin):
    r"""Processor of LLaVA-OneVision-2 (Qwen2 tokenizer + image processor + video processor).

    Call: ``processor(text=..., images=..., videos=..., return_tensors="pt", **options)``. Options are routed by
    name: tokenizer options (``padding``, ``padding_side``, ``truncation``, ``max_length``, ...), image options
    (``min_pixels``, ``max_pixels``, ...) and video options (``video_backend``, ``video_layout``, ``fps``,
    ``num_frames``, ``min_frames``, ``max_frames``, ``max_visual_tokens``, ``timestamp_decimals``, ...; see
    ``LlavaOnevision2VideosKwargs``). ``min_pixels``/``max_pixels`` apply to images and video frames alike.

    Returns ``BatchFeature`` with ``input_ids``, ``attention_mask`` and, when visual inputs are given,
    ``pixel_values [N, 3*p*p]``, ``image_grid_thw [R, 3]``, ``patch_positions [N, 3]`` (prompt order).
    ``return_metadata=True`` adds ``video_metadata`` (one ``LlavaOnevision2VideoInfo`` per video) and
    ``return_mm_token_type_ids=True`` adds ``mm_token_type_ids`` (1 on ``<|image_pad|>``).

    Padding: the tokenizer is set to **left** padding at construction (generation-friendly), unless it was
    created with an explicit ``padding_side``; pass ``padding_side="right"`` per call for training. Batches of
    several texts are padded by default when tensors are requested.
    """

    model_input_names = ["input_ids", "attention_mask", "pixel_values", "image_grid_thw", "patch_positions"]

    def __init__(
        self,
        image_processor: Any = None,
        tokenizer: Any = None,
        video_processor: Any = None,
        chat_template: str | None = None,
        **kwargs: Any,
    ) -> None:
        if tokenizer is None:
            raise ValueError(
                "LlavaOnevision2Processor needs a tokenizer (Qwen2Tokenizer with the Qwen vision tokens)"
            )
        if image_processor is None:
            image_processor = LlavaOnevision2ImageProcessor()
        if video_processor is None:
            video_processor = LlavaOnevision2VideoProcessor(
                patch_size=image_processor.patch_size, merge_size=image_processor.merge_size
            )
        if chat_template is None:
            chat_template = CHAT_TEMPLATE
        self.image_token = getattr(tokenizer, "image_token", None) or "<|image_pad|>"
        self.video_token = getattr(tokenizer, "video_token", None) or "<|video_pad|>"
        self.vision_start_token = getattr(tokenizer, "vision_start_token", None) or "<|vision_start|>"
        self.vision_end_token = getattr(tokenizer, "vision_end_token", None) or "<|vision_end|>"
        ids = {}
        for name in ("image_token", "video_token", "vision_start_token", "vision_end_token"):
            token = getattr(self, name)
            token_id = tokenizer.convert_tokens_to_ids(token)
            if token_id is None or token_id == tokenizer.unk_token_id:
                raise ValueError(
                    f"the tokenizer has no {token!r} token; LLaVA-OneVision-2 needs the Qwen vision tokens"
                )
            ids[name + "_id"] = int(token_id)
        self.image_token_id = ids["image_token_id"]
        self.video_token_id = ids["video_token_id"]
        self.vision_start_token_id = ids["vision_start_token_id"]
        self.vision_end_token_id = ids["vision_end_token_id"]
        super().__init__(image_processor, tokenizer, video_processor, chat_template=chat_template)
        if "padding_side" not in getattr(tokenizer, "init_kwargs", {}):
            tokenizer.padding_side = "left"

    # ------------------------------------------------------------------ torchvision-free class lookup
    @staticmethod
    def get_possibly_dynamic_module(module_name: str) -> Any:
        """Resolve sub-processor base classes by name without relying on torchvision-gated exports.

        ``ProcessorMixin`` asks for ``"VideoProcessorMixin"`` when checking the ``video_processor`` argument;
        transformers only exports that name when torchvision is installed, so it is returned from its module
        path here (the same object either way). Our own classes are returned directly; anything else falls
        back to the library lookup.
        """
        if module_name in _OWN_CLASSES:
            return _OWN_CLASSES[module_name]
        return ProcessorMixin.get_possibly_dynamic_module(module_name)

    # ------------------------------------------------------------------ loading
    @classmethod
    def _get_arguments_from_pretrained(
        cls, pretrained_model_name_or_path: Any, processor_dict: dict | None = None, **kwargs: Any
    ) -> list[Any]:
        """Load ``[image_processor, tokenizer, video_processor]`` for ``from_pretrained``.

        Always builds OUR sub-processor classes, so a folder in the released layout (only a
        ``preprocessor_config.json`` naming the slow ``Qwen2VLImageProcessor``, or the release's remote-code
        video processor config) loads without torchvision and keeps the slow-processor pixel parity.
        A video processor config is used only when it was written by this package (it has ``video_layout``);
        otherwise the video processor gets its defaults with ``patch_size``/``merge_size`` of the image
        processor.
        """
        kwargs = {k: v for k, v in kwargs.items() if k not in ("trust_remote_code", "backend", "use_fast")}
        subfolder = kwargs.pop("subfolder", "")
        tokenizer = cls._load_tokenizer_from_pretrained(
            "tokenizer", pretrained_model_name_or_path, subfolder=subfolder, **kwargs
        )
        image_dict, _ = LlavaOnevision2ImageProcessor.get_image_processor_dict(
            pretrained_model_name_or_path, subfolder=subfolder, **kwargs
        )
        image_processor = LlavaOnevision2ImageProcessor(
            **_known_keys(image_dict, LlavaOnevision2ImageProcessor)
        )
        video_dict: dict[str, Any] = {}
        with contextlib.suppress(OSError):
            video_dict, _ = LlavaOnevision2VideoProcessor.get_video_processor_dict(
                pretrained_model_name_or_path, subfolder=subfolder, **kwargs
            )
        if (
            video_dict.get("video_processor_type") == LlavaOnevision2VideoProcessor.__name__
            and "video_layout" in video_dict
        ):
            video_processor = LlavaOnevision2VideoProcessor(
                **_known_keys(video_dict, LlavaOnevision2VideoProcessor)
            )
        else:
            video_processor = LlavaOnevision2VideoProcessor(
                patch_size=image_processor.patch_size, merge_size=image_processor.merge_size
            )
        return [image_processor, tokenizer, video_processor]

    def save_pretrained(
        self, save_directory: str | os.PathLike, push_to_hub: bool = False, **kwargs: Any
    ) -> Any:
        """``ProcessorMixin.save_pretrained`` without the last call's truncation/padding state.

        A ``tokenizers``-backed tokenizer keeps the truncation/padding of its last call in its Rust backend and
        ``save_pretrained`` serialises it into ``tokenizer.json`` (so ``max_length=5`` once would truncate every
        later call of the reloaded processor). Both are cleared before saving.
        """
        backend = getattr(self.tokenizer, "_tokenizer", None)
        if backend is not None and hasattr(backend, "no_truncation") and hasattr(backend, "no_padding"):
            backend.no_truncation()
            backend.no_padding()
        return super().save_pretrained(save_directory, push_to_hub=push_to_hub, **kwargs)

    # ------------------------------------------------------------------ main entry point
    def __call__(
        self,
        images: Any = None,
        text: str | list[str] | None = None,
        videos: Any = None,
        audio: Any = None,
        **kwargs: Any,
    ) -> BatchFeature:
        """Tokenize ``text`` and turn ``images``/``videos`` into image-path model inputs (prompt order)."""
        if audio is not None:
            raise ValueError("LLaVA-OneVision-2 has no audio input")
        kwargs.pop("sanitize_control_tokens", None)
        video_metadata = kwargs.pop("video_metadata", None)
        return_metadata = bool(kwargs.pop("return_metadata", False))
        user_padding = "padding" in kwargs or "padding" in (kwargs.get("text_kwargs") or {})
        merged = self._merge_kwargs(tokenizer_init_kwargs=self.tokenizer.init_kwargs, **kwargs)
        text_kwargs = dict(merged["text_kwargs"])
        images_kwargs = dict(merged["images_kwargs"])
        videos_kwargs = dict(merged["videos_kwargs"])
        return_mm = bool(
            text_kwargs.pop("return_mm_token_type_ids", merged.get("return_mm_token_type_ids", False))
        )
        return_offsets = bool(
            text_kwargs.pop(
                "return_text_replacement_offsets", merged.get("return_text_replacement_offsets", False)
            )
        )
        return_tensors = text_kwargs.pop("return_tensors", None)
        for opts in (images_kwargs, videos_kwargs):
            return_tensors = opts.pop("return_tensors", None) or return_tensors
        videos_kwargs.pop("return_metadata", None)
        videos_kwargs.pop("video_metadata", None)

        image_list = _flatten_images(
            self.image_processor.fetch_images(images) if images is not None else None
        )
        video_list = flatten_video_inputs(videos)
        if video_metadata is not None and not isinstance(video_metadata, (list, tuple)):
            video_metadata = [video_metadata]
        if video_metadata is not None and len(video_metadata) != len(video_list):
            raise ValueError(f"got {len(video_metadata)} video_metadata entries for {len(video_list)} videos")

        if text is None:
            texts = None
        elif isinstance(text, str):
            texts = [text]
        elif isinstance(text, (list, tuple)) and all(isinstance(t, str) for t in text):
            texts = list(text)
        else:
            raise ValueError("`text` must be a string or a list of strings")

        image_items = self._process_images(image_list, images_kwargs) if image_list else []
        video_items = []
        for i, video in enumerate(video_list):
            meta = None if video_metadata is None else video_metadata[i]
            video_items.append(
                self.video_processor.process_video(video, metadata=meta, index=i, **videos_kwargs)
            )

        data: dict[str, Any] = {}
        if texts is None:
            order = [("image", i) for i in range(len(image_items))] + [
                ("video", j) for j in range(len(video_items))
            ]
        else:
            texts, order, offsets = self._expand_text(texts, image_items, video_items)
            if len(texts) > 1 and return_tensors is not None and not user_padding:
                text_kwargs.setdefault("padding", True)
            if text_kwargs.get("padding") in (False, "do_not_pad"):
                text_kwargs.pop("padding_side", None)
            text_inputs = self.tokenizer(texts, **text_kwargs)
            self._check_image_token_counts(texts, text_inputs)
            data.update(text_inputs)
            if return_mm:
                data["mm_token_type_ids"] = self.create_mm_token_type_ids(text_inputs["input_ids"])
            if return_offsets:
                data["text_replacement_offsets"] = offsets

        if order:
            pixels, grids, positions = [], [], []
            for kind, idx in order:
                item = image_items[idx] if kind == "image" else video_items[idx]
                pixels.append(item.pixel_values)
                grids.append(item.grid_thw)
                positions.append(item.patch_positions)
            data["pixel_values"] = _concat(pixels, np.float32)
            data["image_grid_thw"] = np.concatenate(grids).astype(np.int64, copy=False)
            data["patch_positions"] = np.concatenate(positions).astype(np.int64, copy=False)
        if return_metadata:
            data["video_metadata"] = [item.info for item in video_items]
        return BatchFeature(
            data,
            tensor_type=return_tensors,
            skip_tensor_conversion=["video_metadata", "text_replacement_offsets"],
        )

    def _process_images(self, image_list: list[Any], images_kwargs: dict[str, Any]) -> list[VisualItem]:
        images_kwargs = {**images_kwargs, "temporal_patch_size": 1}
        out = self.image_processor(image_list, **images_kwargs)
        pixels = np.asarray(out["pixel_values"], dtype=np.float32)
        grid = np.asarray(out["image_grid_thw"], dtype=np.int64).reshape(-1, 3)
        merge = int(images_kwargs.get("merge_size") or self.image_processor.merge_size)
        positions = out.get("patch_positions")
        positions = (
            build_patch_positions(grid, merge) if positions is None else np.asarray(positions, np.int64)
        )
        items, start = [], 0
        for row in grid:
            n = int(np.prod(row))
            items.append(
                VisualItem(
                    pixels[start : start + n], row[None], positions[start : start + n], int(n // merge**2)
                )
            )
            start += n
        return items

    def _expand_text(
        self, texts: list[str], image_items: list[VisualItem], video_items: list[VisualItem]
    ) -> tuple[list[str], list[tuple[str, int]], list[list[dict[str, Any]]]]:
        vs, vp, ve, ip = (
            re.escape(t)
            for t in (self.vision_start_token, self.video_token, self.vision_end_token, self.image_token)
        )
        pattern = re.compile(rf"(?P<video>{vs}\s*{vp}\s*{ve}|{vp})|(?P<image>{ip})")
        matches = [list(pattern.finditer(t)) for t in texts]
        n_img = sum(1 for ms in matches for m in ms if m.lastgroup == "image")
        n_vid = sum(1 for ms in matches for m in ms if m.lastgroup == "video")
        if n_img != len(image_items):
            raise ValueError(
                f"the prompt(s) contain {n_img} {self.image_token} placeholder(s) but {len(image_items)} image(s) were "
                "passed; use one <|vision_start|><|image_pad|><|vision_end|> per image (apply_chat_template adds them)"
            )
        if n_vid != len(video_items):
            raise ValueError(
                f"the prompt(s) contain {n_vid} {self.video_token} placeholder(s) but {len(video_items)} video(s) were "
                "passed; use one <|vision_start|><|video_pad|><|vision_end|> per video (apply_chat_template adds them)"
            )
        out_texts, order, offsets = [], [], []
        i_img = i_vid = 0
        for text, ms in zip(texts, matches):
            parts, last, shift, sample_offsets = [], 0, 0, []
            for m in ms:
                parts.append(text[last : m.start()])
                if m.lastgroup == "image":
                    replacement = self.image_token * image_items[i_img].num_tokens
                    order.append(("image", i_img))
                    i_img += 1
                else:
                    info = video_items[i_vid].info
                    replacement = render_video_prompt(
                        info,
                        image_token=self.image_token,
                        vision_start=self.vision_start_token,
                        vision_end=self.vision_end_token,
                    )
                    order.append(("video", i_vid))
                    i_vid += 1
                start = m.start() + shift
                sample_offsets.append(
                    {
                        "type": m.lastgroup,
                        "span": m.span(),
                        "new_span": (start, start + len(replacement)),
                        "text": m.group(),
                        "replacement": replacement,
                    }
                )
                shift += len(replacement) - (m.end() - m.start())
                parts.append(replacement)
                last = m.end()
            parts.append(text[last:])
            out_texts.append("".join(parts))
            offsets.append(sample_offsets)
        return out_texts, order, offsets

    def _check_image_token_counts(self, texts: list[str], text_inputs: Any) -> None:
        input_ids = text_inputs["input_ids"]
        input_ids = input_ids.tolist() if hasattr(input_ids, "tolist") else input_ids
        if input_ids and isinstance(input_ids[0], int):
            input_ids = [input_ids]
        for b, (ids, t) in enumerate(zip(input_ids, texts)):
            expected = t.count(self.image_token)
            got = list(ids).count(self.image_token_id)
            if got != expected:
                raise ValueError(
                    f"sample {b}: {got} {self.image_token} tokens after tokenization but {expected} expected; "
                    "the prompt was probably truncated (increase max_length or disable truncation)"
                )

    # ------------------------------------------------------------------ decoding helpers
    def post_process_image_text_to_text(
        self, generated_outputs: Any, skip_special_tokens: bool = True, **kwargs: Any
    ) -> list[str] | str:
        """Decode generated ids (``[B, L]`` → list of strings, ``[L]`` → string)."""
        ndim = getattr(generated_outputs, "ndim", None)
        if ndim is None:
            ndim = 2 if generated_outputs and isinstance(generated_outputs[0], (list, tuple)) else 1
        if ndim == 1:
            return self.tokenizer.decode(generated_outputs, skip_special_tokens=skip_special_tokens, **kwargs)
        return self.tokenizer.batch_decode(
            generated_outputs, skip_special_tokens=skip_special_tokens, **kwargs
        )

    @property
    def unused_input_names(self) -> list[str]:
        return ["pixel_values_videos", "video_grid_thw", "video_patch_positions"]
