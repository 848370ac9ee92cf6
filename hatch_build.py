"""Wheel build hook: the workflow packages ship as ``harmony_eval.workflows.<name>``, not top level.

The repository keeps ``generation/``, ``training/``, ``benchmarks/`` and ``calibration/`` as top-level
folders (``python -m benchmarks.frozen``, the tests, the design card), and their modules import each
other by those names. Installed as top-level packages, such generic names shadow, or are shadowed
by, other projects' ``calibration`` or ``training``. So the wheel carries copies under
``harmony_eval/workflows/`` whose workflow imports are rewritten (``from generation.cli import x``
-> ``from harmony_eval.workflows.generation.cli import x``); ``harmony_eval.cli`` finds the commands
there first. Chosen over moving the folders into ``harmony_eval/`` (every open change to them would
conflict, and the library must not look as if it imported its workflows) and over import hooks
(aliasing ``sys.modules["calibration"]`` would shadow the user's own package in the same process).
Editable installs are left alone: they put the checkout on ``sys.path``, as a source tree is used.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

WORKFLOWS = ("generation", "training", "benchmarks", "calibration")
TARGET = "harmony_eval/workflows"
_IMPORT = re.compile(rf"^(\s*)(from|import)(\s+)({'|'.join(WORKFLOWS)})(?=[\s.])", re.M)
_BARE = re.compile(rf"^\s*import\s+({'|'.join(WORKFLOWS)})(\.\w+)*\s*$", re.M)


def rewrite_imports(source: str, name: str = "<source>") -> str:
    """``source`` with every import of a workflow package pointed into ``harmony_eval.workflows``.

    A bare ``import calibration.x`` (no ``as``) would bind ``harmony_eval`` instead of
    ``calibration``, so it is refused: write ``from calibration import x`` or ``import ... as``."""
    bare = _BARE.search(source)
    if bare:
        raise ValueError(
            f"{name}: `{bare.group(0).strip()}` cannot be relocated; use `from ... import` or `as`"
        )
    return _IMPORT.sub(rf"\1\2\3{TARGET.replace('/', '.')}.\4", source)


def relocated_files(root: Path, out: Path) -> dict[str, str]:
    """Copy the workflow packages into ``out`` (imports rewritten in ``.py`` files); returns the
    ``force_include`` mapping ``{copied file: path inside the wheel}``."""
    mapping = {}
    for pkg in WORKFLOWS:
        for f in sorted((root / pkg).rglob("*")):
            if not f.is_file() or "__pycache__" in f.parts or f.suffix in (".pyc", ".pyo"):
                continue
            rel = f.relative_to(root)
            dest = out / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            if f.suffix == ".py":
                dest.write_text(rewrite_imports(f.read_text(encoding="utf-8"), str(rel)), encoding="utf-8")
            else:
                shutil.copyfile(f, dest)
            mapping[str(dest)] = f"{TARGET}/{rel.as_posix()}"
    return mapping


try:
    from hatchling.builders.hooks.plugin.interface import BuildHookInterface
except ImportError:  # imported by the tests, where hatchling need not be installed
    BuildHookInterface = None  # type: ignore[assignment,misc]

if BuildHookInterface is not None:

    class CustomBuildHook(BuildHookInterface):
        def initialize(self, version: str, build_data: dict) -> None:
            if self.target_name != "wheel" or version == "editable":
                return
            self._tmp = tempfile.mkdtemp(prefix="harmony_eval_workflows_")
            build_data["force_include"].update(relocated_files(Path(self.root), Path(self._tmp)))

        def finalize(self, version: str, build_data: dict, artifact_path: str) -> None:
            if getattr(self, "_tmp", None):
                shutil.rmtree(self._tmp, ignore_errors=True)
