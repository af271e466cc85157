"""``llava-ov2 chat``: load a checkpoint folder, process one image or video, stream the answer."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..errors import VideoDecodeError
from ._common import (
    RELEASED_CHECKPOINT,
    CliError,
    check_model_dir,
    positive_float,
    positive_int,
    resolve_video,
    status,
)

NAME = "chat"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Registers ``chat`` on the ``llava-ov2`` sub-parsers."""
    chat = subparsers.add_parser(
        "chat",
        help="answer a prompt about an image or a video with a checkpoint folder",
        description="Load a checkpoint folder in the released layout (config.json, weights, processor and "
        f"tokenizer files; e.g. a local copy of {RELEASED_CHECKPOINT}) and stream the answer.",
    )
    chat.add_argument("model_dir", metavar="MODEL_DIR", help="checkpoint folder")
    media = chat.add_mutually_exclusive_group(required=True)
    media.add_argument("--video", metavar="VIDEO", help="video file")
    media.add_argument("--image", metavar="IMAGE", help="image file")
    chat.add_argument("--prompt", required=True, help="the question")
    chat.add_argument("--backend", choices=("codec", "frames"), default="frames", help="video front end")
    chat.add_argument("--max-visual-tokens", type=positive_int, metavar="N", help="video token budget")
    chat.add_argument("--fps", type=positive_float, help="frames: sampling rate")
    chat.add_argument("--max-frames", type=positive_int, metavar="N", help="frames: maximum count")
    chat.add_argument("--max-new-tokens", type=positive_int, default=128, metavar="N")
    chat.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    chat.add_argument("--dtype", choices=("auto", "float32", "bfloat16", "float16"), default="auto")
    chat.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    chat.add_argument("-q", "--quiet", action="store_true", help="no status output on stderr")
    chat.set_defaults(func=run)
    return chat


def _resolve_dtype(name: str) -> Any:
    import torch

    return {"auto": "auto", "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[
        name
    ]


def _load_image(path_text: str) -> Any:
    from ..errors import ImageDecodeError
    from ..image_processing_llava_onevision2 import load_image_checked

    try:
        return load_image_checked(path_text).convert("RGB")
    except ImageDecodeError as exc:
        raise CliError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    """``llava-ov2 chat``: load a checkpoint folder, process one image or video, stream the answer."""
    quiet = args.quiet
    model_path = check_model_dir(args.model_dir)
    media: Any
    if args.video is not None:
        media = resolve_video(args.video, quiet=quiet)
    else:
        media = _load_image(args.image)

    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor, TextStreamer
    from transformers.utils import logging as hf_logging

    if quiet:
        hf_logging.disable_progress_bar()

    from .. import register_auto_classes

    register_auto_classes()
    try:
        with status(f"Loading processor from {model_path}", quiet=quiet):
            processor = AutoProcessor.from_pretrained(str(model_path))
        with status(f"Loading model from {model_path}", quiet=quiet):
            model = AutoModelForImageTextToText.from_pretrained(
                str(model_path), dtype=_resolve_dtype(args.dtype)
            )
    except (OSError, ValueError, KeyError) as exc:
        raise CliError(f"cannot load the checkpoint in {str(model_path)!r}: {exc}") from None
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = model.to(device).eval()

    content: list[dict[str, Any]] = []
    call_kwargs: dict[str, Any] = {}
    if args.video is not None:
        content.append({"type": "video"})
        from ..eval.runner import VideoSettings  # the one translation of video flags to processor options

        settings = VideoSettings(
            backend=args.backend,
            max_visual_tokens=args.max_visual_tokens,
            timestamp_decimals=1,
            fps=args.fps,
            max_frames=args.max_frames,
        )
        call_kwargs["videos"] = [str(media)]
        call_kwargs.update(settings.processor_kwargs())
    else:
        content.append({"type": "image"})
        call_kwargs["images"] = [media]
    content.append({"type": "text", "text": args.prompt})
    messages = [{"role": "user", "content": content}]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    what = f"{args.backend} video" if args.video is not None else "image"
    try:
        with status(f"Processing the {what}", quiet=quiet):
            inputs = processor(text=[prompt], return_tensors="pt", **call_kwargs)
    except VideoDecodeError:
        raise
    except ValueError as exc:
        raise CliError(f"cannot process the input with these settings: {exc}") from None
    inputs = {k: (v.to(device) if hasattr(v, "to") else v) for k, v in inputs.items()}
    inputs = {k: v for k, v in inputs.items() if k not in ("video_metadata",)}
    if not quiet:
        n_vis = int((inputs["input_ids"] == model.config.image_token_id).sum())
        print(f"Prompt: {inputs['input_ids'].shape[-1]} tokens ({n_vis} visual). Answer:", file=sys.stderr)
    streamer = TextStreamer(processor.tokenizer, skip_prompt=True, skip_special_tokens=True)
    gen_kwargs: dict[str, Any] = {"max_new_tokens": args.max_new_tokens, "streamer": streamer}
    if args.temperature > 0:
        gen_kwargs.update(do_sample=True, temperature=args.temperature)
    else:
        gen_kwargs["do_sample"] = False
    with torch.inference_mode():
        model.generate(**inputs, **gen_kwargs)
    sys.stdout.flush()
    return 0
