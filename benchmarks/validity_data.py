"""The labelled sources of ``benchmarks.validity``: real anime art grouped by where it comes from.

    cases = collect_cases(shared=Path("../shared/data"), tmp=Path(tmpdir))

A ``Case`` is one image with its source (the unit held out), its group (the character: the unit held
out when only one source is at hand), its 4-class face label and region labels. Sources:

- ``permissive``: the MIT sprites bundled in ``tests/fixtures/permissive`` (7 characters, 4 styles);
  always present, so CI measures real art without ``../shared``;
- ``seraphina``: 28 full-body sprites of one character (``../shared/data/dev/seraphina``);
- ``afc``: 88 tight grey TV-anime crops (``../shared/data/dev/anime_face_classifier``);
- ``zundamon``: faces composed from one layered character's parts, agreeing and region-swapped
  (``../shared/data/dev/zundamon``): the only source with true region labels.

Region-swapped faces of the sprite sources (``mouth_swaps``): the mouth box the detector found on
one sprite, cut from another sprite of the same character and canvas with another emotion, feathered
in. Their face label is the upper face's, ``mouth`` the donor's. No source-specific box or constant.
A swap that shows one of its two sprites (the two differ only inside the pasted area, or only
outside it: two expressions drawn with one mouth, or one mouth on two upper faces) is a drawing the
artist made, not a face whose regions disagree, and is left out (``drawn_by_artist``, on the copy
line of ``harmony_eval.copies``). Seen on the permissive sprites: Princess "neutral" with the mouth
of "smile" is "smile", pixel for pixel.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FOUR = ["neutral", "happy", "sad", "angry"]
ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "permissive"


@dataclass
class Case:
    path: str
    source: str
    group: str
    label: str | None  # 4-class face emotion, None when other / unlabelled
    regions: dict[str, str] = field(default_factory=dict)  # true region labels (eyes, brows, mouth)
    kind: str = "original"  # "original" | "swapped"
    origin: tuple[str, str] | None = None  # a swap's (upper face, mouth donor) paths
    #: one character's sprites on one canvas (only the face changes): mouth-swapped copies are made
    sprite: bool = False


def _four(x: str | None) -> str | None:
    return x if x in FOUR else None


def permissive_cases(folder: Path = FIXTURE) -> list[Case]:
    rows = csv.DictReader((folder / "labels.csv").open(encoding="utf-8"))
    return [
        Case(str(folder / r["file"]), "permissive", r["character"], _four(r["emotion"]), sprite=True)
        for r in rows
    ]


def seraphina_cases(root: Path) -> list[Case]:
    labels = {r["file"]: r["emotion"] for r in csv.DictReader((root / "labels.csv").open(encoding="utf-8"))}
    return [
        Case(str(p), "seraphina", "seraphina", _four(labels.get(p.name)), sprite=True)
        for p in sorted(root.glob("*.png"))
    ]


def afc_cases(root: Path) -> list[Case]:
    rows = csv.DictReader((root / "labels.csv").open(encoding="utf-8"))
    return [Case(str(root / r["file"]), "afc", "afc", _four(r["emotion"])) for r in rows]


def zundamon_cases(root: Path, out_dir: Path) -> list[Case]:
    """Agreeing and region-swapped zundamon faces as full sprites (no emotion word in the names), each
    face once (``dev_faces.zundamon_faces``)."""
    from benchmarks.anatomy_eval import Zundamon, write_zundamon_sprites

    # each layer's own emotion (parts.csv): a happy face keeps relaxed brows, a sad one a resting mouth
    emotion = {(r["region"], r["file"]): r["emotion"] for r in Zundamon(root).rows}
    out = []
    for path, zf in write_zundamon_sprites(root, out_dir):
        regions = {r: emotion.get((r, getattr(zf, r))) for r in ("eyes", "brows", "mouth")}
        regions = {r: e for r, e in regions.items() if e in FOUR}
        kind = "swapped" if zf.swapped else "original"
        out.append(Case(str(path), "zundamon", "zundamon", _four(zf.label), regions, kind))
    return out


def drawn_by_artist(mixed: np.ndarray, *sprites: np.ndarray) -> bool:
    """Whether the composed RGBA ``mixed`` is a copy of one of ``sprites`` (same canvas): no grey
    level more than ``harmony_eval.copies.MAX_DIFF`` apart anywhere after a 1 px blur: the copy
    test's line (measured there, not on swaps), here at full size, which is stricter than the copy
    test's 128 px."""
    import cv2

    from harmony_eval.copies import MAX_DIFF

    def grey(rgba: np.ndarray) -> np.ndarray:
        a = rgba[..., 3:4] / 255.0
        rgb = rgba[..., :3] * a + 255.0 * (1.0 - a)  # on white, as ``load_image`` composites
        g = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
        return cv2.GaussianBlur(g.astype(np.float32), (0, 0), 1.0)

    m = grey(mixed)
    return any(float(np.abs(m - grey(s)).max()) <= MAX_DIFF for s in sprites)


def mouth_swaps(
    cases: list[Case], mouth_boxes: dict[str, tuple[int, int, int, int]], out_dir: Path, per_face: int = 2
) -> list[Case]:
    """For each labelled original with a detected mouth box, up to ``per_face`` copies whose mouth box
    (grown 40 % each way, feathered with a Gaussian of 1/8 the box height) comes from a sprite of the
    same character, same canvas size and another emotion (seeded choice). A swap that is a copy of
    either sprite (``drawn_by_artist``) is not kept; the donor drawn is the same either way."""
    import cv2
    from PIL import Image

    rng = np.random.default_rng(0)
    by_group: dict[tuple[str, str], list[Case]] = {}
    for c in cases:
        if c.label and c.kind == "original":
            by_group.setdefault((c.source, c.group), []).append(c)
    out = []
    for (source, group), items in sorted(by_group.items()):
        px = {c.path: np.asarray(Image.open(c.path).convert("RGBA")).astype(np.float32) for c in items}
        for c in items:
            box = mouth_boxes.get(c.path)
            donors = [d for d in items if d.label != c.label and px[d.path].shape == px[c.path].shape]
            if box is None or not donors:
                continue
            x0, y0, x1, y1 = box
            gx, gy = 0.4 * (x1 - x0), 0.4 * (y1 - y0)
            h, w = px[c.path].shape[:2]
            a = np.zeros((h, w), np.float32)
            a[max(0, int(y0 - gy)) : min(h, int(y1 + gy)), max(0, int(x0 - gx)) : min(w, int(x1 + gx))] = 1.0
            a = cv2.GaussianBlur(a, (0, 0), max(1.0, (y1 - y0) / 8))[:, :, None]
            for j in rng.choice(len(donors), size=min(per_face, len(donors)), replace=False):
                d = donors[int(j)]
                mixed = px[c.path] * (1 - a) + px[d.path] * a
                if drawn_by_artist(mixed, px[c.path], px[d.path]):
                    continue
                path = out_dir / f"swap_{source}_{Path(c.path).stem}_{Path(d.path).stem}.png"
                Image.fromarray(np.clip(mixed + 0.5, 0, 255).astype(np.uint8)).save(path)
                regions = {"eyes": c.label, "brows": c.label, "mouth": d.label}
                out.append(Case(str(path), source, group, c.label, regions, "swapped", (c.path, d.path)))
    return out


#: the sources collect_cases knows (an added source may not take one of these names, nor "pooled")
BUILT_IN = ("permissive", "seraphina", "afc", "zundamon")


def labelled_cases(name: str, labels: Path) -> list[Case]:
    """A labelled set of your own as one more source ``name`` (``benchmarks.validity --source
    NAME=LABELS``): the labels file as ``calibrate --labels`` reads it (CSV or Label Studio JSON),
    image paths relative to the file's folder. Labels other than the four emotions are dropped. The
    group (held out when there is one source only) is the CSV's ``character`` column, else the
    image's folder. An image with a ``character`` counts as a sprite (one pose per character, only
    the face changes): mouth-swapped copies are made between same-canvas sprites of one character,
    and its swap AUC is measured. A row whose ``character`` is empty is no sprite: its mouth would
    otherwise be swapped with any same-sized image of its folder, another character's face."""
    from calibration.labels import read_labels

    if name in (*BUILT_IN, "pooled") or not name:
        raise ValueError(f"--source {name!r}: that name is taken; built in: {', '.join(BUILT_IN)}, pooled")
    if not labels.is_file():
        raise ValueError(f"--source {name}={labels}: file not found")
    try:
        lab = read_labels(labels, labels.parent, list(FOUR), ignore_unknown=True, keep=("character",))
    except (ValueError, FileNotFoundError) as e:
        raise ValueError(f"--source {name}: {e}") from None
    # a CSV's character column (a Label Studio export has none)
    csv_file = labels.suffix.lower() == ".csv"
    chars = [str(r.get("character") or "").strip() if csv_file else "" for r in lab.rows]
    out = []
    for r, char in zip(lab.rows, chars, strict=True):
        f = str(r["file"])
        regions = {k: str(r[k]) for k in ("eyes", "brows", "mouth") if r.get(k)}
        group = char or Path(f).parent.name
        out.append(Case(f, name, group, _four(r.get("emotion")), regions, sprite=bool(char)))  # type: ignore[arg-type]
    return out


def collect_cases(shared: Path | None, tmp: Path, added: dict[str, Path] | None = None) -> list[Case]:
    """Every source present: the bundled permissive set always; the dev sets when ``shared`` has them;
    ``added`` (name -> labels file, :func:`labelled_cases`): sets of your own."""
    cases = permissive_cases()
    for name, labels in (added or {}).items():
        cases += labelled_cases(name, Path(labels))
    if shared is not None:
        dev = shared / "dev"
        if (dev / "seraphina").is_dir():
            cases += seraphina_cases(dev / "seraphina")
        if (dev / "anime_face_classifier").is_dir():
            cases += afc_cases(dev / "anime_face_classifier")
        if (dev / "zundamon").is_dir():
            cases += zundamon_cases(dev / "zundamon", tmp)
    return cases
