"""Does a face read the same when it is drawn smaller? A label-free check of the measurements.

    python -m benchmarks.scale_consistency [--data ../shared/data] [--sizes 72,48] [--json]

Full-body sprites draw the face small (40-80 px wide), and a face that small is read through an
upscaled crop: whatever the emotion labels say, a reading that changes when the same drawing is only
made smaller is a measurement fault. For every sprite-like original of ``benchmarks.face_finding``'s
sources whose frozen true face box (``benchmarks/face_boxes.json``) is at least ``MIN_NATIVE`` px
wide, the whole image is shrunk (area resampling) so the face is ``W`` px wide and scored by the
default reader with the default detectors. Per source and size, over faces found on the true box at
both sizes:

- ``same_top``: share of faces whose emotion (top of the pooled reading) is the native one;
- ``tv``: mean total-variation distance of each region's and the pooled reading from the native;
- ``tv_random``: the pooled reading's distance between two *different* native faces of the source
  (mean over all pairs): what no consistency at all looks like.

No labels are read, so no source is in-sample: a change that moves ``tv`` down on every source made
the measurements less sensitive to face size. Measured with it (87 faces of 5 sources; pooled over
sources, faces shrunk to 96 / 72 / 56 / 40 px): ``same_top`` 0.84 / 0.64 / 0.64 / 0.49 and pooled
``tv`` 0.10 / 0.18 / 0.21 / 0.27, where two different faces are 0.45 apart: a face under ~80 px is
read about halfway to a random reading, hence the verdict's ``small_face`` flag. Bicubic instead of
bilinear enlargement of the canvas (``anatomy.common.Params.upscale``) gave 0.10 / 0.16 / 0.20 / 0.26
pooled but was worse on dialogic and renpy at 56 px (0.15 -> 0.17, 0.21 -> 0.26): not kept.

``--variants chin,tight,body`` compares the close-ups and stretched bodies of ``face_finding``
instead: same top 0.81 / 0.78 / 0.81 pooled (``body`` leaves the face's pixels as they are, so its
0.81 is what a different detector box alone does; moving the true box 5 % or scaling it 8 % changes
the emotion of 25 % of faces, the eyes reading most). Averaging the readings of 7 such boxes was
judged on the labelled sets and dropped: afc 0.62 -> 0.64, zundamon 0.88 -> 1.00, but seraphina 0.69
-> 0.56 and permissive unmoved.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BOXES = ROOT / "benchmarks" / "face_boxes.json"
SOURCES = ("sprites", "tadne", "renpy", "dialogic", "zundamon")
REGIONS = ("eyes", "brows", "mouth")
MIN_NATIVE = 128  # px: a smaller native face is itself a small face, no reference to compare with
Job = tuple[str, str, Any, np.ndarray, tuple[float, float, float, float]]


def tv(p: dict[str, float] | None, q: dict[str, float] | None) -> float | None:
    """Total-variation distance of two readings over the same emotions (``None`` if one is missing).

    >>> tv({"a": 0.75, "b": 0.25}, {"a": 0.25, "b": 0.75})
    0.5
    """
    if not p or not q:
        return None
    return 0.5 * sum(abs(p[e] - q[e]) for e in p)


def shrink_jobs(
    items: list[tuple[str, str, np.ndarray]],
    boxes: dict[str, list[int]],
    sizes: tuple[int, ...],
    kinds: tuple[str, ...] = (),
) -> list[Job]:
    """``(source, label, variant, image, true box)`` for every ``(source, label, rgb)`` with a true box
    of at least ``MIN_NATIVE`` px: the native image (variant ``"native"``), one copy per ``sizes`` whose
    face is that many px wide, and one per ``kinds`` of ``benchmarks.face_finding.variant`` (``chin``:
    a close-up cut at the chin; ``body``, ``tall``, ``jpeg``); the box moves with the image."""
    import cv2

    from benchmarks.face_finding import variant

    out: list[Job] = []
    for src, label, rgb in items:
        b = boxes.get(f"{src}/{label}")
        if not b or b[2] - b[0] < MIN_NATIVE:
            continue
        for w in ("native", *sizes):
            s = 1.0 if w == "native" else w / (b[2] - b[0])
            img = rgb if s == 1.0 else cv2.resize(rgb, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
            out.append((src, label, w, img, (b[0] * s, b[1] * s, b[2] * s, b[3] * s)))
        for kind in kinds:
            img, box = variant(kind, rgb, tuple(b))
            out.append((src, label, kind, img, tuple(float(v) for v in box)))
    return out


def consistency(rows: dict[tuple[str, str, Any], dict | None]) -> dict[str, dict[str, Any]]:
    """The module's figures from ``{(source, label, size): output row, or None when the face was not
    found on its true box}``, keyed ``"<source>/<size>"`` plus ``"all/<size>"``."""
    cells: dict[tuple[str, Any], dict[str, Any]] = {}
    for (src, label, w), row in rows.items():
        nat = rows.get((src, label, "native"))
        if w == "native" or row is None or nat is None:
            continue
        for key in ((src, w), ("all", w)):
            c = cells.setdefault(key, {"n": 0, "same": 0, **{r: [] for r in (*REGIONS, "pooled")}})
            c["n"] += 1
            c["same"] += row["emotion"] == nat["emotion"]
            for r in REGIONS:
                d = tv(*(((x.get("regions") or {}).get(r) or {}).get("probs") for x in (row, nat)))
                if d is not None:
                    c[r].append(d)
            c["pooled"].append(tv(row["probs"], nat["probs"]))
    natives: dict[str, list[dict]] = {}
    for (src, _, w), row in sorted(rows.items(), key=lambda t: str(t[0])):
        if w == "native" and row is not None:
            natives.setdefault(src, []).append(row["probs"])
    natives["all"] = [p for s, ps in natives.items() for p in ps]
    out = {}
    order = {w: i for i, w in enumerate(dict.fromkeys(w for _, _, w in rows))}  # variants as given
    for (src, w), c in sorted(cells.items(), key=lambda t: (t[0][0] == "all", t[0][0], order[t[0][1]])):
        pairs = [tv(a, b) for a, b in combinations(natives.get(src, []), 2)]
        out[f"{src}/{w}"] = {
            "n": c["n"],
            "same_top": round(c["same"] / c["n"], 3),
            "tv": {r: round(float(np.mean(c[r])), 3) if c[r] else None for r in (*REGIONS, "pooled")},
            "tv_random": round(float(np.mean(pairs)), 3) if pairs else None,
        }
    return out


def measure(
    data: Path, sizes: tuple[int, ...], sources: tuple[str, ...], progress: bool, kinds: tuple[str, ...] = ()
) -> dict[str, Any]:
    from PIL import Image

    from benchmarks.detection import hit, load_set
    from benchmarks.validity_data import FOUR
    from calibration.features import score_images

    boxes = json.loads(BOXES.read_text())
    items = [(src, label, rgb) for src in sources for label, rgb, _ in load_set(data, src)]
    jobs = shrink_jobs(items, boxes, sizes, kinds)
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for i, (src, _, w, img, _) in enumerate(jobs):
            files.append(str(Path(tmp) / f"{i:04d}_{src}_{w}.png"))
            Image.fromarray(img).save(files[-1])
        _, scored = score_images(files, backend="anatomy", emotions=FOUR, workers=2, progress=progress)
    rows = {}
    for (src, label, w, _, b), s in zip(jobs, scored, strict=True):
        found = s.ok and bool(s.prep.faces) and hit([tuple(s.prep.faces[0].box)], tuple(round(v) for v in b))
        rows[(src, label, w)] = s.row if found else None
    return consistency(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--sizes", default="72,48", help="face widths (px) to shrink to, comma-separated")
    ap.add_argument("--variants", default="", help="also these face_finding variants, e.g. chin,body")
    ap.add_argument("--sources", default=",".join(SOURCES), help=f"comma-separated, of {', '.join(SOURCES)}")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    sources = tuple(s for s in args.sources.split(",") if s)
    bad = [s for s in sources if s not in SOURCES]
    if bad:
        ap.error(f"--sources: unknown {bad}; choose from {', '.join(SOURCES)}")
    try:
        sizes = tuple(int(s) for s in args.sizes.split(",") if s)
    except ValueError:
        ap.error(f"--sizes {args.sizes!r}: expected comma-separated integers such as 72,48")
    kinds = tuple(k for k in args.variants.split(",") if k)
    bad = [k for k in kinds if k not in ("tall", "body", "chin", "tight", "jpeg")]
    if bad:
        ap.error(f"--variants: unknown {bad}; choose from tall, body, chin, tight, jpeg")
    if not args.data.is_dir():
        sources = tuple(s for s in sources if s in ("renpy", "dialogic"))  # the bundled fixture
        print(f"{args.data} not found: measuring the bundled permissive sprites only", file=sys.stderr)
    res = measure(args.data, sizes, sources, progress=not args.no_progress, kinds=kinds)
    if args.json:
        print(json.dumps(res, indent=1))
        return 0
    print("| source / variant | n | same top | TV eyes / brows / mouth / pooled | TV random pair |")
    print("| --- | --- | --- | --- | --- |")
    for k, r in res.items():
        t = " / ".join("-" if r["tv"][x] is None else f"{r['tv'][x]:.2f}" for x in (*REGIONS, "pooled"))
        print(f"| {k} | {r['n']} | {r['same_top']:.2f} | {t} | {r['tv_random'] or '-'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
