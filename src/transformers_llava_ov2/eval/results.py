"""JumpScore results: scoring predictions against annotations, the scores JSON, the printed table and the
``eval_results.json`` record a model card reads.

Scores JSON (``--output``): ``{"map", "bad_predictions", "per_video": {id: {"ap@0.1", "ap@0.2", "ap@0.3",
"map"}}}`` as the issue fixes it, plus ``"ap@<tol>"`` aggregates, ``"num_videos"``, ``"parser"``,
``"strict"`` (the strict parser's ``map``/``bad_predictions``/``ap@<tol>``), ``"missing"``, ``"errors"``,
``"task"`` and the run's settings under ``"settings"``.

``eval_results.json`` (in a model folder): ``{"results": [{"task", "dataset", "metric", "value", "strict_value",
"num_videos", "bad_predictions", "backend", "max_visual_tokens", "timestamp_decimals", "date"}, ...]}``; a
new result replaces the one with the same task, dataset, back end and budget.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .annotations import Annotation
from .jumpscore import JumpScoreResult, score_predictions

__all__ = [
    "EVAL_RESULTS_NAME",
    "JumpScoreReport",
    "format_table",
    "read_eval_results",
    "record_eval_result",
    "report_json",
    "score_jumpscore",
    "write_json",
]

EVAL_RESULTS_NAME = "eval_results.json"


@dataclass(frozen=True)
class JumpScoreReport:
    """Official and strict scores of one prediction set, and what was missing.

    Attributes:
        official / strict: the scores with the official and the strict parser.
        missing: annotation ids without a prediction (scored as empty answers).
        errors: ids whose prediction is an error record (failed video; scored as empty answers).
        unknown: prediction ids that are not in the annotations (ignored).
    """

    official: JumpScoreResult
    strict: JumpScoreResult
    missing: list[str]
    errors: list[str]
    unknown: int


def score_jumpscore(records: Sequence[Annotation], predictions: dict[str, dict[str, Any]]) -> JumpScoreReport:
    """Score ``predictions`` (``{id: {"prediction": str, ...}}``) on every annotated record, in record order."""
    triples = []
    missing, errors = [], []
    for r in records:
        pred = predictions.get(r.id)
        if pred is None:
            missing.append(r.id)
        elif pred.get("error"):
            errors.append(r.id)
        triples.append((r.id, "" if pred is None else pred.get("prediction", ""), r.answer))
    ids = {r.id for r in records}
    unknown = sum(1 for k in predictions if k not in ids)
    return JumpScoreReport(
        score_predictions(triples), score_predictions(triples, parser="strict"), missing, errors, unknown
    )


def report_json(report: JumpScoreReport, settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """The scores JSON (see the module docstring)."""
    out = report.official.to_json()
    strict = report.strict.to_json()
    out["strict"] = {k: v for k, v in strict.items() if k not in ("per_video", "num_videos", "parser")}
    out.update(task="JumpScore", missing=len(report.missing), errors=len(report.errors))
    if settings is not None:
        out["settings"] = settings
    return out


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def format_table(report: JumpScoreReport, title: str) -> str:
    """The printed table: one row per video, the mean row, then bad predictions, strict score, problems."""
    from ..report.summary import table

    tols = sorted(report.official.ap) or [0.1, 0.2, 0.3]
    rows = []
    for vid, s in report.official.per_video.items():
        rows.append(
            [vid, len(s.gt_starts), len(s.pred_starts), *(_fmt(s.ap.get(t)) for t in tols), _fmt(s.map)]
        )
    rows.append(["mean", "", "", *(_fmt(report.official.ap.get(t)) for t in tols), _fmt(report.official.map)])
    headers = ["video", "gt", "pred", *(f"AP@{t}" for t in tols), "mAP"]
    lines = [title, table(headers, rows, "<" + ">" * (len(headers) - 1))]
    lines.append(
        f"JumpScore mAP {report.official.map:.4f} | bad predictions {report.official.bad_predictions} "
        f"(no time parsed) | strict parser mAP {report.strict.map:.4f} "
        f"(bad {report.strict.bad_predictions})"
    )
    problems = []
    if report.errors:
        problems.append(f"{len(report.errors)} failed video(s) scored as empty answers")
    if report.missing:
        problems.append(f"{len(report.missing)} video(s) without a prediction scored as empty answers")
    if report.unknown:
        problems.append(f"{report.unknown} prediction(s) for unknown ids ignored")
    if problems:
        lines.append("note: " + "; ".join(problems))
    return "\n".join(lines)


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write ``data`` as indented JSON through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_eval_results(model_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The result entries of ``MODEL_DIR/eval_results.json`` (none when absent or unreadable)."""
    path = Path(model_dir) / EVAL_RESULTS_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return []
    results = data.get("results") if isinstance(data, dict) else None
    return [r for r in results if isinstance(r, dict)] if isinstance(results, list) else []


def record_eval_result(
    model_dir: str | os.PathLike, report: JumpScoreReport, *, dataset: str, settings: dict[str, Any]
) -> Path:
    """Add (or replace) this run's entry in ``MODEL_DIR/eval_results.json``; returns the file's path."""
    video = settings.get("video", {})
    entry = {
        "task": "JumpScore",
        "dataset": dataset,
        "metric": "mAP",
        "value": report.official.map,
        "strict_value": report.strict.map,
        "num_videos": len(report.official.per_video),
        "bad_predictions": report.official.bad_predictions,
        "backend": video.get("backend"),
        "max_visual_tokens": video.get("max_visual_tokens"),
        "timestamp_decimals": video.get("timestamp_decimals"),
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d"),
    }
    key = ("task", "dataset", "backend", "max_visual_tokens")
    kept = [r for r in read_eval_results(model_dir) if any(r.get(k) != entry[k] for k in key)]
    return write_json(Path(model_dir) / EVAL_RESULTS_NAME, {"results": [*kept, entry]})
