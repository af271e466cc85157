"""Synthetic JumpScore-like clips: a figure skipping rope, with exact cycle-start times and subject boxes.

Each clip shows a red figure on a smooth textured background that jumps periodically while a dark rope
swings around it: periodic, visually near-identical motion, the hard case of JumpScore. Ground truth is
exact by construction: a **cycle starts at the take-off frame** (the figure stands on the ground in that
frame and is higher in the next one), so the annotated times are ``frame / fps`` (multiples of 0.04 s at
25 fps, exactly representable with two decimals).

Options (:class:`JumpClipSpec`, all combinable): period and per-cycle period jitter, jump height, clip size
(portrait or landscape), camera jitter (random whole-pixel shake) and drift (a slow pan), a distractor (a
blue square moving in straight lines, not periodic), and static stretches (the figure stands still, no
cycles). :func:`random_jump_spec` draws varied specs from a seed; :func:`write_jump_clip` renders and
encodes one clip (H.264, single-threaded x264: deterministic) and returns its :class:`JumpClip` ground truth.

Used by ``llava-ov2 make-bench jumprope`` (which writes the JumpScore annotation files) and by the codec
coverage benchmark.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from .synthetic import _texture

__all__ = ["JumpClip", "JumpClipSpec", "plan_cycles", "random_jump_spec", "write_jump_clip"]

_FIGURE_RGB = (220, 30, 30)
_ROPE_RGB = (20, 20, 20)
_DISTRACTOR_RGB = (40, 80, 230)


@dataclass(frozen=True)
class JumpClipSpec:
    """What to render.

    Attributes:
        seconds: clip length; ``num_frames = round(seconds * fps)``.
        fps: constant frame rate (integer).
        size: ``(width, height)``, even, >= 64 px each.
        period: mean jump period in seconds.
        period_jitter: each cycle's period is ``period * (1 + u)``, ``u`` uniform in ``±period_jitter``.
        airborne: share of a cycle spent in the air (0 < airborne < 1).
        jump_height: peak height as a share of the frame height.
        static: ``((t0, t1), ...)`` seconds during which the figure stands still (no cycle starts inside).
        camera_jitter: max camera shake in whole pixels per axis (0 = steady camera).
        camera_drift: camera pan speed ``(x, y)`` in px/s, turning back every ``min(size) / 6`` px.
        distractor: draw a blue square moving in straight lines (bouncing off the borders).
        crf: x264 quality.
        seed: seeds the background, the period jitter, the shake and the distractor.
    """

    seconds: float = 6.0
    fps: int = 25
    size: tuple[int, int] = (320, 240)
    period: float = 0.6
    period_jitter: float = 0.0
    airborne: float = 0.6
    jump_height: float = 0.18
    static: tuple[tuple[float, float], ...] = ()
    camera_jitter: int = 0
    camera_drift: tuple[float, float] = (0.0, 0.0)
    distractor: bool = False
    crf: int = 23
    seed: int = 0

    def __post_init__(self) -> None:
        w, h = self.size
        if w % 2 or h % 2 or w < 64 or h < 64:
            raise ValueError(f"size must be even and >= 64 px per side, got {self.size}")
        if not 0 < self.airborne < 1:
            raise ValueError(f"airborne must be in (0, 1), got {self.airborne}")
        if not 0 <= self.period_jitter < 0.5:
            raise ValueError(f"period_jitter must be in [0, 0.5), got {self.period_jitter}")
        if self.period * self.fps < 4:
            raise ValueError(f"period must last >= 4 frames, got {self.period} s at {self.fps} fps")
        if not 0 < self.jump_height < 0.4:
            raise ValueError(f"jump_height must be in (0, 0.4), got {self.jump_height}")
        if self.seconds <= 0 or self.fps <= 0 or self.camera_jitter < 0:
            raise ValueError("seconds and fps must be > 0 and camera_jitter >= 0")


@dataclass(frozen=True)
class JumpClip:
    """A rendered clip and its ground truth.

    Attributes:
        path: the encoded file.
        spec: what was rendered.
        num_frames: frames written; frame ``i`` is shown at ``i / fps`` s.
        cycle_start_frames: take-off frame of every cycle, ascending.
        subject_boxes: ``int64 [T, 4]`` ``(x0, y0, x1, y1)`` of the figure (with the rope's reach) in screen
            coordinates (exclusive ends, clipped to the frame).
        heights: ``float64 [T]`` the figure's height above the ground in pixels (0 on the ground).
        camera_offsets: ``int64 [T, 2]`` camera window top-left on the scene.
        distractor_boxes: ``int64 [T, 4]`` of the distractor in screen coordinates, or ``None``.
    """

    path: Path
    spec: JumpClipSpec
    num_frames: int
    cycle_start_frames: tuple[int, ...]
    subject_boxes: np.ndarray
    heights: np.ndarray
    camera_offsets: np.ndarray
    distractor_boxes: np.ndarray | None = None
    extra: dict = field(default_factory=dict)

    @property
    def fps(self) -> int:
        return self.spec.fps

    @property
    def cycle_starts(self) -> list[float]:
        """Cycle-start times in seconds, rounded to 2 decimals (exact at 25 fps)."""
        return [round(f / self.spec.fps, 2) for f in self.cycle_start_frames]


def plan_cycles(spec: JumpClipSpec) -> tuple[list[tuple[int, int, int]], np.ndarray]:
    """Jump cycles ``(take_off_frame, airborne_frames, cycle_frames)`` and the height share ``[T]`` in [0, 1].

    Cycles run back to back from frame 1 on, each ``period * (1 + u)`` long, skipping static stretches
    (a cycle that would overlap one starts after it). A cycle must end before the clip does.
    """
    n = max(1, round(spec.seconds * spec.fps))
    rng = np.random.default_rng(spec.seed + 11)
    static = [
        (math.floor(t0 * spec.fps), math.ceil(t1 * spec.fps)) for t0, t1 in sorted(spec.static) if t1 > t0
    ]
    cycles: list[tuple[int, int, int]] = []
    height = np.zeros(n, dtype=np.float64)
    f = 1
    while True:
        length = max(
            4, round(spec.period * spec.fps * (1 + rng.uniform(-spec.period_jitter, spec.period_jitter)))
        )
        blocked = next((s for s in static if f < s[1] and f + length > s[0]), None)
        if blocked is not None:
            f = blocked[1] + 1
            continue
        if f + length >= n:
            break
        air = max(2, min(length - 1, round(length * spec.airborne)))
        cycles.append((f, air, length))
        j = np.arange(air + 1)
        height[f : f + air + 1] = np.sin(np.pi * j / air)  # 0 at take-off and at landing
        f += length
    return cycles, height


def _rope_points(cx: float, hand_y: float, half: float, phase: float, reach: float) -> np.ndarray:
    """Points ``[K, 2]`` (x, y) of the rope: a parabola between the hands through a swinging middle point."""
    mid_y = hand_y + reach * math.cos(2 * math.pi * phase)  # below the feet at take-off (phase 0)
    xs = np.linspace(cx - half, cx + half, 64)
    u = (xs - cx) / half
    ys = hand_y + (mid_y - hand_y) * (1 - u**2)
    return np.stack([xs, ys], axis=1)


def _render_frame(
    scene: np.ndarray,
    spec: JumpClipSpec,
    height_px: float,
    phase: float,
    offset: np.ndarray,
    shift: np.ndarray,
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """One RGB frame ``uint8 [H, W, 3]`` and the figure's screen box (with the rope's reach).

    The figure stands at a fixed scene position: on screen it moves by ``-shift`` (the camera offset minus
    its mean).
    """
    w, h = spec.size
    ox, oy = int(offset[0]), int(offset[1])
    img = scene[oy : oy + h, ox : ox + w].copy()
    body_w, body_h = max(6, w // 16), max(12, h // 5)
    ground = int(h * 0.85) - int(shift[1])
    cx = w // 2 - int(shift[0])
    y1 = ground - round(height_px)
    y0 = y1 - body_h
    x0 = cx - body_w // 2
    reach = body_h * 0.7
    half = body_w * 2.2
    pts = _rope_points(cx, y0 + body_h * 0.3, half, phase, reach)
    for dx in (0, 1):  # the rope first: it passes behind the figure, never hiding it
        for dy in (0, 1):
            xs = np.clip(np.round(pts[:, 0]).astype(int) + dx, 0, w - 1)
            ys = np.clip(np.round(pts[:, 1]).astype(int) + dy, 0, h - 1)
            img[ys, xs] = _ROPE_RGB
    img[max(0, y0) : max(0, y1), max(0, x0) : max(0, x0 + body_w)] = _FIGURE_RGB
    head = max(3, body_w // 2)
    img[max(0, y0 - 2 * head) : max(0, y0 - 1), max(0, cx - head) : cx + head] = _FIGURE_RGB
    top = y0 - 2 * head
    bottom = max(y1, math.ceil(y0 + body_h * 0.3 + reach) + 2)
    box = (
        max(0, int(cx - half)),
        max(0, int(top)),
        min(w, math.ceil(cx + half) + 2),
        min(h, bottom),
    )
    return img, box


def _camera_offsets(spec: JumpClipSpec, n: int) -> np.ndarray:
    """Camera window top-left per frame ``int64 [n, 2]`` (drift plus shake, non-negative).

    The drift moves at ``camera_drift`` px/s and turns back every ``min(w, h) / 6`` px (a triangle wave), so
    the subject stays in view on clips of any length.
    """
    rng = np.random.default_rng(spec.seed + 23)
    t = np.arange(n) / spec.fps
    amplitude = min(spec.size) / 6
    drift = np.zeros((n, 2), dtype=np.float64)
    for k in range(2):
        travel = np.abs(spec.camera_drift[k]) * t
        if spec.camera_drift[k]:
            phase = np.mod(travel, 2 * amplitude)
            drift[:, k] = np.sign(spec.camera_drift[k]) * np.minimum(phase, 2 * amplitude - phase)
    shake = (
        rng.integers(-spec.camera_jitter, spec.camera_jitter + 1, size=(n, 2)) if spec.camera_jitter else 0
    )
    offsets = np.round(drift + shake).astype(np.int64)
    return offsets - offsets.min(axis=0)


def _distractor_track(spec: JumpClipSpec, n: int) -> np.ndarray:
    """Distractor boxes ``int64 [n, 4]``: a square bouncing in straight lines in the upper part of the frame."""
    w, h = spec.size
    side = max(8, min(w, h) // 8)
    rng = np.random.default_rng(spec.seed + 37)
    pos = np.array([rng.integers(0, w - side), rng.integers(0, max(1, h // 2 - side))], dtype=np.float64)
    vel = rng.uniform(1.0, 3.0, size=2) * rng.choice([-1, 1], size=2)
    lim = np.array([w - side, max(1, h // 2 - side)], dtype=np.float64)
    out = np.zeros((n, 4), dtype=np.int64)
    for i in range(n):
        if i:
            pos += vel
            for k in range(2):
                if pos[k] < 0 or pos[k] > lim[k]:
                    vel[k] = -vel[k]
                    pos[k] = min(max(pos[k], 0.0), lim[k])
        x, y = (round(float(v)) for v in pos)
        out[i] = (x, y, x + side, y + side)
    return out


def write_jump_clip(path: str | os.PathLike, spec: JumpClipSpec = JumpClipSpec()) -> JumpClip:
    """Render and encode one clip (H.264 MP4, written to a temporary name then renamed)."""
    n = max(1, round(spec.seconds * spec.fps))
    w, h = spec.size
    cycles, height_share = plan_cycles(spec)
    height_px = height_share * spec.jump_height * h
    phase = np.zeros(n, dtype=np.float64)
    for f, _air, length in cycles:  # the rope swings once per cycle and rests outside cycles
        phase[f : f + length] = np.arange(length) / length
    offsets = _camera_offsets(spec, n)
    shifts = offsets - np.round(offsets.mean(axis=0)).astype(np.int64)
    rng = np.random.default_rng(spec.seed)
    scene = _texture(rng, h + int(offsets[:, 1].max()), w + int(offsets[:, 0].max()), 16)
    scene = (scene.astype(np.int16) // 3 + 90).astype(
        np.uint8
    )  # muted (90-169), so the red figure stands out
    distractor = _distractor_track(spec, n) if spec.distractor else None

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
    boxes = np.zeros((n, 4), dtype=np.int64)
    rate = Fraction(spec.fps)
    with av.open(str(tmp), mode="w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.codec_context.time_base = Fraction(1) / rate
        stream.thread_count = 1
        stream.codec_context.options = {
            "preset": "ultrafast",
            "crf": str(spec.crf),
            "x264-params": "bframes=0",
        }
        for i in range(n):
            img, box = _render_frame(scene, spec, float(height_px[i]), float(phase[i]), offsets[i], shifts[i])
            boxes[i] = box
            if distractor is not None:
                x0, y0, x1, y1 = distractor[i]
                img[y0:y1, x0:x1] = _DISTRACTOR_RGB
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    os.replace(tmp, path)
    return JumpClip(
        path=path,
        spec=spec,
        num_frames=n,
        cycle_start_frames=tuple(c[0] for c in cycles),
        subject_boxes=boxes,
        heights=height_px,
        camera_offsets=offsets,
        distractor_boxes=distractor,
    )


def random_jump_spec(rng: np.random.Generator, *, seconds: float, fps: int = 25) -> JumpClipSpec:
    """A varied spec: period 0.4-0.9 s, jitter 0-15 %, portrait or landscape, shake, drift, distractor and
    (for clips of 4 s or more) a static stretch, each drawn from ``rng``."""
    portrait = bool(rng.integers(2))
    short = int(rng.choice([96, 128, 180]))
    long_side = short * 16 // 9 + (short * 16 // 9) % 2
    size = (short, long_side) if portrait else (long_side, short)
    static: tuple[tuple[float, float], ...] = ()
    if seconds >= 4 and rng.random() < 0.7:
        t0 = float(np.round(rng.uniform(0.2, 0.6) * seconds, 2))
        static = ((t0, float(np.round(t0 + rng.uniform(0.15, 0.3) * seconds, 2))),)
    drift = (float(rng.choice([0.0, 4.0, -4.0])), float(rng.choice([0.0, 2.0])))
    return JumpClipSpec(
        seconds=float(seconds),
        fps=fps,
        size=size,
        period=float(np.round(rng.uniform(0.4, 0.9), 3)),
        period_jitter=float(np.round(rng.uniform(0.0, 0.15), 3)),
        jump_height=float(np.round(rng.uniform(0.1, 0.2), 3)),
        static=static,
        camera_jitter=int(rng.integers(0, 3)),
        camera_drift=drift,
        distractor=bool(rng.integers(2)),
        seed=int(rng.integers(0, 2**31 - 1)),
    )
