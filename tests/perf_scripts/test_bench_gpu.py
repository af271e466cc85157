"""``perf/bench_gpu.py``: skips cleanly without CUDA; its code runs end to end on a tiny CPU config."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "perf" / "bench_gpu.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(SCRIPT.parents[1] / "src")}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=600
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA present: the script would benchmark for real")
def test_skips_cleanly_without_cuda():
    out = _run()
    assert out.returncode == 0, out.stderr
    assert "no CUDA device" in out.stdout and "skipped" in out.stdout


@pytest.mark.slow  # a fresh interpreter importing torch + transformers, ~12 s CPU (30 s on a loaded host)
def test_tiny_cpu_smoke_run():
    out = _run("--device", "cpu", "--tiny", "--repeats", "1", "--new-tokens", "2")
    assert out.returncode == 0, out.stderr[-2000:]
    for impl in ("eager", "sdpa"):
        assert f"canvases   {impl}" in out.stdout and f"frames     {impl}" in out.stdout
    assert "decode" in out.stdout and "ms/token" in out.stdout
