"""Two CPU processes (gloo, torchrun): identical weights at the end although rank 1's batches are text-only.

DDP runs with the default ``find_unused_parameters`` (the trainer sets it to False): without the trainer's vision-tower dummy on text-only
batches, rank 1 would leave the vision parameters without gradients and DDP would fail.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch

from transformers_llava_ov2.testing import small_config, tiny_model

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_end_with_identical_weights(tmp_path):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), str(REPO), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        f"--master_port={_free_port()}",
        str(REPO / "tests" / "train" / "ddp_worker.py"),
        str(tmp_path),
    ]
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-4000:]
    seen = [json.loads((tmp_path / f"rank{r}.json").read_text())["samples"] for r in (0, 1)]
    assert seen[0] == {"image": 6} and seen[1] == {"text": 6}
    w0, w1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    assert w0.keys() == w1.keys()
    for name in w0:
        assert torch.equal(w0[name], w1[name]), name
    init = tiny_model(small_config(), seed=0).state_dict()
    moved = [n for n in init if ".visual.encoder." in n and not torch.equal(init[n], w0[n])]
    assert moved  # rank 0's image gradients reached both ranks' vision towers
