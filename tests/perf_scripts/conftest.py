"""Shared helper of the perf-script tests: import a ``perf/`` script as a module."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

PERF = Path(__file__).resolve().parents[2] / "perf"


@pytest.fixture(scope="module")
def perf_script():
    """``perf_script(name)``: ``perf/<name>.py`` imported as module ``name`` (registered in ``sys.modules``)."""

    def load(name: str):
        spec = importlib.util.spec_from_file_location(name, PERF / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module

    return load
