"""Configuration of the codec-stream tokenizer.

Every constant of the algorithm is a field here. Defaults follow the public training-data generator
(``codec_patch_gop`` of codec-video-prep, described in ``docs/codec.md`` § "Pipeline"; its deviations in
§ "Deviations from the official implementation") except the geometry, which defaults
to the released p14 / merge-2 checkpoint's inference recipe (``patch_size=14``, factor 28,
``max_pixels=150000``). Where the paper and the code differ, the code's choice is the default and the
paper's variant is an option (``energy="raw"``, ``rank_attenuation="linear"``, ``bitcost_prior_beta>0``).
Three defaults differ from the code on purpose, chosen by ``perf/bench_coverage.py`` (``docs/codec.md``
§ "Coverage benchmark"): ``budget_policy="target"``, ``p_allocation="content"`` and
``mv_compensate="median"``; ``"ceiling"``, ``"fixed"`` and ``"none"`` reproduce the code.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from .kernels import KERNEL_CHOICES

_CHOICES: dict[str, tuple[str, ...]] = {
    "energy": ("log1p", "raw"),
    "anchor_mode": ("midpoint", "start"),
    "motion": ("auto", "mv", "residual-only"),
    "mv_compensate": ("none", "median", "affine"),
    "budget_policy": ("target", "ceiling"),
    "p_allocation": ("content", "fixed"),
    "candidate_rule": ("official", "centered", "legacy"),
    "mv_direction": ("l0", "both"),
    "rank_attenuation": ("sqrt", "linear"),
    "tie_break": ("group", "index"),
    "thread_type": ("AUTO", "FRAME", "SLICE", "NONE"),
    "kernels": KERNEL_CHOICES,
}

_POSITIVE_INTS = (
    "decode_workers",
    "patch_size",
    "merge_size",
    "min_pixels",
    "max_pixels",
    "budget_min_pixels",
    "max_groups",
    "min_group_frames",
    "max_auto_groups",
    "valley_radius_bins",
    "candidates_per_canvas",
    "min_candidates",
    "max_candidates",
    "max_candidates_per_bin",
    "analysis_downsample",
    "max_p_canvases_per_group",
)
_NON_NEGATIVE_INTS = (
    "p_canvases_per_group",
    "torch_threads",
    "smooth_bins",
    "num_groups",
    "peaks_cap",
    "peak_neighbors",
)
_POSITIVE_FLOATS = (
    "bin_seconds",
    "seconds_per_group",
    "min_span_seconds",
    "max_span_seconds",
    "mv_unit_div",
    "res_norm_floor",
)
_NON_NEGATIVE_FLOATS = (
    "tail_anchor_min_seconds",
    "candidates_per_second",
    "peaks_per_second",
    "w_mv",
    "w_res",
    "rank_penalty",
    "alpha_peak",
    "bitcost_prior_beta",
    "activity_frame_power",
    "anchor_still_fraction",
    "mv_norm_floor",
    "letterbox_dark_threshold",
    "black_y_mean",
    "black_y_std",
)


@dataclass(frozen=True)
class CodecConfig:
    """All knobs of :func:`~transformers_llava_ov2.codec.pipeline.tokenize_video`.

    Geometry and budget:
        patch_size: ViT patch size ``p`` (14 for the released p14m2 model, 16 for the training recipe).
        merge_size: spatial merge ``m``; canvases are multiples of ``p*m`` and one LLM token is
            ``m*m`` patches (one 2x2 block for ``m=2``).
        min_pixels / max_pixels: ``smart_resize`` bounds of one canvas (source frames are resized to
            this geometry; all canvases share it).
        max_visual_tokens: total LLM-token budget (``patches / m**2``) over all canvases, or ``None``.
        num_canvases: total canvas budget, or ``None``.
        budget_min_pixels: when a token budget is set, canvases are shrunk no further than this many
            pixels before whole groups are dropped instead (see ``docs/codec.md``).
        p_canvases_per_group: ``m_g``, P-canvases per group (each group has 1 I-canvas + ``m_g``); with
            ``p_allocation="content"`` the average, the groups' shares following their activity.
        budget_policy: ``"target"`` (default): ``max_visual_tokens`` is the amount to spend; the planner
            adds groups (shorter energy segments) and P-canvases when the default layout would spend less
            than the budget; ``"ceiling"``: the budget only caps the default layout (the official-like
            behaviour: at most ``max_groups`` groups of ``1 + m_g`` canvases). ``docs/codec.md`` § "Budget".
        p_allocation: ``"content"`` (P-canvases per group follow the group's share of motion/residual
            activity, a still group keeps its I-canvas and few or no P-canvases) or ``"fixed"`` (the
            official ``m_g`` P-canvases in every group).
        max_p_canvases_per_group: cap on the P-canvases of one group (content allocation and the target
            policy).
        activity_frame_power: content allocation only: inside a group, each frame's block scores are
            scaled by ``(activity / group max activity) ** power`` (0 = off, default): fewer P-tokens on
            still frames of a mixed group, but fewer distinct frames (``docs/codec.md`` benchmark).
        max_groups: cap on the number of groups (anchors are subsampled evenly beyond it); 8 groups x 4
            canvases = the 32-canvas target of the released inference recipe.
        min_group_frames: minimum frames between consecutive anchors (a group has at least this many
            frames, i.e. ``min_group_frames - 1`` non-anchor frames).

    Bit-cost timeline and adaptive GOP plan:
        bin_seconds: time bin ``Delta``.
        smooth_bins: box smoothing radius in bins (``+-1`` = 3-bin mean).
        energy: ``"log1p"`` (code: sum of ``log1p(size)``) or ``"raw"`` (paper: sum of sizes).
        num_groups: ``K_tar``; 0 = auto ``clamp(round(duration / seconds_per_group), 1, max_auto_groups)``.
        seconds_per_group / max_auto_groups: the auto ``K_tar`` rule.
        min_span_seconds / max_span_seconds: ``T_min`` / ``T_max`` of an energy segment.
        valley_radius_bins: max search radius of the valley refinement (also ``<= max_bins // 3``).
        strict_spans: keep ``T_min <= span <= T_max`` for every segment (the tail is merged or re-split);
            ``False`` reproduces the code's tail rule (merge only tails ``< tail_merge_fraction * T_min``).
        tail_merge_fraction: see ``strict_spans``.
        scene_cut_boundaries: irregular keyframes (scene cuts) start a new segment when both sides keep
            ``T_min``.
        anchor_mode: ``"midpoint"`` (code: I-canvas anchors at segment midpoints plus t=0, groups run
            anchor to anchor) or ``"start"`` (groups are the segments, anchored at their first frame).
        tail_anchor_min_seconds: midpoint mode drops the last anchor when its group is shorter.
        anchor_still_fraction: the I-canvas skips a still lead-in of its group: the action starts in the
            first window of 5 candidates whose mean activity reaches this fraction of the group's mean
            activity, at the window's most active candidate (``codec.groups.still_lead_in``); the anchor
            is the first good candidate from there and P-blocks come from later frames. ``0`` = the
            planned anchor (official).

    Candidate frames (the information-reweighted timeline):
        candidate_rule: ``"official"`` (evenly spaced positions truncated within an energy bin, a
            single-candidate bin takes its middle frame, pool = ``candidates_per_canvas`` x the official
            budget estimate, at least the planned canvases), ``"centered"`` (the official pool, each of a
            bin's ``k`` candidates at the centre of its ``1/k`` share of the bin, so that neighbouring
            bins' candidates do not pair up at the bin edges) or ``"legacy"`` (rounded positions, a
            single candidate at the bin's first frame, pool = ``candidates_per_canvas`` x planned
            canvases).
        candidates_per_canvas / candidates_per_second / min_candidates / max_candidates: ``seq_len =
            clamp(max(candidates_per_canvas * canvases, ceil(candidates_per_second * duration)),
            min_candidates, max_candidates)``; the per-second floor (``0`` = the official pool) keeps a
            candidate every ~1/6 s on long clips, where ``8 x canvases`` leaves gaps between the events
            (``docs/codec.md`` § "Coverage benchmark").
        uniform_mix: weight of the uniform component in the energy-CDF sampler.
        max_candidates_per_bin: cap per time bin.
        peaks_cap / peaks_per_second / peak_neighbors: energy-peak frame injection.

    Saliency:
        motion: ``"auto"`` (motion vectors when the codec exports them, else residual-only),
            ``"mv"`` or ``"residual-only"``.
        reencode_without_mvs: for codecs without MV export, re-encode to H.264 with PyAV first.
        reencode_preset / reencode_crf: x264 settings of that re-encode.
        mv_unit_div / mv_percentile / res_percentile / w_mv / w_res: official normalisation and fusion
            (``docs/codec.md`` § "4. Saliency and selection").
        mv_compensate: camera-motion compensation before scoring: ``"none"`` (official), ``"median"``
            (subtract the per-frame median vector) or ``"affine"`` (subtract a robust per-frame affine
            fit of the vector field: pans, zooms and small rotations).
        mv_direction: ``"l0"`` (code) or ``"both"`` (max of L0/L1 magnitudes).
        mv_norm_floor: least motion, in canvas pixels, that the per-frame normalisation stretches to full
            saliency: ``m = clip(mag / max(P95, 1e-6, f), 0, 1)`` with
            ``f = mv_norm_floor / (analysis_downsample * mv_unit_div)`` (``mag``'s units). A frame whose
            whole motion is below it (shake left after compensation, encoder noise on flat areas) keeps a
            weak motion map, so its blocks rank by the residual, instead of that noise being stretched to
            1. ``0`` = the official rule; 2.1 by default (``docs/codec.md``, deviation 15).
        res_norm_floor: least residual scale, in grey levels, of the per-frame normalisation
            ``r = clip(|res - 128| / max(P95, res_norm_floor), 0, 1)``: a frame whose residual is all
            below it (coding noise of a still or shaking background) keeps a weak residual map instead
            of having that noise stretched to 1. ``1`` = the official rule; 3 by default (chosen on the
            coverage benchmark; ``docs/codec.md``, deviation 15).
        analysis_downsample: saliency maps are computed at canvas resolution divided by this factor
            (1 = canvas resolution, as the code does; 2 by default for speed, see ``docs/codec.md``);
            must divide ``patch_size``.
        letterbox / letterbox_dark_threshold: mask dark borders out of the score map.
        black_y_mean / black_y_std / corrupt_green_fraction / corrupt_g / corrupt_rb: bad-frame filter.

    Selection:
        rank_penalty: ``lambda`` of the per-frame rank attenuation.
        rank_attenuation: ``"sqrt"`` (code, ``1/sqrt(1+lambda*rho)``) or ``"linear"`` (paper).
        tie_break: order of blocks with equal attenuated scores (e.g. the all-zero blocks of a still
            frame on a steady camera): ``"group"`` (default) = where the group's mean block score is
            highest first, ``"index"`` = frame then block order (the code's sort).
        alpha_peak: frame mass = sum + ``alpha_peak`` * max of attenuated block scores.
        bitcost_prior_beta: paper-style prior ``score *= 1 + beta * b_t`` (0 = off, the code).

    Decoding:
        thread_type: PyAV decoder threading. ``"SLICE"`` (default) is deterministic; ``"FRAME"``/``"AUTO"``
            decode faster on single-slice streams but FFmpeg's motion-vector export is racy under frame
            threading (``docs/codec.md`` § "3. Signals"), so use them only when run-to-run determinism
            does not matter.
        torch_threads: torch intra-op threads while the tokenizer runs (restored afterwards); 1 avoids
            contention with the decoder threads (0 = leave torch's setting alone).
        decode_thread: demux and decode in a background thread that runs ahead of the signal computation
            (a few frames of bounded look-ahead), so that decoding overlaps the per-candidate work; the
            outputs are identical with ``False`` (everything in the calling thread).
        decode_workers: decoders running at once (with ``decode_thread``). The stream is decoded as
            independent chunks that start at IDR pictures (:mod:`~.chunks`, each in a fresh decoder), so
            several decoders can share the work; the outputs do not depend on this number. Default 1
            (one decode thread): on 2 cores the tokenizer is already CPU-bound and more decoders only add
            contention (``docs/codec.md`` § Performance); more help where cores are idle.
        kernels: the per-pixel loops of the signals (motion-vector cell fill, motion-compensated
            residual, saliency block sums): ``"numba"`` (compiled, the ``fast`` extra), ``"numpy"``, or
            ``"auto"`` (default: numba when it is installed). The tokens are the same with either
            (:mod:`~.kernels`).
    """

    patch_size: int = 14
    merge_size: int = 2
    min_pixels: int = 56 * 56
    max_pixels: int = 150_000
    max_visual_tokens: int | None = None
    num_canvases: int | None = None
    budget_min_pixels: int = 224 * 224
    p_canvases_per_group: int = 3
    budget_policy: str = "target"
    p_allocation: str = "content"
    max_p_canvases_per_group: int = 12
    activity_frame_power: float = 0.25
    max_groups: int = 8
    min_group_frames: int = 4

    bin_seconds: float = 0.5
    smooth_bins: int = 1
    energy: str = "log1p"
    num_groups: int = 0
    seconds_per_group: float = 8.0
    max_auto_groups: int = 16
    min_span_seconds: float = 1.5
    max_span_seconds: float = 6.0
    valley_radius_bins: int = 3
    strict_spans: bool = True
    tail_merge_fraction: float = 0.5
    scene_cut_boundaries: bool = True
    anchor_mode: str = "midpoint"
    tail_anchor_min_seconds: float = 4.0
    anchor_still_fraction: float = 0.4

    candidate_rule: str = "centered"
    candidates_per_canvas: int = 8
    candidates_per_second: float = 6.0
    min_candidates: int = 64
    max_candidates: int = 1024
    uniform_mix: float = 0.15
    max_candidates_per_bin: int = 16
    peaks_cap: int = 8
    peaks_per_second: float = 0.5
    peak_neighbors: int = 1

    motion: str = "auto"
    reencode_without_mvs: bool = False
    reencode_preset: str = "veryfast"
    reencode_crf: int = 20
    mv_unit_div: float = 4.0
    mv_percentile: float = 95.0
    res_percentile: float = 95.0
    w_mv: float = 1.0
    w_res: float = 1.0
    mv_compensate: str = "median"
    mv_direction: str = "l0"
    mv_norm_floor: float = 2.1
    res_norm_floor: float = 3.0
    analysis_downsample: int = 2
    letterbox: bool = True
    letterbox_dark_threshold: float = 16.0
    black_y_mean: float = 8.0
    black_y_std: float = 6.0
    corrupt_green_fraction: float = 0.35
    corrupt_g: int = 180
    corrupt_rb: int = 90

    rank_penalty: float = 0.35
    rank_attenuation: str = "sqrt"
    tie_break: str = "group"
    alpha_peak: float = 0.35
    bitcost_prior_beta: float = 0.0

    thread_type: str = "SLICE"
    torch_threads: int = 1
    decode_thread: bool = True
    decode_workers: int = 1
    kernels: str = "auto"

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Raise ``ValueError`` naming the first invalid field."""
        for name, choices in _CHOICES.items():
            value = getattr(self, name)
            if value not in choices:
                raise ValueError(f"CodecConfig.{name} must be one of {choices}, got {value!r}")
        for name in _POSITIVE_INTS:
            _check_int(name, getattr(self, name), minimum=1)
        for name in _NON_NEGATIVE_INTS:
            _check_int(name, getattr(self, name), minimum=0)
        for name in ("max_visual_tokens", "num_canvases"):
            value = getattr(self, name)
            if value is not None:
                _check_int(name, value, minimum=1)
        if self.max_pixels < self.min_pixels:
            raise ValueError(
                f"CodecConfig.max_pixels ({self.max_pixels}) must be >= min_pixels ({self.min_pixels})"
            )
        if self.max_candidates < self.min_candidates:
            raise ValueError(
                f"CodecConfig.max_candidates ({self.max_candidates}) must be >= min_candidates "
                f"({self.min_candidates})"
            )
        for name in _POSITIVE_FLOATS:
            _check_float(name, getattr(self, name), low=0.0, low_inclusive=False)
        for name in _NON_NEGATIVE_FLOATS:
            _check_float(name, getattr(self, name), low=0.0)
        for name in ("uniform_mix", "tail_merge_fraction", "corrupt_green_fraction"):
            _check_float(name, getattr(self, name), low=0.0, high=1.0)
        for name in ("mv_percentile", "res_percentile"):
            _check_float(name, getattr(self, name), low=0.0, high=100.0, low_inclusive=False)
        self._validate_relations()

    def _validate_relations(self) -> None:
        """The checks that involve more than one field (after every field's own check)."""
        if self.max_span_seconds < 2 * self.min_span_seconds:
            raise ValueError(
                f"CodecConfig.max_span_seconds ({self.max_span_seconds}) must be >= 2 * min_span_seconds "
                f"({self.min_span_seconds}) so that every segment can keep T_min <= span <= T_max"
            )
        if self.w_mv + self.w_res <= 0:
            raise ValueError("CodecConfig.w_mv + w_res must be > 0")
        if self.patch_size % self.analysis_downsample:
            raise ValueError(
                f"CodecConfig.analysis_downsample ({self.analysis_downsample}) must divide "
                f"patch_size ({self.patch_size})"
            )
        for name in ("corrupt_g", "corrupt_rb"):
            _check_int(name, getattr(self, name), minimum=0)
        if not 0 <= self.reencode_crf <= 51:
            raise ValueError(f"CodecConfig.reencode_crf must be in [0, 51], got {self.reencode_crf}")

    # ------------------------------------------------------------------ derived values
    @property
    def factor(self) -> int:
        """Canvas side multiple ``patch_size * merge_size``."""
        return self.patch_size * self.merge_size

    @property
    def min_bins(self) -> int:
        """``T_min`` in bins (``ceil``; the code clamps ``T_min >= 0.25 s``)."""
        return max(1, math.ceil(max(self.min_span_seconds, 0.25) / self.bin_seconds - 1e-9))

    @property
    def max_bins(self) -> int:
        """``T_max`` in bins (``ceil``)."""
        return max(self.min_bins, math.ceil(self.max_span_seconds / self.bin_seconds - 1e-9))

    def replace(self, **overrides: Any) -> CodecConfig:
        """A copy with some fields replaced (validated)."""
        return with_overrides(self, **overrides)


def with_overrides(config: CodecConfig | None, **overrides: Any) -> CodecConfig:
    """``config`` (or the defaults) with ``overrides`` applied; unknown names raise ``ValueError``."""
    base = config if config is not None else CodecConfig()
    if not isinstance(base, CodecConfig):
        raise ValueError(f"config must be a CodecConfig or None, got {type(base).__name__}")
    names = {f.name for f in dataclasses.fields(CodecConfig)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ValueError(f"unknown CodecConfig field(s): {', '.join(unknown)}")
    return dataclasses.replace(base, **overrides) if overrides else base


def _check_int(name: str, value: object, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"CodecConfig.{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"CodecConfig.{name} must be >= {minimum}, got {value}")


def _check_float(
    name: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"CodecConfig.{name} must be a finite number, got {value!r}")
    if low is not None and (value < low or (not low_inclusive and value == low)):
        op = ">=" if low_inclusive else ">"
        raise ValueError(f"CodecConfig.{name} must be {op} {low}, got {value}")
    if high is not None and value > high:
        raise ValueError(f"CodecConfig.{name} must be <= {high}, got {value}")
