"""Stage 4b: choosing the 2x2 blocks of a group's P-canvases (stratified allocation).

Per group, for every candidate frame ``j`` (time order) with block scores ``s[j, b]``:

1. rank attenuation: ``a[j, b] = s[j, b] / sqrt(1 + lambda * rho)`` (``/(1 + lambda * rho)`` with
   ``rank_attenuation="linear"``), ``rho`` the 0-based rank of block ``b`` within frame ``j``;
2. frame mass ``w_j = max(1e-6, sum_b a[j, b] + alpha_peak * max_b a[j, b])``;
3. strata: ``cdf = cumsum(w) / sum(w)``; stratum ``k`` of ``m`` covers frames
   ``[searchsorted(cdf, k/m), searchsorted(cdf, (k+1)/m)]`` (inclusive, so adjacent strata share a
   boundary frame), its centre is ``searchsorted(cdf, (k+0.5)/m)``;
4. each stratum takes its ``B`` best not-yet-chosen blocks ordered by ``(-a, j, b)`` (official), or by
   ``(-a, -prior[b], j, b)`` when a block ``prior`` is given (``tie_break="group"``: equal scores, e.g.
   the all-zero blocks of a still frame, go first where the group's saliency is); when its pool runs
   short it falls back to a window of ``+-width`` frames around its centre, then to the whole group.
   Blocks are globally de-duplicated on ``(frame, block)``.

See ``docs/codec.md`` § "4. Saliency and selection (official constants)".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .kernels import pick_blocks, use_numba

__all__ = [
    "BlockSelection",
    "RankedBlocks",
    "attenuate",
    "frame_mass",
    "rank_blocks",
    "select_blocks",
    "strata",
    "stratum_windows",
]


@dataclass(frozen=True)
class BlockSelection:
    """Chosen blocks of one group.

    Attributes:
        frame_pos: ``int64 [K]`` position of the source frame in the group's candidate list.
        block: ``int64 [K]`` block index (raster over the block grid).
        score: ``float64 [K]`` attenuated score.
        stratum: ``int64 [K]`` stratum that picked the block.
        strata_ranges: ``[(lo, mid, hi), ...]`` frame positions of each stratum.
    """

    frame_pos: np.ndarray
    block: np.ndarray
    score: np.ndarray
    stratum: np.ndarray
    strata_ranges: tuple[tuple[int, int, int], ...]

    def __len__(self) -> int:
        return len(self.block)


def attenuate(scores: np.ndarray, penalty: float = 0.35, mode: str = "sqrt") -> np.ndarray:
    """``float64 [F, NB]`` rank-attenuated block scores (rank within each frame, stable descending)."""
    s = np.asarray(scores, dtype=np.float64)
    if s.size == 0:
        return s.copy()
    order = np.argsort(-s, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(s.shape[1])[None, :].repeat(s.shape[0], 0), axis=1)
    factor = 1.0 + penalty * ranks
    return s / (np.sqrt(factor) if mode == "sqrt" else factor)


def frame_mass(attenuated: np.ndarray, alpha_peak: float = 0.35) -> np.ndarray:
    """``float64 [F]``: ``max(1e-6, sum + alpha_peak * max)`` of each frame's attenuated scores."""
    if attenuated.size == 0:
        return np.zeros(attenuated.shape[0])
    return np.maximum(1e-6, attenuated.sum(axis=1) + alpha_peak * attenuated.max(axis=1))


def strata(mass: np.ndarray, m: int) -> list[tuple[int, int, int]]:
    """``m`` strata ``(lo, mid, hi)`` (inclusive frame positions) of the cumulative mass curve."""
    n = len(mass)
    cdf = np.cumsum(mass) / float(mass.sum())
    k = np.arange(m, dtype=np.float64)
    targets = np.stack([k / m, (k + 0.5) / m, (k + 1) / m - 1e-12], axis=1)  # [m, 3]
    lo, mid, hi = np.clip(np.searchsorted(cdf, targets, side="left"), 0, n - 1).T
    mid = np.maximum(lo, np.minimum(mid, hi))
    return list(zip(lo.tolist(), mid.tolist(), hi.tolist()))


def stratum_windows(ranges: list[tuple[int, int, int]], num_frames: int) -> np.ndarray:
    """``int64 [m, 3, 2]`` the frame windows ``[a, b)`` each stratum ``(lo, mid, hi)`` draws from, in
    order: the stratum itself, ``+-width`` frames around its centre (``width = max(1, hi - lo)``), the
    whole group."""
    lo, mid, hi = np.asarray(ranges, dtype=np.int64).reshape(-1, 3).T
    width = np.maximum(1, hi - lo)
    out = np.empty((len(lo), 3, 2), dtype=np.int64)
    out[:, 0, 0], out[:, 0, 1] = lo, hi + 1
    out[:, 1, 0], out[:, 1, 1] = np.maximum(0, mid - width), np.minimum(num_frames, mid + width + 1)
    out[:, 2, 0], out[:, 2, 1] = 0, num_frames
    return out


def _pick_blocks_numpy(
    order_frame: np.ndarray, windows: np.ndarray, need: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(ranks, stratum)`` (``int64 [K]``): stratum by stratum, window by window, the first free ranks
    (best first) whose frame lies in the window, until the stratum has ``need``; a rank is taken once."""
    free = np.ones(len(order_frame), dtype=bool)  # per rank: not yet taken
    ranks: list[np.ndarray] = []
    stratum: list[np.ndarray] = []
    for k in range(len(windows)):
        left = need
        for a, b in windows[k].tolist():
            if left <= 0:
                break
            chosen = np.flatnonzero((order_frame >= a) & (order_frame < b) & free)[:left]
            free[chosen] = False
            ranks.append(chosen)
            stratum.append(np.full(len(chosen), k, dtype=np.int64))
            left -= len(chosen)
    empty = np.zeros(0, dtype=np.int64)
    return (np.concatenate(ranks), np.concatenate(stratum)) if ranks else (empty, empty)


@dataclass(frozen=True)
class RankedBlocks:
    """Steps 1-2 and the global order of step 4 for one group's scores (independent of the stratum
    count, so one ranking serves every ``m``): ``order`` ranks every ``(frame, block)`` (flat index
    ``frame * NB + block``) by ``(-a, -prior, frame, block)``; ``order_frame`` is the frame of each.
    ``kernels``: ``CodecConfig.kernels`` for the picking of step 4 (:func:`~.kernels.pick_blocks`;
    the same picks either way)."""

    att: np.ndarray  # float64 [F * NB]
    mass: np.ndarray  # float64 [F]
    order: np.ndarray  # int64 [F * NB]
    order_frame: np.ndarray  # int64 [F * NB]
    shape: tuple[int, int]
    kernels: str = "auto"

    def select(self, num_strata: int, blocks_per_canvas: int) -> BlockSelection:
        """Steps 3-4: ``num_strata`` strata of ``blocks_per_canvas`` blocks each (see :func:`select_blocks`)."""
        f, nb = self.shape
        empty = np.zeros(0, dtype=np.int64)
        if f == 0 or nb == 0 or num_strata == 0 or blocks_per_canvas == 0:
            return BlockSelection(empty, empty, np.zeros(0), empty, ())
        ranges = strata(self.mass, num_strata)
        windows = stratum_windows(ranges, f)
        pick = pick_blocks if use_numba(self.kernels) else _pick_blocks_numpy
        ranks, stratum = pick(self.order_frame, windows, blocks_per_canvas)
        pos = self.order[ranks]
        return BlockSelection(
            frame_pos=pos // nb,
            block=pos % nb,
            score=self.att[pos],
            stratum=stratum,
            strata_ranges=tuple(ranges),
        )


def rank_blocks(
    scores: np.ndarray,
    *,
    penalty: float = 0.35,
    mode: str = "sqrt",
    alpha_peak: float = 0.35,
    prior: np.ndarray | None = None,
    kernels: str = "auto",
) -> RankedBlocks:
    """:class:`RankedBlocks` of ``[F, NB]`` block scores (arguments as :func:`select_blocks`)."""
    s = scores if scores.ndim == 2 else np.zeros((0, 0))
    f, nb = s.shape
    att = attenuate(s, penalty, mode)  # [F, NB], empty stays empty
    flat_score = att.reshape(-1)
    flat_frame = np.repeat(np.arange(f), nb)
    flat_block = np.tile(np.arange(nb), f)
    flat_prior = np.zeros(f * nb) if prior is None else np.tile(np.asarray(prior, np.float64).reshape(-1), f)
    order = np.lexsort((flat_block, flat_frame, -flat_prior, -flat_score))
    mass = frame_mass(att, alpha_peak)
    return RankedBlocks(flat_score, mass, order, flat_frame[order], (f, nb), kernels)


def select_blocks(
    scores: np.ndarray,
    num_strata: int,
    blocks_per_canvas: int,
    *,
    penalty: float = 0.35,
    mode: str = "sqrt",
    alpha_peak: float = 0.35,
    prior: np.ndarray | None = None,
    kernels: str = "auto",
) -> BlockSelection:
    """Stratified block allocation of one group (see the module docstring).

    Args:
        scores: ``[F, NB]`` block scores of the group's candidate frames in time order (the I frame and
            bad frames excluded).
        num_strata: ``m_g``, one stratum per P-canvas.
        blocks_per_canvas: ``B``, blocks one P-canvas holds.
        prior: ``[NB]`` tie-break between equal attenuated scores (higher first), e.g. the group's mean
            block score; ``None``: frame then block order (official).
        kernels: ``CodecConfig.kernels`` (numba or numpy picking; same result).

    Returns:
        up to ``num_strata * blocks_per_canvas`` distinct blocks (fewer only when the group has fewer).
    """
    ranked = rank_blocks(
        scores, penalty=penalty, mode=mode, alpha_peak=alpha_peak, prior=prior, kernels=kernels
    )
    return ranked.select(num_strata, blocks_per_canvas)
