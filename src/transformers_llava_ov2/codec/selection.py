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

__all__ = [
    "BlockSelection",
    "RankedBlocks",
    "attenuate",
    "frame_mass",
    "rank_blocks",
    "select_blocks",
    "strata",
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
    out = []
    for k in range(m):
        idx = np.searchsorted(cdf, [k / m, (k + 0.5) / m, (k + 1) / m - 1e-12], side="left")
        lo, mid, hi = (int(min(max(i, 0), n - 1)) for i in idx)
        out.append((lo, max(lo, min(mid, hi)), hi))
    return out


@dataclass(frozen=True)
class RankedBlocks:
    """Steps 1-2 and the global order of step 4 for one group's scores (independent of the stratum
    count, so one ranking serves every ``m``): ``order`` ranks every ``(frame, block)`` (flat index
    ``frame * NB + block``) by ``(-a, -prior, frame, block)``; ``order_frame`` is the frame of each."""

    att: np.ndarray  # float64 [F * NB]
    mass: np.ndarray  # float64 [F]
    order: np.ndarray  # int64 [F * NB]
    order_frame: np.ndarray  # int64 [F * NB]
    shape: tuple[int, int]

    def select(self, num_strata: int, blocks_per_canvas: int) -> BlockSelection:
        """Steps 3-4: ``num_strata`` strata of ``blocks_per_canvas`` blocks each (see :func:`select_blocks`)."""
        f, nb = self.shape
        empty = np.zeros(0, dtype=np.int64)
        if f == 0 or nb == 0 or num_strata == 0 or blocks_per_canvas == 0:
            return BlockSelection(empty, empty, np.zeros(0), empty, ())
        ranges = strata(self.mass, num_strata)
        order, fr = self.order, self.order_frame
        free = np.ones(len(order), dtype=bool)  # per rank: not yet taken
        picks_rank: list[np.ndarray] = []
        picks_stratum: list[np.ndarray] = []
        for k, (lo, mid, hi) in enumerate(ranges):
            width = max(1, hi - lo)
            windows = [(lo, hi + 1), (max(0, mid - width), min(f, mid + width + 1)), (0, f)]
            need = blocks_per_canvas
            for a, b in windows:
                if need <= 0:
                    break
                chosen = np.flatnonzero((fr >= a) & (fr < b) & free)[:need]
                free[chosen] = False
                picks_rank.append(chosen)
                picks_stratum.append(np.full(len(chosen), k, dtype=np.int64))
                need -= len(chosen)
        pos = order[np.concatenate(picks_rank)] if picks_rank else empty
        return BlockSelection(
            frame_pos=pos // nb,
            block=pos % nb,
            score=self.att[pos],
            stratum=np.concatenate(picks_stratum) if picks_stratum else empty,
            strata_ranges=tuple(ranges),
        )


def rank_blocks(
    scores: np.ndarray,
    *,
    penalty: float = 0.35,
    mode: str = "sqrt",
    alpha_peak: float = 0.35,
    prior: np.ndarray | None = None,
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
    return RankedBlocks(flat_score, mass, order, flat_frame[order], (f, nb))


def select_blocks(
    scores: np.ndarray,
    num_strata: int,
    blocks_per_canvas: int,
    *,
    penalty: float = 0.35,
    mode: str = "sqrt",
    alpha_peak: float = 0.35,
    prior: np.ndarray | None = None,
) -> BlockSelection:
    """Stratified block allocation of one group (see the module docstring).

    Args:
        scores: ``[F, NB]`` block scores of the group's candidate frames in time order (the I frame and
            bad frames excluded).
        num_strata: ``m_g``, one stratum per P-canvas.
        blocks_per_canvas: ``B``, blocks one P-canvas holds.
        prior: ``[NB]`` tie-break between equal attenuated scores (higher first), e.g. the group's mean
            block score; ``None``: frame then block order (official).

    Returns:
        up to ``num_strata * blocks_per_canvas`` distinct blocks (fewer only when the group has fewer).
    """
    ranked = rank_blocks(scores, penalty=penalty, mode=mode, alpha_peak=alpha_peak, prior=prior)
    return ranked.select(num_strata, blocks_per_canvas)
