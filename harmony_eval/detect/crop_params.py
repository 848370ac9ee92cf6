"""The tight-crop test's measured constants (:class:`Params`), for :mod:`harmony_eval.detect.crop`.

Kept in a module of their own so that the detector stays short (its module docstring gives the
evidence for the defaults); ``crop`` re-exports :class:`Params` and :data:`PARAMS`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Params:
    """The tight-crop test's constants (the module docstring gives the evidence). ``W`` / ``H``: the
    working image's width / height; ``d``: the distance between the eye centres; grey levels 0-255.
    Vary with ``dataclasses.replace(PARAMS, ...)`` and pass it as ``CropDetector(params=...)``."""

    # Working copy and the whole-image tests (:meth:`CropDetector.detect`).
    #: Accepted width / height of the image: roughly square, a tight crop, not a full-body sprite or
    #: a banner.
    min_aspect: float = 0.6
    max_aspect: float = 1.7
    #: Working width (px): eyes of a tight crop are then ~15-40 px wide, well above the 3 px opening.
    work_width: int = 128
    #: Least working height (px).
    min_work_h: int = 8
    #: Grey-level std under which the image is blank or nearly uniform.
    min_std: float = 12.0
    #: Sobel kernel size and the gradient under which a pixel is flat ...
    sobel_ksize: int = 3
    flat_grad: float = 24.0
    #: ... and the least flat share: cel shading is mostly flat, noise and photo detail are not.
    min_flat: float = 0.35

    # Eye evidence maps (:func:`_response`).
    #: Black-hat kernel (px, ellipse): darker than the surroundings at ~1/4 of the width, an eye of a
    #: tight crop; hair masses bigger than that give little response.
    eye_kernel: int = 31
    #: Opening kernel (px, ellipse) that removes 1-2 px lines (hair strands, outlines).
    line_open: int = 3
    #: Gaussian sigma (px) that turns the filled irises into the strongest peaks.
    dens_sigma: float = 4.0

    # Eye candidates (:func:`_find_eyes`, :func:`_peaks`, :func:`_blob_at`).
    #: Peaks at least this share of W apart ...
    peak_sep: float = 0.1
    #: ... and above this share of the strongest.
    peak_rel: float = 0.2
    #: Band of the eye centres (shares of H): the upper-middle of a tight crop.
    eye_band: tuple[float, float] = (0.12, 0.72)
    #: Strongest peaks looked at: text, a pattern or foliage give many equal peaks.
    max_peaks: int = 6
    #: Least peak: text peaks at ~35, drawn irises at 100-200 on the dev crops.
    min_peak: float = 50.0
    #: A blob is the part of the black-hat above this share of its local maximum ...
    blob_rel: float = 0.5
    #: ... inside a window of this share of W around the peak.
    blob_radius: float = 0.2

    # The pair (:func:`_find_eyes`).
    #: Eye centres this far apart (shares of W) ...
    pair_dx: tuple[float, float] = (0.2, 0.7)
    #: ... this level (share of H at most) ...
    pair_dy: float = 0.12
    #: ... and centred (their midpoint, shares of W).
    pair_mid: tuple[float, float] = (0.25, 0.75)
    #: The weaker eye is at least this share of the strongest peak: weaker is a blush line or shadow.
    pair_weaker: float = 0.5
    #: Largest area ratio of the two blobs.
    max_area_ratio: float = 3.5
    #: Pair quality ``q_base + q_margin x (1 - strongest other peak / weaker eye) - q_tilt x dy /
    #: (pair_dy H)``: a clear pair above all other marks, and level, is surer.
    q_base: float = 0.5
    q_margin: float = 0.5
    q_tilt: float = 0.15

    # Eye-shaped blobs (:func:`_eye_shaped`): an iris and lashes, not a line, not a hair band.
    #: Blob width (shares of W).
    eye_w: tuple[float, float] = (0.06, 0.42)
    #: Blob height (shares of H).
    eye_h: tuple[float, float] = (0.04, 0.45)
    #: Blob height / width.
    eye_aspect: tuple[float, float] = (0.25, 2.0)
    #: Least share of the blob's box it fills.
    eye_fill: float = 0.2

    # Drawn eyes (:func:`_eye_detail`, :func:`_drawn_eyes`): dark iris with light marks inside. Drawn
    # anime eyes: contrast 65-230 (most 140+) and holes 0.15-0.5 on the dev crops; a filled disk:
    # holes 0.01-0.1 (only where another disk overlaps it).
    #: Contrast = grey-level percentile ``hi`` - percentile ``lo`` inside the blob's hull.
    contrast_pct: tuple[float, float] = (10, 97)
    #: Least contrast of both eyes.
    eye_contrast: float = 60.0
    #: Least holes share (not dark) of the hull: of the more open eye ...
    eye_holes_max: float = 0.12
    #: ... and on average of the two.
    eye_holes_mean: float = 0.15

    # Nose bridge and cheeks (:func:`_clear_gap`, :func:`_light_between_and_below`).
    #: Least gap between the blobs (px).
    min_gap: int = 3
    #: Share of the gap left out at each end: the blurred map spills ~1 sigma past each eye.
    gap_trim: float = 0.2
    #: No mark in the gap as strong as this share of the weaker eye.
    gap_mark: float = 0.8
    #: Canny thresholds for drawn lines (gap edges and face detail).
    canny: tuple[float, float] = (60, 120)
    #: Most edge pixels in the gap: hair strands or a glasses bridge cross it on 3 of the dev crops.
    gap_edges: float = 0.2
    #: The gap's median grey is this much lighter than the eyes'.
    gap_lighter: float = 25
    #: Cheeks: the band this many d below the eyes ...
    cheek_depth: float = 0.3
    #: ... of at least this many px ...
    min_cheek_px: int = 16
    #: ... is light: median grey at least this, and this much lighter than the eyes'.
    cheek_min: float = 100.0
    cheek_lighter: float = 35
    #: Least share of edge pixels outside the eyes (hair, outline, nose, mouth): two dots are no face.
    min_detail: float = 0.01

    # Boxes (:func:`_face_from_eyes`, :func:`_find_mouth`).
    #: The drawn eye (white sclera, lower lid) extends past the black-hat blob by these shares of the
    #: blob's width / height each side on the dev crops.
    eye_grow: tuple[float, float] = (0.25, 0.35)
    #: Anime head proportions around the eyes: face half width, forehead above and chin below the
    #: eye line (d): face ~2.3 d wide, forehead ~1.1 d, chin ~1.3 d.
    face_half_w: float = 1.15
    face_up: float = 1.1
    face_down: float = 1.3
    #: Upper bound of a crop face's score (animeface reports 0.5-1.0 likelihoods) ...
    max_score: float = 0.35
    #: ... and the share of it a pair of quality 0 gets.
    score_base: float = 0.5
    #: Mouth window: half width (d) and top / bottom below the eyes' lower edge (d): the mouth sits
    #: ~0.55-0.9 d below the eye line on the dev crops.
    mouth_half_w: float = 0.4
    mouth_win: tuple[float, float] = (0.25, 0.95)
    #: Least window size (px) to look in.
    min_mouth_win: int = 16
    #: Black-hat kernel (px, ellipse) for the mouth's dark mark.
    mouth_kernel: int = 15
    #: A mouth pixel is darker than its surroundings by this much, and this share of the darkest.
    mouth_dark: float = 30.0
    mouth_rel: float = 0.5
    #: Least mouth pixels found.
    min_mouth_px: int = 4
    #: Percentiles of the mouth pixels' x and y that bound the box (stray pixels left out) ...
    mouth_pct: tuple[float, float] = (2, 98)
    #: ... padded by this many d.
    mouth_pad: float = 0.08
    #: No mark found: the mouth is placed this many d below the eyes' lower edge, this half wide /
    #: half tall (d).
    mouth_guess_below: float = 0.55
    mouth_guess_half: tuple[float, float] = (0.25, 0.15)


PARAMS = Params()
