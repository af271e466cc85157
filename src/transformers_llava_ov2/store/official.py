"""Interop with the official LLaVA-OneVision-2 pipeline's on-disk formats (spec ``training_conversion.md``
§2.3, ``codec.md`` §3.11 / §4).

* :func:`export_offline_sample` — the official **offline training sample**: one image per canvas (codec)
  or per frame (frames), one ``patch_positions`` ``.npy`` per image (``int64 [n, 3]`` ``(t, h, w)``,
  row-major over the image's patch grid, in source-frame coordinates), and a JSON sample with
  ``messages`` (one ``<image>`` per image, joined by ``\\n``), ``images``, ``patch_positions``, ``fps`` and
  ``timestamp_decimal``. The official encoder converts those positions row-major -> 2x2 block order and
  tags each run of equal ``t`` with ``unique(t) / fps``; for codec tokens that is exactly what this
  package's processor feeds the model (tested).
* :func:`export_codec_assets` / :func:`import_codec_assets` — the official codec tool's **asset folder**:
  ``canvas_000.jpg ...``, ``src_patch_position.npy`` (``[N, 3]`` ``(frame_id, ph, pw)`` in canvas raster
  order, the inference tool's convention), ``patch_positions.npy`` (alias), ``patch_position.npy``
  (``(canvas, ph, pw)``), ``img_ptr.npy``, ``frame_ids.npy``, ``src_frame_ids.npy``, ``src_timestamps.npy``,
  ``meta.json`` and the ``_DONE`` marker written last. Our exports embed the full typed result under
  ``meta["llava_ov2"]``, so export -> import is exact with lossless images (``image_format="png"``, files
  named ``canvas_000.png``); folders made by the official tools are read from their own fields.
* :func:`import_codec_assets_into_store` — an asset folder as a store entry of a given video + config.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..video_types import ROLE_I, ROLE_P, CodecTokens, GopGroup, SampledFrames
from .images import ImageCodec, decode_image, encode_image
from .serialize import codec_scalars, jsonable

__all__ = [
    "export_codec_assets",
    "export_offline_sample",
    "frame_geometry",
    "import_codec_assets",
    "import_codec_assets_into_store",
]

_EXT = {"jpeg": ".jpg", "png": ".png"}


def _codec(image_format: str, jpeg_quality: int) -> ImageCodec:
    if image_format not in _EXT:
        raise ValueError(f"image_format must be 'jpeg' or 'png', got {image_format!r}")
    return ImageCodec(format=image_format, jpeg_quality=jpeg_quality)


def _canvas_positions(ct: CodecTokens) -> list[np.ndarray]:
    """Per canvas, ``int64 [h*w, 3]`` source positions in the canvas's row-major order."""
    per = ct.grid_hw[0] * ct.grid_hw[1]
    return [ct.source_positions[i * per : (i + 1) * per] for i in range(ct.num_canvases)]


def frame_geometry(frames: SampledFrames, video_processor: Any = None) -> tuple[int, int]:
    """``(h, w)`` pixels the video processor resizes these frames to (its options, default: class defaults)."""
    from ..image_processing_llava_onevision2 import smart_resize
    from ..video_processing_llava_onevision2 import LlavaOnevision2VideoProcessor, frame_pixel_budget

    vp = video_processor if video_processor is not None else LlavaOnevision2VideoProcessor
    factor = vp.patch_size * vp.merge_size
    min_px, max_px = frame_pixel_budget(
        frames.num_frames,
        min_pixels=int(vp.min_pixels),
        max_pixels=int(vp.max_pixels),
        frame_max_pixels=vp.frame_max_pixels,
        total_pixels=vp.total_pixels,
        max_visual_tokens=vp.max_visual_tokens,
        factor=factor,
    )
    h, w = frames.frames.shape[1:3]
    return smart_resize(h, w, factor=factor, min_pixels=min_px, max_pixels=max_px)


def export_offline_sample(
    result: CodecTokens | SampledFrames,
    out_dir: str | os.PathLike,
    *,
    image_format: str = "jpeg",
    jpeg_quality: int = 95,
    timestamp_decimal: int = 1,
    prompt: str = "",
    answer: str | None = None,
    video_processor: Any = None,
) -> dict[str, Any]:
    """Write one official offline training sample; returns the sample dict (also ``out_dir/sample.json``).

    Frames are resized to the video processor's frame geometry first (so that the official processor
    keeps their size and the positions match its patch grid); codec canvases are written as they are.
    Paths in the sample are relative to ``out_dir``.

    Args:
        result: a store entry / front-end result.
        out_dir: output folder (created).
        image_format / jpeg_quality: ``"jpeg"`` (the official tools' choice) or ``"png"`` (lossless).
        timestamp_decimal: 1 or 2 (the official field).
        prompt / answer: text after the images in the user turn, and the assistant turn (omitted if None).
        video_processor: whose frame geometry to use for frames (default: the class defaults).
    """
    codec = _codec(image_format, jpeg_quality)
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "patch_positions").mkdir(exist_ok=True)
    if isinstance(result, CodecTokens):
        images, positions, p = result.canvases, _canvas_positions(result), result.patch_size
    elif isinstance(result, SampledFrames):
        from ..video_processing_llava_onevision2 import LlavaOnevision2VideoProcessor, resize_frames

        h, w = frame_geometry(result, video_processor)
        p = (video_processor or LlavaOnevision2VideoProcessor).patch_size
        images = resize_frames(result.frames, h, w)
        gh, gw = h // p, w // p
        hh, ww = np.meshgrid(np.arange(gh), np.arange(gw), indexing="ij")
        grid = np.stack([hh.reshape(-1), ww.reshape(-1)], axis=1).astype(np.int64)
        positions = [
            np.concatenate([np.full((gh * gw, 1), int(t), np.int64), grid], axis=1)
            for t in result.frame_indices
        ]
    else:
        raise TypeError(f"expected CodecTokens or SampledFrames, got {type(result).__name__}")
    names, pos_names = [], []
    for i, (img, pos) in enumerate(zip(images, positions)):
        name, pname = f"images/{i:03d}{_EXT[image_format]}", f"patch_positions/{i:03d}.npy"
        (out / name).write_bytes(encode_image(img, codec))
        np.save(out / pname, np.ascontiguousarray(pos, dtype=np.int64))
        names.append(name)
        pos_names.append(pname)
    content = "\n".join(["<image>"] * len(names)) + (f"\n{prompt}" if prompt else "")
    messages = [{"role": "user", "content": content}]
    if answer is not None:
        messages.append({"role": "assistant", "content": answer})
    sample = {
        "messages": messages,
        "images": names,
        "patch_positions": pos_names,
        "fps": float(result.fps),
        "timestamp_decimal": int(timestamp_decimal),
    }
    (out / "sample.json").write_text(json.dumps(sample, indent=1) + "\n")
    return sample


def _asset_meta(ct: CodecTokens, codec: ImageCodec) -> dict[str, Any]:
    from .serialize import encode_result

    _, scalars = encode_result(ct, ImageCodec(format="npy"))
    scalars.pop("images")
    per = ct.grid_hw[0] * ct.grid_hw[1]
    return {
        "fps": float(ct.fps),
        "padded_hw": list(ct.canvases.shape[1:3]),
        "hb_wb": list(ct.grid_hw),
        "patch": int(ct.patch_size),
        "seq_len": int(ct.num_patches),
        "num_images": int(ct.num_canvases),
        "patches_per_image": int(per),
        "canvas_roles": ["I" if r == ROLE_I else "P" for r in ct.canvas_roles.tolist()],
        "canvas_bucket_ids": [int(g) for g in ct.canvas_groups],
        "gop_anchor_frame_ids": [int(g.anchor_frame) for g in ct.groups],
        "token_order": "canvas_raster",
        "canvas_format": codec.describe(),
        "llava_ov2": {
            "result": scalars,
            "arrays": {
                "token_timestamps": ct.token_timestamps.tolist(),
                "token_group": ct.token_group.tolist(),
                "token_role": ct.token_role.tolist(),
                "timeline": None
                if ct.timeline is None
                else {
                    k: getattr(ct.timeline, k).tolist()
                    for k in ("energy", "smoothed", "boundaries", "anchor_times")
                },
            },
        },
    }


def export_codec_assets(
    ct: CodecTokens, out_dir: str | os.PathLike, *, image_format: str = "jpeg", jpeg_quality: int = 95
) -> Path:
    """Write ``ct`` as an official codec-tool asset folder (``_DONE`` last); returns the folder."""
    codec = _codec(image_format, jpeg_quality)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "_DONE").unlink(missing_ok=True)
    for i, canvas in enumerate(ct.canvases):
        (out / f"canvas_{i:03d}{_EXT[image_format]}").write_bytes(encode_image(canvas, codec))
    per = ct.grid_hw[0] * ct.grid_hw[1]
    src = ct.source_positions.astype(np.int64)
    cell = np.concatenate(
        [ct.token_canvas[:, None], np.tile(_grid(ct.grid_hw), (ct.num_canvases, 1))], axis=1
    )
    arrays = {
        "src_patch_position.npy": src,
        "patch_positions.npy": src,
        "patch_position.npy": cell.astype(np.int64),
        "img_ptr.npy": np.arange(ct.num_canvases + 1, dtype=np.int64) * per,
        "frame_ids.npy": np.unique(src[:, 0]),
        "src_frame_ids.npy": src[:, 0].copy(),
        "src_timestamps.npy": (src[:, 0] / ct.fps).astype(np.float32)
        if ct.fps
        else np.zeros(len(src), np.float32),
    }
    for name, arr in arrays.items():
        np.save(out / name, arr)
    (out / "meta.json").write_text(json.dumps(jsonable(_asset_meta(ct, codec)), indent=1) + "\n")
    (out / "_DONE").write_text("")
    return out


def _grid(hw: tuple[int, int]) -> np.ndarray:
    hh, ww = np.meshgrid(np.arange(hw[0]), np.arange(hw[1]), indexing="ij")
    return np.stack([hh.reshape(-1), ww.reshape(-1)], axis=1).astype(np.int64)


def _read_canvases(folder: Path) -> np.ndarray:
    files = sorted(p for p in folder.glob("canvas_*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not files:
        raise ValueError(f"codec asset folder {str(folder)!r} has no canvas_*.jpg / canvas_*.png files")
    images = [decode_image(p.read_bytes(), str(p)) for p in files]
    if len({im.shape for im in images}) != 1:
        raise ValueError(f"codec asset folder {str(folder)!r}: canvases of different sizes")
    return np.stack(images)


def _official_groups(
    canvas_roles: np.ndarray, meta: dict, src: np.ndarray, per: int, fps: float
) -> tuple[np.ndarray, tuple[GopGroup, ...]]:
    """Canvas groups (``canvas_bucket_ids``, else a new group at each I-canvas) and the group table."""
    n = len(canvas_roles)
    ids = meta.get("canvas_bucket_ids")
    if ids is not None and len(ids) == n:
        groups = np.asarray(ids, dtype=np.int64)
    else:
        groups = np.maximum(np.cumsum(canvas_roles == ROLE_I) - 1, 0).astype(np.int64)
    table = []
    for g in np.unique(groups):
        canv = np.nonzero(groups == g)[0]
        t = src[np.concatenate([np.arange(c * per, (c + 1) * per) for c in canv]), 0]
        anchor = int(src[canv[0] * per, 0])
        table.append(
            GopGroup(int(g), float(t.min() / fps), float((t.max() + 1) / fps), anchor, 0.0, len(canv))
        )
    return groups, tuple(table)


def import_codec_assets(
    folder: str | os.PathLike,
    *,
    patch_size: int | None = None,
    merge_size: int = 2,
    fps: float | None = None,
    source: str | None = None,
) -> CodecTokens:
    """Read a codec asset folder (ours or the official tools') as :class:`CodecTokens`.

    Args:
        folder: the asset folder; it must hold the ``_DONE`` marker.
        patch_size / fps: used when ``meta.json`` does not say (``patch`` / ``fps``).
        merge_size: the model's spatial merge (2 for the released checkpoints).
        source: the ``.source`` of the result (default: the folder).

    Raises:
        ValueError: incomplete folder, missing files or fields, padding tokens (``t < 0``), or sizes
            that do not fit the patch grid (the message names the folder).
    """
    root = Path(folder)
    where = f"codec asset folder {str(root)!r}"
    if not (root / "_DONE").is_file():
        raise ValueError(f"{where} has no _DONE marker (incomplete or still being written)")
    meta = json.loads((root / "meta.json").read_text()) if (root / "meta.json").is_file() else {}
    canvases = _read_canvases(root)
    pos_file = next(
        (root / n for n in ("src_patch_position.npy", "patch_positions.npy") if (root / n).is_file()), None
    )
    if pos_file is None:
        raise ValueError(f"{where} has no src_patch_position.npy")
    src = np.load(pos_file, allow_pickle=False).astype(np.int64)
    if len(src) and src[:, 0].min() < 0:
        raise ValueError(f"{where} contains padding tokens (frame id -1), which CodecTokens does not allow")
    own = meta.get("llava_ov2")
    patch = patch_size or meta.get("patch") or (meta.get("config") or {}).get("patch")
    rate = fps or meta.get("fps") or (meta.get("metadata") or {}).get("fps")
    if not patch or not rate:
        raise ValueError(f"{where}: meta.json gives no patch size / fps; pass patch_size= and fps=")
    patch, rate = int(patch), float(rate)
    n_canvas, per = canvases.shape[0], (canvases.shape[1] // patch) * (canvases.shape[2] // patch)
    if len(src) != n_canvas * per:
        raise ValueError(f"{where}: {len(src)} positions for {n_canvas} canvases of {per} patches")
    token_canvas = np.repeat(np.arange(n_canvas, dtype=np.int64), per)
    if own is not None:
        return _own_result(own, canvases, src, token_canvas, source or str(root))
    roles_meta = meta.get("canvas_roles")
    if roles_meta is not None and len(roles_meta) == n_canvas:
        roles = np.asarray(
            [ROLE_I if str(r).upper().startswith("I") or r == 0 else ROLE_P for r in roles_meta], np.int8
        )
    else:
        roles = np.asarray([ROLE_I if i == 0 else ROLE_P for i in range(n_canvas)], np.int8)
    groups, table = _official_groups(roles, meta, src, per, rate)
    total = int(meta.get("total_frames") or src[:, 0].max() + 1)
    return CodecTokens(
        canvases=canvases,
        patch_size=patch,
        merge_size=merge_size,
        source_positions=src,
        token_canvas=token_canvas,
        token_timestamps=src[:, 0] / rate,
        token_group=groups[token_canvas],
        token_role=roles[token_canvas],
        canvas_roles=roles,
        canvas_groups=groups,
        groups=table,
        fps=rate,
        duration=float(meta.get("duration") or total / rate),
        total_frames=total,
        source_frame_size=(int(canvases.shape[1]), int(canvases.shape[2])),
        source=source or str(root),
        backend_info={"imported_from": str(root), "format": "official codec assets"},
    )


def _own_result(
    own: dict, canvases: np.ndarray, src: np.ndarray, token_canvas: np.ndarray, source: str
) -> CodecTokens:
    from ..video_types import BitCostTimeline

    r, a = own["result"], own["arrays"]
    tl = r["timeline"]
    timeline = None
    if tl is not None:
        timeline = BitCostTimeline(
            bin_seconds=tl["bin_seconds"],
            quota=tl["quota"],
            **{k: np.asarray(v, dtype=np.float64) for k, v in a["timeline"].items()},
        )
    roles = np.asarray(a["token_role"], dtype=np.int8)
    groups = np.asarray(a["token_group"], dtype=np.int64)
    per = len(src) // canvases.shape[0]
    return CodecTokens(
        canvases=canvases,
        source_positions=src,
        token_canvas=token_canvas,
        token_timestamps=np.asarray(a["token_timestamps"], dtype=np.float64),
        token_group=groups,
        token_role=roles,
        canvas_roles=roles[::per].copy(),
        canvas_groups=groups[::per].copy(),
        source=source,
        timeline=timeline,
        **codec_scalars(r),
    )


def import_codec_assets_into_store(
    store: Any, folder: str | os.PathLike, video: str | os.PathLike, config: Any = None, **kwargs: Any
) -> str:
    """Import an asset folder as the store entry of ``video`` under ``config``; returns the key.

    ``config`` is the :class:`~transformers_llava_ov2.codec.CodecConfig` the entry is filed under (the
    one the processor or the training dataset will look up); default ``CodecConfig(patch_size=<the
    assets' patch>, merge_size=<merge_size>)``. ``kwargs`` go to :func:`import_codec_assets`.
    """
    from ..codec.config import CodecConfig

    ct = import_codec_assets(folder, source=str(video), **kwargs)
    cfg = config if config is not None else CodecConfig(patch_size=ct.patch_size, merge_size=ct.merge_size)
    if (cfg.patch_size, cfg.merge_size) != (ct.patch_size, ct.merge_size):
        raise ValueError(
            f"assets in {str(folder)!r} are cut for patch {ct.patch_size} / merge {ct.merge_size}, "
            f"the config says {cfg.patch_size} / {cfg.merge_size}"
        )
    return store.put(video, cfg, ct, extra={"imported_from": str(Path(folder).absolute())})
