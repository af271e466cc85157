"""Offline JumpScore-like benchmark folders from :mod:`..video.synthetic_events` clips.

``write_jumprope_bench(out, num_clips=8, seconds=8.0, seed=0)`` writes::

    out/annotations.jsonl            id, video_path, question, answer (the JumpScore format)
    out/videos/jumprope_000.mp4 ...  the clips
    out/ground_truth/jumprope_000.json   spec, cycle-start frames, per-frame subject boxes, camera offsets

The answer is a JSON list of cycle-start seconds with two decimals (exact at 25 fps), as in the dataset.
Specs are drawn by :func:`~..video.synthetic_events.random_jump_spec` from ``seed``, alternating portrait and
landscape; the same arguments give the same folder.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..video.synthetic_events import JumpClip, JumpClipSpec, random_jump_spec, write_jump_clip
from .annotations import write_annotations

__all__ = ["JUMPROPE_QUESTION", "spec_from_json", "write_jumprope_bench"]

JUMPROPE_QUESTION = (
    "This video shows a person skipping rope. Give the start time of every jump in seconds, with two "
    "decimals, as a JSON list, for example [0.52, 1.10]."
)


def _ground_truth(clip: JumpClip, video_path: str) -> dict:
    return {
        "video_path": video_path,
        "spec": dataclasses.asdict(clip.spec),
        "fps": clip.fps,
        "num_frames": clip.num_frames,
        "cycle_start_frames": list(clip.cycle_start_frames),
        "cycle_starts": clip.cycle_starts,
        "subject_boxes": clip.subject_boxes.tolist(),
        "camera_offsets": clip.camera_offsets.tolist(),
        "distractor_boxes": None if clip.distractor_boxes is None else clip.distractor_boxes.tolist(),
    }


def write_jumprope_bench(
    out: str | os.PathLike,
    *,
    num_clips: int = 8,
    seconds: float = 8.0,
    seed: int = 0,
    on_clip: Callable[[int], None] | None = None,
) -> Path:
    """Write a benchmark folder (see the module docstring); returns the annotation file's path.

    ``on_clip(i)`` is called after clip ``i`` is written (progress bars).
    """
    if num_clips < 1:
        raise ValueError(f"num_clips must be >= 1, got {num_clips}")
    if seconds < 1:
        raise ValueError(f"seconds must be >= 1, got {seconds}")
    out = Path(out)
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(num_clips):
        spec = random_jump_spec(rng, seconds=seconds)
        w, h = spec.size
        if (h > w) != (i % 2 == 0):  # alternate portrait / landscape
            spec = dataclasses.replace(spec, size=(h, w))
        vid = f"jumprope_{i:03d}"
        rel = f"videos/{vid}.mp4"
        clip = write_jump_clip(out / rel, spec)
        truth = out / "ground_truth" / f"{vid}.json"
        truth.parent.mkdir(parents=True, exist_ok=True)
        tmp = truth.with_name(f".{truth.name}.partial")
        tmp.write_text(json.dumps(_ground_truth(clip, rel)) + "\n")
        os.replace(tmp, truth)
        rows.append(
            {
                "id": vid,
                "video_path": rel,
                "question": JUMPROPE_QUESTION,
                "answer": json.dumps([float(f"{t:.2f}") for t in clip.cycle_starts]),
            }
        )
        if on_clip is not None:
            on_clip(i)
    return write_annotations(out / "annotations.jsonl", rows)


def spec_from_json(data: dict) -> JumpClipSpec:
    """The :class:`JumpClipSpec` stored in a ground-truth file's ``"spec"``."""
    fields = dict(data)
    fields["size"] = tuple(fields["size"])
    fields["camera_drift"] = tuple(fields["camera_drift"])
    fields["static"] = tuple(tuple(s) for s in fields["static"])
    return JumpClipSpec(**fields)
