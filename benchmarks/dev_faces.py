"""The dev set's faces as scoring inputs (``../shared/data/dev``, internal checks only).

- zundamon: faces composed from the layered parts of ``zundamon/parts.csv`` (:class:`Zundamon`):
  single parts on a neutral face, agreeing faces and region-swapped ones (:func:`zundamon_faces`,
  seeded), also written as full sprites for the runner (:func:`write_zundamon_sprites`);
- labelled faces: ``anime_face_classifier`` crops (fixed proportional boxes: animeface finds 1 of 88
  of these tight 350 px crops) and ``seraphina`` sprites (:func:`labelled_faces`).

Region boxes come from python ``animeface`` (face, eyes, mouth; brow bands estimated above the eyes)
or, for tight crops, from fixed proportions. ``benchmarks.anatomy_eval`` scores these items; the
dev evaluation and the validity study compose the same zundamon faces from here.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harmony_eval.backends.anatomy.brows import brow_box_from_eye
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
    no happy brow or sad mouth layer). Each face once: two agreeing faces that differ only in the
    swapped part can draw the same replacement, and the same layers make the same image (with
    ``both_regions``, 6 of the 30 draws; 2 of 15 without); a repeat is dropped, the draws after it
    stay as they were."""
    z = Zundamon(root)
    by: dict[str, dict[str, list[str]]] = {r: {} for r in ("brows", "eyes", "mouth")}
    for r in by:
        for f, emo in z.parts(r):
            by[r].setdefault(emo, []).append(f)
    by["brows"]["happy"] = by["brows"]["neutral"]
    by["mouth"]["sad"] = by["mouth"]["neutral"]
    originals: list[ZFace] = []
    swapped: list[ZFace] = []
    seen: set[str] = set()
    drawn = 0
    rng = np.random.default_rng(0)
    for emo in FIVE:
        combos = [(b, e, m) for b in by["brows"][emo] for e in by["eyes"][emo] for m in by["mouth"][emo]]
        for b, e, m in combos:
            originals.append(ZFace(b, e, m, emo))
            seen.add(originals[-1].key)
            regions = ["eyes", "mouth"] if both_regions else [["eyes", "mouth"][drawn % 2]]
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
                drawn += 1
                face = ZFace(b, e2, m2, emo, region, o)
                if face.key not in seen:
                    seen.add(face.key)
                    swapped.append(face)
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
