"""The ``codec`` back end of the processor: a video file (or ``CodecTokens``) → a :class:`~..video_types.VisualItem`.

Rules coded here once: the processor options → :class:`~.config.CodecConfig` (:func:`codec_config_for`,
also used by the CLI) and the canvases → patch rows, grid rows, positions and prompt blocks
(:func:`codec_item`: one ``<t seconds>`` block per run of equal source frame, a newline after each, see
:meth:`~..video_types.CodecTokens.frame_runs`). See ``docs/processor.md`` and ``docs/codec.md``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import VideoDecodeError
from ..processing_defaults import DEFAULT_MAX_PIXELS
from ..video.kernels import normalize_and_patchify
from ..video.options import VideoOptions
from ..video_types import CodecTokens, LlavaOnevision2VideoInfo, SampledFrames, VisualItem
from .config import CodecConfig, with_overrides
from .pipeline import tokenize_video

__all__ = ["codec_backend_item", "codec_config_for", "codec_item", "codec_tokens_for"]


def codec_config_for(opts: VideoOptions) -> CodecConfig:
    """The :class:`CodecConfig` a processor call means.

    ``opts.codec_config`` (a ``CodecConfig`` or a dict of its fields) is the base; without a full
    ``CodecConfig`` the canvas geometry follows the processor's ``patch_size`` / ``merge_size`` (so the
    canvases fit the model), and a ``max_pixels`` other than the released default
    (:data:`~..processing_defaults.DEFAULT_MAX_PIXELS`) is each canvas's pixel budget unless the dict sets
    ``max_pixels`` itself. ``opts.max_visual_tokens``, when set, always wins over the config's budget: it is
    the total, ``max_pixels`` the size of one canvas, so a larger ``max_pixels`` means fewer, larger
    canvases for the same budget.
    """
    cfg = opts.codec_config
    overrides: dict[str, Any] = {}
    base: CodecConfig | None = None
    if isinstance(cfg, Mapping):
        overrides.update(cfg)
    elif cfg is not None:
        if not isinstance(cfg, CodecConfig):
            raise ValueError(f"codec_config must be a CodecConfig or a dict, got {type(cfg).__name__}")
        base = cfg
    if base is None:
        overrides.setdefault("patch_size", opts.patch_size)
        overrides.setdefault("merge_size", opts.merge_size)
        if opts.max_pixels != DEFAULT_MAX_PIXELS:
            overrides.setdefault("max_pixels", opts.max_pixels)
    if opts.max_visual_tokens is not None:
        overrides["max_visual_tokens"] = opts.max_visual_tokens
    return with_overrides(base, **overrides)


def codec_tokens_for(source: str | os.PathLike, opts: VideoOptions) -> CodecTokens:
    """Runs the codec-stream tokenizer on ``source`` with the options' :func:`codec_config_for`.

    With ``opts.video_store`` the tokens come from the store (computed and stored on a miss).
    """
    tokenize = tokenize_video if opts.video_store is None else opts.video_store.tokenize_video
    return tokenize(source, codec_config_for(opts))


def codec_item(ct: CodecTokens, opts: VideoOptions) -> VisualItem:
    """Patch rows (merge-block order), grid rows, source positions and prompt blocks of codec canvases.

    Raises:
        ValueError: the canvases were cut for another patch / merge size than ``opts``.
        VideoDecodeError: no canvas.
    """
    m, p = opts.merge_size, opts.patch_size
    if ct.patch_size != p or ct.merge_size != m:
        raise ValueError(
            f"codec tokens of {ct.source!r} were cut for patch {ct.patch_size} / merge {ct.merge_size}, "
            f"but the processor uses patch {p} / merge {m}"
        )
    if ct.num_canvases == 0:
        raise VideoDecodeError(ct.source, "the codec tokenizer produced no canvases")
    pixels = normalize_and_patchify(
        ct.canvases,
        patch_size=p,
        merge_size=m,
        rescale_factor=opts.rescale_factor,
        image_mean=opts.image_mean,
        image_std=opts.image_std,
        do_rescale=bool(opts.do_rescale),
        do_normalize=bool(opts.do_normalize),
    )
    if pixels.shape[0] != ct.num_patches:
        raise ValueError(
            f"codec canvases of {ct.source!r} gave {pixels.shape[0]} patches, expected {ct.num_patches}"
        )
    gh, gw = ct.grid_hw
    rows = [[ct.num_canvases, gh, gw]] if opts.codec_grid == "video" else [[1, gh, gw]] * ct.num_canvases
    runs = ct.frame_runs(opts.timestamp_source)
    info = LlavaOnevision2VideoInfo(
        source=str(ct.source),
        backend="codec",
        layout=opts.video_layout,
        timestamps=[seconds for seconds, _, _ in runs],
        block_tokens=[n for _, n, _ in runs],
        newline=True,
        grid_thw=[list(r) for r in rows],
        num_patches=int(pixels.shape[0]),
        frame_indices=[frame for _, _, frame in runs],
        fps=float(ct.fps),
        decimals=opts.timestamp_decimals,
        extra={"num_canvases": ct.num_canvases, "codec_grid": opts.codec_grid},
    )
    positions = np.asarray(ct.block_positions(), dtype=np.int64)
    return VisualItem(pixels, np.asarray(rows, dtype=np.int64), positions, info.num_tokens, info)


def codec_backend_item(video: Any, metadata: Any, index: int, opts: VideoOptions) -> VisualItem:
    """The codec back end for one video: a file path or precomputed ``CodecTokens``."""
    del metadata  # codec canvases carry their own timing
    if isinstance(video, CodecTokens):
        return codec_item(video, opts)
    if isinstance(video, (str, os.PathLike)):
        return codec_item(codec_tokens_for(video, opts), opts)
    if isinstance(video, SampledFrames):
        raise ValueError(
            f"video {video.source!r} is already decoded frames (SampledFrames); the codec back end needs a "
            "file path or CodecTokens"
        )
    raise ValueError(
        f"video {index}: the codec back end needs a file path or CodecTokens, got decoded frames"
    )
