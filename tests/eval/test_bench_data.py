"""Benchmark folders: ``make-bench jumprope`` output in the JumpScore format, and annotation loading."""

from __future__ import annotations

import json

import av
import pytest

from transformers_llava_ov2.cli import main
from transformers_llava_ov2.eval.annotations import load_annotations, write_annotations
from transformers_llava_ov2.eval.jumpscore import parse_ground_truth
from transformers_llava_ov2.eval.make_bench import spec_from_json, write_jumprope_bench
from transformers_llava_ov2.video.synthetic_events import plan_cycles


def test_make_bench_cli_writes_the_dataset_format(tmp_path, capsys):
    out = tmp_path / "bench"
    assert (
        main(["make-bench", "jumprope", "--out", str(out), "--num-clips", "2", "--seconds", "3", "-q"]) == 0
    )
    assert "annotations.jsonl" in capsys.readouterr().out
    lines = (out / "annotations.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    assert [r["id"] for r in rows] == ["jumprope_000", "jumprope_001"]
    assert all(set(r) == {"id", "video_path", "question", "answer"} for r in rows)
    sizes = []
    for r in rows:
        truth = json.loads((out / "ground_truth" / f"{r['id']}.json").read_text())
        assert parse_ground_truth(r["answer"]) == truth["cycle_starts"]
        assert truth["cycle_starts"] == [round(f / 25, 2) for f in truth["cycle_start_frames"]]
        # The stored spec reproduces the annotated cycles.
        cycles, _ = plan_cycles(spec_from_json(truth["spec"]))
        assert [c[0] for c in cycles] == truth["cycle_start_frames"]
        with av.open(str(out / r["video_path"])) as f:
            s = f.streams.video[0]
            sizes.append((s.width, s.height))
            assert sum(1 for _ in f.decode(video=0)) == truth["num_frames"] == len(truth["subject_boxes"])
    assert sizes[0][1] > sizes[0][0] and sizes[1][0] > sizes[1][1]  # portrait, then landscape
    assert not list(out.rglob(".*partial*"))


def test_same_seed_same_folder(tmp_path):
    a = write_jumprope_bench(tmp_path / "a", num_clips=1, seconds=2, seed=3)
    b = write_jumprope_bench(tmp_path / "b", num_clips=1, seconds=2, seed=3)
    assert a.read_text() == b.read_text()
    c = write_jumprope_bench(tmp_path / "c", num_clips=1, seconds=2, seed=4)
    assert c.read_text() != a.read_text()


def test_make_bench_bad_arguments(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["make-bench", "jumprope", "--out", str(tmp_path / "file")]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert main(["make-bench", "jumprope", "--out", str(tmp_path), "--num-clips", "0"]) == 2
    assert main(["make-bench", "bowling", "--out", str(tmp_path)]) == 2


def test_load_annotations_formats_and_bad_records(tmp_path):
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "b.mp4").write_bytes(b"")
    rows = [
        {"id": "a", "video_path": "/abs/a.mp4", "question": "q", "answer": "[1.0]"},
        {"id": "b", "video_path": "b.mp4", "question": "q", "answer": '["1.5s"]'},  # found under videos/
        {"id": "a", "video_path": "x.mp4", "question": "q", "answer": "[]"},  # repeated id
        {"id": "c", "video_path": "c.mp4", "question": "q"},  # no answer
        [1, 2],
    ]
    write_annotations(tmp_path / "annotations.jsonl", rows)
    with (tmp_path / "annotations.jsonl").open("a") as f:
        f.write("{not json\n")
    loaded = load_annotations(tmp_path)
    assert [r.id for r in loaded.records] == ["a", "b"]
    assert str(loaded.records[0].video) == "/abs/a.mp4"
    assert loaded.records[1].video == tmp_path / "videos" / "b.mp4"
    assert [n for n, _ in loaded.skipped] == [3, 4, 5, 6]
    assert "repeated id" in loaded.skipped[0][1] and "missing answer" in loaded.skipped[1][1]

    (tmp_path / "list.json").write_text(json.dumps(rows[:2]))
    assert [r.id for r in load_annotations(tmp_path / "list.json").records] == ["a", "b"]
    (tmp_path / "obj.json").write_text("{}")
    with pytest.raises(ValueError, match="JSON list"):
        load_annotations(tmp_path / "obj.json")
    with pytest.raises(ValueError, match="has none of"):
        load_annotations(tmp_path / "videos")
    with pytest.raises(ValueError, match="does not exist"):
        load_annotations(tmp_path / "nope")


def test_load_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    table = pa.table({"id": [7], "video_path": ["v.mp4"], "question": ["q"], "answer": ["[0.5]"]})
    pq.write_table(table, tmp_path / "annotations.parquet")
    (record,) = load_annotations(tmp_path).records
    assert record.id == "7" and record.answer == "[0.5]" and record.video == tmp_path / "v.mp4"
