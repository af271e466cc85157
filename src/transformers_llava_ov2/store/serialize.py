"""``CodecTokens`` / ``SampledFrames`` to entry files and back, bit-exact (lossless image formats).

:func:`encode_result` returns the payload files (``arrays.npz`` with every array at its exact dtype,
the images) and a JSON-ready ``"result"`` dict with the scalar fields (floats are written with ``repr``,
so they round-trip exactly); :func:`decode_result` rebuilds the typed result from them.
"""

from __future__ import annotations

import dataclasses
import io
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ..video_types import BitCostTimeline, CodecBudget, CodecTokens, GopGroup, SampledFrames
from .images import ImageCodec, decode_image, encode_image

__all__ = ["decode_result", "encode_result", "jsonable"]

ARRAYS_FILE = "arrays.npz"
_CODEC_ARRAYS = (
    "source_positions",
    "token_canvas",
    "token_timestamps",
    "token_group",
    "token_role",
    "canvas_roles",
    "canvas_groups",
)
_TIMELINE_ARRAYS = ("energy", "smoothed", "boundaries", "anchor_times")
_FRAMES_ARRAYS = ("frame_indices", "timestamps")


def jsonable(obj: Any) -> Any:
    """``obj`` with numpy scalars / arrays and tuples turned into JSON types (other objects: ``str``)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, str | int | float | bool) or obj is None:
        return obj
    return str(obj)


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def _load_npz(data: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _encode_images(images: np.ndarray, codec: ImageCodec) -> tuple[dict[str, bytes], list[str]]:
    if codec.format == "npy":
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(images), allow_pickle=False)
        return {"images.npy": buf.getvalue()}, ["images.npy"]
    names = [f"images/{i:06d}{codec.extension}" for i in range(images.shape[0])]
    return {n: encode_image(img, codec) for n, img in zip(names, images)}, names


def _decode_images(files: dict[str, bytes], names: list[str], shape: list[int], threads: int) -> np.ndarray:
    if names == ["images.npy"]:
        out = np.load(io.BytesIO(files["images.npy"]), allow_pickle=False)
    else:
        out = np.empty(shape, dtype=np.uint8)

        def one(i: int) -> None:
            out[i] = decode_image(files[names[i]], names[i])

        if threads > 1 and len(names) > 1:  # PIL releases the GIL while it decodes
            with ThreadPoolExecutor(max_workers=min(threads, len(names))) as pool:
                list(pool.map(one, range(len(names))))
        else:
            for i in range(len(names)):
                one(i)
    if list(out.shape) != list(shape) or out.dtype != np.uint8:
        raise ValueError(f"stored images have shape {list(out.shape)} {out.dtype}, expected {shape} uint8")
    return out


def encode_result(result: CodecTokens | SampledFrames, codec: ImageCodec) -> tuple[dict[str, bytes], dict]:
    """``(files, result_meta)`` of a typed front-end result."""
    if isinstance(result, CodecTokens):
        arrays = {name: getattr(result, name) for name in _CODEC_ARRAYS}
        tl = result.timeline
        if tl is not None:
            arrays.update({f"timeline_{name}": getattr(tl, name) for name in _TIMELINE_ARRAYS})
        images = result.canvases
        scalars = {
            "type": "CodecTokens",
            "patch_size": int(result.patch_size),
            "merge_size": int(result.merge_size),
            "groups": [
                [g.index, float(g.start), float(g.end), g.anchor_frame, float(g.bit_cost), g.num_canvases]
                for g in result.groups
            ],
            "fps": float(result.fps),
            "duration": float(result.duration),
            "total_frames": int(result.total_frames),
            "source_frame_size": [int(v) for v in result.source_frame_size],
            "timeline": None
            if tl is None
            else {"bin_seconds": float(tl.bin_seconds), "quota": float(tl.quota)},
            "stage_seconds": jsonable(result.stage_seconds),
            "backend_info": jsonable(result.backend_info),
            "budget": None if result.budget is None else dataclasses.asdict(result.budget),
        }
    elif isinstance(result, SampledFrames):
        arrays = {name: getattr(result, name) for name in _FRAMES_ARRAYS}
        images = result.frames
        scalars = {
            "type": "SampledFrames",
            "fps": float(result.fps),
            "total_frames": int(result.total_frames),
            "duration": float(result.duration),
        }
    else:
        raise TypeError(f"expected CodecTokens or SampledFrames, got {type(result).__name__}")
    files, names = _encode_images(images, codec)
    files[ARRAYS_FILE] = _npz_bytes({k: np.asarray(v) for k, v in arrays.items()})
    scalars["images"] = {"files": names, "shape": list(images.shape), **codec.describe()}
    return files, scalars


def decode_result(
    meta: dict, files: dict[str, bytes], source: str, *, threads: int = 1
) -> CodecTokens | SampledFrames:
    """The typed result of an entry's ``meta["result"]`` and files; ``source`` becomes its ``.source``.

    ``threads``: image decoding threads (PNG / JPEG entries).
    """
    arrays = _load_npz(files[ARRAYS_FILE])
    img = meta["images"]
    images = _decode_images(files, list(img["files"]), list(img["shape"]), threads)
    if meta["type"] == "SampledFrames":
        return SampledFrames(
            frames=images,
            frame_indices=arrays["frame_indices"],
            timestamps=arrays["timestamps"],
            fps=meta["fps"],
            total_frames=meta["total_frames"],
            duration=meta["duration"],
            source=source,
        )
    if meta["type"] != "CodecTokens":
        raise ValueError(f"unknown stored result type {meta['type']!r}")
    tl = meta["timeline"]
    timeline = (
        None
        if tl is None
        else BitCostTimeline(
            bin_seconds=tl["bin_seconds"],
            quota=tl["quota"],
            **{name: arrays[f"timeline_{name}"] for name in _TIMELINE_ARRAYS},
        )
    )
    return CodecTokens(
        canvases=images,
        **{name: arrays[name] for name in _CODEC_ARRAYS},
        source=source,
        timeline=timeline,
        **codec_scalars(meta),
    )


def codec_scalars(meta: dict) -> dict[str, Any]:
    """The non-array ``CodecTokens`` fields of a stored result's ``meta`` (what :func:`encode_result` wrote)."""
    return {
        "patch_size": meta["patch_size"],
        "merge_size": meta["merge_size"],
        "groups": tuple(
            GopGroup(index=g[0], start=g[1], end=g[2], anchor_frame=g[3], bit_cost=g[4], num_canvases=g[5])
            for g in meta["groups"]
        ),
        "fps": meta["fps"],
        "duration": meta["duration"],
        "total_frames": meta["total_frames"],
        "source_frame_size": tuple(meta["source_frame_size"]),
        "stage_seconds": dict(meta["stage_seconds"]),
        "backend_info": dict(meta["backend_info"]),
        "budget": None if meta.get("budget") is None else CodecBudget(**meta["budget"]),
    }
