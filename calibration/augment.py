"""Mirror augmentation: a face mirrored left-right shows the same emotion, so each labelled face also
stands for its mirror image, which doubles the rows a ``full`` model is fitted on.

    Xm = mirrored_matrix(named, names)      # (N, F): row i is image i mirrored, column j names[j]

The mirror is read from the features alone (no image): anatomy groups of one side swap with the
other (``left_eye:*`` <-> ``right_eye:*``; the region measurements are defined from inner and outer
ends, so a mirror keeps them) and each crop descriptor is permuted by
``harmony_eval.descriptors.mirror_order`` (exact for LBP and grey crops; for HOG exact except where a
gradient is exactly horizontal, which scikit-image bins as 0 degrees mirrored or not). Only training
rows are mirrored: a model is judged on the images as they are (``fit_estimator`` keeps an image and
its mirror in the same fold, so the calibration map sees no copy of a face it was fitted on).

Measured, and therefore off by default (``FitOptions.mirror``): within-source learning curves of the
face reader (``full`` + temperature over anatomy + HOG, C 0.5; 10 fixed 30 % test splits x 4 random label
orders; mirrored minus plain, paired, mean +- SE over splits) at 8 / 16 / 32 / all labels:
afc +0.02 / -0.00 / -0.01 / -0.03 +- 0.02 (46), seraphina -0.06 +- 0.04 (7), permissive and zundamon
+0.00, pooled +0.01 / +0.01 / +0.02 / +0.03 +- 0.02 (72). Mirrors read from the flipped images
instead of this permutation gave the same on afc (-0.03 +- 0.02 at 46), so the HOG approximation is
not what fails: a mirrored face adds little a linear reader over these features did not have.
Descriptors alone gained from it (afc +0.02 to +0.04) but stay far below anatomy + HOG.
With the present defaults (features ``auto``, C 0.05) it still costs afc -0.01 +- 0.01 / -0.04 +- 0.02
at 32 / 46 labels and gives pooled nothing (-0.00 / +0.01 / -0.02 +- 0.02 at 32 / 48 / 72).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from harmony_eval.descriptors import KINDS, SPECS, mirror_order

_SIDES = (("left_", "right_"), ("right_", "left_"))
_DESC = re.compile(rf"^({'|'.join(KINDS)})(\d+)$")


@lru_cache(maxsize=16)
def _order(group: str, kind: str) -> tuple[int, ...]:
    return tuple(int(i) for i in mirror_order(SPECS[group], kind))


def mirror_name(name: str) -> str:
    """The feature of the unmirrored face that ``name`` holds in its mirror image (``group:feature``)."""
    group, sep, feat = name.partition(":")
    for a, b in _SIDES:
        if group.startswith(a):
            return f"{b}{group[len(a) :]}{sep}{feat}"
    m = _DESC.match(feat)
    if group in SPECS and m:
        order = _order(group, m.group(1))
        j = int(m.group(2))
        if j < len(order):
            return f"{group}:{m.group(1)}{order[j]}"
    return name


def mirrored_matrix(named: Sequence[dict[str, float]], names: Sequence[str]) -> np.ndarray:
    """``(N, F)``: the features ``names`` of each image of ``named`` mirrored (NaN where missing).
    A name whose mirror partner no image has (one side only) keeps its own value."""
    seen = {k for d in named for k in d}
    src = [m if (m := mirror_name(n)) in seen else n for n in names]
    return np.array([[d.get(s, np.nan) for s in src] for d in named], dtype=float).reshape(
        len(named), len(names)
    )
