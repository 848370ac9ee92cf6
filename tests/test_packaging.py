"""The wheel installs one top-level package: the workflow folders are relocated under
harmony_eval.workflows with their imports rewritten (hatch_build.py). Checked without building:
`pip wheel --no-deps . -w DIR` needs hatchling from the index (the README says how to check a build)."""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("hatch_build", ROOT / "hatch_build.py")
hatch_build = importlib.util.module_from_spec(spec)
spec.loader.exec_module(hatch_build)


def _workflow_imports(tree: ast.AST) -> list[str]:
    """Absolute imports of a top-level workflow package in a module."""
    out = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        out += [n for n in names if n.split(".")[0] in hatch_build.WORKFLOWS]
    return out


def test_relocated_copies_import_no_top_level_workflow(tmp_path):
    mapping = hatch_build.relocated_files(ROOT, tmp_path)
    targets = set(mapping.values())
    for pkg in hatch_build.WORKFLOWS:
        assert f"harmony_eval/workflows/{pkg}/__init__.py" in targets
    assert all(t.startswith("harmony_eval/workflows/") for t in targets)
    assert not any("__pycache__" in t for t in targets)
    checked = 0
    for src, target in mapping.items():
        if target.endswith(".py"):
            tree = ast.parse(Path(src).read_text(encoding="utf-8"), target)  # still valid Python
            assert _workflow_imports(tree) == [], target  # would need a top-level package
            checked += 1
    originals = [f for p in hatch_build.WORKFLOWS for f in (ROOT / p).rglob("*.py")]
    assert checked == len(originals)
    assert any(
        _workflow_imports(ast.parse(f.read_text(encoding="utf-8"))) for f in originals
    )  # there was work


def test_rewrite_keeps_names_and_refuses_what_it_cannot_move():
    src = "from generation.cli import (\n    fail,\n)\n    from benchmarks.summary import METRICS\nimport numpy\n"
    out = hatch_build.rewrite_imports(src)
    assert out == src.replace("from generation", "from harmony_eval.workflows.generation").replace(
        "from benchmarks", "from harmony_eval.workflows.benchmarks"
    )
    assert hatch_build.rewrite_imports("from generations import x\n") == "from generations import x\n"
    with pytest.raises(ValueError, match="calibration.metrics"):
        hatch_build.rewrite_imports("import calibration.metrics\n")  # would bind `harmony_eval`


def test_wheel_config_ships_one_package_and_the_cli_finds_checkout_workflows():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["hatch"]["build"]
    assert cfg["targets"]["wheel"]["packages"] == ["harmony_eval"]
    assert cfg["targets"]["wheel"]["hooks"]["custom"]["path"] == "hatch_build.py"
    from harmony_eval.cli import _import_workflow

    # a source checkout has no relocated copies: the top-level folder is used
    assert _import_workflow("benchmarks.gate") is sys.modules["benchmarks.gate"]
