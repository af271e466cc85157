"""Typed results shared by the video front ends (uniform frames, codec canvases) and the processor.

These dataclasses are the contract between the front ends ``video/`` and ``codec/`` (which produce them)
and the processor, the CLI, training and evaluation code (which consume them). They hold numpy arrays
only, no torch tensors. :class:`VisualItem` is what either video back end (and the image path) hands the
processor: pixel rows, grid rows, positions and the prompt layout (:class:`LlavaOnevision2VideoInfo`).

Position convention (see ``docs/model.md``, "3D RoPE"): a patch position is ``(t, h, w)`` with ``t`` the
*source frame index* in the decoded stream and ``(h, w)`` the patch row/column in the *source* frame's
patch grid (after the frame is resized to the canvas geometry), not the cell it occupies in a canvas.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

ROLE_I = 0
"""Token role: the token belongs to an I-canvas (a full anchor frame)."""
ROLE_P = 1
"""Token role: the token belongs to a P-canvas (salient 2x2 blocks gathered from several frames)."""


def merged_runs(keys: np.ndarray) -> list[tuple[int, int]]:
    """``[(start, end), ...]`` runs of equal consecutive values of ``keys`` (``int [K]``), in order."""
    keys = np.asarray(keys).reshape(-1)
    if keys.size == 0:
        return []
    cuts = np.flatnonzero(keys[1:] != keys[:-1]) + 1
    starts = np.concatenate([[0], cuts]).tolist()
    ends = [*starts[1:], int(keys.size)]
    return list(zip(starts, ends))


def raster_to_block_order(height: int, width: int, merge_size: int) -> np.ndarray:
    """Permutation that turns a row-major ``height x width`` patch grid into merge-block order.

    Block order visits the ``merge_size x merge_size`` cells row-major, and inside each cell its patches
    row-major: exactly the order of ``Qwen2VLImageProcessor``'s ``pixel_values`` rows.

    Returns:
        ``int64 [height*width]``: ``block_ordered = raster[perm]``.
    """
    if height % merge_size or width % merge_size:
        raise ValueError(
            f"patch grid {height}x{width} is not divisible by spatial_merge_size={merge_size}; "
            "resize with a factor of patch_size*merge_size"
        )
    idx = np.arange(height * width, dtype=np.int64).reshape(
        height // merge_size, merge_size, width // merge_size, merge_size
    )
    return idx.transpose(0, 2, 1, 3).reshape(-1)


@dataclass(frozen=True)
class SampledFrames:
    """Uniformly sampled RGB frames of one video (the ``frames`` backend).

    Attributes:
        frames: ``uint8 [T, H, W, 3]`` RGB, in display order.
        frame_indices: ``int64 [T]`` source frame index of each frame (0-based, display order).
        timestamps: ``float64 [T]`` presentation time of each frame in seconds (from pts when known).
        fps: average frame rate of the stream.
        total_frames: number of frames in the stream.
        duration: stream duration in seconds.
        source: the path, or a short description of an in-memory input.
    """

    frames: np.ndarray
    frame_indices: np.ndarray
    timestamps: np.ndarray
    fps: float
    total_frames: int
    duration: float
    source: str = "<array>"

    def __post_init__(self) -> None:
        if self.frames.ndim != 4 or self.frames.shape[-1] != 3 or self.frames.dtype != np.uint8:
            raise ValueError(
                f"SampledFrames.frames must be uint8 [T,H,W,3], got {self.frames.dtype} {self.frames.shape}"
            )
        n = self.frames.shape[0]
        if len(self.frame_indices) != n or len(self.timestamps) != n:
            raise ValueError(
                f"SampledFrames: {n} frames but {len(self.frame_indices)} indices and "
                f"{len(self.timestamps)} timestamps"
            )

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])


@dataclass(frozen=True)
class GopGroup:
    """One adaptive group of pictures chosen from the bit-cost timeline.

    Attributes:
        index: group id (0-based, in time order).
        start: start time in seconds (inclusive).
        end: end time in seconds (exclusive).
        anchor_frame: source frame index of the group's I-canvas.
        bit_cost: summed bin energy of the group (the quantity the cut rule accumulates).
        num_canvases: canvases emitted for the group (1 I-canvas + P-canvases).
    """

    index: int
    start: float
    end: float
    anchor_frame: int
    bit_cost: float
    num_canvases: int


@dataclass(frozen=True)
class BitCostTimeline:
    """The P/B bit-cost timeline the adaptive GOP plan was cut from.

    Attributes:
        bin_seconds: width of one time bin (the paper's Delta).
        energy: ``float64 [nb]`` per-bin energy before smoothing (sum of log1p(size) or of raw sizes).
        smoothed: ``float64 [nb]`` the smoothed energy the cut rule scans.
        quota: energy per group (total / K_tar) used by the cut rule.
        boundaries: ``float64 [K+1]`` group boundaries in seconds (first 0, last the end).
        anchor_times: ``float64 [K]`` anchor (I-canvas) times in seconds.
    """

    bin_seconds: float
    energy: np.ndarray
    smoothed: np.ndarray
    quota: float
    boundaries: np.ndarray
    anchor_times: np.ndarray


@dataclass(frozen=True)
class CodecBudget:
    """How a codec tokenization used its token budget.

    Attributes:
        policy: ``"target"`` (the budget is the amount to spend) or ``"ceiling"`` (it only caps).
        requested_tokens: ``max_visual_tokens`` asked for, or ``None`` (no budget).
        planned_tokens: tokens of the planned layout (canvases x tokens per canvas).
        spent_tokens: LLM tokens actually emitted (= ``CodecTokens.num_tokens``).
        reason: why less than 90 % of the request was spent (``None`` when it was, or without a budget).
    """

    policy: str
    requested_tokens: int | None
    planned_tokens: int
    spent_tokens: int
    reason: str | None = None

    def __post_init__(self) -> None:
        if self.policy not in ("target", "ceiling"):
            raise ValueError(f"CodecBudget.policy must be 'target' or 'ceiling', got {self.policy!r}")
        req = self.requested_tokens
        if req is not None and (isinstance(req, bool) or not isinstance(req, int) or req < 1):
            raise ValueError(f"CodecBudget.requested_tokens must be None or an int >= 1, got {req!r}")
        for name in ("planned_tokens", "spent_tokens"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"CodecBudget.{name} must be an int >= 0, got {v!r}")

    @property
    def spent_fraction(self) -> float | None:
        """``spent / requested`` (``None`` without a budget)."""
        return None if self.requested_tokens is None else self.spent_tokens / self.requested_tokens


@dataclass(frozen=True)
class CodecTokens:
    """Codec-stream tokenization of one video: compact I/P canvases plus per-patch source metadata.

    All canvases of one video share one size, a multiple of ``patch_size * merge_size`` on both sides,
    so they stack into one ``[N_canvas, h, w]`` grid row. Per-patch arrays have length
    ``N = num_canvases * h * w`` and are in **canvas raster order** (canvas by canvas, then row-major over
    the canvas patch grid). Every ``merge_size x merge_size`` cell of a canvas comes from one source frame,
    and no token is padding (every ``t >= 0``).

    Attributes:
        canvases: ``uint8 [N_canvas, Hc, Wc, 3]`` RGB canvases.
        patch_size: ViT patch size the canvases were cut for (14 for the released p14 checkpoints).
        merge_size: spatial merge size of the model (2 for the released 8B).
        source_positions: ``int64 [N, 3]`` ``(t, h, w)``: source frame index and source patch row/col.
        token_canvas: ``int64 [N]`` canvas index of each patch.
        token_timestamps: ``float64 [N]`` source timestamp (seconds) of each patch.
        token_group: ``int64 [N]`` GOP group id of each patch.
        token_role: ``int8 [N]`` ``ROLE_I`` or ``ROLE_P``.
        canvas_roles: ``int8 [N_canvas]`` role of each canvas.
        canvas_groups: ``int64 [N_canvas]`` group of each canvas.
        groups: the GOP table.
        fps: stream frame rate (timestamps are pts-based, so VFR streams are handled).
        duration: stream duration in seconds.
        total_frames: frames in the stream.
        source_frame_size: ``(H, W)`` pixels of a source frame after resizing to the patch grid.
        source: path or description of the input.
        timeline: the bit-cost timeline and group boundaries (for plots and debugging).
        stage_seconds: wall time of each stage (``{"probe": .., "gop": .., "decode": .., ...}``).
        backend_info: free-form facts about how the signals were obtained (e.g. ``{"motion": "mv"}``).
        budget: requested vs spent tokens and why the budget was not used (:class:`CodecBudget`).
    """

    canvases: np.ndarray
    patch_size: int
    merge_size: int
    source_positions: np.ndarray
    token_canvas: np.ndarray
    token_timestamps: np.ndarray
    token_group: np.ndarray
    token_role: np.ndarray
    canvas_roles: np.ndarray
    canvas_groups: np.ndarray
    groups: tuple[GopGroup, ...]
    fps: float
    duration: float
    total_frames: int
    source_frame_size: tuple[int, int]
    source: str = "<array>"
    timeline: BitCostTimeline | None = None
    stage_seconds: dict = field(default_factory=dict)
    backend_info: dict = field(default_factory=dict)
    budget: CodecBudget | None = None

    def __post_init__(self) -> None:
        c = self.canvases
        if c.ndim != 4 or c.shape[-1] != 3 or c.dtype != np.uint8:
            raise ValueError(f"CodecTokens.canvases must be uint8 [N,H,W,3], got {c.dtype} {c.shape}")
        factor = self.patch_size * self.merge_size
        if c.shape[1] % factor or c.shape[2] % factor:
            raise ValueError(
                f"CodecTokens canvases are {c.shape[1]}x{c.shape[2]}, not multiples of patch*merge={factor}"
            )
        n = self.num_patches
        for name in ("source_positions", "token_canvas", "token_timestamps", "token_group", "token_role"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"CodecTokens.{name} has {len(getattr(self, name))} rows, expected {n}")
        if n and int(self.source_positions[:, 0].min()) < 0:
            raise ValueError("CodecTokens.source_positions contains padding (t < 0); padding is not allowed")
        if self.budget is not None and self.budget.spent_tokens != self.num_tokens:
            raise ValueError(
                f"CodecTokens.budget.spent_tokens ({self.budget.spent_tokens}) must equal num_tokens "
                f"({self.num_tokens})"
            )

    @property
    def num_canvases(self) -> int:
        return int(self.canvases.shape[0])

    @property
    def grid_hw(self) -> tuple[int, int]:
        """Patch grid ``(h, w)`` of one canvas."""
        return self.canvases.shape[1] // self.patch_size, self.canvases.shape[2] // self.patch_size

    @property
    def num_patches(self) -> int:
        h, w = self.grid_hw
        return self.num_canvases * h * w

    @property
    def num_tokens(self) -> int:
        """LLM tokens = patches / merge_size**2."""
        return self.num_patches // (self.merge_size**2)

    def block_order(self) -> np.ndarray:
        """``int64 [N]`` permutation from canvas raster order to the processor's merge-block order."""
        h, w = self.grid_hw
        per_canvas = raster_to_block_order(h, w, self.merge_size)
        offsets = np.arange(self.num_canvases, dtype=np.int64)[:, None] * (h * w)
        return (offsets + per_canvas[None, :]).reshape(-1)

    def block_positions(self) -> np.ndarray:
        """``int64 [N, 3]`` source positions in merge-block order (what the model's RoPE consumes)."""
        return self.source_positions[self.block_order()]

    def timestamp_runs(self, timestamp_source: str = "pts") -> list[tuple[float, int]]:
        """Runs of consecutive merged tokens with the same source frame, in block order.

        Args:
            timestamp_source: ``"pts"`` (the tokens' presentation times) or ``"index"``
                (``source frame index / fps``, the release convention; falls back to pts without an fps).

        Returns:
            ``[(seconds, n_merged_tokens), ...]``: one entry per run of equal source frame ``t``; the
            processor renders each as ``<{seconds} seconds><|vision_start|><|image_pad|>*n<|vision_end|>``.
        """
        return [(seconds, n) for seconds, n, _ in self.frame_runs(timestamp_source)]

    def frame_runs(self, timestamp_source: str = "pts") -> list[tuple[float, int, int]]:
        """Like :meth:`timestamp_runs`, with the run's source frame index: ``[(seconds, n, frame), ...]``."""
        if timestamp_source not in ("pts", "index"):
            raise ValueError(f"timestamp_source must be 'pts' or 'index', got {timestamp_source!r}")
        order = self.block_order()
        m2 = self.merge_size**2
        t_merged = self.source_positions[order, 0][::m2]
        ts_merged = np.asarray(self.token_timestamps, dtype=np.float64)[order][::m2]
        by_index = timestamp_source == "index" and bool(self.fps)
        return [
            (float(t_merged[a]) / self.fps if by_index else float(ts_merged[a]), b - a, int(t_merged[a]))
            for a, b in merged_runs(t_merged)
        ]


@dataclass
class LlavaOnevision2VideoInfo:
    """How one processed video is laid out in the prompt (returned under ``video_metadata``).

    Attributes:
        source: path or description of the input.
        backend: ``"frames"`` or ``"codec"``.
        layout: ``"release"`` or ``"training"``.
        timestamps: seconds of each text block (one per frame, or per codec run).
        block_tokens: merged LLM tokens of each text block.
        newline: whether a ``\\n`` follows each block.
        grid_thw: the video's grid rows, as they go into ``image_grid_thw``.
        num_patches: pixel rows of the video.
        frame_indices: source frame index of each frame (frames) or of each run (codec).
        fps: the stream's frame rate.
        decimals: timestamp decimals used for the prompt.
        extra: back-end details (e.g. ``{"padded_frames": 1}``).
    """

    source: str
    backend: str
    layout: str
    timestamps: list[float]
    block_tokens: list[int]
    newline: bool
    grid_thw: list[list[int]]
    num_patches: int
    frame_indices: list[int]
    fps: float
    decimals: int = 1
    extra: dict = field(default_factory=dict)

    @property
    def num_tokens(self) -> int:
        return int(sum(self.block_tokens))


@dataclass(frozen=True)
class VisualItem:
    """One image or video as the processor consumes it (what each back end returns).

    Attributes:
        pixel_values: ``float32 [N, 3*p*p]`` normalised patch rows in merge-block order.
        grid_thw: ``int64 [R, 3]`` grid rows, as they go into ``image_grid_thw``.
        patch_positions: ``int64 [N, 3]`` ``(t, h, w)`` of every row (what the vision RoPE consumes).
        num_tokens: merged LLM tokens (= ``N / merge_size**2``).
        info: the video's prompt layout; ``None`` for an image (one ``<|image_pad|>`` run).
    """

    pixel_values: np.ndarray
    grid_thw: np.ndarray
    patch_positions: np.ndarray
    num_tokens: int
    info: LlavaOnevision2VideoInfo | None = None

    def __post_init__(self) -> None:
        n = self.pixel_values.shape[0]
        if self.pixel_values.ndim != 2 or self.patch_positions.shape != (n, 3):
            raise ValueError(
                f"visual item of {self.source!r}: pixel_values {self.pixel_values.shape} and patch_positions "
                f"{self.patch_positions.shape} must be [N, 3*p*p] and [N, 3]"
            )
        grid = np.asarray(self.grid_thw).reshape(-1, 3)
        if int(np.prod(grid, axis=1).sum()) != n:
            raise ValueError(
                f"visual item of {self.source!r}: grid rows {grid.tolist()} do not cover {n} rows"
            )

    @property
    def source(self) -> str:
        return self.info.source if self.info is not None else "<image>"

    def as_arrays(self) -> dict[str, np.ndarray]:
        """``{"pixel_values", "grid", "positions"}`` (the dict form ``process_one`` returns)."""
        return {"pixel_values": self.pixel_values, "grid": self.grid_thw, "positions": self.patch_positions}
