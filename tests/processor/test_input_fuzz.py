"""Every malformed or unusual input ends in a result or the package's own exception, within a time limit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    proc = subprocess.run(
        [sys.executable, "-m", "tests.processor.input_corpus", str(root)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(
        line.split(" ", 2)[1:3][::-1] and (line.split(" ", 2)[1], line) for line in proc.stdout.splitlines()
    )


def test_no_foreign_exception_escapes(outcomes):
    foreign = [line for line in outcomes.values() if line.startswith("OTHER")]
    assert foreign == []
    assert len(outcomes) > 60


@pytest.mark.parametrize(
    "case",
    [
        "raw.h264[frames]",
        "raw.h264[codec]",
        "image_as_video.png[frames]",
        "file_url[frames]",
        "odd_size.mp4[frames]",
    ],
)
def test_unusual_but_valid_videos_decode(outcomes, case):
    assert outcomes[case].startswith("ok "), outcomes[case]


@pytest.mark.parametrize(
    ("case", "needle"),
    [
        ("empty_path[frames]", "the path is empty"),
        ("http_url[frames]", "only local files and file:// URLs are supported"),
        ("http_url[codec]", "only local files and file:// URLs are supported"),
        ("folder[frames]", "is a directory"),
        ("missing.mp4[codec]", "file does not exist"),
        ("image:empty_path", "the path is empty"),
        ("image:truncated_jpeg", "truncated or corrupt image data"),
        ("image:text_as_png", "not a recognised image format"),
        ("image:wide_10000x10", "aspect ratio above 200:1"),
        ("image:folder", "is a directory"),
        ("image:missing", "file does not exist"),
        ("image:array_1d", "expected a 2-D or 3-D image array"),
    ],
)
def test_bad_inputs_get_the_packages_error_naming_the_problem(outcomes, case, needle):
    line = outcomes[case]
    assert line.startswith("pkg ") and needle in line, line


@pytest.mark.parametrize("mode", ["1", "L", "P", "RGB", "RGBA", "CMYK", "I", "F", "LA", "I;16", "YCbCr"])
def test_every_image_mode_processes(outcomes, mode):
    assert outcomes[f"image:mode_{mode}"].startswith("ok "), outcomes[f"image:mode_{mode}"]
