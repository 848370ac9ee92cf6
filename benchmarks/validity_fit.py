"""The readers ``benchmarks.validity`` compares, and how each is fitted without the unit it is judged on.

    scorer, items = score_cases(cases, tmp)                    # the uncalibrated pipeline, once
    items = with_kind(items, "lbp", scorer)                     # the same faces, other crop descriptors
    rows = held_out_rows(items, "anatomy+lbp", scorer, "source")

A reader is a set of feature groups (prefix before ":" of ``prediction_features`` names) and a crop
descriptor kind (``harmony_eval.descriptors.KINDS``): ``hog``, ``lbp``, ``grey`` read only the crop
descriptors, ``anatomy+<kind>`` the anatomy measurements too, ``anatomy`` the measurements alone.
Each is what ``harmony-eval calibrate`` fits (``calibration.fit.fit_model``, the same code): a face
model on the face labels and one model per region on region labels where a source has them
(zundamon) and on the face label otherwise (a weak label: a face labelled happy is taken to have
happy eyes, brows and mouth). ``default`` is the shipped reader as is, ``default+T`` with one
temperature fitted on the other sources.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from benchmarks.validity_data import FOUR, ROOT, Case, mouth_swaps
from harmony_eval.descriptors import DEFAULT_KIND, KINDS

REGION_MODELS = ("eyes", "brows", "mouth")
ANATOMY = ("eyes", "left_eye", "right_eye", "brows", "mouth", "pooled", "quality")
DESC = ("eyes_desc", "brows_desc", "mouth_desc", "face_desc")
#: reader -> feature groups it reads (None: the shipped reading, nothing fitted)
READERS: dict[str, tuple[str, ...] | None] = {
    "default": None,
    "default+T": ("pooled",),
    "anatomy": ANATOMY,
    **{kind: DESC for kind in KINDS},
    **{f"anatomy+{kind}": ANATOMY + DESC for kind in KINDS},
}


def reader_kind(reader: str) -> str:
    """The crop descriptor kind ``reader`` reads (the pipeline's default for readers reading none)."""
    last = reader.rsplit("+", 1)[-1]
    return last if last in KINDS else DEFAULT_KIND


@dataclass
class Item:
    case: Case
    scored: Any  # calibration.features.Scored
    named: dict[str, float] | None
    #: copy groups (``harmony_eval.copies``) of the drawings the image shows: one for an image, the
    #: upper face's and the donor's for a mouth swap; empty when copies were not looked for
    drawings: tuple[int, ...] = ()


def shared_mediapipe_model() -> Path | None:
    """MediaPipe's model file beside the repository (``../shared/models``), which the study adds to
    the detectors when present: figures then differ from a fresh install's (animeface + crop)."""
    mp = ROOT.parent / "shared" / "models" / "face_landmarker.task"
    return mp if mp.is_file() else None


def score_cases(
    cases: list[Case], tmp: Path, workers: int = 2, progress: bool = True
) -> tuple[Any, list[Item]]:
    """Score every case with the uncalibrated anatomy pipeline (no targets), then add mouth-swapped
    copies of the sprite sources (boxes from this detection) and score those too."""
    from calibration.features import score_images

    mp = shared_mediapipe_model()
    opts: dict[str, Any] = {"mediapipe_model": str(mp)} if mp else {}
    scorer, scored = score_images(
        [c.path for c in cases], backend="anatomy", emotions=FOUR, workers=workers, progress=progress, **opts
    )
    boxes = {s.file: s.prep.regions.get("mouth") for s in scored if s.ok}
    sprites = [c for c in cases if c.sprite]
    swaps = mouth_swaps(sprites, {k: v for k, v in boxes.items() if v}, tmp)
    if swaps:
        _, more = score_images(
            [c.path for c in swaps],
            backend="anatomy",
            emotions=FOUR,
            workers=workers,
            progress=progress,
            **opts,
        )
        cases, scored = cases + swaps, scored + more
    drawings = _drawings(cases, scored)
    items = [
        Item(c, s, scorer.reading_features(s.pred) if s.ok else None, d)
        for c, s, d in zip(cases, scored, drawings, strict=True)
    ]
    return scorer, items


def _drawings(cases: list[Case], scored: list) -> list[tuple[int, ...]]:
    """Each case's ``Item.drawings``: copy groups over every image that is not made from two others
    (one drawing on white and as RGBA, a PNG and its JPEG, in one source or in two share a group);
    a mouth swap shows its two sprites' drawings."""
    from calibration.copies import copy_groups

    own = [i for i, c in enumerate(cases) if c.origin is None]
    groups = dict(zip([cases[i].path for i in own], copy_groups([scored[i] for i in own]), strict=True))
    return [(groups[c.origin[0]], groups[c.origin[1]]) if c.origin else (groups[c.path],) for c in cases]


def with_kind(items: list[Item], kind: str, scorer) -> list[Item]:
    """``items`` whose crop descriptors are of ``kind`` instead of the pipeline's: each image is
    loaded again as the pipeline loads it and described on the boxes that detection found."""
    from harmony_eval.descriptors import descriptor_names, region_descriptors
    from harmony_eval.imageio import load_image

    if kind == DEFAULT_KIND:
        return items
    names = descriptor_names(kind)
    out = []
    for it in items:
        s = it.scored
        if not s.ok:
            out.append(it)
            continue
        rgb = load_image(it.case.path, max_pixels=scorer.max_pixels, min_side=1).rgb
        feats = region_descriptors(rgb, s.prep.regions, kind)
        pred = replace(
            s.pred,
            features={**s.pred.features, **feats},
            feature_names={**s.pred.feature_names, **{g: names[g] for g in feats}},
        )
        named = scorer.reading_features(pred)
        out.append(replace(it, scored=replace(s, pred=pred), named=named))
    return out


def _select(named: dict[str, float], groups: tuple[str, ...]) -> dict[str, float]:
    return {k: v for k, v in named.items() if k.split(":", 1)[0] in groups}


def region_label(c: Case, region: str) -> str | None:
    """The true region label where the source has one, else the face label (weak)."""
    return c.regions.get(region) or c.label


def _fit_groups(rows: list[Item]) -> list[int] | None:
    """``fit_model``'s ``groups`` (copies of one drawing in one fold, counted once) for ``rows``: an
    image's drawing; a mouth swap, made of two, is its own (``None`` when copies were not looked for)."""
    if not all(it.drawings for it in rows):
        return None
    return [it.drawings[0] if len(it.drawings) == 1 else -1 - j for j, it in enumerate(rows)]


def fit_reader(train: list[Item], groups: tuple[str, ...], scorer, opts=None):
    """A ``Calibration`` with a face model and region models fitted on ``train`` (originals and swaps
    with labels), reading only ``groups``: what ``harmony-eval calibrate`` fits from these labels
    (copies of one drawing kept in one fold of its model choice, as calibrate keeps them)."""
    from calibration.fit import FitOptions, fit_model

    opts = opts or FitOptions(model="full", method="temperature")
    models = {}
    face = [it for it in train if it.named and it.case.label and it.case.kind == "original"]
    models["face"] = fit_model(
        [_select(it.named, groups) for it in face], [it.case.label for it in face],
        model="face", label="emotion", opts=opts, vocabulary=FOUR, groups=_fit_groups(face),
    )  # fmt: skip
    for r in REGION_MODELS:
        rows = [it for it in train if it.named and region_label(it.case, r) and it.scored.pred.probs.get(r)]
        if len({region_label(it.case, r) for it in rows}) < 2:
            continue
        models[r] = fit_model(
            [_select(it.named, groups) for it in rows], [region_label(it.case, r) for it in rows],
            model=r, label=r, opts=opts, vocabulary=FOUR, groups=_fit_groups(rows),
        )  # fmt: skip
    return _calibration(models, scorer)


def fit_temperature(train: list[Item], scorer):
    """The default reader with one temperature on its whole-face reading, fitted on ``train``'s face
    labels (``fit_scaling_model``, as ``calibrate --model scaling --method temperature``): it never
    changes which emotion is on top, only how sure the reading claims to be."""
    from calibration.fit import FitOptions, fit_scaling_model

    face = [it for it in train if it.named and it.case.label and it.case.kind == "original"]
    m = fit_scaling_model(
        [it.named for it in face], [it.case.label for it in face], model="face", label="emotion",
        opts=FitOptions(model="scaling", method="temperature"), vocabulary=FOUR,
    )  # fmt: skip
    return _calibration({"face": m}, scorer)


def _calibration(models: dict, scorer):
    """``models`` as a calibration of ``scorer``'s uncalibrated reader (its pool weights and
    holistic temperature: the ``pooled:logp_*`` features the models were fitted on)."""
    from harmony_eval.calibrated import Calibration
    from harmony_eval.pipeline import holistic_temperature

    return Calibration(
        emotions=list(FOUR), models=models, backend=scorer.backend_name,
        pool_weights=dict(scorer.config.pool_weights), holistic_temperature=holistic_temperature(scorer.backend_name),
    )  # fmt: skip


def held_out_rows(
    items: list[Item], reader: str, scorer, unit: str, unfitted: dict[str, str] | None = None
) -> list[dict | None]:
    """Each item's output row from ``reader`` fitted without the item's ``unit`` (source or group).
    ``items`` must carry ``reader_kind(reader)`` descriptors (``with_kind``). A unit whose training
    set cannot fit the reader (too few labels left, e.g. every other image a copy of one of its
    own) gets ``None`` rows and, in ``unfitted``, the reason: no reader judges it."""
    from calibration.features import rescore

    if READERS[reader] is None:
        return [it.scored.row for it in items]
    temperature_only = reader == "default+T"
    rows: list[dict | None] = [None] * len(items)
    for k in sorted({getattr(it.case, unit) for it in items}):
        test, train, _ = held_out_split(items, unit, k)
        try:
            cal = (
                fit_temperature(train, scorer)
                if temperature_only
                else fit_reader(train, READERS[reader], scorer)
            )
        except ValueError as e:
            if unfitted is not None:
                unfitted[k] = str(e)
            continue
        for i in test:
            s = items[i].scored
            rows[i] = rescore(scorer, s, cal.apply(s.pred, FOUR)) if s.ok else s.row
    return rows


def held_out_split(items: list[Item], unit: str, key: str) -> tuple[list[int], list[Item], list[Item]]:
    """``(test positions, train, left out)`` for judging ``unit`` (source or group) ``key``: the test
    is its items; the training set every other item, except those showing a drawing that a test item
    shows too (a copy of a held-out sprite in another source, or a swap made from one): fitted on it,
    the reader would be judged on a drawing it has seen."""
    test = [i for i, it in enumerate(items) if getattr(it.case, unit) == key]
    seen = {d for i in test for d in items[i].drawings}
    train, left_out = [], []
    for it in items:
        if getattr(it.case, unit) != key:
            (left_out if seen.intersection(it.drawings) else train).append(it)
    return test, train, left_out
