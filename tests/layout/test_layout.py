"""The package layout: lazy CLI start-up, deprecated import paths, module sizes, import directions."""

from __future__ import annotations

import ast
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "transformers_llava_ov2"
HEAVY = ("torch", "transformers", "matplotlib")


@pytest.mark.parametrize("argv", [["--help"], ["tokenize", "--help"], ["chat", "--help"]])
def test_cli_help_imports_no_heavy_module(argv):
    code = (
        "import sys\n"
        f"sys.argv = ['llava-ov2', *{argv!r}]\n"
        "import transformers_llava_ov2_cli as launcher\n"
        "try:\n    launcher.main()\nexcept SystemExit:\n    pass\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "usage: llava-ov2" in proc.stdout
    assert proc.stdout.strip().splitlines()[-1] == "HEAVY []"


def test_plain_import_still_registers_the_auto_classes():
    code = (
        "import transformers_llava_ov2\n"
        "from transformers import AutoConfig\n"
        "print(type(AutoConfig.for_model('llava_onevision2')).__name__)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "LlavaOnevision2Config"


@pytest.mark.parametrize(
    ("old", "name", "new"),
    [
        (
            "transformers_llava_ov2.codec.uniform",
            "sample_uniform_frames",
            "transformers_llava_ov2.video.uniform",
        ),
        (
            "transformers_llava_ov2.codec.uniform",
            "compute_num_frames",
            "transformers_llava_ov2.video.frame_count",
        ),
        ("transformers_llava_ov2.codec.container", "open_video", "transformers_llava_ov2.video.container"),
        (
            "transformers_llava_ov2.codec.synthetic",
            "write_demo_clip",
            "transformers_llava_ov2.video.synthetic",
        ),
        ("transformers_llava_ov2.visualize", "plot_canvases", "transformers_llava_ov2.report.plots"),
    ],
)
def test_old_module_paths_still_work_with_a_deprecation_warning(old, name, new):
    code = (
        "import importlib, warnings\n"
        "warnings.simplefilter('error', DeprecationWarning)\n"
        f"try:\n    importlib.import_module({old!r})\nexcept DeprecationWarning as w:\n    print('WARNED', w)\n"
        "warnings.simplefilter('ignore', DeprecationWarning)\n"
        f"old = importlib.import_module({old!r}); new = importlib.import_module({new!r})\n"
        f"print('SAME', getattr(old, {name!r}) is getattr(new, {name!r}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "WARNED" in proc.stdout and "moved to" in proc.stdout
    assert "SAME True" in proc.stdout


def test_old_codec_package_names_resolve_with_a_warning():
    from transformers_llava_ov2 import codec
    from transformers_llava_ov2.video import uniform

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert codec.sample_uniform_frames is uniform.sample_uniform_frames
    assert any(issubclass(w.category, DeprecationWarning) for w in caught)
    with pytest.raises(AttributeError):
        codec.no_such_name  # noqa: B018


def _modules():
    return [p for p in SRC.rglob("*.py") if "__pycache__" not in p.parts]


def test_no_module_over_600_lines():
    big = {str(p.relative_to(SRC)): n for p in _modules() if (n := len(p.read_text().splitlines())) > 600}
    assert big == {}


def _relative_imports(path: Path) -> list[str]:
    """Absolute dotted targets of a module's relative imports."""
    rel = path.relative_to(SRC.parent).with_suffix("")
    package = list(rel.parts[:-1])
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - node.level + 1]
            out.append(".".join([*base, *(node.module.split(".") if node.module else [])]))
    return out


TOOLS = ("cli", "report", "convert", "train", "eval", "store", "testing")
ENGINES = ("video", "codec")


def test_imports_point_downward():
    """Model files import same-folder modules only; engines never import tools; video never imports codec."""
    bad = []
    for path in _modules():
        rel = path.relative_to(SRC)
        top = rel.parts[0] if len(rel.parts) > 1 else None
        for target in _relative_imports(path):
            parts = target.split(".")[1:]  # drop the package name
            sub = parts[0] if len(parts) > 1 else None
            if top is None and rel.name.startswith(("modeling_", "configuration_")) and sub is not None:
                bad.append(f"{rel} -> {target}")
            if top in ENGINES and sub in TOOLS:
                bad.append(f"{rel} -> {target}")
            if top == "video" and sub == "codec":
                bad.append(f"{rel} -> {target}")
    assert bad == []
