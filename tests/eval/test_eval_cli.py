"""``llava-ov2 eval jumpscore`` end to end on a generated 2-clip set with a tiny model: outputs and their
schema, batch 1 == batch 2, resuming a killed run, scoring a predictions file without a model."""

from __future__ import annotations

import json
import re

import pytest

from transformers_llava_ov2.cli import main
from transformers_llava_ov2.eval.annotations import load_annotations
from transformers_llava_ov2.eval.runner import (
    GenerationSettings,
    PredictionStore,
    VideoSettings,
    load_model,
    run_predictions,
    settings_record,
)

FAST = ["--backend", "frames", "--max-new-tokens", "6", "--max-pixels", "12544", "-q"]


def _eval(tmp_path, ckpt, bench, name, *extra):
    out = tmp_path / f"{name}.json"
    rc = main(
        ["eval", "jumpscore", "--model", str(ckpt), "--data", str(bench), "--output", str(out), *FAST, *extra]
    )
    assert rc == 0
    preds = [json.loads(line) for line in out.with_suffix(".predictions.jsonl").read_text().splitlines()]
    return json.loads(out.read_text()), preds


def test_eval_end_to_end_batch_1_equals_batch_2(tmp_path, tiny_checkpoint, jump_bench, capsys):
    scores1, preds1 = _eval(tmp_path, tiny_checkpoint, jump_bench, "b1", "--batch-size", "1")
    printed = capsys.readouterr().out
    assert "jumprope_000" in printed and "JumpScore mAP" in printed and "AP@0.1" in printed
    _scores2, preds2 = _eval(tmp_path, tiny_checkpoint, jump_bench, "b2", "--batch-size", "2")
    assert [p["id"] for p in preds1] == ["jumprope_000", "jumprope_001"]
    assert preds1 == preds2
    assert all(isinstance(p["prediction"], str) and "error" not in p for p in preds1)
    for key in ("map", "bad_predictions", "per_video"):
        assert key in scores1
    assert set(scores1["per_video"]) == {"jumprope_000", "jumprope_001"}
    assert set(scores1["per_video"]["jumprope_000"]) == {"ap@0.1", "ap@0.2", "ap@0.3", "map"}
    assert scores1["settings"]["video"]["timestamp_decimals"] == 2
    assert scores1["settings"]["generation"] == {
        "max_new_tokens": 6,
        "temperature": 0.0,
        "top_p": 1.0,
        "num_beams": 1,
    }
    results = json.loads((tiny_checkpoint / "eval_results.json").read_text())["results"]
    assert [(r["task"], r["backend"], r["num_videos"]) for r in results] == [("JumpScore", "frames", 2)]


def test_prompt_has_two_decimal_timestamps(tiny_checkpoint, jump_bench):
    from transformers import AutoProcessor

    import transformers_llava_ov2  # noqa: F401  (registers the processor)

    processor = AutoProcessor.from_pretrained(str(tiny_checkpoint))
    record = load_annotations(jump_bench).records[0]
    kwargs = VideoSettings(backend="frames", max_pixels=12544).processor_kwargs()
    text = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": record.question}]}],
        add_generation_prompt=True,
        tokenize=False,
    )
    ids = processor(text=[text], videos=[str(record.video)], **kwargs)["input_ids"][0]
    decoded = processor.tokenizer.decode(ids)
    stamps = re.findall(r"<(\d+\.\d+) seconds>", decoded)
    assert stamps and all(len(s.split(".")[1]) == 2 for s in stamps)


def test_killed_run_resumes(tmp_path, tiny_checkpoint, jump_bench):
    model, processor = load_model(tiny_checkpoint, device="cpu")
    records = load_annotations(jump_bench).records
    video = VideoSettings(backend="frames", max_pixels=12544)
    gen = GenerationSettings(max_new_tokens=4)
    settings = settings_record(video, gen, str(tiny_checkpoint))
    path = tmp_path / "preds.jsonl"

    def kill(_id):
        raise KeyboardInterrupt

    store = PredictionStore(path, settings)
    with pytest.raises(KeyboardInterrupt):
        run_predictions(model, processor, records, store, video=video, generation=gen, on_item=kill)
    first = path.read_text()
    assert len(first.splitlines()) == 1
    with path.open("a") as f:
        f.write('{"id": "jumprope_001", "predic')  # torn line of a run killed mid-write
    store = PredictionStore(path, settings)
    assert list(store.done) == ["jumprope_000"] and path.read_text() == first
    generated = []
    run_predictions(model, processor, records, store, video=video, generation=gen, on_item=generated.append)
    assert generated == ["jumprope_001"]
    assert [json.loads(line)["id"] for line in path.read_text().splitlines()] == [
        "jumprope_000",
        "jumprope_001",
    ]
    with pytest.raises(ValueError, match="other settings"):
        PredictionStore(path, settings_record(VideoSettings(backend="codec"), gen, str(tiny_checkpoint)))


def test_cli_resume_skips_done_videos_and_records_failures(tmp_path, tiny_checkpoint, jump_bench, capsys):
    import shutil

    bench = tmp_path / "bench"
    shutil.copytree(jump_bench, bench)
    with (bench / "annotations.jsonl").open("a") as f:
        f.write(
            json.dumps({"id": "gone", "video_path": "videos/gone.mp4", "question": "q", "answer": "[1.0]"})
            + "\n"
        )
    out = tmp_path / "r.json"
    preds = out.with_suffix(".predictions.jsonl")
    args = ["eval", "jumpscore", "--model", str(tiny_checkpoint), "--data", str(bench), "--output", str(out)]
    assert main([*args, *FAST, "--limit", "1", "--no-record"]) == 0
    (marker,) = [json.loads(line) for line in preds.read_text().splitlines()]
    # Replace the stored answer: a resumed run must keep it, not regenerate it.
    preds.write_text(json.dumps({"id": marker["id"], "prediction": "[0.04, 0.6]"}) + "\n")
    assert main([*args, *FAST, "--batch-size", "2", "--no-record"]) == 0
    err = capsys.readouterr().err
    lines = [json.loads(line) for line in preds.read_text().splitlines()]
    assert lines[0] == {"id": "jumprope_000", "prediction": "[0.04, 0.6]"}
    assert [p["id"] for p in lines] == ["jumprope_000", "jumprope_001", "gone"]
    assert lines[2]["prediction"] == "" and "gone.mp4" in lines[2]["error"]
    assert "1 video(s) failed" in err
    scores = json.loads(out.read_text())
    assert scores["errors"] == 1 and scores["num_videos"] == 3
    assert scores["per_video"]["jumprope_000"]["map"] > 0
    # Other settings on the same file: refused with one message.
    assert main([*args, "--backend", "codec", "-q", "--no-record"]) == 2
    assert "other settings" in capsys.readouterr().err


def test_score_predictions_file_without_model(tmp_path, jump_bench, capsys):
    records = load_annotations(jump_bench).records
    preds = tmp_path / "p.jsonl"
    preds.write_text(
        json.dumps({"id": records[0].id, "prediction": f"Jumps at {records[0].answer}"})
        + "\n"
        + json.dumps({"id": "stranger", "prediction": "[1.0]"})
        + "\n"
    )
    out = tmp_path / "s.json"
    assert (
        main(
            [
                "eval",
                "jumpscore",
                "--data",
                str(jump_bench),
                "--predictions",
                str(preds),
                "--output",
                str(out),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    scores = json.loads(out.read_text())
    assert scores["per_video"][records[0].id]["map"] == 1.0
    assert scores["per_video"][records[1].id]["map"] == 0.0  # missing: scored as an empty answer
    assert scores["map"] == 0.5 and scores["missing"] == 1 and scores["bad_predictions"] == 1
    assert "1 video(s) without a prediction" in printed and "1 prediction(s) for unknown ids" in printed


def test_eval_user_errors(tmp_path, jump_bench, capsys):
    base = ["eval", "jumpscore", "--data", str(jump_bench)]
    assert main(base) == 2
    assert "--model DIR" in capsys.readouterr().err
    assert main([*base, "--predictions", str(tmp_path / "none.jsonl")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["eval", "jumpscore", "--data", str(tmp_path), "--predictions", "x"]) == 2
    assert "has none of" in capsys.readouterr().err
    assert main([*base, "--model", str(tmp_path)]) == 2
    assert "no config.json" in capsys.readouterr().err
