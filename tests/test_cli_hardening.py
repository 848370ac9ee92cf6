"""The command line as a new user meets it: usage errors, missing extras and help text.

Each case runs ``harmony-eval`` in a subprocess of a *base* install, mimicked by making ``click``
(typer 0.29 vendors its own and does not install it) and the optional extras unimportable
(``sys.modules[name] = None`` makes ``import name`` fail as if it were absent).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BASE = "click"  # never installed by typer 0.29: the quick-start venv lacks it
NO_EXTRAS = "click,torch,torchvision,diffusers,open_clip,peft,accelerate"
_WRAPPER = (
    "import os, sys\n"
    "for m in filter(None, os.environ['HE_BLOCK'].split(',')): sys.modules[m] = None\n"
    "from harmony_eval.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def run_cli(args: list[str], block: str = BASE, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HE_BLOCK": block, "COLUMNS": "200", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", _WRAPPER, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd or ROOT,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ([], "Usage: harmony-eval"),  # no command: the help, as a usage error
        (["score", "--out", "o"], "Missing argument"),
        (["scor"], "No such command 'scor'"),
        (["score", "--wrkers", "2", "x"], "No such option: --wrkers"),
        (["score", "--workers", "abc", "x"], "Invalid value for '--workers'"),
    ],
)
def test_usage_errors_are_typer_messages_with_exit_2(args: list[str], says: str, tmp_path: Path) -> None:
    r = run_cli(args, cwd=tmp_path)
    out = r.stdout + r.stderr
    assert r.returncode == 2, out
    assert "Traceback" not in out
    assert says in out


def test_cli_never_imports_click() -> None:
    code = "import sys; import harmony_eval.cli; print('click' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"  # typer's vendored click is enough


@pytest.mark.parametrize(
    ("args", "extra"),
    [
        (["generate", "--model", "tiny-random", "--out", "g"], "gen"),
        (["benchmark", "--model", "tiny-random", "--out", "b"], "gen"),
    ],
)
def test_missing_extra_names_the_pip_install(args: list[str], extra: str, tmp_path: Path) -> None:
    r = run_cli(args, block=NO_EXTRAS, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    assert f'pip install "harmony-eval[{extra}]"' in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1  # one line, not two chained tracebacks


def test_train_without_peft_names_the_train_extra() -> None:
    from harmony_eval.cli_support import missing_extra_message

    assert missing_extra_message("train", "peft").endswith('pip install "harmony-eval[train]"')
    assert missing_extra_message("train", "torch").endswith('pip install "harmony-eval[train]"')
    assert missing_extra_message("generate", "torch").endswith('pip install "harmony-eval[gen]"')
    assert "pip install harmony-eval" in missing_extra_message("score", "yaml")  # a base dependency


def test_clip_backend_without_torch_names_packages_not_weights(tmp_path: Path) -> None:
    (tmp_path / "imgs").mkdir()
    r = run_cli(["score", "imgs", "--backend", "clip", "--out", "o"], block=NO_EXTRAS, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert "torch" in r.stderr and "open_clip" in r.stderr
    assert 'pip install "harmony-eval[clip]"' in r.stderr
    assert "weights" not in r.stderr  # the packages are missing, not the weights


def test_help_shows_readable_metavars() -> None:
    r = run_cli(["score", "--help"])
    assert r.returncode == 0, r.stderr
    assert "Usage: harmony-eval score [OPTIONS] INPUTS..." in r.stdout
    for bad in ("<bool>", "<list[Path]>", "{inputs}"):
        assert bad not in r.stdout, bad
    assert "<path>..." in r.stdout and "<int>" in r.stdout  # value types are still shown
