"""Face detection on the shared real-art sets: found rate per set and ms per image per detector.

    python benchmarks/detection.py --data ../shared/data [--json] [--sets sprites,crops]

The cascade runs as scoring runs it (``find_faces``: the first detector with a face wins, with the
detectors' own box fixes and the second looks on a sprite's drawn part); ``--per-detector`` also
runs each detector alone. Times are wall-clock ms on this machine (its load at the time counts) and
CPU ms of this process (less sensitive to other jobs; includes MediaPipe's threads).

Sets (see ../shared/data/README.md): ``sprites`` (28 full-body RGBA sprites), ``crops`` (88 tight
grayscale TV crops), ``shots`` (69 hand-boxed faces in screenshots: a hit is IoU >= 0.3 with the
box or the detected centre inside it), ``tadne`` (the 36 512 px tiles of the TADNE grid, one face
each), ``renpy`` / ``dialogic`` (the 13 + 25 MIT sprites and portraits of ``permissive/``, two
sources; read from ``tests/fixtures/permissive`` when DATA has no copy), ``grids`` (whole collages and crowd art: faces found per image, cascade and animeface in
exhaustive mode).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SETS = ("sprites", "crops", "shots", "tadne", "renpy", "dialogic", "zundamon", "tall", "chin", "grids")
#: Sources the derived ``tall`` / ``chin`` sets are made from (one face each, found on the original).
VARIANT_SOURCES = ("sprites", "tadne", "renpy", "dialogic", "zundamon")
#: The MIT sprites bundled with the tests (the same files as ``DATA/permissive``).
FIXTURE = ROOT / "tests" / "fixtures" / "permissive"


def hit(boxes: list[tuple[int, int, int, int]], truth: tuple[int, int, int, int]) -> bool:
    """A detection matches a hand box: IoU >= 0.3, or the detected box's centre lies inside it."""
    from harmony_eval.detect._geometry import iou

    for b in boxes:
        cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
        if iou(b, truth) >= 0.3 or (truth[0] <= cx <= truth[2] and truth[1] <= cy <= truth[3]):
            return True
    return False


def load_set(data: Path, name: str) -> list[tuple[str, np.ndarray, Any]]:
    """``[(label, rgb image, truth box or None)]`` of one set."""
    from harmony_eval.imageio import load_image

    if name == "sprites":
        return [(p.name, load_image(p).rgb, None) for p in sorted((data / "dev/seraphina").glob("*.png"))]
    if name == "crops":
        files = sorted((data / "dev/anime_face_classifier/emotions_dataset").glob("*/*.png"))
        return [(f"{p.parent.name}/{p.name}", load_image(p).rgb, None) for p in files]
    if name == "shots":
        root = data / "dev/anime_face_classifier"
        with open(root / "face_boxes.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        out = []
        for r in rows:
            x, y, w, h = (int(r[k]) for k in "xywh")
            out.append((r["file"], load_image(root / r["file"]).rgb, (x, y, x + w, y + h)))
        return out
    if name == "tadne":
        grid = load_image(data / "detection/tadne_grid_6x6.jpg").rgb
        return [
            (
                f"tile_{i}_{j}",
                np.ascontiguousarray(grid[i * 512 : (i + 1) * 512, j * 512 : (j + 1) * 512]),
                None,
            )
            for i in range(6)
            for j in range(6)
        ]
    if name in ("renpy", "dialogic"):
        folder = data / "permissive" if (data / "permissive" / "labels.csv").is_file() else FIXTURE
        with open(folder / "labels.csv", newline="", encoding="utf-8") as fh:
            rows = [r for r in csv.DictReader(fh) if r["source"].split("/")[0].startswith(name)]
        return [(r["file"], load_image(folder / r["file"]).rgb, None) for r in rows]
    if name == "zundamon":
        sys.path.insert(0, str(ROOT))
        from benchmarks.anatomy_eval import Zundamon, zundamon_faces

        z = Zundamon(data / "dev/zundamon")
        originals, _ = zundamon_faces(data / "dev/zundamon")
        return [
            (f"z{i:02d}", z.compose(f.brows, f.eyes, f.mouth, full=True), None)
            for i, f in enumerate(originals)
        ]
    if name in ("tall", "chin"):
        return _variants(data, name)
    if name == "grids":
        files = [data / "detection/tadne_grid_6x6.jpg", *sorted((data / "detection").glob("crowd_*.png"))]
        files += sorted((data / "detection/gan_sample_grids").glob("*"))
        return [(p.name, load_image(p).rgb, None) for p in files]
    raise ValueError(f"Unknown set {name!r}; choose from {SETS}.")


def _variants(data: Path, kind: str) -> list[tuple[str, np.ndarray, Any]]:
    """Held-out failure modes made from every source's images (label ``source/file``, truth = the
    face the default cascade finds on the original, moved with the image):

    - ``tall``: a full-body sprite with a small face: the image on a canvas of its border colour
      2.5 x as tall (the face's share of the long side drops 2.5 x; 8-12 % of it for the sprites);
    - ``chin``: a close-up cut at the chin: the face plus 0.5 face widths each side and 0.6 face
      heights above, cut 10 % of the face height above its box's bottom, enlarged to a 640 px long side.
    """
    import cv2

    from harmony_eval.detect import build_detectors, find_faces
    from harmony_eval.detect._geometry import background_colour

    dets = build_detectors(["animeface", "crop"])
    out = []
    for src in VARIANT_SOURCES:
        for label, img, _ in load_set(data, src):
            faces, _ = find_faces(img, dets)
            if not faces:
                continue
            x0, y0, x1, y1 = faces[0].box
            h, w = img.shape[:2]
            if kind == "tall":
                edge = background_colour(img).astype(np.uint8)
                canvas = np.empty((int(2.5 * h), w, 3), np.uint8)
                canvas[:] = edge
                canvas[:h] = img
                out.append((f"{src}/{label}", canvas, (x0, y0, x1, y1)))
                continue
            fw, fh = x1 - x0, y1 - y0
            cx0, cy0 = max(0, int(x0 - 0.5 * fw)), max(0, int(y0 - 0.6 * fh))
            cx1, cy1 = min(w, int(x1 + 0.5 * fw)), min(h, int(y1 - 0.1 * fh))
            crop = img[cy0:cy1, cx0:cx1]
            s = 640 / max(crop.shape[:2])
            crop = cv2.resize(
                crop, (round(crop.shape[1] * s), round(crop.shape[0] * s)), interpolation=cv2.INTER_LINEAR
            )
            truth = tuple(
                int(round(v)) for v in ((x0 - cx0) * s, (y0 - cy0) * s, (x1 - cx0) * s, (cy1 - cy0) * s)
            )
            out.append((f"{src}/{label}", np.ascontiguousarray(crop), truth))
    return out


def run_set(items: list, detectors: list, progress: bool, per_detector: bool = False) -> dict[str, Any]:
    """The cascade (``find_faces``: first detector with a face, its own box fixes, the second looks
    on the drawn part) on each image; with ``per_detector`` each detector alone too."""
    from tqdm.auto import tqdm

    from harmony_eval.detect import find_faces

    truths = [t for _, _, t in items]
    rows: dict[str, dict[str, Any]] = {}
    for d in detectors if per_detector else []:
        res = []
        for _, img, _ in tqdm(items, disable=not progress, leave=False, unit="img", desc=d.name):
            w0, c0 = time.perf_counter(), time.process_time()
            faces = d.detect(img)
            res.append(([f.box for f in faces], time.perf_counter() - w0, time.process_time() - c0))
        rows[d.name] = _summary([r[0] for r in res], [r[1] for r in res], [r[2] for r in res], truths)
    boxes, wall, cpu, winners = [], [], [], {}
    for _, img, _ in tqdm(items, disable=not progress, leave=False, unit="img", desc="cascade"):
        w0, c0 = time.perf_counter(), time.process_time()
        faces, won = find_faces(img, detectors)
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
        boxes.append([f.box for f in faces])
        winners[won] = winners.get(won, 0) + 1
    rows["cascade"] = {**_summary(boxes, wall, cpu, truths), "won_by": winners}
    return rows


def _summary(boxes: list, wall: list, cpu: list, truths: list) -> dict[str, Any]:
    n = len(boxes)
    out: dict[str, Any] = {
        "n": n,
        "found": round(sum(bool(b) for b in boxes) / n, 3),
        "faces_mean": round(float(np.mean([len(b) for b in boxes])), 2),
        "wall_ms": round(1000 * float(np.mean(wall)), 1),
        "wall_ms_p90": round(1000 * float(np.percentile(wall, 90)), 1),
        "cpu_ms": round(1000 * float(np.mean(cpu)), 1),
    }
    if any(t is not None for t in truths):
        out["hit"] = round(sum(hit(b, t) for b, t in zip(boxes, truths, strict=True) if t) / n, 3)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data", help="shared data folder")
    ap.add_argument("--sets", default=",".join(SETS), help=f"comma list of {SETS}")
    ap.add_argument("--detectors", default="animeface,mediapipe,crop", help="cascade, comma list")
    ap.add_argument(
        "--mediapipe-model", type=Path, default=None, help="default: DATA/../models/face_landmarker.task"
    )
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    ap.add_argument("--per-detector", action="store_true", help="also time each detector alone")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    if not args.data.is_dir():
        print(f"--data {args.data}: not a folder (expected ../shared/data)", file=sys.stderr)
        return 2
    from harmony_eval.detect import build_detectors

    names = [n for n in args.detectors.split(",") if n]
    model = args.mediapipe_model or args.data.parent / "models" / "face_landmarker.task"
    opts = {"mediapipe_model": model} if "mediapipe" in names and model.is_file() else {}
    if "mediapipe" in names and not opts:
        print(f"no MediaPipe model at {model}: leaving mediapipe out", file=sys.stderr)
        names.remove("mediapipe")
    detectors = build_detectors(names, {"mediapipe": {"model": opts["mediapipe_model"]}} if opts else None)
    progress = not args.no_progress and sys.stderr.isatty()
    report: dict[str, Any] = {}
    for s in [s for s in args.sets.split(",") if s]:
        items = load_set(args.data, s)
        if s == "grids":
            report[s] = _grids(items, detectors, progress)
        elif s in ("tall", "chin"):
            for src in VARIANT_SOURCES:
                sub = [it for it in items if it[0].startswith(src + "/")]
                if sub:
                    report[f"{s}/{src}"] = run_set(sub, detectors, progress, args.per_detector)
                    if not args.json:
                        _print(f"{s}/{src}", report[f"{s}/{src}"])
            continue
        else:
            report[s] = run_set(items, detectors, progress, args.per_detector)
        if not args.json:
            _print(s, report[s])
    if args.json:
        print(json.dumps(report, indent=1))
    return 0


def _grids(items: list, detectors: list, progress: bool) -> dict[str, Any]:
    """Faces per collage: the cascade, and animeface run exhaustively (every pass, merged)."""
    from harmony_eval.detect import find_faces
    from harmony_eval.detect.animeface import AnimeFaceDetector

    exhaustive = AnimeFaceDetector(exhaustive=True)
    out = {}
    for label, img, _ in items:
        t0 = time.perf_counter()
        faces, name = find_faces(img, detectors)
        t1 = time.perf_counter()
        every = exhaustive.detect(img)
        t2 = time.perf_counter()
        out[label] = {
            "size": f"{img.shape[1]}x{img.shape[0]}",
            "cascade_faces": len(faces),
            "detector": name,
            "cascade_s": round(t1 - t0, 2),
            "exhaustive_faces": len(every),
            "exhaustive_s": round(t2 - t1, 2),
        }
        if label.startswith("tadne"):
            out[label]["exhaustive_tiles"] = len(
                {(int((b[0] + b[2]) / 1024), int((b[1] + b[3]) / 1024)) for b in (f.box for f in every)}
            )
    return out


def _print(name: str, rows: dict[str, Any]) -> None:
    print(f"\n== {name}")
    first = next(iter(rows.values()))
    cols = [c for c in first if c != "won_by"]
    print("  " + f"{'':22s}" + "".join(f"{c:>17s}" for c in cols))
    for key, r in rows.items():
        print("  " + f"{key:22s}" + "".join(f"{str(r.get(c, '')):>17s}" for c in cols))
        if "won_by" in r:
            print(f"  {'':22s}won by: {r['won_by']}")


if __name__ == "__main__":
    raise SystemExit(main())
