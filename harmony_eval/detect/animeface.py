"""Anime face detector on python ``animeface`` (nvxs): face, eye and mouth boxes.

animeface alone finds faces of roughly 50-150 px best and misses faces that fill the frame. Found
at the native size on the shared dev sets: 1/88 tight 350 px TV crops, 24/69 hand-boxed screenshot
faces, 28/28 sprites (608x920); each set's best single resize + pad: 67/88 (face ~70 px, edge
border), 46/69 (face ~90 px), 28/28. So :class:`AnimeFaceDetector` runs a short cascade of
*passes* (resize, then pad), cheap and likely first, and stops at the first pass that finds a face:

1. ``base``: long side 384 px (see :data:`BASE_SIDE` for the 384/512/640 comparison). A drawn
   portrait's face (150-400 px at 512-1024 px) lands at 60-150 px. ~55-100 ms.
2. ``large``: long side 200 px plus a 25 % edge border: a face of 30-70 % of the image becomes
   ~60-140 px with room around it (screenshots: 44/69 alone, the best of 30 size/border pairs). ~15 ms.
3. ``tight`` / ``tight_reflect``: long side 72 / 64 px plus a 60 % border: an image that *is* a face
   (it touches all four sides) becomes a ~70 px face in a plausible frame. On the 88 tight crops:
   edge border 67 found, reflect 55, white 35; the two together 72. ~5 ms.
4. ``tiny``: long side 128 px plus a 20 % border: a blurred or soft-focus face becomes sharp enough
   again (rendered faces with a 4 px Gaussian blur at 512 px: 3 of 4 found only by this pass; also
   the bundled blurry example); no change on the dev sets, no hit on synthetic negatives. ~5 ms.
5. ``mid``: long side 400 px plus a 10 % edge border, for faces cut by the image edge (+5 of the
   69 screenshots). ~40 ms.
6. ``small``: the native size, at least 768 and at most 1280 px, for faces under ~10 % of the image
   (crowds, sample grids). The only expensive pass (0.25-2 s), run only when all else found nothing.

7. ``stretch_base`` / ``stretch_large``: the first two passes again on a contrast-stretched copy
   (percentiles 1-99 to 0-255), for washed-out pictures: a rendered face with its grey levels
   squeezed into 80-180 is found by ``large`` alone at best, into 100-160 by no pass (3 of 3
   seeds), and by these on every seed. Identical images (nearly full range already) skip them;
   they run only when all else failed. Of the 6 dev crops nothing else finds, they find kyaru12_0.
8. Not default, :data:`CLOSEUP_PASSES`: long side 96 px plus a 20 % edge / 60 % reflected
   border, stretched: the best pair of 192 size x pad x border x stretch combinations on those 6
   crops finds 3 (lillie4_0, kyaru28_0, kyaru12_0) and fires on none of the tests' 7 synthetic
   negatives nor on 75 screenshot-background and sprite-body windows where the other passes find
   nothing. But the boxes are rough (half a face on lillie4_0 and kyaru12_0) and end to end both
   labelled faces were read wrong with a false missing-eyes / missing-mouth flag (dev_eval: afc
   found 0.932 -> 0.966, balanced accuracy unchanged, refitted 0.716 -> 0.659), so no face is
   the more honest answer there by default.

Whole cascade (``benchmarks/detection.py``): 76/88 crops, 52/69 screenshot hits, 28/28 sprites,
36/36 TADNE tiles.
Boxes from every pass are mapped back to original pixels (``(v - pad) / scale``) and clipped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..types import Face
from ._geometry import View, clip_box, make_view, nms, stretch_contrast


@dataclass(frozen=True)
class Pass:
    """One detection attempt: resize the long side to ``long_side`` px (``None`` = :data:`BASE_SIDE`,
    ``-k`` = the native size, at least ``k`` x the base side and at most :data:`SMALL_MAX`), then pad
    each side by ``pad`` x that long side with ``border``; ``stretch``: contrast-stretch the image
    first (:func:`~._geometry.stretch_contrast`)."""

    name: str
    long_side: int | None
    pad: float = 0.0
    border: str = "edge"
    stretch: bool = False


#: Default cascade; the numbers come from the sweeps quoted in the module docstring.
PASSES: tuple[Pass, ...] = (
    Pass("base", None),
    Pass("large", 200, 0.25, "edge"),
    Pass("tight", 72, 0.6, "edge"),
    Pass("tight_reflect", 64, 0.6, "reflect"),
    Pass("tiny", 128, 0.2, "edge"),
    Pass("mid", 400, 0.1, "edge"),
    Pass("small", -2),
    Pass("stretch_base", None, stretch=True),
    Pass("stretch_large", 200, 0.25, "edge", stretch=True),
)

#: Opt-in passes for extreme close-ups of TV frames (``animeface_passes=PASSES + CLOSEUP_PASSES``);
#: see item 8 of the module docstring for why they are not in the default cascade.
CLOSEUP_PASSES: tuple[Pass, ...] = (
    Pass("stretch_near", 96, 0.2, "edge", stretch=True),
    Pass("stretch_reflect", 96, 0.6, "reflect", stretch=True),
)

#: Long side of the ``base`` pass. Measured with the whole cascade (768 px TADNE tiles / 608x920
#: sprites / 69 screenshots): 384 px found 36/36, 28/28, 52/69 at 96 / 56 / 63 ms per image; 512 px
#: 35/36, 28/28, 52/69 at 126 / 87 / 73 ms; 640 px 28/28 sprites at 114 ms. Faces drawn for a
#: 512-1024 px portrait are 150-400 px, which animeface finds best shrunk to 60-150 px.
BASE_SIDE = 384
#: The ``small`` pass: at least twice the base side, the native size up to this cap (1280x1280
#: costs ~0.6-2 s, so it runs only when every cheaper pass found nothing).
SMALL_MAX = 1280


#: A face smaller than this share of the image's long side suggests a crowd or a collage: the
#: ``small`` pass then runs too. Full-body sprites (faces 15-17 % of 920 px, as found at 384 px) skip
#: it; the faces of GAN sample grids are 3-9 %.
SMALL_FACE = 0.10


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
        """The passes to run on ``image`` with the long side (px) each resizes it to."""
        long = max(image.shape[:2])
        out = []
        for p in self.passes:
            if p.long_side is None:
                side = BASE_SIDE
            elif p.long_side < 0:
                side = min(SMALL_MAX, max(BASE_SIDE * -p.long_side, long))
            else:
                side = p.long_side
            out.append((p, side))
        return out

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in an RGB ``uint8 (H, W, 3)`` image, boxes in its pixels, any order."""
        found: list[Face] = []
        long = max(image.shape[:2])
        views = self.views(image)
        stretched = None
        for i, (p, side) in enumerate(views):
            src = image
            if p.stretch:
                stretched = stretch_contrast(image) if stretched is None else stretched
                if stretched is image:  # full range already: the same view as an unstretched pass
                    continue
                src = stretched
            view = make_view(src, side, p.pad, p.border)
            faces = [f for f in self._run(view, image.shape) if f.score >= self.min_likelihood]
            found += faces
            if faces and not self.exhaustive:
                # small faces only (a crowd, a collage): there are likely more, too small for this
                # pass; run the small-face pass(es) too so that n_faces / multiple_faces are right
                biggest = max(max(f.box[2] - f.box[0], f.box[3] - f.box[1]) for f in found)
                if biggest < SMALL_FACE * long:
                    for q, qside in views[i + 1 :]:
                        if q.long_side is not None and q.long_side < 0 and qside > side:
                            v = make_view(image, qside, q.pad, q.border)
                            found += [f for f in self._run(v, image.shape) if f.score >= self.min_likelihood]
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
