"""Dev-set evaluation of the anatomy backend on real anime art in ``../shared/data/dev`` (internal only).

    python -m benchmarks.anatomy_eval [--data ../shared/data/dev] [--params FILE] [--json OUT]

Prints:
- per-region accuracy on zundamon parts (each labelled part composed on a neutral face);
- 4-class (neutral/happy/sad/angry) balanced accuracy of the holistic reading (agreement.pool with the
  weights of config/verdict.yaml) on labelled faces: anime_face_classifier crops, seraphina sprites,
  zundamon faces whose parts agree; with the hand-set mapping and cross-validated after refitting
  (mapping.fit_params, stratified 5-fold);
- AUC of harmony separating agreeing zundamon faces from region-swapped ones;
- milliseconds per face of the measurements.

Region boxes: python ``animeface`` (face, eyes, mouth; brow bands estimated above the eyes) for
zundamon and seraphina; the tight 350 px classifier crops are the face, with fixed proportional boxes
(animeface finds 1 of 88 of them).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harmony_eval import agreement
from harmony_eval.backends.anatomy import FEATURE_NAMES, AnatomyBackend
from harmony_eval.backends.anatomy.brows import brow_box_from_eye
from harmony_eval.backends.anatomy.mapping import fit_params, region_probs
from harmony_eval.numerics import balanced_accuracy
from harmony_eval.resources import config_path, load_yaml
from harmony_eval.types import Face, FaceInput

FOUR = ["neutral", "happy", "sad", "angry"]
FIVE = [*FOUR, "surprised"]
_HEAD = (250, 100, 830, 720)  # zundamon head on the 1082 x 1650 canvas: detection runs on this crop


@dataclass
class Item:
    """One face to score: ``labels`` holds the face label (``face``) and known region labels."""

    name: str
    inp: FaceInput
    labels: dict[str, str]
    group: str


def _union(a, b):
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def _regions(face, left_eye, right_eye, mouth) -> dict:
    """Region boxes from face, eyes and mouth; brow bands estimated above the eyes."""
    lb, rb = brow_box_from_eye(left_eye), brow_box_from_eye(right_eye)
    return {
        "face": face, "left_eye": left_eye, "right_eye": right_eye, "eyes": _union(left_eye, right_eye),
        "left_brow": lb, "right_brow": rb, "brows": _union(lb, rb), "mouth": mouth,
    }  # fmt: skip


def animeface_input(rgb: np.ndarray, key: str) -> FaceInput | None:
    """Boxes from python ``animeface`` (largest face). Its ``left_eye`` is the character's left eye,
    i.e. the viewer's right: swapped here to the project's viewer-left convention."""
    import animeface
    from PIL import Image

    faces = animeface.detect(Image.fromarray(rgb))
    if not faces:
        return None
    f = max(faces, key=lambda f: f.face.pos.width * f.face.pos.height)

    def box(p):
        return (int(p.x), int(p.y), int(p.x + p.width), int(p.y + p.height))

    regions = _regions(box(f.face.pos), box(f.right_eye.pos), box(f.left_eye.pos), box(f.mouth.pos))
    face = Face(box(f.face.pos), float(f.likelihood), "animeface")
    return FaceInput(rgb, face, regions, key)


def crop_input(rgb: np.ndarray, key: str) -> FaceInput:
    """Fixed proportional boxes for a tight face crop (eyes at 33-68 % height, mouth 66-98 %)."""
    h, w = rgb.shape[:2]

    def b(x0, y0, x1, y1):
        return (int(x0 * w), int(y0 * h), int(x1 * w), int(y1 * h))

    regions = _regions(
        (0, 0, w, h), b(0.08, 0.33, 0.47, 0.68), b(0.53, 0.33, 0.92, 0.68), b(0.3, 0.66, 0.7, 0.98)
    )
    return FaceInput(rgb, Face((0, 0, w, h), 1.0, "crop"), regions, key)


class Zundamon:
    """Composes zundamon faces from the layered parts of ``parts.csv``."""

    def __init__(self, root: Path):
        from PIL import Image

        self.root = root
        self.rows = list(csv.DictReader((root / "parts.csv").open(encoding="utf-8")))
        base = next(r for r in self.rows if r["region"] == "base")["file"].split("+")
        canvas = Image.new("RGBA", (1082, 1650), (255, 255, 255, 255))
        for f in base:
            canvas.alpha_composite(Image.open(root / f).convert("RGBA"))
        self.base = canvas
        self._cache: dict[str, object] = {}

    def parts(self, region: str) -> list[tuple[str, str]]:
        return [(r["file"], r["emotion"]) for r in self.rows if r["region"] == region and r["emotion"]]

    def compose(self, brows: str, eyes: str, mouth: str, full: bool = False) -> np.ndarray:
        """RGB ``(H, W, 3)`` uint8 of the base with these layers on top: the head crop ``_HEAD``, or
        the whole 1082 x 1650 canvas (a full-body sprite on white) with ``full``."""
        from PIL import Image

        c = self.base.copy()
        for f in [brows, *eyes.split("+"), mouth]:
            if f not in self._cache:
                self._cache[f] = Image.open(self.root / f).convert("RGBA")
            c.alpha_composite(self._cache[f])
        return np.asarray(c.convert("RGB") if full else c.convert("RGB").crop(_HEAD))


NEUTRAL = {
    "brows": "eyebrow/normal_eyebrow.png",
    "eyes": "eye/eye_set/normal_white_eye.png+eye/eye_set/pupil/normal_eye.png",
    "mouth": "mouth/nn.png",
}


@dataclass
class ZFace:
    """One composed zundamon face: its layers, the emotion of its unswapped regions (``label``) and,
    for a region-swapped face, which region got which other emotion's part."""

    brows: str
    eyes: str
    mouth: str
    label: str
    swapped: str | None = None  # "eyes" | "mouth" | None
    swapped_to: str | None = None

    @property
    def key(self) -> str:
        return f"{self.brows}|{self.eyes}|{self.mouth}"


def zundamon_faces(root: Path, both_regions: bool = False) -> tuple[list[ZFace], list[ZFace]]:
    """Agreeing faces (every layer of one emotion) and region-swapped ones, without detection.

    Per agreeing face one swap: the eyes or the mouth (alternating) replaced by a random part of a
    clashing emotion; ``both_regions`` makes two swaps per face, one of each region. Seeded: the same
    faces every call. Happy faces keep relaxed brows and sad faces a small closed mouth (the PSD has
    no happy brow or sad mouth layer)."""
    z = Zundamon(root)
    by: dict[str, dict[str, list[str]]] = {r: {} for r in ("brows", "eyes", "mouth")}
    for r in by:
        for f, emo in z.parts(r):
            by[r].setdefault(emo, []).append(f)
    by["brows"]["happy"] = by["brows"]["neutral"]
    by["mouth"]["sad"] = by["mouth"]["neutral"]
    originals: list[ZFace] = []
    swapped: list[ZFace] = []
    rng = np.random.default_rng(0)
    for emo in FIVE:
        combos = [(b, e, m) for b in by["brows"][emo] for e in by["eyes"][emo] for m in by["mouth"][emo]]
        for b, e, m in combos:
            originals.append(ZFace(b, e, m, emo))
            regions = ["eyes", "mouth"] if both_regions else [["eyes", "mouth"][len(swapped) % 2]]
            for region in regions:
                others = [
                    o
                    for o in ("happy", "sad", "angry", "surprised")
                    if o != emo
                    and by[region].get(o)
                    and (emo, o) not in {("happy", "surprised"), ("surprised", "happy")}
                ]
                o = others[rng.integers(len(others))]
                part = by[region][o][rng.integers(len(by[region][o]))]
                e2, m2 = (part if region == "eyes" else e), (part if region == "mouth" else m)
                swapped.append(ZFace(b, e2, m2, emo, region, o))
    return originals, swapped


def write_zundamon_sprites(root: Path, out_dir: Path) -> list[tuple[Path, ZFace]]:
    """The faces of ``zundamon_faces(both_regions=True)`` composed as full 1082 x 1650 sprites into
    ``out_dir`` (``z000.png`` ...: no emotion word in the names, so no target from them)."""
    from PIL import Image

    z = Zundamon(root)
    originals, swapped = zundamon_faces(root, both_regions=True)
    out = []
    for i, zf in enumerate([*originals, *swapped]):
        path = out_dir / f"z{i:03d}.png"
        Image.fromarray(z.compose(zf.brows, zf.eyes, zf.mouth, full=True)).save(path)
        out.append((path, zf))
    return out


def zundamon_items(root: Path) -> tuple[list[Item], list[Item], list[Item]]:
    """(part items, agreeing faces, region-swapped faces), boxes from ``animeface_input``."""
    z = Zundamon(root)
    part_items: list[Item] = []
    for region in ("brows", "eyes", "mouth"):
        for f, emo in z.parts(region):
            combo = {**NEUTRAL, region: f}
            inp = animeface_input(z.compose(combo["brows"], combo["eyes"], combo["mouth"]), f)
            if inp is not None:
                part_items.append(Item(f"{region}:{f}", inp, {region: emo}, "zundamon-part"))
    faces, swaps = zundamon_faces(root)
    originals, swapped = [], []
    for zf in faces:
        inp = animeface_input(z.compose(zf.brows, zf.eyes, zf.mouth), zf.key)
        if inp is not None:
            originals.append(
                Item(f"orig:{zf.label}:{zf.eyes}:{zf.mouth}", inp, {"face": zf.label}, "zundamon")
            )
    for zf in swaps:
        inp = animeface_input(z.compose(zf.brows, zf.eyes, zf.mouth), zf.key)
        if inp is not None:
            name = f"swap:{zf.label}:{zf.swapped}->{zf.swapped_to}"
            swapped.append(Item(name, inp, {"face": zf.label}, "zundamon-swap"))
    return part_items, originals, swapped


def labelled_faces(root: Path) -> list[Item]:
    from PIL import Image

    items = []
    afc = root / "anime_face_classifier"
    for r in csv.DictReader((afc / "labels.csv").open(encoding="utf-8")):
        if r["emotion"] in FIVE:
            rgb = np.asarray(Image.open(afc / r["file"]).convert("RGB"))
            items.append(Item(r["file"], crop_input(rgb, r["file"]), {"face": r["emotion"]}, "afc"))
    ser = root / "seraphina"
    for r in csv.DictReader((ser / "labels.csv").open(encoding="utf-8")):
        if r["emotion"] in FIVE:
            rgb = np.asarray(Image.open(ser / r["file"]).convert("RGBA").convert("RGB"))
            inp = animeface_input(rgb, r["file"])
            if inp is not None:
                items.append(Item(r["file"], inp, {"face": r["emotion"]}, "seraphina"))
    return items


def auc(pos: list[float], neg: list[float]) -> float:
    """P(score of a positive > score of a negative), ties count half."""
    pos_a, neg_a = np.asarray(pos)[:, None], np.asarray(neg)[None, :]
    return float(((pos_a > neg_a).sum() + 0.5 * (pos_a == neg_a).sum()) / (pos_a.size * neg_a.size))


def holistic(
    feats: dict[str, np.ndarray], params: dict, emotions: list[str], weights: dict, brow_conf: float
) -> np.ndarray:
    readings = {
        r: region_probs(params, r, feats[r], emotions, brow_conf if r == "brows" else 1.0)
        for r in ("eyes", "brows", "mouth")
    }
    return agreement.pool(readings, weights)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/dev")
    ap.add_argument(
        "--params", default=None, help="anatomy parameter JSON (default: shipped hand-set priors)"
    )
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    ap.add_argument("--verbose", action="store_true", help="print every face's reading")
    args = ap.parse_args(argv)
    root = Path(args.data)
    if not (root / "zundamon" / "parts.csv").is_file():
        print(f"--data {root}: no zundamon/parts.csv there; point it at shared/data/dev", file=sys.stderr)
        return 2
    backend = AnatomyBackend(params=args.params)
    verdict = load_yaml(config_path("verdict.yaml"))
    weights = verdict["pool_weights"]
    figures: dict[str, float] = {}

    parts, originals, swapped = zundamon_items(root / "zundamon")
    faces = labelled_faces(root)
    t0 = time.perf_counter()
    every = parts + originals + swapped + faces
    preds = {it.name + it.group: backend.predict([it.inp], FIVE)[0] for it in every}
    ms = 1000 * (time.perf_counter() - t0) / len(every)
    figures["ms_per_face"] = ms

    # 1. Per-region accuracy on zundamon parts (5 emotions: the parts include surprised).
    for region in ("eyes", "brows", "mouth"):
        its = [it for it in parts if region in it.labels]
        hits = []
        for it in its:
            p = preds[it.name + it.group].probs[region]
            guess = max(p, key=p.get) if p else "none"
            hits.append(guess == it.labels[region])
            if args.verbose:
                print(f"  {region:6s} {it.labels[region]:10s} -> {guess:10s} {it.name}")
        figures[f"zundamon_{region}_acc5"] = float(np.mean(hits))

    # 2. 4-class balanced accuracy of the holistic reading.
    four = [it for it in faces + originals if it.labels["face"] in FOUR]
    y, guess = [], []
    for it in four:
        pred = preds[it.name + it.group]
        conf = min(1.0, pred.features["brows"][0] / 0.6)
        h = holistic(pred.features, backend.params, FOUR, weights, conf)
        y.append(it.labels["face"])
        guess.append(FOUR[int(np.argmax(h))])
        if args.verbose:
            print(f"  face {it.labels['face']:8s} -> {guess[-1]:8s} {it.group}:{it.name}")
    for group in ("afc", "seraphina", "zundamon"):
        idx = [i for i, it in enumerate(four) if it.group == group]
        figures[f"ba4_{group}"] = balanced_accuracy([y[i] for i in idx], [guess[i] for i in idx])
    figures["ba4_all"] = balanced_accuracy(y, guess)

    # 3. Cross-validated after refitting (stratified 5-fold, 3 shuffles averaged): (a) each region's
    # model refitted on the face labels with mapping.fit_params, shrunk 30 % towards the hand-set
    # priors, pooled as above; (b) one logistic regression over every region's features plus the
    # priors' region log-probabilities (what a calibration "face" model over backend features does).
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = {r: np.array([preds[it.name + it.group].features[r] for it in four]) for r in FEATURE_NAMES}
    ya = np.array(y, dtype=object)
    logp = np.hstack(
        [np.log([region_probs(backend.params, r, row, FOUR) for row in x[r]]) for r in FEATURE_NAMES]
    )
    xall = np.hstack([*(x[r] for r in FEATURE_NAMES), logp])
    per_region, joint = [], []
    for seed in range(3):
        g_region = np.empty(len(four), dtype=object)
        g_joint = np.empty(len(four), dtype=object)
        for train, test in StratifiedKFold(5, shuffle=True, random_state=seed).split(ya, ya):
            fitted = fit_params(
                {r: v[train] for r, v in x.items()},
                list(ya[train]),
                FEATURE_NAMES,
                FOUR,
                prior=backend.params,
                c=0.1,
                prior_weight=0.3,
            )
            for i in test:
                feats = {r: v[i] for r, v in x.items()}
                g_region[i] = FOUR[int(np.argmax(holistic(feats, fitted, FOUR, weights, 1.0)))]
            clf = make_pipeline(
                StandardScaler(), LogisticRegression(C=0.5, class_weight="balanced", max_iter=3000)
            )
            g_joint[test] = clf.fit(xall[train], ya[train]).predict(xall[test])
        per_region.append(balanced_accuracy(list(ya), list(g_region)))
        joint.append(balanced_accuracy(list(ya), list(g_joint)))
    figures["ba4_all_cv_refit"] = float(np.mean(per_region))
    figures["ba4_all_cv_joint"] = float(np.mean(joint))

    # 4. Harmony AUC: agreeing zundamon faces vs region-swapped ones.
    compat = agreement.compatibility_matrix(FOUR, verdict["compatibility"])
    compat5 = agreement.compatibility_matrix(FIVE, verdict["compatibility"])

    def harmony_of(it: Item, emotions: list[str], c: np.ndarray) -> float:
        pred = preds[it.name + it.group]
        readings = {
            r: (agreement.as_vector(pred.probs[r], emotions) if pred.probs[r] else None)
            for r in ("eyes", "brows", "mouth")
        }
        if emotions != FIVE:  # renormalise the five-way reading to the vocabulary in use
            readings = {
                r: (v / v.sum() if v is not None else None)
                for r, v in (
                    (
                        r,
                        agreement.as_vector(pred.probs[r], FIVE)[[FIVE.index(e) for e in emotions]]
                        if pred.probs[r]
                        else None,
                    )
                    for r in readings
                )
            }
        h = agreement.pool(readings, weights)
        scores = agreement.agreement_scores(readings, h, c, weights)
        return agreement.harmony(scores, verdict["harmony_weights"]) or 0.0

    figures["auc_swap_5"] = auc(
        [harmony_of(it, FIVE, compat5) for it in originals], [harmony_of(it, FIVE, compat5) for it in swapped]
    )
    o4 = [it for it in originals if it.labels["face"] in FOUR]
    s4 = [it for it in swapped if it.labels["face"] in FOUR]
    figures["auc_swap_4"] = auc(
        [harmony_of(it, FOUR, compat) for it in o4], [harmony_of(it, FOUR, compat) for it in s4]
    )
    figures.update(n_parts=len(parts), n_originals=len(originals), n_swapped=len(swapped), n_faces4=len(four))
    for k, v in figures.items():
        print(f"{k:22s} {v:.3f}" if isinstance(v, float) else f"{k:22s} {v}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
