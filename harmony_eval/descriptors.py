"""Generic crop descriptors: what a learned region reader reads besides the anatomy measurements.

    feats = region_descriptors(image, regions)          # {"eyes_desc": (F,), "brows_desc": ..., ...}
    names = DESCRIPTOR_NAMES["mouth_desc"]              # ["hog0", "hog1", ...]
    lbp = region_descriptors(image, regions, "lbp")     # an alternative kind, names "lbp0", ...

Each region crop (both eyes together, both brows, the mouth, the whole face) is turned grey, its
contrast stretched (1st-99th percentile to 0-1: line art, grey art and colour art then look alike),
resized to a fixed size and described by one of three kinds (``KINDS``), all blind to a brightness
shift of the drawing:

- ``hog`` (the default): histogram of oriented gradients (Dalal & Triggs; ``skimage.feature.hog``,
  L2-Hys blocks): the shape of the strokes (a mouth's curve, a brow's slope, an eye's lid);
- ``lbp``: uniform local binary patterns (P=8, R=1; ``skimage.feature.local_binary_pattern``), one
  10-code histogram per cell of twice the HOG cell: local texture, blind to any monotone grey change;
- ``grey``: the crop itself at a few pixels (``DescriptorSpec.grey``, 16x16 for the face), zero
  mean, unit L2 norm: where the dark and light parts are.

A missing region gives NaN (imputed by the reader).

Why HOG: ``python -m benchmarks.validity`` (the README's table, clean checkout of a8a42c4; each
source read by a reader fitted on the other sources only; 4-class balanced accuracy, chance 0.25;
n = 69 / 19 / 11 / 9 / 108 faces; the README holds the current run):

| reader | afc | permissive | seraphina | zundamon | pooled [95% CI] |
| --- | --- | --- | --- | --- | --- |
| anatomy (no descriptor) | 0.56 | 0.66 | 0.62 | 0.38 | 0.59 [0.48, 0.70] |
| hog | 0.32 | 0.21 | 0.33 | 0.25 | 0.30 [0.23, 0.38] |
| lbp | 0.23 | 0.28 | 0.33 | 0.50 | 0.27 [0.20, 0.35] |
| grey | 0.31 | 0.28 | 0.25 | 0.38 | 0.29 [0.21, 0.38] |
| anatomy+hog | 0.52 | 0.66 | 0.62 | 0.25 | 0.53 [0.43, 0.65] |
| anatomy+lbp | 0.53 | 0.66 | 0.50 | 0.38 | 0.53 [0.42, 0.64] |
| anatomy+grey | 0.51 | 0.62 | 0.42 | 0.50 | 0.50 [0.40, 0.60] |

No kind transfers to a new source (alone, pooled 0.27-0.30) and none adds anything held out to the
measurements: the descriptors are for ``calibrate`` on the user's own style. Within a source (learned
face reader, random order, 5 fixed 30 % test splits x 4 orders; measured before the scaler's floor
``calibration.models.MIN_SPREAD``, which moved within-source cross-validation by <= 0.012) at 8 / 16 /
32 / all labels:

| features | afc (46 labels max) | pooled (72 max) |
| --- | --- | --- |
| anatomy | 0.50 / 0.45 / 0.54 / 0.60 | 0.52 / 0.47 / 0.55 / 0.61 |
| anatomy+hog | 0.50 / 0.46 / 0.55 / 0.57 | 0.51 / 0.44 / 0.53 / 0.63 |
| anatomy+lbp | 0.50 / 0.46 / 0.51 / 0.49 | 0.52 / 0.48 / 0.58 / 0.65 |
| anatomy+grey | 0.50 / 0.46 / 0.57 / 0.61 | 0.51 / 0.45 / 0.53 / 0.64 |
| hog / lbp / grey alone | 0.46 / 0.33 / 0.40 (all labels) | 0.43 / 0.30 / 0.39 |

HOG stays the default. Alone it is the best of the three pooled, held out (0.30 vs 0.27 / 0.29) and
within a source. With the measurements no kind is better on every source: LBP gains zundamon (+0.13)
and loses seraphina (-0.12), grey gains zundamon (+0.25) and loses seraphina (-0.20) and pooled
(-0.03); a kind that helps some sources and hurts others is not chosen. Within a source the three
differ by less than the spread over splits (sd 0.03-0.08 at full size), and add little to the
measurements on up to 72 labels (the issue's 0.82 at 280 labels was HOG alone on one style): they
are there for larger label sets. (Before the floor, every reader of the measurements read afc at
0.28-0.32; the kinds compared the same way.)
Sizes are (width, height) in pixels, cells of ``cell`` px.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .types import Box

#: descriptor kinds (``describe(..., kind=)``); ``DEFAULT_KIND`` is what the pipeline computes
KINDS = ("hog", "lbp", "grey")
DEFAULT_KIND = "hog"
LBP_POINTS, LBP_RADIUS = 8, 1  # uniform LBP: P + 2 = 10 codes (P + 1 uniform ones and "other")


@dataclass(frozen=True)
class DescriptorSpec:
    """One region's descriptor: which box, resized to ``size`` (w, h), HOG with ``cell`` px cells,
    LBP histograms over cells of ``2 * cell`` px, a grey crop of ``grey`` (w, h) px."""

    box: str
    size: tuple[int, int]
    cell: int = 8
    orientations: int = 9
    pad: float = 0.15  # grow the box by this share of its size on each side (strokes at its edge)
    grey: tuple[int, int] = (16, 8)


#: feature group -> its spec. Group names end in ``_desc`` so a reader of region ``r`` finds ``r_desc``.
SPECS: dict[str, DescriptorSpec] = {
    "eyes_desc": DescriptorSpec("eyes", (64, 24), grey=(16, 6)),
    "brows_desc": DescriptorSpec("brows", (64, 16), grey=(16, 4)),
    "mouth_desc": DescriptorSpec("mouth", (32, 16), cell=8, pad=0.25, grey=(12, 6)),
    "face_desc": DescriptorSpec("face", (48, 48), cell=12, pad=0.0, grey=(16, 16)),
}


def _hog_len(spec: DescriptorSpec) -> int:
    cx, cy = spec.size[0] // spec.cell, spec.size[1] // spec.cell
    bx, by = max(1, cx - 1), max(1, cy - 1)
    return bx * by * 4 * spec.orientations


def _lbp_grid(spec: DescriptorSpec) -> tuple[int, int]:
    """(columns, rows) of LBP histogram cells: cells twice the HOG cell (a histogram of 10 codes
    needs more pixels than one of 9 gradient bins to be more than noise)."""
    return max(1, spec.size[0] // (2 * spec.cell)), max(1, spec.size[1] // (2 * spec.cell))


def descriptor_length(spec: DescriptorSpec, kind: str = DEFAULT_KIND) -> int:
    """Length of ``spec``'s vector of descriptor ``kind``."""
    if kind == "hog":
        return _hog_len(spec)
    if kind == "lbp":
        cx, cy = _lbp_grid(spec)
        return cx * cy * (LBP_POINTS + 2)
    if kind == "grey":
        return spec.grey[0] * spec.grey[1]
    raise ValueError(f"descriptor kind {kind!r} is unknown; expected one of {list(KINDS)}")


def descriptor_names(kind: str = DEFAULT_KIND) -> dict[str, list[str]]:
    """``{group: [kind0, kind1, ...]}``: the feature names of every group for ``kind``."""
    return {g: [f"{kind}{i}" for i in range(descriptor_length(s, kind))] for g, s in SPECS.items()}


DESCRIPTOR_NAMES: dict[str, list[str]] = descriptor_names(DEFAULT_KIND)


def grey(image: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB -> ``(H, W)`` float32 luminance in [0, 1]."""
    return (image[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)) / 255.0


def crop(g: np.ndarray, box: Box, pad: float) -> np.ndarray | None:
    """The padded box cut from the grey image ``g``; ``None`` when it clips to nothing."""
    x0, y0, x1, y1 = box
    px, py = pad * (x1 - x0), pad * (y1 - y0)
    h, w = g.shape
    a, b = max(0, int(round(x0 - px))), max(0, int(round(y0 - py)))
    c, d = min(w, int(round(x1 + px))), min(h, int(round(y1 + py)))
    return g[b:d, a:c] if c - a >= 2 and d - b >= 2 else None


def normalised(patch: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Contrast-stretched (1st-99th percentile) and resized to ``size`` (w, h), values in [0, 1]."""
    import cv2

    lo, hi = np.percentile(patch, (1, 99))
    p = np.clip((patch - lo) / max(hi - lo, 1e-3), 0.0, 1.0).astype(np.float32)
    interp = cv2.INTER_AREA if patch.shape[1] > size[0] else cv2.INTER_LINEAR
    return cv2.resize(p, size, interpolation=interp)


def _hog(p: np.ndarray, spec: DescriptorSpec) -> np.ndarray:
    from skimage.feature import hog

    v = hog(
        p,
        orientations=spec.orientations,
        pixels_per_cell=(spec.cell, spec.cell),
        cells_per_block=(2, 2) if min(spec.size) >= 2 * spec.cell else (1, 1),
        block_norm="L2-Hys",
        feature_vector=True,
    )
    n = _hog_len(spec)
    return v if v.size == n else np.resize(v, n)  # (1, 1) blocks on a one-cell-high size: pad


def _lbp(p: np.ndarray, spec: DescriptorSpec) -> np.ndarray:
    """Per-cell histograms (each sums to 1) of uniform LBP codes of the stretched crop."""
    from skimage.feature import local_binary_pattern

    # integer grey levels: on floats, tiny differences between flat neighbours flip the codes
    codes = local_binary_pattern(np.round(p * 255).astype(np.uint8), LBP_POINTS, LBP_RADIUS, "uniform")
    cx, cy = _lbp_grid(spec)
    h, w = codes.shape
    out = []
    for r in range(cy):
        for c in range(cx):
            cell = codes[r * h // cy : (r + 1) * h // cy, c * w // cx : (c + 1) * w // cx]
            hist = np.bincount(cell.astype(int).ravel(), minlength=LBP_POINTS + 2)[: LBP_POINTS + 2]
            out.append(hist / max(1, cell.size))
    return np.concatenate(out)


def _grey_crop(patch: np.ndarray, spec: DescriptorSpec) -> np.ndarray:
    """The crop at ``spec.grey`` px, zero mean and unit L2 norm (a flat crop gives zeros): brightness
    and contrast of the style drop out, the layout of dark and light stays."""
    v = normalised(patch, spec.grey).astype(float).ravel()
    v -= v.mean()
    norm = np.linalg.norm(v)
    return v / norm if norm > 1e-9 else v


def describe(g: np.ndarray, box: Box | None, spec: DescriptorSpec, kind: str = DEFAULT_KIND) -> np.ndarray:
    """Descriptor ``kind`` of one region, ``(descriptor_length(spec, kind),)``; NaN-filled when the
    box is missing or clips to nothing."""
    n = descriptor_length(spec, kind)
    patch = crop(g, box, spec.pad) if box is not None else None
    if patch is None:
        return np.full(n, np.nan)
    if kind == "grey":
        return _grey_crop(patch, spec)
    p = normalised(patch, spec.size)
    return (_hog(p, spec) if kind == "hog" else _lbp(p, spec)).astype(float)


def region_descriptors(
    image: np.ndarray, regions: dict[str, Box | None], kind: str = DEFAULT_KIND
) -> dict[str, np.ndarray]:
    """Every ``SPECS`` group for one face: ``{group: (F,)}``, named by ``descriptor_names(kind)``."""
    if kind not in KINDS:
        raise ValueError(f"descriptor kind {kind!r} is unknown; expected one of {list(KINDS)}")
    g = grey(image)
    return {name: describe(g, regions.get(spec.box), spec, kind) for name, spec in SPECS.items()}


def mirror_order(spec: DescriptorSpec, kind: str = DEFAULT_KIND) -> np.ndarray:
    """``(descriptor_length(spec, kind),)`` indices such that ``v[mirror_order(spec, kind)]`` is the
    descriptor of the left-right mirrored crop, for ``v`` the descriptor of the crop: the layout is
    mirrored without the image. ``hog`` (blocks ``(rows, cols, 2, 2, orientations)``): block and cell
    columns reversed, and a gradient angle ``t`` becomes ``180 - t``, so bin ``i`` of
    ``[i, i + 1) * 180 / n`` becomes bin ``n - 1 - i``; exact except where a gradient is exactly
    horizontal in the resized crop (``t = 0`` stays in bin 0 in scikit-image, mirrored or not). ``lbp``:
    cell columns reversed (uniform codes count the set bits, which a mirror keeps). ``grey``: pixel
    columns reversed."""
    n = descriptor_length(spec, kind)
    if kind == "grey":
        return np.arange(n).reshape(spec.grey[1], spec.grey[0])[:, ::-1].ravel()
    if kind == "lbp":
        cx, cy = _lbp_grid(spec)
        return np.arange(n).reshape(cy, cx, LBP_POINTS + 2)[:, ::-1, :].ravel()
    cx, cy = spec.size[0] // spec.cell, spec.size[1] // spec.cell
    if min(spec.size) < 2 * spec.cell:  # one-cell blocks padded by np.resize: no block layout to mirror
        raise ValueError(f"descriptor {spec}: mirroring needs 2x2-cell HOG blocks (a size of 2+ cells)")
    o = spec.orientations
    idx = np.arange(n).reshape(cy - 1, cx - 1, 2, 2, o)
    return idx[:, ::-1, :, ::-1, :][..., (o - 1 - np.arange(o))].ravel()
