"""House rules for the codec package: short functions, one job per module (no module over ~600 lines)."""

from __future__ import annotations

import ast
from pathlib import Path

import transformers_llava_ov2.codec as codec
from transformers_llava_ov2.codec import decode, motion, signals

CODEC_DIR = Path(codec.__file__).parent
MAX_FUNCTION_LINES = 80
MAX_MODULE_LINES = 600


def _functions(path: Path) -> list[tuple[str, int, int]]:
    """``(name, first line, length in lines)`` of every function and method (nested ones too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [
        (node.name, node.lineno, node.end_lineno - node.lineno + 1)
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    ]


def test_the_codec_package_is_found():
    names = {p.name for p in CODEC_DIR.glob("*.py")}
    assert {"pipeline.py", "signals.py", "motion.py", "decode.py", "groups.py"} <= names


def test_no_function_in_codec_is_longer_than_80_lines():
    too_long = [
        f"{path.name}:{line} {name} ({length} lines)"
        for path in sorted(CODEC_DIR.glob("*.py"))
        for name, line, length in _functions(path)
        if length > MAX_FUNCTION_LINES
    ]
    assert not too_long, "split these functions: " + ", ".join(too_long)


def test_no_codec_module_is_longer_than_600_lines():
    too_long = [
        f"{path.name} ({n} lines)"
        for path in sorted(CODEC_DIR.glob("*.py"))
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    ]
    assert not too_long, "split these modules: " + ", ".join(too_long)


def test_signals_keeps_the_public_names_of_its_parts():
    assert set(signals.__all__) >= {"DecodeReport", *motion.__all__}
    for name in motion.__all__:
        assert getattr(signals, name) is getattr(motion, name)
    assert signals.DecodeReport is decode.DecodeReport
