"""MediaPipe Tasks ``FaceLandmarker`` (mediapipe 1.x): 478 landmarks -> face, eye, brow, mouth boxes.

Trained on photographs: on the shared dev sets it found a face in 0/28 full-body anime sprites and
19/88 tight TV-anime crops (animeface: 28/28 and ~76/88), so it sits second in the default cascade,
for the semi-realistic styles animeface misses. It needs the model bundle ``face_landmarker.task``
(see :func:`harmony_eval.detect.resolve_mediapipe_model`).

Region index sets come from mediapipe's own ``FaceLandmarksConnections`` (the canonical face-mesh
contours), so they follow the installed version. MediaPipe names parts from the subject's side
(its ``LEFT_EYE`` is on the viewer's right); we sort by x and store viewer-left / viewer-right.
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import tempfile
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import numpy as np

from ..types import Box, Face
from ._geometry import clip_box

#: The landmarker reports no per-face confidence; faces it returns passed both of its thresholds
#: (detection and presence, 0.5 each by default), so they get a fixed mid score.
SCORE = 0.6


#: What MediaPipe's native code prints on stderr each time a landmarker is built, in every process:
#: glog / absl notices ("W0000 00:00:1796313672.21 4664 face_landmarker_graph.cc:181] Sets
#: FaceBlendshapesGraph acceleration to xnnpack by default.", "... inference_feedback_manager.cc:121]
#: Feedback manager requires a model with a single signature ...", "WARNING: Logging before
#: InitGoogle() is written to STDERR") and TFLite's "INFO: Created TensorFlow Lite XNNPACK delegate
#: for CPU.". None is about the user's images; ten such lines a run buried the CLI's own output.
NATIVE_NOTICE = re.compile(
    r"^(?:[IW]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\] |WARNING: Logging before InitGoogle\(\)"
    r"|INFO: Created TensorFlow Lite XNNPACK delegate)"
)


@contextmanager
def native_notices_held_back() -> Iterator[None]:
    """Run the body with file descriptor 2 (where native code writes) sent to a temporary file, then
    pass on every line of it except MediaPipe's start-up notices (:data:`NATIVE_NOTICE`); when the
    body raises, every line, since the reason may be among them."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no descriptor 2 (a detached process): nothing to hold
        yield
        return
    failed = False
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            with suppress(OSError, ValueError, AttributeError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            lines = held.read().decode("utf-8", "replace").splitlines(keepends=True)
            shown = "".join(ln for ln in lines if failed or not NATIVE_NOTICE.match(ln))
            if shown:
                os.write(2, shown.encode("utf-8"))


def landmark_sets() -> dict[str, list[int]]:
    """Landmark indices per part from mediapipe's face-mesh contours: ``eye_a``/``eye_b``,
    ``brow_a``/``brow_b`` (subject's left / right, unsorted in the image), ``lips``, ``oval``."""
    from mediapipe.tasks.python.vision import FaceLandmarksConnections as C

    def idx(conns) -> list[int]:
        return sorted({c.start for c in conns} | {c.end for c in conns})

    return {
        "eye_a": idx(C.FACE_LANDMARKS_LEFT_EYE),
        "eye_b": idx(C.FACE_LANDMARKS_RIGHT_EYE),
        "brow_a": idx(C.FACE_LANDMARKS_LEFT_EYEBROW),
        "brow_b": idx(C.FACE_LANDMARKS_RIGHT_EYEBROW),
        "lips": idx(C.FACE_LANDMARKS_LIPS),
        "oval": idx(C.FACE_LANDMARKS_FACE_OVAL),
    }


class MediaPipeDetector:
    """Face landmarker in IMAGE running mode, several faces per image.

    Args:
        model: path to ``face_landmarker.task``.
        num_faces: most faces returned per image.
        min_confidence: face detection and presence thresholds (MediaPipe's default 0.5).

    The landmarker itself is created on first use and dropped when pickled, so the detector can be
    sent to worker processes.
    """

    name = "mediapipe"

    def __init__(self, model: str | os.PathLike, num_faces: int = 4, min_confidence: float = 0.5) -> None:
        self.model = str(model)
        if not os.path.isfile(self.model):
            raise FileNotFoundError(
                f"`mediapipe_model`={self.model!r} does not exist. Download face_landmarker.task from "
                "MediaPipe's model storage (face_landmarker/face_landmarker/float16/1/) and pass its path."
            )
        if num_faces < 1:
            raise ValueError(f"`num_faces` must be >= 1, got {num_faces}.")
        self.num_faces = num_faces
        self.min_confidence = min_confidence
        self._landmarker: Any = None
        self._sets: dict[str, list[int]] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_landmarker": None}

    def _get(self) -> Any:
        if self._landmarker is None:
            allow_slow_exit()
            from mediapipe.tasks.python import BaseOptions, vision

            opts = vision.FaceLandmarkerOptions(
                base_options=BaseOptions(model_asset_path=self.model),
                running_mode=vision.RunningMode.IMAGE,
                num_faces=self.num_faces,
                min_face_detection_confidence=self.min_confidence,
                min_face_presence_confidence=self.min_confidence,
            )
            with native_notices_held_back():
                self._landmarker = vision.FaceLandmarker.create_from_options(opts)
            self._sets = landmark_sets()
            # close before interpreter teardown: mediapipe's own __del__ then fails noisily
            # ("TypeError: 'NoneType' object is not callable") on its half-unloaded C bindings
            atexit.register(_close_ref, weakref.ref(self))
        return self._landmarker

    def close(self) -> None:
        """Release the landmarker (it is rebuilt on the next ``detect``)."""
        lm, self._landmarker = self._landmarker, None
        if lm is None:
            return
        try:
            lm.close()
        except RuntimeError:
            # at interpreter exit mediapipe's dispatcher thread is already gone ("cannot schedule new
            # futures after shutdown"); drop the handle so its __del__ does not retry, the OS frees it
            lm._handle = None

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in an RGB ``uint8 (H, W, 3)`` image; ``points`` are the 478 landmarks ``(478, 2)``
        in pixels."""
        import mediapipe as mp

        landmarker = self._get()
        mp_image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(image, np.uint8))
        result = landmarker.detect(mp_image)
        h, w = image.shape[:2]
        faces = []
        for lms in result.face_landmarks:
            pts = np.array([(p.x * w, p.y * h) for p in lms], dtype=np.float32)
            face = self._face(pts, image.shape)
            if face is not None:
                faces.append(face)
        return faces

    def _face(self, pts: np.ndarray, shape: tuple[int, ...]) -> Face | None:
        sets = self._sets or landmark_sets()
        box = clip_box((*pts.min(axis=0), *(pts.max(axis=0) + 1)), shape)
        if box is None:
            return None
        parts: dict[str, Box] = {}
        for kind, a, b in (("eye", "eye_a", "eye_b"), ("brow", "brow_a", "brow_b")):
            pair = [_bbox(pts[sets[a]], shape), _bbox(pts[sets[b]], shape)]
            pair = [p for p in pair if p is not None]
            if len(pair) == 2:
                pair.sort(key=lambda bx: bx[0] + bx[2])  # viewer-left first
                parts[f"left_{kind}"], parts[f"right_{kind}"] = pair
        mouth = _bbox(pts[sets["lips"]], shape)
        if mouth is not None:
            parts["mouth"] = mouth
        return Face(box=box, score=SCORE, detector=self.name, parts=parts, points=pts)


#: Seconds the process's C-level exit may take before MediaPipe's exit watchdog kills it.
EXIT_TIMEOUT_S = 600


def allow_slow_exit() -> None:
    """Let a process that loaded MediaPipe finish exiting. ``libmediapipe`` arms a watchdog in
    ``exit()`` that kills the process with SIGTRAP when the libraries' exit handlers take longer than
    ``GOOGLE_EXIT_TIMEOUT_SECONDS`` (30 s when unset; read at exit), and Ray's or torch's handlers can:
    the whole test suite once ended "727 passed" with exit status 139 ("exit() hanging: killing
    process with SIGTRAP"), after every row was written. A run that did its work should not end as
    a crash; a truly hung exit is still killed after :data:`EXIT_TIMEOUT_S`. A value already set wins."""
    os.environ.setdefault("GOOGLE_EXIT_TIMEOUT_SECONDS", str(EXIT_TIMEOUT_S))


def _close_ref(ref: weakref.ReferenceType) -> None:
    det = ref()
    if det is not None:
        det.close()


def _bbox(p: np.ndarray, shape: tuple[int, ...]) -> Box | None:
    return clip_box((*p.min(axis=0), *(p.max(axis=0) + 1)), shape)
