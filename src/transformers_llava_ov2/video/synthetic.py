"""Deterministic synthetic video clips with known ground truth, encoded with PyAV.

Used by every test suite, the benchmarks and the CLI's embedded default clip (:func:`write_demo_clip`).

A clip is composed from keyword options (all combinable):

* a static background: smoothly textured noise (``background="noise"``, the default) or a drawn scene a
  person can read (``background="scene"``: sky, hills, houses, trees and a road; after a ``cut`` a
  second, indoor scene);
* an object (a textured square, or a shaded ball with ``object_style="ball"``) moving in *screen* coordinates at a constant velocity ``velocity``
  (px/frame, ``(vx, vy)``), reflecting off the frame borders;
* ``burst=(t0, t1)``: the object moves only for frames with ``t0 <= t < t1`` (``t = i / fps``) and is
  still elsewhere;
* ``cut=t``: hard scene cut, the background is replaced by a different texture from the first frame with
  ``i / fps >= t`` on;
* ``pan=(px, py)``: camera pan in px/frame (the background window slides; the object keeps its screen
  motion), optionally only inside ``pan_window=(t0, t1)``.

Ground truth is exact: object boxes are integer pixel positions, the background window offsets are
integers, and frame ``i`` has pts ``i`` in a ``1/fps`` time base (constant frame rate).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

__all__ = [
    "CODECS",
    "SyntheticClip",
    "smooth_texture",
    "write_audio_only_file",
    "write_demo_clip",
    "write_synthetic_clip",
]

# Our codec names -> (PyAV encoder, pixel format). All are in the av 18 wheel (checked with
# ``av.codec.Codec(name, "w")``).
CODECS: dict[str, tuple[str, str]] = {
    "h264": ("libx264", "yuv420p"),
    "hevc": ("libx265", "yuv420p"),
    "mpeg4": ("mpeg4", "yuv420p"),
    "mjpeg": ("mjpeg", "yuvj420p"),
    "vp9": ("libvpx-vp9", "yuv420p"),
}


@dataclass(frozen=True)
class SyntheticClip:
    """A generated clip and its ground truth.

    Attributes:
        path: where the clip was written.
        fps: frame rate (constant); frame ``i`` is shown at ``i / fps`` seconds.
        num_frames: number of frames written.
        size: ``(width, height)`` in pixels.
        object_boxes: ``int64 [T, 4]`` ``(x0, y0, x1, y1)`` of the moving square in frame ``i``
            (screen coordinates, ``x1``/``y1`` exclusive).
        moving_mask: ``bool [T]``: the object is displaced w.r.t. the previous frame (``False`` at 0).
        events: ``{"burst": (t0, t1), "burst_frames": (f0, f1), "cut": t, "cut_frame": i,
            "pan": (px, py), "pan_frames": (f0, f1)}`` for the options that were used
            (``*_frames`` are half-open frame index ranges).
        pan_offsets: ``int64 [T, 2]`` ``(x, y)`` top-left of the camera window on the background.
        codec: our codec name (``"h264"``, ...).
    """

    path: Path
    fps: float
    num_frames: int
    size: tuple[int, int]
    object_boxes: np.ndarray
    moving_mask: np.ndarray
    events: dict = field(default_factory=dict)
    pan_offsets: np.ndarray | None = None
    codec: str = "h264"

    @property
    def velocities(self) -> np.ndarray:
        """``int64 [T, 2]`` object displacement ``(dx, dy)`` from frame ``i-1`` to ``i`` (0 at frame 0)."""
        d = np.zeros((self.num_frames, 2), dtype=np.int64)
        d[1:] = self.object_boxes[1:, :2] - self.object_boxes[:-1, :2]
        return d


def smooth_texture(rng: np.random.Generator, height: int, width: int, cell: int) -> np.ndarray:
    """Smooth colour noise ``uint8 [height, width, 3]``: random values every ``cell`` px, bicubic upscale.

    Smooth texture keeps encoded clips small and gives the encoder trackable detail for motion vectors.
    """
    gh, gw = max(2, -(-height // cell) + 1), max(2, -(-width // cell) + 1)
    small = rng.integers(16, 240, size=(gh, gw, 3), dtype=np.uint8)
    img = Image.fromarray(small).resize((gw * cell, gh * cell), Image.Resampling.BICUBIC)
    return np.asarray(img)[:height, :width].copy()


def _scene(rng: np.random.Generator, height: int, width: int, variant: int) -> np.ndarray:
    """A drawn, readable scene ``uint8 [height, width, 3]`` (deterministic for ``rng``).

    ``variant`` 0: outdoor (sky gradient, sun, hills, houses with windows, trees, a striped road);
    1: indoor (tiled wall, a window, shelves with boxes, a wooden floor). Mild noise keeps texture for
    the encoder's motion search.
    """
    from PIL import ImageDraw

    img = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(img)
    horizon = int(height * 0.55)
    if variant == 0:
        for y in range(horizon):  # sky gradient
            k = y / max(horizon - 1, 1)
            draw.line([(0, y), (width, y)], fill=(int(90 + 80 * k), int(150 + 60 * k), int(235 - 20 * k)))
        r = height // 12
        cx, cy = int(width * 0.82), int(height * 0.14)
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(255, 214, 80))
        for k, color in enumerate(((96, 160, 80), (70, 135, 64))):
            base = horizon + k * height // 20
            pts = (
                [(0, height)]
                + [
                    (x, base - int(height * 0.08 * (1 + np.sin(x / width * (5 + 3 * k) + k))))
                    for x in range(0, width + 8, 8)
                ]
                + [(width, height)]
            )
            draw.polygon(pts, fill=color)
        road_top = int(height * 0.78)
        draw.rectangle([0, road_top, width, height], fill=(70, 70, 76))
        for x in range(0, width, 64):
            draw.rectangle(
                [x, road_top + (height - road_top) // 2 - 2, x + 32, road_top + (height - road_top) // 2 + 2],
                fill=(240, 240, 240),
            )
        for k in range(max(2, width // 160)):
            x0 = int(width * (0.05 + 0.9 * k / max(1, width // 160)))
            w, h = int(rng.integers(width // 12, width // 8)), int(rng.integers(height // 8, height // 5))
            y1 = road_top - 2
            wall = tuple(int(c) for c in rng.integers(140, 230, 3))
            draw.rectangle([x0, y1 - h, x0 + w, y1], fill=wall, outline=(40, 40, 40))
            draw.polygon(
                [(x0 - 4, y1 - h), (x0 + w // 2, y1 - h - h // 2), (x0 + w + 4, y1 - h)], fill=(150, 50, 40)
            )
            for wy in range(y1 - h + 6, y1 - 10, 14):
                for wx in range(x0 + 5, x0 + w - 9, 14):
                    draw.rectangle([wx, wy, wx + 7, wy + 7], fill=(250, 240, 170), outline=(60, 60, 60))
            tx = x0 + w + (w // 3)
            draw.rectangle([tx - 3, y1 - h // 2, tx + 3, y1], fill=(100, 70, 40))
            draw.ellipse([tx - h // 4, y1 - h, tx + h // 4, y1 - h // 3], fill=(40, 110, 50))
    else:
        floor = int(height * 0.72)
        draw.rectangle([0, 0, width, floor], fill=(214, 206, 190))
        for y in range(0, floor, 24):
            for x in range((y // 24 % 2) * 12, width, 24):
                draw.rectangle([x, y, x + 22, y + 22], outline=(190, 180, 165))
        draw.rectangle(
            [width // 12, height // 10, width // 3, floor // 2],
            fill=(150, 200, 240),
            outline=(90, 70, 50),
            width=4,
        )
        draw.line(
            [((width // 12 + width // 3) // 2, height // 10), ((width // 12 + width // 3) // 2, floor // 2)],
            fill=(90, 70, 50),
            width=3,
        )
        for k in range(3):
            y = height // 6 + k * floor // 5
            draw.rectangle([width // 2, y, width - width // 12, y + 6], fill=(120, 80, 50))
            for j in range(4):
                bx = width // 2 + 8 + j * (width // 10)
                color = tuple(int(c) for c in rng.integers(60, 230, 3))
                draw.rectangle([bx, y - height // 14, bx + width // 16, y], fill=color, outline=(30, 30, 30))
        for x in range(0, width, 40):
            draw.rectangle([x, floor, x + 38, height], fill=(160 + (x // 40) % 3 * 12, 110, 70))
    arr = np.asarray(img, dtype=np.int16)
    arr = arr + rng.integers(-6, 7, size=arr.shape, dtype=np.int16)  # film grain: texture for motion search
    return np.clip(arr, 0, 255).astype(np.uint8)


def _ball(size: int) -> tuple[np.ndarray, np.ndarray]:
    """A shaded red ball ``uint8 [size, size, 3]`` and its mask ``bool [size, size]``."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    c = (size - 1) / 2
    d = np.hypot(yy - c, xx - c) / (size / 2)
    mask = d <= 1.0
    light = np.clip(1.15 - np.hypot(yy - 0.35 * size, xx - 0.35 * size) / size, 0.35, 1.0)
    img = np.stack([230 * light, 40 * light + 20, 40 * light + 10], axis=-1)
    img[(d > 0.88) & mask] = (255, 255, 255)  # white rim: crisp edge
    return img.clip(0, 255).astype(np.uint8), mask


def _frame_range(window: tuple[float, float] | None, fps: Fraction, n: int) -> tuple[int, int]:
    """Half-open frame range ``[f0, f1)`` of the frames whose time ``i/fps`` lies in ``[t0, t1)``."""
    if window is None:
        return (0, n)

    def first_at_or_after(t: float) -> int:
        if t == float("inf"):
            return n
        return min(n, max(0, int(np.ceil(Fraction(t).limit_denominator(10**6) * fps))))

    f0, f1 = first_at_or_after(window[0]), first_at_or_after(window[1])
    return (f0, max(f0, f1))


def _object_track(
    n: int,
    size: tuple[int, int],
    obj: int,
    start: tuple[int, int],
    velocity: tuple[int, int],
    frames: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """Integer object positions ``[n, 2]`` (top-left) and the moving mask ``[n]``, reflecting at borders."""
    width, height = size
    lim = np.array([width - obj, height - obj], dtype=np.int64)
    pos = np.array(start, dtype=np.int64).clip(0, lim)
    vel = np.array(velocity, dtype=np.int64)
    out = np.zeros((n, 2), dtype=np.int64)
    moving = np.zeros(n, dtype=bool)
    for i in range(n):
        if i > 0 and frames[0] <= i < frames[1] and vel.any():
            new = pos + vel
            for k in range(2):
                if new[k] < 0:
                    new[k], vel[k] = -new[k], -vel[k]
                elif new[k] > lim[k]:
                    new[k], vel[k] = 2 * lim[k] - new[k], -vel[k]
            new = new.clip(0, lim)
            moving[i] = bool((new != pos).any())
            pos = new
        out[i] = pos
    return out, moving


def write_synthetic_clip(
    path: str | os.PathLike,
    *,
    seconds: float = 4.0,
    fps: int | float | Fraction = 25,
    size: tuple[int, int] = (320, 240),
    codec: str = "h264",
    bframes: int = 0,
    gop: int | None = None,
    crf: int = 23,
    object_size: int = 48,
    object_start: tuple[int, int] | None = None,
    velocity: tuple[int, int] = (2, 1),
    burst: tuple[float, float] | None = None,
    cut: float | None = None,
    pan: tuple[int, int] = (0, 0),
    pan_window: tuple[float, float] | None = None,
    preset: str = "ultrafast",
    scenecut: bool | None = None,
    audio: bool = False,
    rotation: int = 0,
    faststart: bool = False,
    texture_cell: int = 8,
    background: str = "noise",
    object_style: str = "texture",
    seed: int = 0,
) -> SyntheticClip:
    """Render and encode a deterministic clip; see the module docstring for the scene options.

    Args:
        path: output file; the container format follows the extension (``.mp4``, ``.mkv``, ``.webm``,
            ``.avi``).
        seconds: clip length; ``num_frames = round(seconds * fps)``.
        fps: constant frame rate.
        size: ``(width, height)``; must be even for the 4:2:0 codecs.
        codec: one of :data:`CODECS` (``h264``, ``hevc``, ``mpeg4``, ``mjpeg``, ``vp9``).
        bframes: max consecutive B-frames (h264/hevc/mpeg4; ignored by mjpeg/vp9).
        gop: keyframe interval in frames; ``None`` keeps the encoder default.
        crf: quality for h264/hevc/vp9 (mpeg4/mjpeg use a fixed qscale derived from it).
        object_size: side of the moving square in pixels.
        object_start: initial top-left ``(x, y)``; default is a quarter of the frame from the top-left.
        velocity: object velocity ``(vx, vy)`` in integer px/frame.
        burst: ``(t0, t1)`` seconds during which the object moves; ``None`` = moves all the time.
        cut: time in seconds of a hard scene cut (new background texture), or ``None``.
        pan: camera pan ``(px, py)`` in integer px/frame (background slides by ``-pan``).
        pan_window: ``(t0, t1)`` seconds during which the camera pans; ``None`` = the whole clip.
        preset: x264/x265 preset (``ultrafast``... keeps tests fast).
        scenecut: let x264/x265 insert keyframes at scene changes; default: on only when ``gop`` is None.
        audio: also write a short AAC (mp4/mkv) sine track (exercises stream selection).
        rotation: display-matrix rotation in degrees counter-clockwise (as ``VideoFrame.rotation`` reads
            it back); the pixels are stored unrotated.
        faststart: MP4/MOV only: put the ``moov`` header first, so a truncated copy still opens and
            announces more frames than it holds.
        texture_cell: texture feature size in px (larger = smoother = smaller files).
        background: ``"noise"`` (smooth colour noise) or ``"scene"`` (a drawn outdoor scene; indoor after a cut).
        object_style: ``"texture"`` (textured square with a white border) or ``"ball"`` (shaded disk).
        seed: seeds all textures.

    Returns:
        the :class:`SyntheticClip` ground truth.
    """
    if codec not in CODECS:
        raise ValueError(f"codec must be one of {sorted(CODECS)}, got {codec!r}")
    width, height = int(size[0]), int(size[1])
    if width % 2 or height % 2 or width < 16 or height < 16:
        raise ValueError(f"size must be even and >= 16 px, got {size}")
    if background not in ("noise", "scene"):
        raise ValueError(f"background must be 'noise' or 'scene', got {background!r}")
    if object_style not in ("texture", "ball"):
        raise ValueError(f"object_style must be 'texture' or 'ball', got {object_style!r}")
    if not 0 < object_size < min(width, height):
        raise ValueError(f"object_size must be in (0, {min(width, height)}), got {object_size}")
    rate = Fraction(fps).limit_denominator(1001)
    n = max(1, round(float(seconds) * float(rate)))
    path = Path(path)
    rng = np.random.default_rng(seed)

    # Scene: background(s) large enough for the whole pan, an object texture.
    pan_frames = _frame_range(pan_window, rate, n) if any(pan) else (0, 0)
    steps = np.zeros(n, dtype=np.int64)
    steps[pan_frames[0] : pan_frames[1]] = 1
    steps[0] = 0
    cum = np.cumsum(steps)
    offsets = np.stack([cum * int(pan[0]), cum * int(pan[1])], axis=1)
    offsets -= offsets.min(axis=0)  # non-negative window positions
    bg_h = height + int(offsets[:, 1].max())
    bg_w = width + int(offsets[:, 0].max())
    if background == "scene":
        backgrounds = [_scene(rng, bg_h, bg_w, 0)]
    else:
        backgrounds = [smooth_texture(rng, bg_h, bg_w, texture_cell)]
    cut_frame = None
    if cut is not None:
        cut_frame = _frame_range((cut, float("inf")), rate, n)[0]
        cut_rng = np.random.default_rng(seed + 1_000_003)
        backgrounds.append(
            _scene(cut_rng, bg_h, bg_w, 1)
            if background == "scene"
            else smooth_texture(cut_rng, bg_h, bg_w, texture_cell * 2)
        )
    obj_mask = None
    if object_style == "ball":
        obj_tex, obj_mask = _ball(object_size)
    else:
        obj_tex = smooth_texture(
            np.random.default_rng(seed + 7), object_size, object_size, max(2, texture_cell // 2)
        )
        obj_tex[:2], obj_tex[-2:], obj_tex[:, :2], obj_tex[:, -2:] = 255, 255, 255, 255  # crisp border

    burst_frames = _frame_range(burst, rate, n)
    start = object_start if object_start is not None else (width // 4, height // 4)
    positions, moving = _object_track(
        n, (width, height), object_size, start, (int(velocity[0]), int(velocity[1])), burst_frames
    )
    boxes = np.concatenate([positions, positions + object_size], axis=1)

    enc_name, pix_fmt = CODECS[codec]
    path.parent.mkdir(parents=True, exist_ok=True)
    container_options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), mode="w", options=container_options) as out:
        stream = out.add_stream(enc_name, rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.codec_context.time_base = Fraction(1) / rate
        if rotation:
            stream.set_display_rotation(int(rotation))
        stream.thread_count = 1  # deterministic bitstream regardless of the machine's core count
        options: dict[str, str] = {}
        if gop is not None:
            stream.codec_context.gop_size = int(gop)
        use_scenecut = (gop is None) if scenecut is None else scenecut
        if codec == "h264":
            params = [f"bframes={int(bframes)}"]
            if gop is not None:
                params += [f"keyint={int(gop)}", f"min-keyint={int(gop)}"]
            if not use_scenecut:
                params.append("scenecut=0")
            options.update({"preset": preset, "crf": str(crf), "x264-params": ":".join(params)})
        elif codec == "hevc":
            params = [f"bframes={int(bframes)}", "log-level=error", "pools=1", "frame-threads=1"]
            if gop is not None:
                params += [f"keyint={int(gop)}", f"min-keyint={int(gop)}"]
            if not use_scenecut:
                params.append("scenecut=0")
            options.update({"preset": preset, "crf": str(crf), "x265-params": ":".join(params)})
        elif codec == "mpeg4":
            stream.codec_context.max_b_frames = int(bframes)
            options["qscale"] = str(max(2, min(31, crf // 5)))
            stream.codec_context.qscale = True  # type: ignore[assignment]
        elif codec == "mjpeg":
            options["qscale"] = str(max(2, min(31, crf // 5)))
            stream.codec_context.qscale = True  # type: ignore[assignment]
        elif codec == "vp9":
            options.update({"crf": str(crf), "b": "0", "deadline": "realtime", "cpu-used": "8"})
        stream.codec_context.options = options
        astream = None
        if audio:
            astream = out.add_stream("aac" if path.suffix.lower() in (".mp4", ".mkv", ".mov") else "mp2")
            astream.rate = 48000
            astream.layout = "mono"

        for i in range(n):
            bg = backgrounds[1] if cut_frame is not None and i >= cut_frame else backgrounds[0]
            ox, oy = offsets[i]
            img = bg[oy : oy + height, ox : ox + width].copy()
            x0, y0, x1, y1 = boxes[i]
            if obj_mask is None:
                img[y0:y1, x0:x1] = obj_tex
            else:
                img[y0:y1, x0:x1][obj_mask] = obj_tex[obj_mask]
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
        if astream is not None:
            _encode_sine(out, astream, n / float(rate))

    events: dict = {}
    if burst is not None:
        events["burst"] = (float(burst[0]), float(burst[1]))
        events["burst_frames"] = burst_frames
    if cut_frame is not None:
        events["cut"] = float(cut)  # type: ignore[arg-type]
        events["cut_frame"] = cut_frame
    if any(pan):
        events["pan"] = (int(pan[0]), int(pan[1]))
        events["pan_frames"] = pan_frames
    return SyntheticClip(
        path=path,
        fps=float(rate),
        num_frames=n,
        size=(width, height),
        object_boxes=boxes,
        moving_mask=moving,
        events=events,
        pan_offsets=offsets,
        codec=codec,
    )


def _encode_sine(
    out: av.container.OutputContainer, stream: av.audio.stream.AudioStream, seconds: float
) -> None:
    """Encode ``seconds`` of a 440 Hz mono sine into ``stream`` (float planar samples)."""
    rate = 48000
    chunk = 1024
    total = max(chunk, int(seconds * rate))
    fmt = (
        stream.codec_context.codec.audio_formats[0].name
        if stream.codec_context.codec.audio_formats
        else "fltp"
    )
    for start in range(0, total, chunk):
        t = (np.arange(start, start + chunk) / rate).astype(np.float32)
        samples = (0.2 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)[None, :]
        if fmt.startswith("s16"):
            samples = (samples * 32767).astype(np.int16)
            fmt = "s16p" if fmt.endswith("p") else "s16"
        frame = av.AudioFrame.from_ndarray(samples, format=fmt, layout="mono")
        frame.sample_rate = rate
        frame.pts = start
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)


def write_audio_only_file(path: str | os.PathLike, *, seconds: float = 1.0) -> Path:
    """Write a file with an AAC (``.mp4``/``.m4a``/``.mkv``) or MP2 audio track and no video stream."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    codec = "aac" if path.suffix.lower() in (".mp4", ".m4a", ".mkv", ".mov") else "mp2"
    with av.open(str(path), mode="w") as out:
        stream = out.add_stream(codec)
        stream.rate = 48000
        stream.layout = "mono"
        _encode_sine(out, stream, seconds)
    return path


def write_demo_clip(path: str | os.PathLike) -> SyntheticClip:
    """The embedded default clip of ``llava-ov2 tokenize`` (``make demo``), 10 s, 640x360, 25 fps.

    A scene a person can read (a street with houses, trees and a road; after the cut a room with shelves)
    and a red ball, so the canvases and the heat map visibly show where the tokens land:

    * 0-2 s still; 2-4 s the ball bounces across the street at (6, 2) px/frame; 4-5.5 s still again;
    * hard scene cut at 5.5 s (the room; x264 places a keyframe there);
    * 6.5-8.5 s camera pan of 4 px/frame to the right (the ball stays on screen); 8.5-10 s still.

    H.264 with up to 3 B-frames and the encoder's own keyframe placement (scene-cut detection on).
    Deterministic (single-threaded x264, fixed seed).
    """
    return write_synthetic_clip(
        path,
        seconds=10.0,
        fps=25,
        size=(640, 360),
        codec="h264",
        bframes=3,
        gop=None,
        crf=23,
        object_size=64,
        object_start=(96, 96),
        velocity=(6, 2),
        burst=(2.0, 4.0),
        cut=5.5,
        pan=(4, 0),
        pan_window=(6.5, 8.5),
        preset="veryfast",
        scenecut=True,
        texture_cell=12,
        background="scene",
        object_style="ball",
        seed=2024,
    )
