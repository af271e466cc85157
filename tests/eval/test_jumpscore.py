"""JumpScore scorer: hand-computed values for every rule, and equality with the installed lmms-eval task."""

from __future__ import annotations

import importlib.util
import os

import pytest

from transformers_llava_ov2.eval.jumpscore import (
    average_precision,
    is_explicit_empty,
    parse_ground_truth,
    parse_prediction,
    score_predictions,
    score_video,
)


def _approx(value):
    return pytest.approx(value, abs=1e-12)


# ------------------------------------------------------------------------------------------ metric
def test_perfect():
    s = score_video("[1.0, 2.0, 3.0]", "[1.0, 2.0, 3.0]")
    assert s.map == 1.0 and s.ap == {0.1: 1.0, 0.2: 1.0, 0.3: 1.0}


def test_shifted_by_0_15_misses_only_the_tightest_tolerance():
    s = score_video("[1.15, 2.15, 3.15]", "[1, 2, 3]")
    assert s.ap == {0.1: 0.0, 0.2: 1.0, 0.3: 1.0}
    assert s.map == _approx(2 / 3)


def test_each_tolerance_and_float_boundary():
    # |1.25 - 1.0| = 0.25: only 0.3 matches.
    assert score_video("[1.25]", "[1.0]").ap == {0.1: 0.0, 0.2: 0.0, 0.3: 1.0}
    # |1.15 - 1.0| = 0.1499...: 0.2 and 0.3.
    assert score_video("[1.15]", "[1.0]").ap == {0.1: 0.0, 0.2: 1.0, 0.3: 1.0}
    # 2.1 - 2.0 = 0.10000000000000009 > 0.1 in floats: a miss at 0.1, as in the official code.
    assert score_video("[2.1]", "[2.0]").ap[0.1] == 0.0
    assert score_video("[2.05]", "[2.0]").ap[0.1] == 1.0


def test_missing_ground_truth_halves_ap():
    # 2 of 4 found, precision 1 at recall 0.25 and 0.5: AP = 0.25 + 0.25.
    assert score_video("[1, 2]", "[1, 2, 3, 4]").map == _approx(0.5)


def test_extra_prediction_first_in_time():
    # 0.5 FP (p 0), 1 TP (p 1/2, Δr 1/2), 2 TP (p 2/3, Δr 1/2): AP = 1/4 + 1/3 = 7/12 at every tolerance.
    s = score_video("[0.5, 1, 2]", "[1, 2]")
    assert all(v == _approx(7 / 12) for v in s.ap.values())
    # An extra prediction after the last match costs nothing in non-interpolated AP.
    assert score_video("[1, 2, 9]", "[1, 2]").map == _approx(1.0)


def test_duplicates_are_false_positives():
    # 1 TP (p 1, Δr 1/2), 1 FP, 2 TP (p 2/3, Δr 1/2): AP = 1/2 + 1/3.
    assert score_video("[1, 1, 2]", "[1, 2]").map == _approx(5 / 6)


def test_greedy_nearest_unmatched():
    # 1.0 takes GT 1.0 (nearest); 1.05 then takes the still free 1.1 (|Δ| 0.05).
    assert average_precision([1.0, 1.05], [1.0, 1.1], 0.1) == 1.0
    # 1.06 comes first in time and takes its nearest (1.1); 1.1 then has no free GT within 0.1 of it
    # except 1.0 (|Δ| 0.1000...009 > 0.1): a false positive.
    assert average_precision([1.06, 1.1], [1.0, 1.1], 0.1) == _approx(0.5)
    with pytest.raises(ValueError, match="ground-truth"):
        average_precision([1.0], [], 0.1)


def test_empty_ground_truth_rules():
    explicit = score_video("", "[]")
    assert explicit.map == 1.0 and explicit.ap == {0.1: 1.0, 0.2: 1.0, 0.3: 1.0} and not explicit.bad
    assert score_video("no jumps here", "```json\n[]\n```").map == 1.0
    # A number in the answer becomes a prediction: no longer "nothing predicted".
    wrong = score_video("0 jumps", "[]")
    assert wrong.map == 0.0 and wrong.ap == {} and wrong.pred_starts == [0.0]
    # Empty but not an explicit []: 0 and no per-tolerance AP, even with nothing predicted.
    for answer in ("", "none", '["x"]'):
        s = score_video("", answer)
        assert s.map == 0.0 and s.ap == {} and s.bad
    assert is_explicit_empty("[]") and is_explicit_empty(" ```json [] ``` ")
    assert not is_explicit_empty("[1]") and not is_explicit_empty("") and not is_explicit_empty("{}")


def test_ground_truth_formats():
    assert parse_ground_truth('["1.5s", "0.25s", 3]') == [0.25, 1.5, 3.0]
    assert parse_ground_truth("```json\n[2.0, 1.0]\n```") == [1.0, 2.0]
    assert parse_ground_truth([2.0, 1.0]) == [1.0, 2.0]  # str(list) is valid JSON for numbers
    assert parse_ground_truth("1.5") == []  # not a list
    assert parse_ground_truth("not json") == []
    assert parse_ground_truth('["1.5S"]') == []  # only a lower-case s is stripped


# ------------------------------------------------------------------------------------------ parsing
@pytest.mark.parametrize(
    ("text", "official", "strict"),
    [
        ("The jumps start at 3.6s, 1.2s and 2.4 s.", [1.2, 2.4, 3.6], []),
        ('```json\n["1.2s", "2.4s"]\n```', [1.2, 2.4], [1.2, 2.4]),
        ("I counted 3 jumps: [1.2, 2.4,]", [1.2, 2.4], [1.2, 2.4]),
        ("There are 3 jumps, at 10 and 20 seconds", [3.0, 10.0, 20.0], []),
        ("[1.5, 2.5", [1.5, 2.5], []),  # no closing bracket: no list span, bare numbers
        ("[1.5, abc, 2.5]", [1.5, 2.5], []),  # not JSON: the numbers between the brackets
        ('["start", 1.0]', [1.0], []),
        ("[true, 2]", [1.0, 2.0], []),
        ("[] but 4 jumps", [4.0], []),  # an empty list falls through to bare numbers
        ("short [1] and longer [2.0, 3.0]", [2.0, 3.0], [2.0, 3.0]),
        ("THE ANSWER: [0.5, 0.25]", [0.25, 0.5], [0.25, 0.5]),
        ("at 12.5 S and 3 S", [3.0, 12.5], []),  # lower-cased before matching
        ("nothing", [], []),
        ("", [], []),
    ],
)
def test_parsers(text, official, strict):
    assert parse_prediction(text) == official
    assert parse_prediction(text, "strict") == strict


def test_unknown_parser():
    with pytest.raises(ValueError, match="parser"):
        parse_prediction("[1]", "lenient")


# ------------------------------------------------------------------------------------------ aggregate
def test_aggregate_and_bad_prediction_count():
    result = score_predictions(
        [
            ("a", "[1.0, 2.0]", "[1.0, 2.0]"),  # 1.0
            ("b", "I have no idea", "[1.0]"),  # 0.0, nothing parsed: bad
            ("c", "[5.0]", "[1.0]"),  # 0.0 but something parsed: not bad
            ("d", "", "[]"),  # explicit empty: 1.0
            ("e", "", ""),  # empty non-explicit GT: 0.0, bad, no AP
        ]
    )
    assert result.map == _approx(2 / 5)
    assert result.bad_predictions == 2
    # AP@tol averages the 4 videos that have one (e is skipped), like the official log.
    assert result.ap == {0.1: _approx(0.5), 0.2: _approx(0.5), 0.3: _approx(0.5)}
    js = result.to_json()
    assert set(js) >= {"map", "bad_predictions", "per_video"}
    assert js["per_video"]["a"] == {"ap@0.1": 1.0, "ap@0.2": 1.0, "ap@0.3": 1.0, "map": 1.0}
    assert js["per_video"]["e"] == {"ap@0.1": None, "ap@0.2": None, "ap@0.3": None, "map": 0.0}
    assert score_predictions([]).map == 0.0


def test_strict_beside_official():
    # Official: no "<n>s" token, no list, so every bare number: 1, 2, 3 -> TP, TP, FP -> AP 1/2 + 1/2 = 1.
    records = [("a", "3 jumps at 1 and 2 seconds", "[1, 2]")]
    assert score_predictions(records).map == _approx(1.0)
    strict = score_predictions(records, parser="strict")
    assert strict.map == 0.0 and strict.bad_predictions == 1 and strict.parser == "strict"


# ------------------------------------------------------------------------------------------ official
def _official_module():
    spec = importlib.util.find_spec("lmms_eval")
    if spec is None or spec.origin is None:
        pytest.skip("lmms-eval is not installed")
    path = os.path.join(os.path.dirname(spec.origin), "tasks", "jumpscore", "utils.py")
    if not os.path.isfile(path):
        pytest.skip("this lmms-eval has no jumpscore task")
    pytest.importorskip("loguru")
    mod_spec = importlib.util.spec_from_file_location("_official_jumpscore_utils", path)
    module = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(module)
    return module


MESSY = [
    "[1.0, 2.0, 3.0]",
    "1.02s 2.1s 2.1s 3.29 s",
    "Jumps: ```json\n[0.98, 2.05, 3.31,]\n```",
    '["0.9s", "2.2s", "x", 3]',
    "I counted 3 jumps at 1, 2 and 3.2",
    "[1.0, two, 3.0] and [4.0]",
    "[[1, 2], [3]]",
    "",
    "none",
    "[]",
    "0 jumps",
    "[NaN, 1.0]",
    "[1e0, 2.0]",
    "12.5 S, 1 s.",
    "start [1.1, 2.1] end [0.5]",
]
ANSWERS = ["[1.0, 2.0, 3.0]", '["1.0s", "2.1s", "3.3s"]', "[]", "", "```json\n[2.0]\n```", "[1.1, 1.2, 1.3]"]


def test_identical_to_the_installed_lmms_eval_task():
    official = _official_module()
    for text in MESSY:
        assert parse_prediction(text) == official.extract_start_times(text), text
    for answer in ANSWERS:
        assert parse_ground_truth(answer) == official.parse_gt_start_times(answer), answer
        assert is_explicit_empty(answer) == official.is_explicit_empty_gt(answer), answer
    results, records = [], []
    for i, (text, answer) in enumerate((t, a) for t in MESSY for a in ANSWERS):
        out = official.jumpscore_process_results({"id": i, "answer": answer}, [text])["jumpscore_map"]
        ours = score_video(text, answer)
        assert ours.map == out["map"], (text, answer)
        assert ours.ap == out["ap_per_tolerance"], (text, answer)
        results.append(out)
        records.append((i, text, answer))
    ours = score_predictions(records)
    assert ours.map == official.jumpscore_aggregate_results(results)
    assert ours.bad_predictions == sum(r["map"] == 0.0 and r["pred_starts"] == [] for r in results)
