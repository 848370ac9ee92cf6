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
   they run only when all else failed. Of the 6 dev crops nothing else finds, they find one.
8. Not default, :data:`CLOSEUP_PASSES`: long side 96 px plus a 20 % edge / 60 % reflected
   border, stretched: the best pair of 192 size x pad x border x stretch combinations on those 6
   crops finds 3 and fires on none of the tests' 7 synthetic negatives nor on 75
   screenshot-background and sprite-body windows where the other passes find nothing. But the
   boxes are rough (half a face on two of the three) and end to end both
   labelled faces were read wrong with a false missing-eyes / missing-mouth flag (dev_eval: afc
   found 0.932 -> 0.966, balanced accuracy unchanged, refitted 0.716 -> 0.659), so no face is
   the more honest answer there by default.

Whole cascade (``benchmarks/detection.py``): 76/88 crops, 52/69 screenshot hits, 28/28 sprites,
36/36 TADNE tiles.
Boxes from every pass are mapped back to original pixels (``(v - pad) / scale``) and clipped.

Two rules keep faceless images cheap (:class:`Params`): images over twice ``small_max`` px are
shrunk once and every pass views that copy; and a pass whose view is *busy* (under ``min_flat`` of its
pixels with a small gradient) is skipped: animeface's cascade was trained on flat-shaded art and
spends up to 2.7 s on a noise view at 768 px. Over every labelled source the busiest view of at
least 256 px of any image had >= 0.26 of its pixels flat (TADNE tiles; sprites 0.72, TV crops
0.38, screenshots 0.38, permissive sprites 0.60-0.86, layered dev sprites 0.83), random noise of 128-1000 px
<= 0.11 in every view, so the 0.15 line changes nothing on art.

Two fixes of animeface's own boxes live here, not downstream (:class:`Params`): its mouth box sits
on the drawn mouth or above it and is often narrower (on 75 tight TV crops 21 boxes missed the
mouth, up to 1.2 box heights too high; on 28 full-body sprites 5; on 30 rendered faces the box held
83 % of the drawn mouth), so it is grown 0.8 box heights down, 0.3 up (smirks curl above it) and to
at least 22 % of the face width (rendered faces: 96 % held); and a box on part of a face that fills
a small square picture (see ``tight_side``) gives way to the tight-crop test or to the whole image.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..types import Box, Face
from ._geometry import View, clip_box, flat_share, make_view, nms, stretch_contrast


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


@dataclass(frozen=True)
class Params:
    """The detector's measured constants (see the module docstring for the evidence).

    - ``base_side``: long side of the ``base`` pass. With the whole cascade (768 px TADNE tiles /
      608x920 sprites / 69 screenshots): 384 px found 36/36, 28/28, 52/69 at 96 / 56 / 63 ms per
      image; 512 px 35/36, 28/28, 52/69 at 126 / 87 / 73 ms; 640 px 28/28 sprites at 114 ms.
    - ``small_max``: cap of the ``small`` pass (1280x1280 costs ~0.6-2 s) and of the working copy,
      made once for an image over ``small_max / shrink_below`` px (a 4k render is then resized
      from 1280 px for every pass, not from 4k). Not below: resampling twice moved the boxes of the
      1650 px layered-character dev compositions enough to move their readings.
    - ``small_face``: a face under this share of the long side suggests a crowd or a collage, so the
      ``small`` pass runs too (full-body sprites' faces are 15-17 %, GAN sample grids' 3-9 %).
    - ``min_flat`` / ``flat_grad``: a view with under ``min_flat`` of its pixels below a Sobel
      gradient of ``flat_grad`` is texture, not drawn art: skipped, for views of at least
      ``flat_min_side`` px (the costly ones; the 64 px reflect-padded ``tight_reflect`` view of a
      detailed picture is busy, 0.05 on a TADNE tile, and costs ~5 ms).
    - ``tight_side`` / ``tight_aspect`` / ``tight_face``: on a roughly square picture of at most
      ``tight_side`` px, a largest face narrower than ``tight_face`` x the width is a box on part of
      a face that fills the picture (4 of the 88 TV crops: 87-186 px boxes; every other crop's face
      is >= 0.6 of the width). The tight-crop test then runs; if it finds nothing and the box
      touches an edge, the face is the whole picture. A small face well inside it (a thumbnail) stays.
    - ``mouth_up`` / ``mouth_down`` / ``mouth_min_w``: growth of animeface's mouth box (box heights
      up / down, least width as a share of the face width).
    """

    base_side: int = 384
    small_max: int = 1280
    small_face: float = 0.10
    min_flat: float = 0.15
    flat_grad: float = 24.0
    flat_min_side: int = 256
    shrink_below: float = 0.5
    tight_side: int = 400
    tight_aspect: tuple[float, float] = (0.8, 1.25)
    tight_face: float = 0.5
    mouth_up: float = 0.3
    mouth_down: float = 0.8
    mouth_min_w: float = 0.22


PARAMS = Params()
#: Kept for readers of the old names.
BASE_SIDE, SMALL_MAX, SMALL_FACE = PARAMS.base_side, PARAMS.small_max, PARAMS.small_face


class AnimeFaceDetector:
    """Multi-pass wrapper around ``animeface.detect``.

    Args:
        min_likelihood: drop animeface hits below this likelihood (its own threshold is low; random
            textures give hits around 0.1-0.4 in padded passes).
        passes: the cascade (default :data:`PASSES`).
        exhaustive: run every pass and merge the results (NMS) instead of stopping at the first pass
            that finds a face. Slower; finds more faces in collages.
        nms_iou: IoU above which two boxes are the same face.
        params: the measured constants (:class:`Params`).
        crop_params: those of the tight-crop test it runs on a face that fills the picture
            (``crop.Params``; default its ``PARAMS``).
    """

    name = "animeface"

    def __init__(
        self,
        min_likelihood: float = 0.5,
        passes: tuple[Pass, ...] = PASSES,
        exhaustive: bool = False,
        nms_iou: float = 0.4,
        params: Params = PARAMS,
        crop_params: Any = None,
    ) -> None:
        _check_import()
        self.min_likelihood = min_likelihood
        self.passes = tuple(passes)
        self.exhaustive = exhaustive
        self.nms_iou = nms_iou
        self.params = params
        self.crop_params = crop_params
        self._crop = None  # the tight-crop test, built on first use

    def views(self, image: np.ndarray) -> list[tuple[Pass, int]]:
        """The passes to run on ``image`` with the long side (px) each resizes it to."""
        long = max(image.shape[:2])
        base, cap = self.params.base_side, self.params.small_max
        out = []
        for p in self.passes:
            if p.long_side is None:
                side = base
            elif p.long_side < 0:
                side = min(cap, max(base * -p.long_side, long))
            else:
                side = p.long_side
            out.append((p, side))
        return out

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in an RGB ``uint8 (H, W, 3)`` image, boxes in its pixels, any order; mouth boxes
        grown and partial boxes on tight crops replaced (see the module docstring)."""
        import cv2

        h, w = image.shape[:2]
        k = self.params.small_max / max(h, w)
        if k < self.params.shrink_below:  # one shrunk copy for very large images: every pass views it
            work = cv2.resize(
                image, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA
            )
            faces = [_scaled(f, 1 / k, image.shape) for f in self._passes(work)]
        else:
            faces = self._passes(image)
        faces = [self.grow_mouth(f, image.shape) for f in faces]
        return self.tight_crop(image, faces)

    def _passes(self, image: np.ndarray) -> list[Face]:
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
            big = max(view.pixels.shape[:2]) >= self.params.flat_min_side
            if big and flat_share(view.pixels, self.params.flat_grad) < self.params.min_flat:
                continue  # texture (noise, photo grain): no drawn face to find, and the slowest view
            faces = [f for f in self._run(view, image.shape) if f.score >= self.min_likelihood]
            found += faces
            if faces and not self.exhaustive:
                # small faces only (a crowd, a collage): there are likely more, too small for this
                # pass; run the small-face pass(es) too so that n_faces / multiple_faces are right
                biggest = max(max(f.box[2] - f.box[0], f.box[3] - f.box[1]) for f in found)
                if biggest < self.params.small_face * long:
                    for q, qside in views[i + 1 :]:
                        if q.long_side is not None and q.long_side < 0 and qside > side:
                            v = make_view(image, qside, q.pad, q.border)
                            found += [f for f in self._run(v, image.shape) if f.score >= self.min_likelihood]
                break
        return nms(found, self.nms_iou)

    def grow_mouth(self, face: Face, shape: tuple[int, ...]) -> Face:
        """``face`` with its mouth box grown where animeface misses the drawn mouth."""
        m = face.parts.get("mouth")
        if m is None:
            return face
        p = self.params
        half = max(m[2] - m[0], p.mouth_min_w * (face.box[2] - face.box[0])) / 2
        cx, mh = (m[0] + m[2]) / 2, m[3] - m[1]
        grown = clip_box((cx - half, m[1] - p.mouth_up * mh, cx + half, m[3] + p.mouth_down * mh), shape)
        return replace(face, parts={**face.parts, "mouth": grown or m})

    def tight_crop(self, image: np.ndarray, faces: list[Face]) -> list[Face]:
        """The tight-crop test's face, or the whole picture, when the largest face is a box on part
        of a face that fills a small square picture (:class:`Params` ``tight_*``); else ``faces``."""
        if not faces:
            return faces
        p = self.params
        h, w = image.shape[:2]
        main = max(faces, key=lambda f: (f.area, f.score))
        x0, y0, x1, y1 = main.box
        lo, hi = p.tight_aspect
        if max(h, w) > p.tight_side or not lo <= w / h <= hi or x1 - x0 >= p.tight_face * w:
            return faces
        if self._crop is None:
            from .crop import CropDetector

            self._crop = CropDetector() if self.crop_params is None else CropDetector(params=self.crop_params)
        found = self._crop.detect(image)  # it places eyes and mouth from the eyes it finds
        if found:
            return found
        if not (x0 <= 1 or y0 <= 1 or x1 >= w - 1 or y1 >= h - 1):
            return faces  # a small face well inside a small picture: maybe a thumbnail, keep it
        # its parts came from a box on part of the head (eyes on hair strands on 2 of the 3 dev
        # crops this fires on): leave them to the regions' face proportions
        return [Face((0, 0, w, h), main.score, self.name)]

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


def _scaled(face: Face, k: float, shape: tuple[int, ...]) -> Face:
    """``face`` with its boxes multiplied by ``k`` and clipped to ``shape``."""

    def sc(b: Box) -> Box:
        return clip_box(tuple(v * k for v in b), shape) or b

    return replace(face, box=sc(face.box), parts={n: sc(b) for n, b in face.parts.items()})


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
