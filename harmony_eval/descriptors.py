"""Generic crop descriptors: what a learned region reader reads besides the anatomy measurements.

    feats = region_descriptors(image, regions)     # {"eyes_desc": (F,), "brows_desc": ..., ...}
    names = DESCRIPTOR_NAMES["mouth_desc"]         # ["hog0", "hog1", ...]

Each region crop (both eyes together, both brows, the mouth, the whole face) is turned grey, its
contrast stretched (1st-99th percentile to 0-1: line art, grey art and colour art then look alike),
resized to a fixed size and described by a histogram of oriented gradients (HOG, Dalal & Triggs;
``skimage.feature.hog``, L2-Hys blocks). HOG keeps the shape of the strokes (a mouth's curve, a
brow's slope, an eye's lid) and drops colour and absolute brightness, which differ most between
styles. A missing region gives NaN (imputed by the reader).

Why HOG and these sizes: chosen by the leave-one-source-out table of ``benchmarks.validity`` (HOG
against a normalised grey crop and against anatomy measurements alone); see the README's measured
table. Sizes are (width, height) in pixels, cells of ``CELL`` pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .types import Box


@dataclass(frozen=True)
class DescriptorSpec:
    """One region's descriptor: which box, resized to ``size`` (w, h), HOG with ``cell`` px cells."""

    box: str
    size: tuple[int, int]
    cell: int = 8
    orientations: int = 9
    pad: float = 0.15  # grow the box by this share of its size on each side (strokes at its edge)


#: feature group -> its spec. Group names end in ``_desc`` so a reader of region ``r`` finds ``r_desc``.
SPECS: dict[str, DescriptorSpec] = {
    "eyes_desc": DescriptorSpec("eyes", (64, 24)),
    "brows_desc": DescriptorSpec("brows", (64, 16)),
    "mouth_desc": DescriptorSpec("mouth", (32, 16), cell=8, pad=0.25),
    "face_desc": DescriptorSpec("face", (48, 48), cell=12, pad=0.0),
}


def _hog_len(spec: DescriptorSpec) -> int:
    cx, cy = spec.size[0] // spec.cell, spec.size[1] // spec.cell
    bx, by = max(1, cx - 1), max(1, cy - 1)
    return bx * by * 4 * spec.orientations


DESCRIPTOR_NAMES: dict[str, list[str]] = {
    g: [f"hog{i}" for i in range(_hog_len(s))] for g, s in SPECS.items()
}


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


def describe(g: np.ndarray, box: Box | None, spec: DescriptorSpec) -> np.ndarray:
    """HOG of one region; NaN-filled when the box is missing."""
    from skimage.feature import hog

    n = _hog_len(spec)
    patch = crop(g, box, spec.pad) if box is not None else None
    if patch is None:
        return np.full(n, np.nan)
    v = hog(
        normalised(patch, spec.size),
        orientations=spec.orientations,
        pixels_per_cell=(spec.cell, spec.cell),
        cells_per_block=(2, 2) if min(spec.size) >= 2 * spec.cell else (1, 1),
        block_norm="L2-Hys",
        feature_vector=True,
    )
    if v.size != n:  # (1, 1) blocks for a one-cell-high size: pad to the declared length
        v = np.resize(v, n)
    return v.astype(float)


def region_descriptors(image: np.ndarray, regions: dict[str, Box | None]) -> dict[str, np.ndarray]:
    """Every ``SPECS`` group for one face: ``{group: (F,)}``, named by ``DESCRIPTOR_NAMES``."""
    g = grey(image)
    return {name: describe(g, regions.get(spec.box), spec) for name, spec in SPECS.items()}
