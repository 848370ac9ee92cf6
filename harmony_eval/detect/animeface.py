"""Anime face detector on python ``animeface`` (nvxs): face, eye and mouth boxes.

animeface alone finds faces of roughly 50-150 px best and misses faces that fill the frame. Measured
on the shared dev sets (hit = a face found; screenshots: matching the hand-drawn box):

    set (n)                     native image   best single pass   this cascade
    tight TV crops 350 px (88)        1               67 (edge pad)      see benchmarks/detection.py
    screenshots (69 boxes)           24               46 (face ~90 px)
    sprites 608x920 (28)             28               28

So :class:`AnimeFaceDetector` runs a short cascade of *passes* (resize, then pad), cheapest and most
likely first, and stops at the first pass that finds a face:

1. ``base``: the image with its long side clamped into [384, 640] px. Covers faces of ~8-25 % of the
   image. 640 px keeps a 768 px image near 130 ms on one core (animeface costs ~0.35 us per pixel
   plus ~25 ms; 768x508 measured 129 ms, 920x608 196 ms).
2. ``large``: long side 256 px plus a 25 % edge border: a face of 30-70 % of the image becomes
   ~75-180 px with room around it. ~15 ms.
3. ``tight`` / ``tight_reflect``: long side 72 / 64 px plus a 60 % border: an image that *is* a face
   (the face touches all four sides) becomes a ~70 px face in the middle of a plausible frame.
   On the 88 tight crops: edge border 67 found, reflect 55, white 35; the two together 72. ~5 ms.
4. ``small``: twice the base size (long side <= 1280 px) for faces under ~8 % (crowds, sample
   grids). The only expensive pass (~0.35-0.6 s), reached only when nothing else found a face.

Boxes from every pass are mapped back to original pixels (``(v - pad) / scale``) and clipped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..types import Face
from ._geometry import View, clip_box, make_view, nms


@dataclass(frozen=True)
class Pass:
    """One detection attempt: resize the long side to ``long_side`` px (``None`` = the base size,
    ``-2`` = twice the base size), then pad each side by ``pad`` x that long side with ``border``."""

    name: str
    long_side: int | None
    pad: float = 0.0
    border: str = "edge"


#: Default cascade; the numbers come from the sweeps quoted in the module docstring.
PASSES: tuple[Pass, ...] = (
    Pass("base", None),
    Pass("large", 200, 0.25, "edge"),
    Pass("tight", 72, 0.6, "edge"),
    Pass("tight_reflect", 64, 0.6, "reflect"),
    Pass("mid", 400, 0.1, "edge"),
    Pass("small", -2),
)

#: Base long side is clamped into this range: below 384 px small images are enlarged (animeface
#: misses faces under ~40 px); above 640 px the cost grows past the ~150 ms budget.
BASE_MIN, BASE_MAX = 384, 640
#: The ``small`` pass never goes beyond this long side (1280x1280 costs ~0.6 s).
SMALL_MAX = 1280


class AnimeFaceDetector:
    """Multi-pass wrapper around ``animeface.detect``.

    Args:
        min_likelihood: drop animeface hits below this likelihood (its own threshold is low; random
            textures give hits around 0.1-0.4 in padded passes).
        passes: the cascade (default :data:`PASSES`).
        exhaustive: run every pass and merge the results (NMS) instead of stopping at the first pass
            that finds a face. Slower; finds more faces in collages.
        nms_iou: IoU above which two boxes are the same face.
    """

    name = "animeface"

    def __init__(
        self,
        min_likelihood: float = 0.5,
        passes: tuple[Pass, ...] = PASSES,
        exhaustive: bool = False,
        nms_iou: float = 0.4,
    ) -> None:
        _check_import()
        self.min_likelihood = min_likelihood
        self.passes = tuple(passes)
        self.exhaustive = exhaustive
        self.nms_iou = nms_iou

    def views(self, image: np.ndarray) -> list[tuple[Pass, int]]:
        """The passes to run on ``image`` and their long side in px (skipping a ``small`` pass that
        would not enlarge anything beyond the base pass)."""
        long = max(image.shape[:2])
        base = int(min(max(long, BASE_MIN), BASE_MAX))
        out = []
        for p in self.passes:
            if p.long_side is None:
                side = base
            elif p.long_side < 0:
                side = min(base * -p.long_side, SMALL_MAX, max(long * 2, BASE_MIN))
                if side <= base:
                    continue
            else:
                side = p.long_side
            out.append((p, side))
        return out

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in an RGB ``uint8 (H, W, 3)`` image, boxes in its pixels, any order."""
        found: list[Face] = []
        for p, side in self.views(image):
            view = make_view(image, side, p.pad, p.border)
            faces = [f for f in self._run(view, image.shape) if f.score >= self.min_likelihood]
            found += faces
            if faces and not self.exhaustive:
                break
        return nms(found, self.nms_iou)

    def _run(self, view: View, shape: tuple[int, ...]) -> list[Face]:
        import animeface
        from PIL import Image

        out = []
        for r in animeface.detect(Image.fromarray(view.pixels)):
            box = clip_box(view.to_image(_xyxy(r.face.pos)), shape)
            if box is None:  # the face lies in the padding only
                continue
            parts = {}
            # animeface names eyes from the character's side: its ``left_eye`` is on the viewer's
            # right (checked on the 28 sprites: left_eye.x 276 > right_eye.x 202). Sort by x instead
            # of trusting the names, so a mirrored result cannot swap them.
            eyes = [_xyxy(r.left_eye.pos), _xyxy(r.right_eye.pos)]
            eyes.sort(key=lambda b: b[0] + b[2])
            for name, b in (("left_eye", eyes[0]), ("right_eye", eyes[1]), ("mouth", _xyxy(r.mouth.pos))):
                pb = clip_box(view.to_image(b), shape)
                if pb is not None:
                    parts[name] = pb
            out.append(Face(box=box, score=float(r.likelihood), detector=self.name, parts=parts))
        return out


def _xyxy(b) -> tuple[int, int, int, int]:
    return (b.x, b.y, b.x + b.width, b.y + b.height)


def _check_import() -> None:
    try:
        import animeface  # noqa: F401
        import PIL
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "The 'animeface' detector needs the animeface package: pip install 'animeface>=2.0.3' "
            "'pillow<12' (with Pillow 12+ it finds no faces)."
        ) from e
    major = int(PIL.__version__.split(".")[0])
    if major >= 12:  # pragma: no cover - depends on the environment
        # animeface's C extension reads Image.getdata(); with Pillow 12 it silently finds 0 faces
        raise ImportError(
            f"The 'animeface' detector finds no faces with Pillow {PIL.__version__}; install "
            "'pillow>=10,<12' or leave 'animeface' out of the detector list."
        )
