"""JumpScore scoring, exactly as lmms-eval's ``JumpScore`` task scores it, plus a stricter parser beside it.

The official task (lmms-eval ``tasks/jumpscore/utils.py``; facts in the team's ``training_conversion.md``
§4.2) turns each model answer into a sorted list of jump start times and scores it against the annotated
start times:

* **official parser** (on the lower-cased answer): if any ``<number> s`` token appears (``12.3s``,
  ``4 s``; not ``seconds``), those numbers, sorted; else the longest ``[...]`` span (fenced ```json or bare)
  with trailing commas repaired, ``json.loads``-ed, numbers kept and strings read as numbers once every
  ``s`` is removed; if that list does not parse, the numbers between its brackets; if all of that gives
  nothing, **every bare number of the answer** (so "I counted 12 jumps" predicts a jump at 12 s);
* **strict parser** (ours, ``parser="strict"``): only a JSON list counts, the longest one that parses and
  whose items are all numbers or number strings (``"1.5"``, ``"1.5s"``, ``"1.5 s"``); anything else
  predicts nothing. It is reported *beside* the official score, never instead of it;
* **metric**: for each tolerance in ``(0.1, 0.2, 0.3)`` s, predictions in time order are greedily matched to
  the nearest unmatched ground-truth time with ``|Δ| <= tol`` (plain float arithmetic: ``2.1 - 2.0`` is
  ``0.10000000000000009`` and misses at 0.1); AP is the non-interpolated ``Σ precision_i · Δrecall_i``;
  a video's mAP is the mean over the tolerances and the benchmark score the mean over videos;
* **empty ground truth**: an answer that is an explicit ``[]`` with nothing predicted scores 1.0 at every
  tolerance; any other empty ground truth scores 0.0 and records *no* per-tolerance AP (the official
  aggregate of AP@tol then skips that video, while its mAP of 0 still counts);
* **bad predictions**: videos with mAP 0 and nothing parsed.

Everything here is a pure function of strings; no model, no I/O.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "PARSERS",
    "TOLERANCES",
    "JumpScoreResult",
    "VideoScore",
    "average_precision",
    "is_explicit_empty",
    "parse_ground_truth",
    "parse_prediction",
    "score_predictions",
    "score_video",
]

TOLERANCES: tuple[float, ...] = (0.1, 0.2, 0.3)
"""Time tolerances of the official metric, in seconds."""

Parser = Literal["official", "strict"]
PARSERS: tuple[str, ...] = ("official", "strict")

_SECONDS = re.compile(r"(?<!\d)(\d+(?:\.\d+)?)\s*s\b")
_LIST_SPAN = re.compile(r"```json\s*(\[.*?\])\s*```|(\[.*?\])", re.DOTALL)
_NUMBER = re.compile(r"\b\d+(?:\.\d+)?\b")
_NUMBER_STRING = re.compile(r"\s*(\d+(?:\.\d+)?)\s*s?\s*")


# ---------------------------------------------------------------------------------------------- parsing
def _list_spans(text: str) -> list[str]:
    """Every ``[...]`` span of ``text`` (the inner list of a fenced ```json block, or a bare one), in order."""
    return [fenced or bare for fenced, bare in _LIST_SPAN.findall(text)]


def _repair(span: str) -> str:
    """The official repair of a list span: trailing commas before ``]`` or at the end; a missing ``]``."""
    span = re.sub(r",\s*\]", "]", span.rstrip())
    span = re.sub(r",\s*$", "", span)
    return span if span.endswith("]") else span + "]"


def _times_from_items(items: list[Any]) -> list[float]:
    """Numbers of a decoded JSON list as the official task reads them (bools count as numbers; strings lose
    every ``s`` and must then be a Python float literal; other items are skipped)."""
    times: list[float] = []
    for item in items:
        if isinstance(item, (int, float)):
            times.append(float(item))
        elif isinstance(item, str):
            try:
                times.append(float(item.replace("s", "").strip()))
            except ValueError:
                continue
    return times


def _official_list_times(text: str) -> list[float]:
    """Step 2 of the official parser: times from the longest list span, or ``[]`` to fall through."""
    spans = _list_spans(text)
    if not spans:
        return []
    longest = ""
    for span in spans:  # the first of the longest spans
        if len(span) > len(longest):
            longest = span
    repaired = _repair(longest)
    try:
        data = json.loads(repaired)
    except json.JSONDecodeError:
        start, end = repaired.find("["), repaired.rfind("]")
        if start < 0 or end <= start:
            return []
        return [float(n) for n in _NUMBER.findall(repaired[start + 1 : end])]
    return _times_from_items(data) if isinstance(data, list) else []


def _strict_times(text: str) -> list[float]:
    """The strict parser: the longest list span that decodes to numbers / number strings only."""
    best: list[float] | None = None
    best_len = -1
    for span in _list_spans(text):
        try:
            data = json.loads(_repair(span))
        except (json.JSONDecodeError, RecursionError):
            continue
        if not isinstance(data, list):
            continue
        times: list[float] = []
        for item in data:
            if isinstance(item, bool):
                break
            if isinstance(item, (int, float)) and math.isfinite(item):
                times.append(float(item))
                continue
            match = _NUMBER_STRING.fullmatch(item) if isinstance(item, str) else None
            if match is None:
                break
            times.append(float(match.group(1)))
        else:
            if len(span) > best_len:
                best, best_len = times, len(span)
    return sorted(best) if best else []


def parse_prediction(text: Any, parser: Parser = "official") -> list[float]:
    """Sorted start times (seconds) read from a model answer.

    Args:
        text: the model's answer (anything; ``str(text).strip()`` is parsed, as the official task does).
        parser: ``"official"`` (the lmms-eval task's rules, see the module docstring) or ``"strict"``.

    Returns:
        the times, ascending (may contain duplicates; the official parser never drops any).
    """
    lowered = str(text).strip().lower()
    if parser == "strict":
        return _strict_times(lowered)
    if parser != "official":
        raise ValueError(f"parser must be one of {PARSERS}, got {parser!r}")
    direct = _SECONDS.findall(lowered)
    if direct:
        return sorted(float(t) for t in direct)
    times = _official_list_times(lowered)
    if not times:
        times = [float(n) for n in _NUMBER.findall(lowered)]
    return sorted(times)


def _decode_answer(answer: Any) -> Any:
    """The ground-truth answer decoded as the official task does (first list span, else the whole string)."""
    if not isinstance(answer, str):
        return answer
    spans = _list_spans(answer)
    return json.loads(spans[0] if spans else answer)


def parse_ground_truth(answer: Any) -> list[float]:
    """Sorted annotated start times from a dataset ``answer`` (a JSON list of numbers or ``"x.xs"`` strings,
    optionally inside a ```json fence). Unreadable answers give ``[]``, as in the official task."""
    try:
        data = _decode_answer(str(answer).strip())
    except (json.JSONDecodeError, TypeError, AttributeError):
        return []
    return sorted(_times_from_items(data)) if isinstance(data, list) else []


def is_explicit_empty(answer: Any) -> bool:
    """Whether the ground-truth answer is an explicit empty JSON list (``[]``, possibly fenced)."""
    try:
        data = _decode_answer(str(answer).strip())
    except (json.JSONDecodeError, TypeError, AttributeError):
        return False
    return isinstance(data, list) and not data


# ---------------------------------------------------------------------------------------------- metric
def average_precision(pred: Sequence[float], gt: Sequence[float], tolerance: float) -> float:
    """Non-interpolated AP of time-sorted predictions greedily matched to ``gt`` within ``tolerance``.

    Each prediction (ascending time) takes the nearest still unmatched ground-truth time with
    ``|Δ| <= tolerance`` (ties: the earlier ground truth) and is a true positive, else a false positive
    (so a duplicate of an already matched time is a false positive). ``gt`` must be non-empty.
    """
    if not gt:
        raise ValueError("average_precision needs at least one ground-truth time")
    matched: set[int] = set()
    tp = 0
    ap = 0.0
    prev_recall = 0.0
    for k, p in enumerate(sorted(pred), start=1):
        best, best_diff = None, math.inf
        for i, g in enumerate(gt):
            if i in matched:
                continue
            diff = abs(p - g)
            if diff <= tolerance and diff < best_diff:
                best, best_diff = i, diff
        if best is not None:
            matched.add(best)
            tp += 1
        recall = tp / len(gt)
        ap += (tp / k) * (recall - prev_recall)
        prev_recall = recall
    return ap


@dataclass(frozen=True)
class VideoScore:
    """One video's score.

    Attributes:
        map: mean AP over :data:`TOLERANCES` (0.0 when the ground truth is empty and not an explicit ``[]``).
        ap: ``{tolerance: AP}``; empty where the official task records no AP (empty, non-explicit GT).
        pred_starts / gt_starts: the parsed times (sorted).
        bad: the official "bad prediction" flag (mAP 0 and nothing parsed).
    """

    map: float
    ap: dict[float, float]
    pred_starts: list[float]
    gt_starts: list[float]

    @property
    def bad(self) -> bool:
        return self.map == 0.0 and not self.pred_starts


def score_video(
    prediction: Any,
    answer: Any,
    *,
    parser: Parser = "official",
    tolerances: Sequence[float] = TOLERANCES,
) -> VideoScore:
    """Score one model answer against one dataset ``answer`` (see the module docstring for the rules)."""
    gt = parse_ground_truth(answer)
    pred = parse_prediction(prediction, parser)
    if not gt:
        if not pred and is_explicit_empty(answer):
            return VideoScore(1.0, {t: 1.0 for t in tolerances}, pred, gt)
        return VideoScore(0.0, {}, pred, gt)
    ap = {t: average_precision(pred, gt, t) for t in tolerances}
    return VideoScore(sum(ap.values()) / len(ap), ap, pred, gt)


@dataclass(frozen=True)
class JumpScoreResult:
    """Benchmark score of a set of videos.

    Attributes:
        map: mean of the per-video mAPs (the official ``jumpscore_map``).
        ap: ``{tolerance: mean AP}`` over the videos that have an AP at that tolerance (as the official log).
        bad_predictions: number of videos with mAP 0 and nothing parsed.
        per_video: ``{id: VideoScore}`` in input order.
        parser: the parser used.
    """

    map: float
    ap: dict[float, float]
    bad_predictions: int
    per_video: dict[str, VideoScore] = field(default_factory=dict)
    parser: str = "official"

    def to_json(self) -> dict[str, Any]:
        """``{"map", "bad_predictions", "per_video": {id: {"ap@0.1", "ap@0.2", "ap@0.3", "map"}}}`` plus
        ``"ap@<tol>"`` aggregates, ``"num_videos"`` and ``"parser"``. A per-video ``ap@tol`` is ``null``
        where the official task records none (empty ground truth that is not an explicit ``[]``)."""
        tolerances = sorted({t for s in self.per_video.values() for t in s.ap} | set(self.ap))
        out: dict[str, Any] = {
            "map": self.map,
            "bad_predictions": self.bad_predictions,
            "num_videos": len(self.per_video),
            "parser": self.parser,
        }
        out.update({f"ap@{t}": self.ap.get(t) for t in tolerances})
        out["per_video"] = {
            vid: {**{f"ap@{t}": s.ap.get(t) for t in (tolerances or TOLERANCES)}, "map": s.map}
            for vid, s in self.per_video.items()
        }
        return out


def score_predictions(
    records: Iterable[tuple[Any, Any, Any]],
    *,
    parser: Parser = "official",
    tolerances: Sequence[float] = TOLERANCES,
) -> JumpScoreResult:
    """Score ``(id, prediction, answer)`` records; ids are kept as strings, the last of a repeated id wins.

    An empty record set scores 0.0 (the official aggregate's value).
    """
    per_video: dict[str, VideoScore] = {}
    for vid, prediction, answer in records:
        per_video[str(vid)] = score_video(prediction, answer, parser=parser, tolerances=tolerances)
    scores = list(per_video.values())
    mean_map = sum(s.map for s in scores) / len(scores) if scores else 0.0
    ap: dict[float, float] = {}
    for t in sorted({t for s in scores for t in s.ap}):
        values = [s.ap[t] for s in scores if t in s.ap]
        ap[t] = sum(values) / len(values)
    return JumpScoreResult(mean_map, ap, sum(s.bad for s in scores), per_video, parser)
