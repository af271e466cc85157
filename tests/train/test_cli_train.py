"""``llava-ov2 train``: user errors exit 2 with one message; a short run prints the summary and writes it."""

from __future__ import annotations

import json

import pytest

from tests.train.conftest import write_media_dataset
from transformers_llava_ov2.cli import main


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--stage", "stage9"], "no such preset"),
        (["--num_frames=0"], "num_frames"),
        (["--overlong=truncate"], "overlong"),
        (["--trainable=[decoder]"], "trainable"),
    ],
)
def test_stage_errors_exit_2(tmp_path, tiny_checkpoint, capsys, argv, message):
    files = write_media_dataset(tmp_path / "d")
    code = main(
        [
            "train",
            "--data",
            str(files["data"]),
            "--model",
            str(tiny_checkpoint),
            "--output",
            str(tmp_path / "o"),
            *argv,
        ]
    )
    assert code == 2
    assert message in capsys.readouterr().err


def test_missing_inputs_exit_2(tmp_path, capsys):
    assert (
        main(
            [
                "train",
                "--data",
                str(tmp_path / "none.jsonl"),
                "--model",
                str(tmp_path),
                "--output",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    assert "does not exist" in capsys.readouterr().err
    assert main(["train", "--output", str(tmp_path / "o")]) == 2
    assert "--data and --model are required" in capsys.readouterr().err


def test_short_run_prints_and_writes_the_summary(tmp_path, tiny_checkpoint, capsys):
    files = write_media_dataset(tmp_path / "d")
    (files["root"] / "data.jsonl").open("a").write(
        json.dumps(
            {
                "messages": [{"role": "user", "content": "<image>x"}, {"role": "assistant", "content": "y"}],
                "image": "gone.png",
            }
        )
        + "\n"
    )
    out = tmp_path / "o"
    code = main(
        [
            "train",
            "--stage",
            "stage2",
            "--data",
            str(files["data"]),
            "--model",
            str(tiny_checkpoint),
            "--output",
            str(out),
            "--max-steps",
            "2",
            "--batch-size",
            "3",
            "--cpu",
            "--image_max_pixels=12544",
            "--gradient_checkpointing=false",
            "--modality_mix={}",
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "stage stage2: 2 steps" in text and "samples by modality:" in text and "tokens/s" in text
    assert "skipped records: missing_file 1" in text
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["steps"] == 2 and sum(summary["samples"].values()) == 5  # one epoch of the 5 good records
    assert (out / "final" / "config.json").is_file() and (out / "final" / "tokenizer_config.json").is_file()
