"""harmony_eval: does a generated anime face show one emotion, with eyes, brows and mouth agreeing?

>>> import harmony_eval
>>> df = harmony_eval.score("examples/")          # doctest: +SKIP
>>> df[["path", "emotion", "harmony", "verdict", "reason"]]  # doctest: +SKIP

Importing the package is cheap: stages import their dependencies when first used.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["score", "Scorer", "__version__"]

if TYPE_CHECKING:
    import pandas as pd

    from .pipeline import Scorer


def score(
    inputs: Any,
    *,
    backend: str = "auto",
    emotions: list[str] | str | None = None,
    targets: dict[str, str] | str | None = None,
    detectors: list[str] | None = None,
    calibration: str | None = None,
    workers: int = 1,
    progress: bool = False,
    **options: Any,
) -> pd.DataFrame:
    """Score images; one row per image with the output-contract columns (see README).

    Args:
        inputs: a folder, an image path, a PIL image, an ``(H, W, 3)`` uint8 array, or a list of those.
        backend: ``auto`` (CLIP: local weights, or downloaded once when the Hub answers; offline
            ``anatomy``, see ``backends.auto``), ``anatomy``, ``clip``, ``tagger``; ``raters="anatomy,clip"``
            reads every region with several (``backends.raters``).
        emotions: vocabulary; default the active emotions of ``prompts/emotions.yaml``.
        targets: ``{path_or_name: emotion}``, or a targets CSV path; without it, targets come from a
            ``manifest.jsonl`` beside the images, A1111 PNG metadata, or emotion words in file names.
        detectors: face detector cascade; default ``["animeface", "mediapipe", "crop"]``.
        calibration: a calibration JSON written by ``harmony-eval calibrate``.
        workers: worker processes for load + detection + measurement (``0`` = automatic).
        progress: show a progress bar.
        **options: the other fields of ``harmony_eval.config.ScorerConfig`` (``max_pixels``,
            ``verdict_config``, ``anatomy_params``, ``clip_*``, ``mediapipe_*``, ...); an unknown
            one raises ``TypeError`` naming it and the valid ones.
    """
    import pandas as pd

    from .pipeline import ROW_KEYS, Scorer, iter_inputs
    from .runner import auto_workers
    from .targets import TargetResolver

    mapping = targets if isinstance(targets, dict) else None
    roots = (
        [inputs]
        if isinstance(inputs, (str, Path))
        else [p for p in inputs if isinstance(p, (str, Path))]
        if isinstance(inputs, (list, tuple))
        else []
    )
    resolver = TargetResolver(
        emotions,
        targets_csv=None if mapping else targets,
        mapping=mapping,
        root=[r for r in roots if Path(r).is_dir()],
    )
    scorer = Scorer(
        backend=backend,
        emotions=emotions,
        detectors=detectors,
        calibration=calibration,
        targets=resolver,
        **options,
    )
    jobs = list(iter_inputs(inputs))
    if any(not isinstance(item, str) for item, _ in jobs):
        workers = 1  # in-memory images stay in this process
    it = (row for _, _, row in scorer.iter_scored(jobs, workers=workers or auto_workers(len(jobs))))
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, total=len(jobs), desc="scoring", unit="img")
    rows = list(it)
    # object columns keep None as None (pandas 3 would turn missing strings into NaN)
    return pd.DataFrame(
        {
            k: pd.Series([r[k] for r in rows], dtype={"harmony": float, "n_faces": "int64"}.get(k, object))
            for k in ROW_KEYS
        }
    )


def __getattr__(name: str) -> Any:
    if name == "Scorer":
        from .pipeline import Scorer

        return Scorer
    raise AttributeError(f"module 'harmony_eval' has no attribute {name!r}")
