"""What a run's reading is worth: which reader produced the verdicts, whether it was calibrated, and
its measured accuracy, for ``run.json``, the report header and the CLI's last line.

The figures come from data, never from code: the uncalibrated readers' out-of-source accuracy from
the reader cards ``config/readers.json`` (written from ``python -m benchmarks.validity``: leave one
source out, so on art the reader was never tuned on), a calibrated reader's from its calibration
file (``training.cv``: cross-validated on the user's own labels). Nothing measured -> "not measured".

    info = describe_reader(scorer, images="art/")
    info["calibrated"], info["accuracy"]["balanced_accuracy"], info["advice"]
    summary_line(info)  # "reader: anatomy (...), uncalibrated; measured out-of-source ..."
"""

from __future__ import annotations

import json
import math
import shlex
from html import escape
from pathlib import Path
from typing import Any, NoReturn

from .resources import config_path

FORMAT = "harmony_eval.readers"
VERSION = 1
OUT_OF_SOURCE = "out-of-source (never tuned on)"
CROSS_VALIDATED = "cross-validated on your labels"
NOT_MEASURED = "not measured"
# How each backend reads when nothing was fitted to the user's art: the words after its name.
_UNCALIBRATED_KIND = {
    "anatomy": "offline, hand-set mapping",
    "clip": "CLIP zero-shot probes",
    "tagger": "WD tagger, hand-set tag mapping",
}


class ReaderCardError(ValueError):
    """``readers.json`` is missing, not JSON, or has a field of the wrong kind (the message names it)."""


def _fail(where: str, field: str, value: Any, expected: str) -> NoReturn:
    raise ReaderCardError(
        f"{where}: {field} is {value!r}, expected {expected}. Fix that field (the figures come from "
        "`python -m benchmarks.validity`) or restore the file shipped in harmony_eval/config/."
    )


def _is_num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _check_out_of_source(oos: Any, where: str, field: str) -> None:
    if not isinstance(oos, dict):
        _fail(where, field, oos, "null (not measured) or a mapping of figures")
    ba = oos.get("balanced_accuracy")
    if not (_is_num(ba) and 0 <= ba <= 1):
        _fail(where, f"{field}.balanced_accuracy", ba, "a number in [0, 1]")
    ci = oos.get("ci95")
    if not (
        isinstance(ci, list) and len(ci) == 2 and all(_is_num(c) for c in ci) and 0 <= ci[0] <= ci[1] <= 1
    ):
        _fail(where, f"{field}.ci95", ci, "[low, high] with 0 <= low <= high <= 1")
    n = oos.get("n")
    if not (isinstance(n, int) and not isinstance(n, bool) and n > 0):
        _fail(where, f"{field}.n", n, "the number of faces measured, a positive integer")
    chance = oos.get("chance")
    if not (_is_num(chance) and 0 < chance < 1):
        _fail(where, f"{field}.chance", chance, "a number in (0, 1), e.g. 0.25 for 4 classes")
    for key, least in (("sources", 1), ("classes", 2)):
        v = oos.get(key)
        if not (isinstance(v, list) and len(v) >= least and all(isinstance(s, str) for s in v)):
            _fail(where, f"{field}.{key}", v, f"a list of at least {least} name(s)")
    if not isinstance(oos.get("measured_with"), str):
        _fail(where, f"{field}.measured_with", oos.get("measured_with"), "the command that measured it")
    auc = oos.get("harmony_swap_auc")  # optional: what the harmony score (the verdicts) is worth
    if auc is not None:
        if not (_is_num(auc) and 0 <= auc <= 1):
            _fail(where, f"{field}.harmony_swap_auc", auc, "a number in [0, 1]")
        ns = oos.get("n_swap")
        if not (isinstance(ns, list) and len(ns) == 2 and all(isinstance(k, int) and k > 0 for k in ns)):
            _fail(where, f"{field}.n_swap", ns, "[originals, swapped faces], two positive integers")


def load_reader_cards(path: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """``{backend: card}`` from ``readers.json`` (default: the packaged one), validated.

    ``ReaderCardError`` (a ``ValueError``) names the file, the field and what it should hold.
    """
    p = Path(path) if path is not None else config_path("readers.json")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReaderCardError(f"{p}: reader cards file not found; reinstall harmony-eval") from None
    except json.JSONDecodeError as e:
        raise ReaderCardError(f"{p}: not valid JSON ({e.msg}, line {e.lineno})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        got = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise ReaderCardError(f"{p}: not a reader cards file (format {got!r}, expected {FORMAT!r})")
    if data.get("version") != VERSION:
        raise ReaderCardError(f"{p}: version {data.get('version')!r}, this harmony_eval reads {VERSION}")
    readers = data.get("readers")
    if not isinstance(readers, dict) or not readers:
        _fail(str(p), "readers", readers, "a mapping of backend name -> card")
    for name, card in readers.items():
        field = f"readers.{name}"
        if not isinstance(card, dict):
            _fail(str(p), field, card, "a mapping")
        if not isinstance(card.get("description"), str):
            _fail(str(p), f"{field}.description", card.get("description"), "a sentence")
        t = card.get("holistic_temperature")
        if not (_is_num(t) and t > 0):
            _fail(str(p), f"{field}.holistic_temperature", t, "a positive number (1.0: unchanged)")
        if "out_of_source" not in card:
            _fail(
                str(p), f"{field}.out_of_source", "(missing)", "null (not measured) or a mapping of figures"
            )
        if card["out_of_source"] is not None:
            _check_out_of_source(card["out_of_source"], str(p), f"{field}.out_of_source")
    return readers


def _advice_uncalibrated(backend: str, images: str | None) -> str:
    d = shlex.quote(images) if images else "DIR"
    pretrained = {"anatomy": "`--backend clip` with CLIP weights, or `--backend tagger`",
                  "clip": "`--backend tagger`", "tagger": "`--backend clip` with CLIP weights"}  # fmt: skip
    other = pretrained.get(backend, "`--backend clip` with CLIP weights, or `--backend tagger`")
    return (
        f"label about 50 of your own images: `harmony-eval calibrate --images {d} --suggest 50 --out cal/` "
        "writes cal/suggested.csv (one face of each kind, then those your reader is least sure of); fill it in, then "
        f"`harmony-eval calibrate --images {d} --labels cal/suggested.csv --out cal/` and score with "
        f"`--calibration cal/calibration.json`. Or try a pretrained reader: {other}."
    )


def _count(x: Any) -> int | None:
    return x if isinstance(x, int) and not isinstance(x, bool) and x >= 0 else None


def describe_reader(
    scorer: Any, images: str | Path | None = None, cards: dict[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """What produced this scorer's verdicts and what that reading is worth (JSON-ready).

    ``scorer``: a ``pipeline.Scorer`` (``backend_name``, ``emotions``, ``calibration_path``).
    ``images``: the scored folder, put into the advice's commands (``DIR`` when ``None``).
    ``cards``: reader cards (default :func:`load_reader_cards`). Keys: ``reader``, ``backend``,
    ``emotions`` (this run's), ``description``, ``calibrated``, ``calibration``, ``calibrated_regions``, ``n_labels``, ``n_copies``, ``harmony``,
    ``accuracy`` (``balanced_accuracy``, ``ci95``, ``n``, ``kind``, ``chance``, ``classes``,
    ``sources``, ``folds``, ``note``) and ``advice`` (``None`` when nothing needs doing).
    """
    backend = str(scorer.backend_name)
    emotions = list(scorer.emotions)
    cards = load_reader_cards() if cards is None else cards
    card = cards.get(backend) or {}
    cal = getattr(scorer, "_calibration", None)
    cal_path = getattr(scorer, "calibration_path", None)
    if cal is None and cal_path:
        from .calibrated import Calibration

        cal = Calibration.load(cal_path)
    accuracy: dict[str, Any] = {
        "balanced_accuracy": None, "ci95": None, "n": None, "kind": NOT_MEASURED,
        "chance": 1.0 / len(emotions), "classes": emotions, "sources": None, "folds": None, "note": None,
    }  # fmt: skip
    label = backend
    if backend in _UNCALIBRATED_KIND:
        label = f"{backend} ({_UNCALIBRATED_KIND[backend]})"
    elif backend == "raters" and (getattr(scorer, "options", None) or {}).get("raters"):
        label = f"raters ({scorer.options['raters']}, pooled)"  # several backends read every region
    info: dict[str, Any] = {
        "reader": label,
        "backend": backend,
        "emotions": emotions,
        "description": card.get("description"),
        "calibrated": cal is not None,
        "calibration": str(cal_path) if cal is not None else None,
        "calibrated_regions": sorted(cal.models) if cal is not None else [],
        "n_labels": None,
        "n_copies": None,
        "accuracy": accuracy,
        "harmony": None,
        "advice": None,
    }
    if cal is None:
        oos = card.get("out_of_source")
        if oos:
            accuracy.update({k: oos[k] for k in ("balanced_accuracy", "n", "chance", "classes", "sources")})
            accuracy.update(ci95=list(oos["ci95"]), kind=OUT_OF_SOURCE, note=oos.get("note"))
            if oos.get("harmony_swap_auc") is not None:
                info["harmony"] = {
                    "swap_auc": oos["harmony_swap_auc"], "n_swap": list(oos["n_swap"]), "chance": 0.5,
                    "kind": OUT_OF_SOURCE, "note": oos.get("harmony_note"),
                }  # fmt: skip
        else:
            accuracy["note"] = card.get("note") or f"no out-of-source figure for backend {backend!r}"
        info["advice"] = _advice_uncalibrated(backend, str(images) if images else None)
        return info
    info["reader"] = f"{label.split(' (')[0]} + calibration {cal_path}"
    training = cal.training if isinstance(cal.training, dict) else {}
    info["n_labels"] = _count(training.get("n_labels"))
    if info["n_labels"] is None:
        info["n_labels"] = _count(training.get("n_images"))  # files before n_labels: one label each
    info["n_copies"] = _count(training.get("n_copies"))  # labelled copies of another labelled image
    cv = training.get("cv")  # older files hold the fold count (or None) here, not figures
    face = cal.models.get("face")
    classes = list(face.classes) if face is not None else list(cal.emotions)
    if isinstance(cv, dict) and _is_num(cv.get("balanced_accuracy")):
        ci = cv.get("ci95")
        accuracy.update(
            balanced_accuracy=float(cv["balanced_accuracy"]),
            ci95=list(ci) if isinstance(ci, list) and len(ci) == 2 else None,
            n=_count(cv.get("n")),
            folds=_count(cv.get("folds")),
            kind=CROSS_VALIDATED,
            chance=cv["chance"] if _is_num(cv.get("chance")) else 1.0 / len(classes),
            classes=classes,
        )
    else:
        accuracy.update(classes=classes, note="the calibration file records no cross-validated accuracy")
        info["advice"] = (
            "measure it on your labels: rerun `harmony-eval calibrate ... --cv 5` with this harmony-eval, "
            "which stores the cross-validated accuracy in calibration.json"
        )
    return info


def accuracy_text(info: dict[str, Any]) -> str:
    """``measured out-of-source balanced accuracy 0.53 [0.28, 0.82] on 19 faces never tuned on
    (chance 0.25)``, or the cross-validated / not-measured equivalent."""
    a = info.get("accuracy") or {}
    ba, ci, n = a.get("balanced_accuracy"), a.get("ci95"), a.get("n")
    if not _is_num(ba):
        return f"accuracy not measured ({a.get('note')})" if a.get("note") else "accuracy not measured"
    has_ci = isinstance(ci, list) and len(ci) == 2 and all(_is_num(c) for c in ci)
    ci_txt = f" [{ci[0]:.2f}, {ci[1]:.2f}]" if has_ci else ""
    chance = f"chance {a['chance']:.2f}" if _is_num(a.get("chance")) else ""
    if chance and has_ci and ci[0] <= a["chance"]:
        chance += "; the interval reaches chance"  # nothing shows it reads better than guessing
    if a.get("kind") == CROSS_VALIDATED:
        folds = f", {a['folds']}-fold" if a.get("folds") else ""
        size = f"{n} labelled faces{folds}; " if n else ""
        return f"balanced accuracy cross-validated on your labels {ba:.2f}{ci_txt} ({size}{chance})"
    where = f" on {n} faces never tuned on" if n else ""
    text = f"measured out-of-source balanced accuracy {ba:.2f}{ci_txt}{where} ({chance})"
    classes = a.get("classes") or []
    run_classes = info.get("emotions")
    if run_classes and set(run_classes) != set(classes):
        text += f", measured over {', '.join(classes)}"
    return text


def harmony_text(info: dict[str, Any]) -> str | None:
    """``its harmony score, which the verdicts rest on, tells a sprite from ...`` when the reader card
    measured it (``out_of_source.harmony_swap_auc``; ``None`` otherwise, e.g. for a calibration)."""
    h = info.get("harmony") or {}
    auc, ns = h.get("swap_auc"), h.get("n_swap")
    if not _is_num(auc) or not (isinstance(ns, list) and len(ns) == 2):
        return None
    text = (
        f"its harmony score, which the verdicts rest on, tells a sprite from the same sprite with another "
        f"expression's mouth at AUC {auc:.2f} out of source ({ns[0]} vs {ns[1]} faces; chance "
        f"{h.get('chance', 0.5):.2f})"
    )
    if auc < 0.6:
        text += ", so its verdicts on new art say little"
    return text


def status_text(info: dict[str, Any]) -> str:
    """``calibrated on 24 labels`` / ``calibrated`` / ``uncalibrated``."""
    if not info.get("calibrated"):
        return "uncalibrated"
    n, c = info.get("n_labels"), info.get("n_copies")
    if n and c:
        return f"calibrated on {n} labels ({n - c} distinct drawings: {c} are copies of another)"
    return f"calibrated on {n} labels" if n else "calibrated"


def summary_line(info: dict[str, Any]) -> str:
    """One line for the end of ``score``: reader, calibrated or not, its accuracy, what to do."""
    line = f"reader: {info.get('reader')}, {status_text(info)}; {accuracy_text(info)}"
    harmony = harmony_text(info)
    line += f"; {harmony}." if harmony else "."
    if info.get("advice"):
        prefix = "To trust verdicts on your art, " if not info.get("calibrated") else "To know its accuracy, "
        line += f" {prefix}{info['advice']}"
    return line


READER_CSS = """
.reader{margin:10px 0 4px;padding:10px 14px;background:#fff;border-radius:8px;border-left:6px solid var(--rc);
box-shadow:0 1px 2px #0002;font-size:15px}.reader .rs{color:#fff;background:var(--rc);border-radius:4px;
padding:1px 8px;font-weight:600;font-size:13px;margin-left:6px}.reader .acc{margin-top:4px}
.reader .adv{margin-top:6px;color:#3a4048}.reader code{background:#eef0f3;border-radius:3px;padding:0 4px;
font-size:13px}
"""


def _code_spans(text: str) -> str:
    """Escape ``text``; `backticked` parts become <code>."""
    parts = text.split("`")
    return "".join(f"<code>{escape(p)}</code>" if i % 2 else escape(p) for i, p in enumerate(parts))


def reader_html(info: dict[str, Any] | None) -> str:
    """The report header's reader block (style: :data:`READER_CSS`); empty for a run.json without one.
    Colour: green for a calibrated reader with a measured accuracy, amber otherwise."""
    if not isinstance(info, dict) or not info.get("reader"):
        return ""
    measured = _is_num((info.get("accuracy") or {}).get("balanced_accuracy"))
    colour = "#2e9d5b" if info.get("calibrated") and measured else "#d99a1e"
    a = info.get("accuracy") or {}
    sources = f" · sources: {escape(', '.join(a['sources']))}" if measured and a.get("sources") else ""
    acc = accuracy_text(info)
    out = (
        f'<div class="reader" style="--rc:{colour}"><b>Reader:</b> {escape(str(info["reader"]))}'
        f'<span class="rs">{escape(status_text(info))}</span>'
        f'<div class="acc">{escape(acc[:1].upper() + acc[1:])}{sources}</div>'
    )
    harmony = harmony_text(info)
    if harmony:
        out += f'<div class="acc">{escape(harmony[:1].upper() + harmony[1:])}.</div>'
    if info.get("advice"):
        head = "To trust verdicts on your art" if not info.get("calibrated") else "To know its accuracy"
        out += f'<div class="adv"><b>{head}:</b> {_code_spans(info["advice"])}</div>'
    return out + "</div>"
