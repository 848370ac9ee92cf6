"""Face detection on the shared real-art sets: found rate per set and ms per image per detector.

    python benchmarks/detection.py --data ../shared/data [--json] [--sets sprites,crops]

Every detector runs on every image of a set once; the cascade's outcome (first detector with a face
wins) and its cost (the time of every detector it ran) follow from those runs, so the cascade is
measured without running anything twice (without ``find_faces``' rule for partial boxes on small
tight crops, which changes boxes, not the found rate). Times are wall-clock ms on this machine (its load at the
time counts) and CPU ms of this process (less sensitive to other jobs; includes MediaPipe's threads).

Sets (see ../shared/data/README.md): ``sprites`` (28 full-body RGBA sprites), ``crops`` (88 tight
grayscale TV crops), ``shots`` (69 hand-boxed faces in screenshots: a hit is IoU >= 0.3 with the
box or the detected centre inside it), ``tadne`` (the 36 512 px tiles of the TADNE grid, one face
each), ``grids`` (whole collages and crowd art: faces found per image, cascade and animeface in
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
SETS = ("sprites", "crops", "shots", "tadne", "grids")


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
    if name == "grids":
        files = [data / "detection/tadne_grid_6x6.jpg", *sorted((data / "detection").glob("crowd_*.png"))]
        files += sorted((data / "detection/gan_sample_grids").glob("*"))
        return [(p.name, load_image(p).rgb, None) for p in files]
    raise ValueError(f"Unknown set {name!r}; choose from {SETS}.")


def run_set(items: list, detectors: list, progress: bool) -> dict[str, Any]:
    """Run each detector on each image; summarise per detector and for the cascade."""
    from tqdm.auto import tqdm

    per: dict[str, list[tuple[list, float, float]]] = {d.name: [] for d in detectors}
    for _, img, _ in tqdm(items, disable=not progress, leave=False, unit="img"):
        for d in detectors:
            w0, c0 = time.perf_counter(), time.process_time()
            faces = d.detect(img)
            per[d.name].append(([f.box for f in faces], time.perf_counter() - w0, time.process_time() - c0))
    rows: dict[str, dict[str, Any]] = {}
    truths = [t for _, _, t in items]
    for name, res in per.items():
        rows[name] = _summary([r[0] for r in res], [r[1] for r in res], [r[2] for r in res], truths)
    # the cascade: first detector with a face; cost = all detectors up to and including it
    boxes, wall, cpu, winners = [], [], [], {}
    for i in range(len(items)):
        w = c = 0.0
        won, found = "none", []
        for d in detectors:
            b, dw, dc = per[d.name][i]
            w, c = w + dw, c + dc
            if b:
                won, found = d.name, b
                break
        boxes.append(found)
        wall.append(w)
        cpu.append(c)
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
        else:
            report[s] = run_set(items, detectors, progress)
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
