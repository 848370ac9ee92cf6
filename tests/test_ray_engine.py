"""``--engine ray`` writes the same results.jsonl bytes as a local run, resumes, retries a failed task
without a duplicate row, and says how to install Ray when it is missing.

One local Ray (2 CPUs) serves the whole module: starting it costs ~10 s, each scored run ~5-10 s.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest

from harmony_eval.cli import main
from harmony_eval.pipeline import Scorer
from harmony_eval.runner import read_rows, score_folder
from harmony_eval.targets import TargetResolver

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "permissive"
NO_RAY = "Ray is not installed: pip install 'harmony-eval[ray]'"


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray", reason=NO_RAY)
    pytest.importorskip("ray.data", reason=NO_RAY)
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        logging_level="WARNING",
        object_store_memory=200 * 2**20,
    )
    # Actors must unpickle the FlakyScorer defined here; tests/ is not on their sys.path.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("imgs")
    for p in sorted(EXAMPLES.glob("*.png")):
        shutil.copy(p, d / p.name)
    (d / "broken_01.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")  # must become an error row
    return d


@pytest.fixture(scope="module")
def local_run(inputs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("local")
    score_folder(inputs, out, workers=1, backend="anatomy", report=False, progress=False)
    return out


def _ray(inputs: Path, out: Path, **kw):
    return score_folder(inputs, out, engine="ray", backend="anatomy", report=False, progress=False, **kw)


class TwoStageScorer(Scorer):
    """Prepare on CPU actors, predict on model actors, as for CLIP or the tagger."""

    batch_in_worker = False


class FlakyScorer(Scorer):
    """Two stages (a model backend's layout) whose first predict call fails, as a lost GPU would."""

    batch_in_worker = False  # class attribute over Scorer's property: prepare and predict split

    def __init__(self, marker: Path, **kw) -> None:
        super().__init__(**kw)
        self.marker = marker

    def predict(self, batch):
        if not self.marker.exists():  # the file system is what the actors share
            self.marker.write_text("failed once\n")
            raise RuntimeError("injected failure")
        return super().predict(batch)


def test_ray_rows_are_the_local_bytes(ray_cluster, inputs, local_run, tmp_path):
    s = _ray(inputs, tmp_path, workers=2)
    assert (tmp_path / "results.jsonl").read_bytes() == (local_run / "results.jsonl").read_bytes()
    assert (tmp_path / "results.csv").read_bytes() == (local_run / "results.csv").read_bytes()
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "results.parquet"), pd.read_parquet(local_run / "results.parquet")
    )
    bad = [r for r in s.rows if r["status"] == "error"]
    assert [Path(r["path"]).name for r in bad] == ["broken_01.png"]  # the corrupt file, and only it
    assert s.n_total == 17 and s.n_errors == 1 and s.exit_code == 1  # 16 examples + the broken one


def test_ray_resumes_a_local_run(ray_cluster, inputs, local_run, tmp_path):
    lines = (local_run / "results.jsonl").read_bytes().splitlines(keepends=True)
    (tmp_path / "results.jsonl").write_bytes(b"".join(lines[:6]))  # a run stopped after 6 rows
    shutil.copy(local_run / "run.json", tmp_path / "run.json")  # the settings those rows had
    s = _ray(inputs, tmp_path, workers=1)
    assert s.n_scored == len(lines) - 6  # only the missing images were scored
    assert (tmp_path / "results.jsonl").read_bytes() == b"".join(lines)


def test_failed_task_retries_without_a_duplicate_row(ray_cluster, inputs, local_run, tmp_path):
    marker = tmp_path / "failed_once"
    scorer = FlakyScorer(marker, backend="anatomy", targets=TargetResolver(root=inputs))
    s = score_folder(inputs, tmp_path / "out", scorer=scorer, engine="ray", report=False, progress=False)
    assert marker.exists(), "the injected failure did not happen, so nothing was retried"
    rows = read_rows(tmp_path / "out" / "results.jsonl")
    assert len({r["path"] for r in rows}) == len(rows) == s.n_total == 17
    assert (tmp_path / "out" / "results.jsonl").read_bytes() == (local_run / "results.jsonl").read_bytes()


def test_ray_boxes_misses_from_their_siblings_as_a_local_run(ray_cluster, tmp_path):
    """Real sprites (the MIT fixture): one of a character's expressions is missed by every detector
    and takes its siblings' box; Ray's actors return what the driver's sibling pass needs, so the
    run writes the local bytes, in one stage (anatomy) and in two (a model backend's layout)."""
    d = tmp_path / "antonio"
    d.mkdir()
    for p in sorted(FIXTURE.glob("dialogic_Antonio_*.png")):
        shutil.copy(p, d / p.name)
    local = score_folder(d, tmp_path / "local", workers=1, backend="anatomy", report=False, progress=False)
    boxed = sorted(Path(r["path"]).name for r in local.rows if r["detector"] == "siblings")
    assert boxed == ["dialogic_Antonio_pl5_surprise.png"]  # (plot: found on a grown canvas)
    assert all("face_from_siblings" in r["flags"] for r in local.rows if r["detector"] == "siblings")
    expected = (tmp_path / "local" / "results.jsonl").read_bytes()
    _ray(d, tmp_path / "one", workers=2)
    assert (tmp_path / "one" / "results.jsonl").read_bytes() == expected
    scorer = TwoStageScorer(backend="anatomy", targets=TargetResolver(root=d))
    score_folder(d, tmp_path / "two", scorer=scorer, engine="ray", report=False, progress=False)
    assert (tmp_path / "two" / "results.jsonl").read_bytes() == expected
    _ray(d, tmp_path / "off", workers=2, face_from_siblings=False)
    off = read_rows(tmp_path / "off" / "results.jsonl")
    assert sorted(Path(r["path"]).name for r in off if r["status"] == "no_face") == boxed


def test_engine_ray_without_ray_says_how_to_install(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now fails as if not installed
    out = tmp_path / "out"
    rc = main(["score", str(EXAMPLES), "--out", str(out), "--engine", "ray", "--no-progress"])
    assert rc == 2
    assert 'pip install "harmony-eval[ray]"' in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"harmony-eval\[ray\]"):  # the library says it too
        score_folder(EXAMPLES, out, engine="ray", backend="anatomy")
    assert not (out / "results.jsonl").exists() and not (out / "run.json").exists()  # refused first
    rc = main(["benchmark", "--model", "tiny", "--out", str(tmp_path / "b"), "--engine", "ray"])
    assert rc == 2 and 'pip install "harmony-eval[ray]"' in capsys.readouterr().err
    assert not (tmp_path / "b").exists()  # refused before generating anything


def test_unknown_engine_is_a_usage_error(tmp_path, capsys):
    for cmd in (["score", str(EXAMPLES)], ["benchmark", "--model", "tiny"]):
        rc = main([*cmd, "--out", str(tmp_path / "o"), "--engine", "dask"])
        assert rc == 2 and "--engine 'dask'" in capsys.readouterr().err
