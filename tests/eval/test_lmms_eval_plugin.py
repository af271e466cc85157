"""The lmms-eval plugin against the installed lmms-eval: registration by name (entry point and run-time),
``generate_until`` on a tiny request list (any batch size, per-task timestamp decimals, task generation
settings), and (slow) a full ``python -m lmms_eval`` run on a local JumpScore-style task."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("lmms_eval")
pytest.importorskip("loguru")

from lmms_eval.api.instance import Instance

from transformers_llava_ov2.eval import lmms_eval_plugin as plugin
from transformers_llava_ov2.eval.annotations import load_annotations
from transformers_llava_ov2.eval.runner import (
    GenerationSettings,
    VideoSettings,
    generate_batch,
    user_turn,
)

REPO = Path(__file__).resolve().parents[2]
FAST_ARGS = {"backend": "frames", "max_pixels": 12544, "dtype": "float32", "device": "cpu"}


def _messages(doc):
    return [
        {
            "role": "user",
            "content": [{"type": "video", "url": doc["video"]}, {"type": "text", "text": doc["q"]}],
        }
    ]


def _requests(docs, task, gen_kwargs):
    return [
        Instance(
            request_type="generate_until",
            arguments=(d["q"], _messages, dict(gen_kwargs), i, task, "test"),
            idx=0,
            metadata={"task": task, "doc_id": i, "repeats": 1},
        )
        for i, d in enumerate(docs)
    ]


@pytest.fixture(scope="module")
def docs(jump_bench):
    records = load_annotations(jump_bench).records
    return [{"video": str(r.video), "q": r.question} for r in records]


@pytest.fixture(scope="module")
def lmm(tiny_checkpoint):
    return plugin.LlavaOnevision2Lmms(pretrained=str(tiny_checkpoint), **FAST_ARGS)


def test_generate_until_any_batch_size(lmm, docs, monkeypatch):
    gen = {
        "max_new_tokens": 5,
        "temperature": 0,
        "top_p": 1.0,
        "num_beams": 1,
        "do_sample": False,
        "until": ["\n\n"],
    }
    task = "jumpscore_local"
    reqs = [*_requests(docs, task, gen), *_requests(docs[:1], task, gen)]  # 3 requests, one repeated doc
    lmm.task_dict = {task: {"test": docs}}
    seen = []
    real = plugin.generate_with_fallback

    def spy(model, processor, conversations, video, generation):
        seen.append((len(conversations), video.timestamp_decimals, generation))
        return real(model, processor, conversations, video, generation)

    monkeypatch.setattr(plugin, "generate_with_fallback", spy)
    lmm.batch_size = 1
    one = lmm.generate_until(reqs)
    lmm.batch_size = 2
    two = lmm.generate_until(reqs)
    assert one == two and len(one) == 3 and one[0] == one[2]
    assert [n for n, _, _ in seen] == [1, 1, 1, 2, 1]
    assert {d for _, d, _ in seen} == {2}  # a JumpScore task gets 2-decimal timestamps
    assert seen[0][2] == GenerationSettings(max_new_tokens=5, temperature=0.0, top_p=1.0, num_beams=1)
    # Same answers as this package's own batched generation (what `llava-ov2 eval` runs).
    video = VideoSettings(backend="frames", max_pixels=12544, timestamp_decimals=2)
    convs = [
        user_turn([{"type": "video", "video": d["video"]}, {"type": "text", "text": d["q"]}]) for d in docs
    ]
    assert (
        generate_batch(lmm.model, lmm.processor, convs, video, GenerationSettings(max_new_tokens=5))
        == one[:2]
    )


def test_other_tasks_get_one_decimal_and_defaults(lmm, docs, monkeypatch):
    lmm.task_dict = {"videomme": {"test": docs}}
    seen = []
    monkeypatch.setattr(
        plugin,
        "generate_with_fallback",
        lambda m, p, c, video, gen: seen.append((video, gen)) or [""] * len(c),
    )
    assert lmm.generate_until(_requests(docs[:1], "videomme", {"temperature": 0.7})) == [""]
    video, gen = seen[0]
    assert video.timestamp_decimals == 1
    assert gen.do_sample and gen.max_new_tokens == 128  # the official wrapper's default
    assert (
        plugin.task_timestamp_decimals("JumpScore") == 2
        and plugin.task_timestamp_decimals("jump_rope_x") == 2
    )


def test_honor_until_and_bad_arguments(lmm, tiny_checkpoint):
    lmm.honor_until = True
    assert lmm._cut("[1.0]\n\nmore", ["\n\n"]) == "[1.0]"
    lmm.honor_until = False
    assert lmm._cut("[1.0]\n\nmore", ["\n\n"]) == "[1.0]\n\nmore"
    with pytest.raises(ValueError, match="unknown model argument"):
        plugin.LlavaOnevision2Lmms(pretrained=str(tiny_checkpoint), backnd="codec")
    with pytest.raises(ValueError, match="batch_size"):
        plugin.LlavaOnevision2Lmms(pretrained=str(tiny_checkpoint), batch_size="auto")


def test_registered_by_name_at_run_time():
    from lmms_eval import models

    plugin.register()
    assert models.get_model("llava_ov2_hf") is plugin.LlavaOnevision2Lmms
    assert models.get_model("transformers_llava_ov2") is plugin.LlavaOnevision2Lmms


def _entry_point_path(tmp_path: Path) -> Path:
    """A dist-info folder declaring this package's ``lmms_eval.models`` entry point, as an install writes it."""
    site = tmp_path / "ep"
    info = site / "transformers_llava_ov2_plugin_probe-0.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: transformers-llava-ov2-plugin-probe\nVersion: 0.0\n"
    )
    setup_cfg = (REPO / "setup.cfg").read_text()
    assert (
        "lmms_eval.models =\n    llava_ov2_hf = transformers_llava_ov2.eval.lmms_eval_plugin:manifests"
        in setup_cfg
    )
    (info / "entry_points.txt").write_text(
        "[lmms_eval.models]\nllava_ov2_hf = transformers_llava_ov2.eval.lmms_eval_plugin:manifests\n"
    )
    return site


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(_entry_point_path(tmp_path)), str(REPO / "src"), str(REPO)])
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    return env


def test_registered_by_name_through_the_entry_point(tmp_path):
    code = (
        "from lmms_eval import models; from transformers_llava_ov2.eval import lmms_eval_plugin as p; "
        "assert models.get_model('llava_ov2_hf') is p.LlavaOnevision2Lmms; print('ok')"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=_env(tmp_path), capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]


TASK_YAML = """\
task: jumpscore_local
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_visual: !function utils.jumpscore_doc_to_visual
doc_to_text: !function utils.jumpscore_doc_to_text
doc_to_target: !function utils.jumpscore_doc_to_target
doc_to_messages: !function utils.jumpscore_doc_to_messages
generation_kwargs:
  max_new_tokens: 6
  temperature: 0
  top_p: 1.0
  num_beams: 1
  do_sample: false
process_results: !function utils.jumpscore_process_results
metric_list:
  - metric: jumpscore_map
    aggregation: !function utils.jumpscore_aggregate_results
    higher_is_better: true
lmms_eval_specific_kwargs:
  default:
    pre_prompt: ""
    post_prompt: ""
"""


def _lmms_eval_runs(env: dict[str, str]) -> bool:
    """lmms-eval 0.7.3's evaluator imports ``filelock._api``, which filelock 4 removed."""
    probe = subprocess.run(
        [sys.executable, "-c", "import filelock._api"], env=env, capture_output=True, timeout=60
    )
    return probe.returncode == 0


@pytest.mark.slow
def test_lmms_eval_cli_run_on_a_local_jumpscore_task(tmp_path, tiny_checkpoint, jump_bench):
    """``python -m lmms_eval --model llava_ov2_hf`` with the official JumpScore task functions on local data:
    the answers equal ``llava-ov2 eval``'s and lmms-eval's score equals this package's scorer.

    Needs filelock < 4 for lmms-eval 0.7.3's evaluator; ``LLAVA_OV2_LMMS_EVAL_PATH`` is prepended to the
    subprocess's ``PYTHONPATH`` (e.g. ``pip install --target DIR "filelock<4"``).
    """
    env = _env(tmp_path)
    extra = os.environ.get("LLAVA_OV2_LMMS_EVAL_PATH")
    if extra:
        env["PYTHONPATH"] = os.pathsep.join([extra, env["PYTHONPATH"]])
    if not _lmms_eval_runs(env):
        pytest.skip(
            "lmms-eval 0.7.3's evaluator needs filelock<4 (set LLAVA_OV2_LMMS_EVAL_PATH to a folder with it)"
        )
    task_dir = tmp_path / "tasks"
    task_dir.mkdir()
    records = load_annotations(jump_bench).records
    rows = [
        {"id": r.id, "video_path": str(r.video), "question": r.question, "answer": r.answer} for r in records
    ]
    data = task_dir / "data.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    (task_dir / "jumpscore_local.yaml").write_text(TASK_YAML.format(data=data))
    (task_dir / "utils.py").write_text("from lmms_eval.tasks.jumpscore.utils import *  # noqa: F403\n")
    out = tmp_path / "out"
    model_args = f"pretrained={tiny_checkpoint},backend=frames,max_pixels=12544,dtype=float32,device=cpu"
    cmd = [
        sys.executable, "-m", "lmms_eval", "--model", "llava_ov2_hf", "--model_args", model_args,
        "--tasks", "jumpscore_local", "--include_path", str(task_dir), "--batch_size", "2",
        "--output_path", str(out), "--log_samples",
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    results = list(out.rglob("*_results.json"))
    assert proc.returncode == 0 and results, (proc.stdout[-3000:], proc.stderr[-3000:])
    score = json.loads(results[0].read_text())["results"]["jumpscore_local"]["jumpscore_map,none"]
    samples = sorted(
        (json.loads(line) for p in out.rglob("*samples_jumpscore_local.jsonl") for line in p.open()),
        key=lambda s: s["doc_id"],
    )
    answers = {records[s["doc_id"]].id: s["filtered_resps"] for s in samples}
    assert len(answers) == 2

    from transformers_llava_ov2.cli import main
    from transformers_llava_ov2.eval.jumpscore import score_predictions

    ours = score_predictions((vid, text, r.answer) for (vid, text), r in zip(answers.items(), records))
    assert ours.map == pytest.approx(score, abs=1e-12)
    scores = tmp_path / "cli.json"
    fast = ["--backend", "frames", "--max-new-tokens", "6", "--max-pixels", "12544", "-q", "--no-record"]
    assert main(["eval", "jumpscore", "--model", str(tiny_checkpoint), "--data", str(jump_bench),
                 "--output", str(scores), "--dtype", "float32", *fast]) == 0  # fmt: skip
    cli = [json.loads(line) for line in scores.with_suffix(".predictions.jsonl").read_text().splitlines()]
    assert {p["id"]: p["prediction"] for p in cli} == answers
