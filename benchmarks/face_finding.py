"""Face finding per source and per stress variant, with false positives, for judging detector changes.

    python -m benchmarks.face_finding [--data ../shared/data] [--sources renpy,dialogic] [--json]
    python -m benchmarks.face_finding --siblings --sources dialogic,renpy   # + the sibling fallback
    python -m benchmarks.face_finding --param crop.min_peak=45              # a detector constant changed

Each change to face finding is judged on this table, source by source (leave-one-source-out in
spirit: a constant chosen while watching some sources is reported on the others; a rule that helps
one source only is dropped). Rows:

- per source (``benchmarks.detection.load_set``: seraphina sprites, afc tight TV crops, afc
  screenshots with hand boxes, TADNE tiles, renpy, dialogic, zundamon compositions): found, and hit
  (the found face is the true one: IoU >= 0.3 or its centre inside the true box);
- per stress variant of every sprite-like source, each made from the original and its true face
  box (``benchmarks/face_boxes.json``: fixed boxes, so the sets do not move with the detector):
  ``tall`` (2.5 x taller canvas of the border colour), ``body`` (everything below the chin stretched
  2.5 x down: a full-body figure whose drawn part is tall, so no crop of the drawn part gives back
  the original), ``small`` (the whole image shrunk to a 40 px wide face), ``chin`` (close-up cut
  10 % of the face above its bottom, face ~1/2 of the width), ``tight`` (a closer close-up, face
  ~3/4 of the width, cut 20 % above its bottom), ``jpeg`` (on white, saved as JPEG quality 80: the
  only way an on-white copy differs from the RGBA file, which ``load_image`` composites on white);
- false positives: faces on ``noise`` (drawn here, seeded), on ``bodies`` (each sprite-like
  original below its true face: drawn art without a face) and on ``grids`` (a face is false when
  another face already claims its grid tile or its size is off the tile's: GAN sample grids, tiles
  found from their gutters, and the TADNE grid); crowd art (no truth) counts faces only;
- with ``--siblings``, the batch-level fallback (``harmony_eval.detect.siblings``) over each
  source's folder and each variant set: found / hit with it (``sib_found`` / ``sib_hit``, ``fired``,
  ``fired_miss``: fired on a box that is not the true face), ``loo/<source>`` (each found image
  taken as a miss in turn: does it get back a true box from its siblings?) and false positives
  ``fp/sib_*``: a white, a noise and every other source's sprites (another drawing, resized to the
  canvas) taken as misses in each folder with siblings.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BOXES = Path(__file__).with_name("face_boxes.json")
SOURCES = ("sprites", "crops", "shots", "tadne", "renpy", "dialogic", "zundamon")
VARIANT_SOURCES = ("sprites", "tadne", "renpy", "dialogic", "zundamon")
VARIANTS = ("tall", "body", "small", "chin", "tight", "jpeg")
#: the ``--param`` modules that change face finding (the others change the readings, not the boxes)
DETECTOR_MODULES = ("animeface", "crop", "siblings")
Box = tuple[int, int, int, int]
Finder = Callable[[np.ndarray], list]


def variant(kind: str, img: np.ndarray, box: Box) -> tuple[np.ndarray, Box]:
    """The stress variant ``kind`` of ``img`` whose true face is ``box``, and the face's box in it."""
    import cv2

    from harmony_eval.detect._geometry import background_colour

    h, w = img.shape[:2]
    x0, y0, x1, y1 = box
    fw, fh = x1 - x0, y1 - y0
    if kind == "tall":
        edge = background_colour(img).astype(np.uint8)
        out = np.empty((int(2.5 * h), w, 3), np.uint8)
        out[:] = edge
        out[:h] = img
        return out, box
    if kind == "body":
        cut = min(h - 1, int(y1 + 0.1 * fh))
        below = cv2.resize(img[cut:], (w, int(2.5 * (h - cut))), interpolation=cv2.INTER_LINEAR)
        return np.ascontiguousarray(np.concatenate([img[:cut], below])), box
    if kind == "small":
        k = min(1.0, 40 / fw)
        out = cv2.resize(img, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA)
        return out, tuple(int(round(v * k)) for v in box)  # type: ignore[return-value]
    if kind == "jpeg":
        ok, buf = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 80])
        return np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]), box
    side, above, cut = {"chin": (0.5, 0.6, 0.1), "tight": (0.15, 0.3, 0.2)}[kind]
    cx0, cy0 = max(0, int(x0 - side * fw)), max(0, int(y0 - above * fh))
    cx1, cy1 = min(w, int(x1 + side * fw)), min(h, int(y1 - cut * fh))
    s = 640 / max(cx1 - cx0, cy1 - cy0)
    crop = cv2.resize(
        img[cy0:cy1, cx0:cx1],
        (round((cx1 - cx0) * s), round((cy1 - cy0) * s)),
        interpolation=cv2.INTER_LINEAR,
    )
    truth = ((x0 - cx0) * s, (y0 - cy0) * s, (x1 - cx0) * s, (cy1 - cy0) * s)
    return np.ascontiguousarray(crop), tuple(int(round(v)) for v in truth)  # type: ignore[return-value]


def noise_images(seed: int = 0) -> list[tuple[str, np.ndarray]]:
    """Faceless synthetic images: uniform and smoothed noise, blobs, gradients, stripes."""
    import cv2

    rng = np.random.default_rng(seed)
    out = []
    for side in (256, 640, 1024):
        out.append((f"uniform_{side}", rng.integers(0, 256, (side, side, 3), dtype=np.uint8)))
        for sigma in (2, 8):
            n = cv2.GaussianBlur(rng.normal(128, 60, (side, side, 3)), (0, 0), sigma)
            out.append((f"smooth{sigma}_{side}", np.clip((n - n.mean()) * 4 + 128, 0, 255).astype(np.uint8)))
        blobs = np.full((side, side, 3), 255, np.uint8)
        for _ in range(40):
            c = tuple(int(v) for v in rng.integers(0, 256, 3))
            cv2.circle(
                blobs, tuple(int(v) for v in rng.integers(0, side, 2)), int(rng.integers(4, side // 8)), c, -1
            )
        out.append((f"blobs_{side}", blobs))
        y = np.linspace(0, 255, side)[:, None, None]
        out.append((f"gradient_{side}", np.broadcast_to(y, (side, side, 3)).astype(np.uint8).copy()))
        out.append(
            (
                f"stripes_{side}",
                (((np.arange(side) // 16) % 2) * 255)
                .astype(np.uint8)[None, :, None]
                .repeat(side, 0)
                .repeat(3, 2),
            )
        )
    return out


def grid_tiles(img: np.ndarray) -> int | None:
    """Tile period (px) of a sample grid with plain gutters, from its low-variance columns."""
    g = img.astype(np.float32).mean(2)
    idx = np.where(g.std(axis=0) < 8)[0]
    starts = [int(i) for i in idx if i - 1 not in idx]
    gaps = np.diff(starts)
    return int(np.median(gaps)) if len(gaps) >= 2 else None


def grid_false(boxes: list[Box], tile: int) -> int:
    """Faces on a grid of ``tile`` px tiles that are not one face per tile: a second face in a tile,
    or a box under 1/4 or over 1.5 x the tile."""
    seen, false = set(), 0
    for b in boxes:
        size = max(b[2] - b[0], b[3] - b[1])
        key = (int((b[0] + b[2]) / 2 // tile), int((b[1] + b[3]) / 2 // tile))
        if key in seen or not 0.25 * tile <= size <= 1.5 * tile:
            false += 1
        seen.add(key)
    return false


def _rate(results: list[tuple[list[Box], Box | None]]) -> dict[str, Any]:
    from benchmarks.detection import hit

    n = len(results)
    found = sum(bool(b) for b, _ in results)
    row: dict[str, Any] = {"n": n, "found": round(found / n, 3) if n else None}
    truths = [(b, t) for b, t in results if t is not None]
    if truths:
        row["hit"] = round(sum(hit(b, t) for b, t in truths) / len(truths), 3)
    return row


def evaluate(
    data: Path,
    find: Finder,
    sources: tuple[str, ...] = SOURCES,
    progress: bool = False,
    negatives: bool = True,
    siblings: bool = False,
    sibling_params: Any = None,
) -> dict[str, Any]:
    """The whole table for the detector ``find(rgb) -> faces`` (``[Face]``, largest first); with
    ``siblings``, also the sibling fallback's rows (module docstring), under ``sibling_params``
    (``detect.siblings.Params``; default its ``PARAMS``)."""
    from tqdm.auto import tqdm

    from benchmarks.detection import load_set
    from harmony_eval.detect.siblings import PARAMS as SIBLING_PARAMS
    from harmony_eval.detect.siblings import signature

    sp = SIBLING_PARAMS if sibling_params is None else sibling_params

    boxes = json.loads(BOXES.read_text())
    report: dict[str, Any] = {}
    bodies: list[tuple[str, np.ndarray]] = []
    sib: dict[str, list] = {}  # row -> [(group, label, signature, faces, truth)]
    thumbs: list[tuple[str, np.ndarray]] = []  # (source, small copy): other drawings for fp/sib_other
    for src in sources:
        t0 = time.perf_counter()
        items = load_set(data, src)
        res, var = [], {k: [] for k in VARIANTS}
        for label, img, truth in tqdm(items, desc=src, disable=not progress, leave=False):
            truth = truth or (tuple(boxes[f"{src}/{label}"]) if f"{src}/{label}" in boxes else None)
            if src == "crops":
                truth = (0, 0, img.shape[1], img.shape[0])  # a tight crop is the face
            faces = find(img)
            res.append(([f.box for f in faces], truth))
            group = label.rsplit("/", 1)[0] if "/" in label else src
            if siblings:
                sib.setdefault(src, []).append((group, label, signature(img, sp), faces, truth))
                thumbs.append((src, _thumb(img)))
            if src not in VARIANT_SOURCES or truth is None:
                continue
            for k in VARIANTS:
                vimg, vbox = variant(k, img, truth)
                vfaces = find(vimg)
                var[k].append(([f.box for f in vfaces], vbox))
                if siblings:
                    sib.setdefault(f"{k}/{src}", []).append((group, label, signature(vimg, sp), vfaces, vbox))
            below = img[min(img.shape[0], truth[3] + (truth[3] - truth[1]) // 3) :]
            if below.shape[0] >= 0.5 * img.shape[1]:
                bodies.append((f"{src}/{label}", np.ascontiguousarray(below)))
        report[src] = {**_rate(res), "s": round(time.perf_counter() - t0, 1)}
        for k, r in var.items():
            if r:
                report[f"{k}/{src}"] = _rate(r)
    if siblings:
        from benchmarks.face_siblings import sibling_rows

        report.update(sibling_rows(sib, thumbs, sp))
    if negatives:
        report.update(false_positives(data, find, bodies, progress))
    return report


def _thumb(img: np.ndarray, side: int = 256) -> np.ndarray:
    import cv2

    s = min(1.0, side / max(img.shape[:2]))
    size = (max(1, round(img.shape[1] * s)), max(1, round(img.shape[0] * s)))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA)


def false_positives(data: Path, find: Finder, bodies: list, progress: bool) -> dict[str, Any]:
    """Faces where there are none (noise, sprite bodies) or too many (sample grids); crowd counts."""
    from tqdm.auto import tqdm

    from harmony_eval.imageio import load_image

    out: dict[str, Any] = {}
    for name, imgs in (("noise", noise_images()), ("bodies", bodies)):
        hits = [lab for lab, im in tqdm(imgs, desc=name, disable=not progress, leave=False) if find(im)]
        out[f"fp/{name}"] = {"n": len(imgs), "images_with_face": len(hits), "which": hits[:8]}
    det = data / "detection"
    grids = sorted((det / "gan_sample_grids").glob("*")) + [det / "tadne_grid_6x6.jpg"]
    rows, false, total = {}, 0, 0
    for p in grids if det.is_dir() else []:
        img = load_image(p).rgb
        tile = 512 if p.name.startswith("tadne") else grid_tiles(img)
        faces = [f.box for f in find(img)]
        f = grid_false(faces, tile) if tile else 0
        rows[p.name] = f"{len(faces)} faces, {f} false"
        false, total = false + f, total + len(faces)
    for p in sorted(det.glob("crowd_*")) if det.is_dir() else []:
        rows[p.name] = f"{len(find(load_image(p).rgb))} faces (no truth)"
    out["fp/grids"] = {"faces": total, "false": false, "per_image": rows}
    return out


def write_boxes(data: Path, find: Finder, sources: tuple[str, ...]) -> int:
    """Freeze the true face box of every sprite-like original: listed boxes (hand-drawn where the
    cascade found none) stay, unlisted ones become the cascade's main face."""
    from benchmarks.detection import load_set

    boxes = json.loads(BOXES.read_text()) if BOXES.is_file() else {}
    missing = []
    for src in (s for s in sources if s in VARIANT_SOURCES):
        for label, img, _ in load_set(data, src):
            key = f"{src}/{label}"
            if key not in boxes:
                faces = find(img)
                if faces:
                    boxes[key] = list(faces[0].box)
                else:
                    missing.append(key)
    rows = (f" {json.dumps(k)}: {json.dumps(v)}" for k, v in sorted(boxes.items()))
    BOXES.write_text("{\n" + ",\n".join(rows) + "\n}\n")  # one image a line: diffs stay readable
    print(f"{len(boxes)} boxes in {BOXES}; no face, box them by hand: {missing}")
    return 0


def param_misfit(overrides: Any, siblings: bool) -> str | None:
    """Why ``overrides`` would change nothing in this table (``None`` when each one counts): a
    module that is not a detector's (``mouth.*`` moves readings, not boxes), or ``siblings.*``
    without ``--siblings`` (only the sibling rows read it)."""
    for name, _ in overrides:
        module = name.partition(".")[0]
        if module not in DETECTOR_MODULES:
            return (
                f"{name} changes readings, not face finding; this table takes "
                f"{', '.join(m + '.*' for m in DETECTOR_MODULES)}"
            )
        if module == "siblings" and not siblings:
            return f"{name} changes only the sibling fallback's rows; add --siblings"
    return None


def default_finder(params: Any = ()) -> Finder:
    """The scoring cascade without MediaPipe (its model is optional), under the detector constant
    overrides ``params`` (``--param crop.min_peak=45``: any form ``harmony_eval.params`` takes),
    built as ``Scorer`` builds it."""
    from harmony_eval.detect import find_faces
    from harmony_eval.pipeline import Scorer

    dets = Scorer(backend="anatomy", detectors=["animeface", "crop"], params=params).detectors
    return lambda img: find_faces(img, dets)[0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data", help="shared data folder")
    ap.add_argument("--sources", default=",".join(SOURCES), help=f"comma list of {SOURCES}")
    ap.add_argument("--no-negatives", action="store_true", help="skip the false-positive sets")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    ap.add_argument("--siblings", action="store_true", help="also the sibling fallback's rows")
    ap.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="MODULE.FIELD=VALUE",
        help="a detector constant to judge (animeface.*, crop.*; siblings.* with --siblings; repeatable), as score --param",
    )
    ap.add_argument(
        "--write-boxes",
        action="store_true",
        help=f"add the cascade's boxes of unlisted originals to {BOXES.name}",
    )
    args = ap.parse_args(argv)
    if not args.data.is_dir():
        print(f"--data {args.data}: not a folder; pass --data path/to/shared/data.", file=sys.stderr)
        return 2
    srcs = tuple(s for s in args.sources.split(",") if s)
    bad = [s for s in srcs if s not in SOURCES]
    if bad:
        print(f"--sources: unknown {bad}; choose from {SOURCES}.", file=sys.stderr)
        return 2
    sys.path.insert(0, str(ROOT))
    from harmony_eval.params import MeasureParams, ParamError

    try:
        params = MeasureParams.from_overrides(args.param)
    except ParamError as e:
        print(f"--param: {e}", file=sys.stderr)
        return 2
    off = param_misfit(params.overrides, args.siblings)
    if off:
        print(f"--param: {off}", file=sys.stderr)
        return 2
    if args.write_boxes:
        return write_boxes(args.data, default_finder(params.overrides), srcs)
    rep = evaluate(
        args.data, default_finder(params.overrides), srcs, sys.stderr.isatty(), not args.no_negatives,
        args.siblings, params.siblings,
    )  # fmt: skip
    if args.json:
        print(json.dumps(rep, indent=1))
        return 0
    for key, row in rep.items():
        cells = "  ".join(f"{k}={v}" for k, v in row.items() if k != "per_image")
        print(f"{key:18s} {cells}")
        for lab, v in row.get("per_image", {}).items():
            print(f"{'':18s}   {lab}: {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
