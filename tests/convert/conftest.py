"""Shared fixtures of the conversion tests: tiny truth models saved once per session."""

from __future__ import annotations

import pytest

from tests.convert.megatron_fixtures import hf_truth


@pytest.fixture(scope="session")
def dense_truth(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dense_hf")
    model, tensors = hf_truth(folder, moe=False)
    return folder, model, tensors


@pytest.fixture(scope="session")
def moe_truth(tmp_path_factory):
    folder = tmp_path_factory.mktemp("moe_hf")
    model, tensors = hf_truth(folder, moe=True)
    return folder, model, tensors
