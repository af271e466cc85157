"""``llava-ov2 tokenize`` / ``chat``: outputs on the embedded default clip and clear user errors (exit 2)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from PIL import Image

from transformers_llava_ov2.cli import main
from transformers_llava_ov2.video.demo import DEMO_CLIP_NAME, default_demo_clip


def _has_codec() -> bool:
    try:
        from transformers_llava_ov2.codec import CodecConfig, tokenize_video  # noqa: F401
    except ImportError:
        return False
    return True


HAS_CODEC = _has_codec()


def _check_png(path, min_w=400, min_h=200):
    assert path.is_file(), path
    with Image.open(path) as img:
        assert img.format == "PNG"
        img.load()
        w, h = img.size
    assert w >= min_w and h >= min_h, (path.name, img.size)


def test_demo_clip_is_cached(demo_cache):
    first = default_demo_clip()
    assert first == demo_cache / DEMO_CLIP_NAME
    mtime = first.stat().st_mtime_ns
    assert default_demo_clip() == first
    assert first.stat().st_mtime_ns == mtime  # reused, not rewritten


def test_demo_clip_broken_cache_is_regenerated(tmp_path):
    (tmp_path / DEMO_CLIP_NAME).write_bytes(b"not a video")
    path = default_demo_clip(tmp_path)
    assert path.stat().st_size > 10_000


def test_tokenize_frames_on_default_clip(tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["tokenize", "--backend", "frames", "--out", str(out), "--max-frames", "6", "-q"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "Uniform frames of" in captured.out
    assert "tokens" in captured.out and "stages" in captured.out
    _check_png(out / "frames_contact_sheet.png")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["backend"] == "frames"
    assert summary["num_frames"] == 6
    assert summary["num_tokens"] == sum(f["tokens"] for f in summary["frames"])
    assert summary["pictures"] == ["frames_contact_sheet.png"]


def test_tokenize_frames_respects_budget(tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(
        [
            "tokenize",
            "--backend",
            "frames",
            "--out",
            str(out),
            "--num-frames",
            "4",
            "--max-visual-tokens",
            "40",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["num_frames"] == 4 and 4 <= summary["num_tokens"] <= 40


@pytest.mark.skipif(not HAS_CODEC, reason="the codec tokenizer (codec.tokenize_video) is not available yet")
def test_tokenize_codec_on_default_clip(tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["tokenize", "--out", str(out), "--max-visual-tokens", "1024", "-q"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    for word in ("group", "anchor", "bit cost", "canvases", "tokens", "coverage", "stages"):
        assert word in captured.out
    for name in ("bitcost_timeline.png", "canvases.png", "kept_heatmap.png"):
        _check_png(out / name, 800, 300)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["backend"] == "codec"
    assert 0 < summary["num_tokens"] <= 1024
    assert len(summary["groups"]) >= 1
    assert summary["num_canvases"] == sum(g["num_canvases"] for g in summary["groups"])


@pytest.mark.skipif(not HAS_CODEC, reason="the codec tokenizer (codec.tokenize_video) is not available yet")
@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--max-visual-tokens", "0"], "must be >= 1"),
        (["--num-canvases", "-2"], "must be >= 1"),
        (["--max-pixels", "100"], "invalid codec settings"),
    ],
)
def test_codec_bad_budgets_are_user_errors(tmp_path, capsys, extra, needle):
    rc = main(["tokenize", "--out", str(tmp_path), "-q", *extra])
    err = capsys.readouterr().err
    assert rc == 2
    assert needle in err and "Traceback" not in err


@pytest.mark.skipif(not HAS_CODEC, reason="the codec tokenizer (codec.tokenize_video) is not available yet")
def test_codec_tiny_budget_still_tokenizes(tmp_path, capsys):
    rc = main(["tokenize", "--out", str(tmp_path), "-q", "--max-visual-tokens", "8", "--no-pictures"])
    assert rc == 0, capsys.readouterr().err
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert 1 <= summary["num_tokens"] <= 8 and summary["pictures"] == []


@pytest.mark.skipif(not HAS_CODEC, reason="the codec tokenizer (codec.tokenize_video) is not available yet")
def test_codec_summary_reports_an_unspent_budget(tmp_path, capsys):
    argv = ["tokenize", "--out", str(tmp_path), "-q", "--no-pictures", "--max-visual-tokens", "200000"]
    rc = main([*argv, "--budget-policy", "ceiling"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert (
        "budget   : requested 200000" in captured.out and "not spent: budget_policy='ceiling'" in captured.out
    )
    budget = json.loads((tmp_path / "summary.json").read_text())["budget"]
    assert budget["policy"] == "ceiling" and budget["requested_tokens"] == 200000
    assert budget["spent_tokens"] < 0.9 * 200000 and "ceiling" in budget["reason"]


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["tokenize", "/no/such/clip.mp4", "--out", "{tmp}"], "does not exist"),
        (["tokenize", "{tmp}", "--out", "{tmp}/o"], "is a directory"),
        (["tokenize", "{bad}", "--out", "{tmp}/o"], "cannot read video"),
        (["tokenize", "--backend", "frames", "--max-visual-tokens", "0", "--out", "{tmp}"], "must be >= 1"),
        (
            ["tokenize", "--backend", "frames", "--max-visual-tokens", "3", "--out", "{tmp}"],
            "below the minimum",
        ),
        (["tokenize", "--backend", "frames", "--fps", "-1", "--out", "{tmp}"], "must be a finite number > 0"),
        (["tokenize", "--backend", "nope"], "invalid choice"),
        (
            ["tokenize", "--backend", "frames", "--fps", "1", "--num-frames", "4", "--out", "{tmp}"],
            "either --fps",
        ),
        (["chat", "{tmp}/missing", "--video", "{bad}", "--prompt", "hi"], "does not exist"),
        (["chat", "{tmp}", "--image", "{tmp}/x.png", "--prompt", "hi"], "no config.json"),
        (["chat", "{tmp}", "--prompt", "hi"], "one of the arguments --video --image is required"),
        (["chat", "{tmp}", "--video", "{bad}"], "required: --prompt"),
        (["chat"], "required"),
        (["frobnicate"], "invalid choice"),
        ([], "usage"),
    ],
)
def test_user_errors_exit_2(tmp_path, capsys, argv, needle):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00garbage" * 500)
    argv = [a.format(tmp=tmp_path, bad=bad) for a in argv]
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2
    assert needle in err
    assert "Traceback" not in err


def test_chat_image_path_errors_before_loading(tmp_path, capsys):
    (tmp_path / "config.json").write_text("{}")
    rc = main(["chat", str(tmp_path), "--image", str(tmp_path / "nope.png"), "--prompt", "hi"])
    assert rc == 2
    assert "image" in capsys.readouterr().err


def test_python_dash_m_entry_point():
    proc = subprocess.run(
        [sys.executable, "-m", "transformers_llava_ov2", "tokenize", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "--max-visual-tokens" in proc.stdout


def test_chat_image_with_tiny_checkpoint(tiny_checkpoint, tmp_path, capsys):
    import numpy as np

    img = tmp_path / "img.png"
    Image.fromarray((np.random.default_rng(0).random((64, 96, 3)) * 255).astype("uint8")).save(img)
    rc = main(
        [
            "chat",
            str(tiny_checkpoint),
            "--image",
            str(img),
            "--prompt",
            "What is this?",
            "--max-new-tokens",
            "4",
        ]
    )
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "Loading model" in captured.err and "visual" in captured.err
    assert captured.out.strip()  # the streamed (random-model) answer


def test_chat_video_with_tiny_checkpoint(tiny_checkpoint, capsys):
    clip = default_demo_clip()
    argv = [
        "chat",
        str(tiny_checkpoint),
        "--video",
        str(clip),
        "--prompt",
        "Describe.",
        "--max-new-tokens",
        "3",
    ]
    rc = main([*argv, "--backend", "frames", "--max-frames", "4", "--max-visual-tokens", "32", "-q"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert captured.out.strip()


def test_stage_line_prints_one_total():
    from transformers_llava_ov2.report.summary import stage_line as _stage_line

    line = _stage_line({"decode": 0.5, "decode_thread": 0.9, "signals": 0.4, "total": 1.0})
    assert line.count("total") == 1 and line.endswith("total 1.000s")
    assert _stage_line({"decode": 0.5, "signals": 0.25}).endswith("total 0.750s")
