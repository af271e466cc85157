"""Model cards: the card renders, its YAML front matter parses, parameter counts come from the safetensors
headers, benchmark figures of eval_results.json appear; ``llava-ov2 card`` and ``save_with_card``."""

from __future__ import annotations

import json
import shutil

import pytest

from transformers_llava_ov2.cli import main
from transformers_llava_ov2.eval.card import count_parameters, render_model_card, save_with_card
from transformers_llava_ov2.eval.results import read_eval_results
from transformers_llava_ov2.testing import tiny_model

yaml = pytest.importorskip("yaml")


def _front_matter(text):
    assert text.startswith("---\n")
    head, _, body = text[4:].partition("\n---\n")
    return yaml.safe_load(head), body


@pytest.fixture
def folder(tmp_path, tiny_checkpoint):
    out = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint, out)
    (out / "eval_results.json").unlink(missing_ok=True)
    (out / "README.md").unlink(missing_ok=True)
    return out


RESULTS = {
    "results": [
        {"task": "JumpScore", "dataset": "jumprope_synth", "metric": "mAP", "value": 0.7549, "strict_value": 0.61,
         "num_videos": 189, "bad_predictions": 3, "backend": "codec", "max_visual_tokens": 8192,
         "timestamp_decimals": 2, "date": "2026-12-01"},
    ]
}  # fmt: skip


def test_card_renders_with_parsable_yaml_and_figures(folder):
    (folder / "eval_results.json").write_text(json.dumps(RESULTS))
    meta, body = _front_matter(render_model_card(folder, repo_id="me/tiny-ov2", tags=["test"]))
    assert meta["library_name"] == "transformers"
    assert meta["pipeline_tag"] == "image-text-to-text"
    assert meta["base_model"] == "lmms-lab-encoder/LLaVA-OneVision-2-8B-Instruct"
    assert meta["license"] == "apache-2.0"
    assert {"llava-onevision-2", "transformers-llava-ov2", "test"} <= set(meta["tags"])
    (entry,) = meta["model-index"]
    metric = entry["results"][0]["metrics"][0]
    assert entry["name"] == "me/tiny-ov2" and metric["value"] == 0.7549 and metric["type"] == "mAP"
    assert (
        "| JumpScore mAP | jumprope_synth | codec | 8192 | 189 | 0.7549 | 0.6100 | 3 | 2026-12-01 |" in body
    )
    for section in ("## Usage", "## Video back ends and budgets", "## Limitations", "## Evaluation"):
        assert section in body
    assert 'video_backend="codec"' in body and 'video_backend="frames"' in body and "pipeline(" in body
    assert "HEVC, VP9, AV1" in body and "static content favour the `frames`" in body
    total = sum(p.numel() for p in tiny_model().parameters())
    assert f"| parameters | {total:,} (" in body


def test_parameter_count_from_headers_matches_the_model(folder, tmp_path):
    model = tiny_model()
    counts = count_parameters(folder)
    assert counts.total == sum(p.numel() for p in model.parameters())
    assert counts.vision == sum(
        p.numel() for n, p in model.named_parameters() if n.startswith("model.visual.")
    )
    assert counts.lm_head == model.lm_head.weight.numel() and counts.other == 0 and counts.dtypes == ("F32",)
    sharded = tmp_path / "sharded"
    model.save_pretrained(sharded, max_shard_size="20MB")
    assert (sharded / "model.safetensors.index.json").is_file()
    assert count_parameters(sharded) == counts
    assert count_parameters(tmp_path) is None
    (tmp_path / "model.safetensors").write_bytes(b"\xff" * 16)
    with pytest.raises(ValueError, match="not a safetensors file"):
        count_parameters(tmp_path)


def test_card_cli_and_no_results(folder, capsys):
    assert main(["card", str(folder), "--base-model", "none", "--tag", "x"]) == 0
    text = (folder / "README.md").read_text()
    meta, body = _front_matter(text)
    assert "base_model" not in meta and "model-index" not in meta and "x" in meta["tags"]
    assert "No results recorded yet" in body
    assert main(["card", str(folder)]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["card", str(folder), "--force", "--out", str(folder / "CARD.md")]) == 0
    assert (folder / "CARD.md").is_file()


def test_eval_results_feed_the_card(folder, jump_bench):
    """``llava-ov2 eval`` records its result; the card shows it (scored from a predictions file)."""
    from transformers_llava_ov2.eval.annotations import load_annotations
    from transformers_llava_ov2.eval.results import record_eval_result, score_jumpscore

    records = load_annotations(jump_bench).records
    report = score_jumpscore(records, {r.id: {"id": r.id, "prediction": r.answer} for r in records})
    settings = {"video": {"backend": "frames", "max_visual_tokens": 256, "timestamp_decimals": 2}}
    record_eval_result(folder, report, dataset="jump_bench", settings=settings)
    record_eval_result(folder, report, dataset="jump_bench", settings=settings)  # replaces, does not add
    assert len(read_eval_results(folder)) == 1
    _, body = _front_matter(render_model_card(folder))
    assert "| JumpScore mAP | jump_bench | frames | 256 | 2 | 1.0000 | 1.0000 | 0 |" in body


def test_save_with_card(tmp_path):
    out = tmp_path / "saved"
    card = save_with_card(tiny_model(), out, base_model=None)
    assert card == out / "README.md" and (out / "model.safetensors").is_file()
    assert _front_matter(card.read_text())[0]["pipeline_tag"] == "image-text-to-text"
    with pytest.raises(ValueError, match="repo_id"):
        save_with_card(tiny_model(), out, push_to_hub=True)
