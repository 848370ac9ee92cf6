"""Measurement constants set by the user (``--param mouth.teeth_dark=10``, ``params=`` on ``Scorer``,
``"params"`` in a run config): an override moves the measurement on a drawn face, in worker processes
too, keys the measurement cache, is recorded in run.json and in a fitted calibration, and a bad name
or value is a one-line error that names it (exit 2 through the CLI)."""

from __future__ import annotations

import json
from functools import cache

import numpy as np
import pytest

from harmony_eval.backends.anatomy import AnatomyBackend
from harmony_eval.calibrated import Calibration
from harmony_eval.cli import main
from harmony_eval.config import ScorerConfig
from harmony_eval.measure import MeasureStage, cache_id
from harmony_eval.params import MeasureParams, ParamError, normalize
from harmony_eval.pipeline import Scorer
from harmony_eval.testing.render import render_face, render_face_info
from harmony_eval.types import Face, FaceInput

FAST = {"backend": "anatomy", "detectors": ["animeface", "crop"]}


@cache
def _drawn() -> tuple[np.ndarray, dict]:
    img, truth = render_face_info("neutral", "neutral", "neutral", size=256, seed=0, style={"rotation": 0})
    return np.asarray(img), truth


def _face() -> FaceInput:
    img, truth = _drawn()
    regions = {k: truth[k] for k in ("face", "left_eye", "right_eye", "left_brow", "right_brow", "mouth")}
    return FaceInput(img, Face(tuple(truth["face"]), 1.0, "truth"), regions, "drawn-neutral")


def _closed(features: np.ndarray) -> float:
    from harmony_eval.backends.anatomy import FEATURE_NAMES

    return float(features[FEATURE_NAMES["eyes"].index("closed")])


def _shut_eyes_override() -> list[str]:
    """An ``eyes.closed_ramp`` above the drawn eye's openness: the same open eye then reads closed."""
    base = MeasureStage().measure(_face())
    lo = max(p["open"] for p in (base.parts["left_eye"], base.parts["right_eye"])) + 0.05
    return [f"eyes.closed_ramp={lo:.3f},{lo + 0.2:.3f}"]


def test_override_moves_the_measured_value_the_expected_way():
    base = MeasureStage().measure(_face())
    assert _closed(base.features["eyes"]) < 0.5  # open eyes drawn
    shut = MeasureStage(params=_shut_eyes_override()).measure(_face())
    assert _closed(shut.features["eyes"]) == 1.0  # the ramp moved above the eye's openness
    assert shut.parts["left_eye"]["open"] == base.parts["left_eye"]["open"]  # only the ramp moved
    assert shut.features["mouth"].tolist() == base.features["mouth"].tolist()  # other parts untouched
    # a quality constant reaches the parts through the canvas: a steeper width -> visibility curve
    # (1 - exp(-k r^2)) of a k 100 times smaller reads the same drawn mouth as barely visible
    faint = MeasureStage(params={"quality.visibility_k": 0.014}).measure(_face())
    assert faint.quality["mouth_visible"] < 0.5 < base.quality["mouth_visible"]


def test_anatomy_backend_measures_a_hand_built_face_under_its_overrides():
    emotions = ["neutral", "happy", "sad", "angry"]
    plain = AnatomyBackend().predict([_face()], emotions)[0]
    shut = AnatomyBackend(measure_params=_shut_eyes_override()).predict([_face()], emotions)[0]
    assert _closed(shut.features["eyes"]) == 1.0 > _closed(plain.features["eyes"])
    assert shut.probs["eyes"] != plain.probs["eyes"]  # the reading follows the measurement


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> list[str]:
    d = tmp_path_factory.mktemp("params")
    out = []
    for i, e in enumerate(("neutral", "sad")):
        render_face(e, e, e, size=192, seed=i).save(d / f"{e}_{i}.png")
        out.append(str(d / f"{e}_{i}.png"))
    return out


def test_overrides_reach_worker_processes(files):
    over = {"eyes.closed_ramp": [0.9, 1.0]}  # drawn eyes open 0.2-0.6 face shares: all read closed
    plain = list(Scorer(**FAST).iter_scored(files, workers=1))
    one = list(Scorer(**FAST, params=over).iter_scored(files, workers=1))
    two = list(Scorer(**FAST, params=over).iter_scored(files, workers=2))
    closed = [_closed(pred.features["eyes"]) for _, pred, _ in two]
    assert closed == [_closed(pred.features["eyes"]) for _, pred, _ in one]  # workers measure the same
    assert all(c == 1.0 for c in closed)
    assert all(c < 1.0 for c in (_closed(pred.features["eyes"]) for _, pred, _ in plain))


def test_region_proportions_reach_the_pipeline(files):
    plain = Scorer(**FAST).prepare(files[0])
    tall = Scorer(**FAST, params={"regions.brow_above": 2.0}).prepare(files[0])
    assert tall.faces[0].box == plain.faces[0].box  # the same face found
    (_, py0, _, py1), (_, ty0, _, ty1) = plain.regions["left_brow"], tall.regions["left_brow"]
    assert ty0 < py0 and ty1 == py1  # the brow band reaches higher above the eye, its bottom stays


def test_detector_constants_reach_the_detectors_in_workers_too(tmp_path):
    """``crop.*`` moves the tight-crop test (alone and where animeface calls it), ``animeface.*``
    animeface's passes: a drawn face cut tight is found by the crop test, and not with an eye-peak
    line no mark reaches, in worker processes as in this one."""
    from PIL import Image

    img, truth = _drawn()
    x0, y0, x1, y1 = truth["face"]
    files = []
    for i in range(2):
        files.append(str(tmp_path / f"tight_{i}.png"))
        Image.fromarray(np.ascontiguousarray(img[y0 + 10 : y1 - 20, x0 + 5 : x1 - 5, :3])).save(files[-1])
    crop_only = {"backend": "anatomy", "detectors": ["crop"]}
    found = [r for _, _, r in Scorer(**crop_only).iter_scored(files)]
    assert [r["detector"] for r in found] == ["crop", "crop"]
    blind = {"crop.min_peak": 1000}
    for workers in (1, 2):
        rows = [r for _, _, r in Scorer(**crop_only, params=blind).iter_scored(files, workers=workers)]
        assert [r["status"] for r in rows] == ["no_face", "no_face"]
    anime, crop = Scorer(**FAST, params={**blind, "animeface.base_side": 512}).detectors
    assert anime.params.base_side == 512 and anime.crop_params.min_peak == 1000
    assert crop.params.min_peak == 1000


def test_sibling_constants_reach_the_sibling_pass():
    """Real sprites (the MIT fixture): an Antonio expression takes its siblings' box; asking for
    more agreeing siblings than the set has leaves them unfound, and a detector list without
    animeface leaves nothing to vouch for a box."""
    from pathlib import Path

    files = sorted(
        str(p) for p in (Path(__file__).parent / "fixtures" / "permissive").glob("dialogic_Antonio_*.png")
    )

    def boxed(params=None) -> list[str]:
        rows = [r for _, _, r in Scorer(**FAST, params=params).iter_scored(files)]
        return sorted(Path(r["path"]).name for r in rows if r["detector"] == "siblings")

    assert boxed() == ["dialogic_Antonio_pl5_surprise.png"]  # (plot: found on a grown canvas)
    assert boxed({"siblings.min_siblings": 99}) == []
    assert boxed({"siblings.detectors": "mediapipe"}) == []
    with pytest.raises(ParamError, match="expected names"):
        normalize({"siblings.detectors": ""})
    with pytest.raises(ParamError, match=r"\['animefac'\]: expected detector names"):
        normalize({"siblings.detectors": "animefac"})
    from harmony_eval.detect import DETECTORS

    assert normalize({"siblings.detectors": ",".join(DETECTORS)})  # every detector name is one


def test_overrides_change_the_cache_key_and_never_read_stale_measurements(tmp_path):
    assert cache_id(MeasureParams.from_overrides()) != cache_id(
        MeasureParams.from_overrides(["mouth.edge=0.1"])
    )
    assert cache_id(MeasureParams.from_overrides(["mouth.edge=0.1"])) != cache_id(
        MeasureParams.from_overrides(["mouth.edge=0.2"])
    )
    plain = MeasureStage(str(tmp_path))
    plain.store([plain.measure(_face())])
    again = MeasureStage(str(tmp_path))
    assert again.measure(_face()).cached and again.stats == {"measured": 0, "cached": 1}
    shut = MeasureStage(str(tmp_path), params=_shut_eyes_override())
    m = shut.measure(_face())
    assert not m.cached and shut.stats == {"measured": 1, "cached": 0}  # measured anew
    assert _closed(m.features["eyes"]) == 1.0


def test_normalize_checks_names_and_types():
    assert normalize({"mouth": {"min_area": "5"}, "eyes.closed_ramp": "0.3,0.5"}) == (
        ("eyes.closed_ramp", (0.3, 0.5)),
        ("mouth.min_area", 5),
    )
    with pytest.raises(
        ParamError, match=r"'mout'.*did you mean 'mouth'.*animeface, brows, common, crop, eyes"
    ):
        normalize(["mout.edge=1"])
    with pytest.raises(ParamError, match=r"mouth has no field 'teeth_min'.*teeth_chroma, teeth_dark"):
        normalize(["mouth.teeth_min=0.2"])
    with pytest.raises(TypeError, match=r"mouth.min_area=2.5: expected an integer"):
        normalize(["mouth.min_area=2.5"])
    with pytest.raises(ValueError, match=r"eyes.closed_ramp.*expected 2 numbers"):
        normalize({"eyes.closed_ramp": 0.3})
    with pytest.raises(ParamError, match=r"mouth.edge.*finite"):
        normalize({"mouth.edge": float("nan")})


def _cli(capsys, *args: str) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("param", "named"),
    [
        ("mout.edge=1", ["'mout'", "eyes, mouth, quality, regions"]),
        ("mouth.teeth_min=0.2", ["'teeth_min'", "teeth_dark"]),
        ("mouth.teeth_dark=abc", ["mouth.teeth_dark", "expected a number"]),
    ],
)
def test_cli_bad_param_is_a_one_line_error(files, tmp_path, capsys, param, named):
    code, err = _cli(
        capsys, "score", files[0], "--out", str(tmp_path), "--backend", "anatomy", "--param", param
    )
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --param") and "Traceback" not in err
    assert all(n in lines[0] for n in named)
    assert not (tmp_path / "results.jsonl").exists()  # refused before anything was scored


def test_run_json_records_the_overrides_and_resume_checks_them(files, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["score", files[0], "--out", str(out), "--no-report", "--detectors", "animeface,crop"]
    code, _ = _cli(capsys, *args, "--backend", "anatomy", "--param", "mouth.edge=0.1")
    assert code == 0
    scorer_cfg = json.loads((out / "run.json").read_text())["config"]["scorer"]
    assert scorer_cfg["params"] == {"mouth.edge": 0.1}
    assert Scorer.from_run(out).settings.params == (("mouth.edge", 0.1),)  # the run rebuilds with it
    code, err = _cli(capsys, *args, "--backend", "anatomy", "--param", "mouth.edge=0.2")
    assert code == 2 and "params" in err  # other constants would mix rows: refused
    # the same in a file: a run config's params, or --param-file (with --param over it)
    pf = tmp_path / "p.json"
    pf.write_text(json.dumps({"mouth": {"edge": 0.3, "span": 0.2}}))
    code, _ = _cli(capsys, *args[:3], str(tmp_path / "run2"), *args[4:], "--backend", "anatomy",
                   "--param-file", str(pf), "--param", "mouth.edge=0.1")  # fmt: skip
    assert code == 0
    params = json.loads((tmp_path / "run2" / "run.json").read_text())["config"]["scorer"]["params"]
    assert params == {"mouth.edge": 0.1, "mouth.span": 0.2}
    with pytest.raises(ParamError, match=r"run.json config.scorer params mouth.edgy"):
        ScorerConfig.from_dict({**scorer_cfg, "params": {"mouth.edgy": 1}}, "run.json config.scorer")


def test_calibration_fitted_under_other_overrides_is_refused(tmp_path):
    emotions = ("neutral", "happy", "sad", "angry")
    cal = Calibration(list(emotions), {}, backend="anatomy", training={"params": {"mouth.edge": 0.1}})
    path = cal.save(tmp_path / "calibration.json")
    ok = Scorer(**FAST, emotions=emotions, calibration=path, params=["mouth.edge=0.1"])
    assert ok.settings.params == (("mouth.edge", 0.1),)
    with pytest.raises(
        ValueError, match=r"fitted with measurement params \{'mouth.edge': 0.1\}.*--param mouth.edge=0.1"
    ):
        Scorer(**FAST, emotions=emotions, calibration=path)
    plain = Calibration(list(emotions), {}, backend="anatomy").save(tmp_path / "plain.json")
    with pytest.raises(ValueError, match=r"at their defaults.*no --param"):  # no record = the defaults
        Scorer(**FAST, emotions=emotions, calibration=plain, params=["mouth.edge=0.2"])


def test_calibrate_records_the_overrides_and_score_checks_them(tmp_path, capsys):
    from harmony_eval.testing.sets import write_labelled_faces

    write_labelled_faces(tmp_path, ["neutral", "happy", "sad", "angry"], seeds=2, size=160)
    out = tmp_path / "cal"
    code, err = _cli(capsys, "calibrate", "--images", str(tmp_path), "--labels", str(tmp_path / "labels.csv"),
                     "--out", str(out), "--backend", "anatomy", "--detectors", "animeface,crop", "--cv", "2",
                     "--bootstrap", "0", "--no-curve", "--no-progress", "--model", "scaling", "--method", "sigmoid",
                     "--param", "mouth.edge=0.1")  # fmt: skip
    assert code == 0, err
    cal = json.loads((out / "calibration.json").read_text())
    assert cal["training"]["params"] == {"mouth.edge": 0.1}
    score = ["score", str(tmp_path / "happy_0.png"), "--backend", "anatomy", "--no-report",
             "--calibration", str(out / "calibration.json")]  # fmt: skip
    code, err = _cli(capsys, *score, "--out", str(tmp_path / "s1"))
    assert code == 2 and "--param mouth.edge=0.1" in err  # the fix is named
    code, err = _cli(capsys, *score, "--out", str(tmp_path / "s2"), "--param", "mouth.edge=0.1")
    assert code == 0, err
