"""HTML report of a scoring run: summary, charts and a worst-first gallery of annotated images.

``write_report(rows, out_dir)`` writes ``out_dir/report.html`` and, beside it, ``report_files/``:
``overlays/<name>.png`` (each image at most 512 px, face and region boxes drawn and labelled with the
region's top emotion and probability), ``verdicts.png`` and ``harmony.png``. No image is inlined,
thumbnails load lazily, and an overlay that exists and is newer than its image is reused, so the
report of a few thousand images is cheap to rewrite after a resumed run.

Rows are output-contract dicts (see ``pipeline.ROW_KEYS``); a malformed row, or one whose image
cannot be read, is still listed, without an overlay.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .overlay import EMOTION_COLOURS, emotion_colour, ensure_overlay, top_reading
from .reader_info import READER_CSS, reader_html

FILES = "report_files"
VERDICTS = ("perfect", "acceptable", "broken")
VERDICT_COLOURS = {"perfect": "#2e9d5b", "acceptable": "#d99a1e", "broken": "#d64541", "error": "#7a7f87"}
_SCORE_LABELS = {"eyes_mouth": "eyes ↔ mouth", "brows_tension": "brows ↔ tension", "coherence": "coherence",
                 "target_match": "target match"}  # fmt: skip


def _rank(row: dict) -> int:
    if row.get("status") == "error":
        return 0
    return {"broken": 1, "acceptable": 3, "perfect": 4}.get(row.get("verdict"), 2)


def sort_rows(rows: list[dict]) -> list[dict]:
    """Worst first: errors, then broken by ascending harmony (none first), unknown, acceptable, perfect."""

    def key(r: dict) -> tuple:
        h = r.get("harmony")
        return (_rank(r), -1.0 if not isinstance(h, (int, float)) else h, str(r.get("path", "")))

    return sorted(rows, key=key)


def summarize(rows: list[dict]) -> dict[str, Any]:
    """Counts and rates: images, statuses, verdicts, flags, mean harmony, target-match rate.

    ``target_match_rate`` is the share of rows with a target whose top emotion equals it (rows with no
    reading count as misses); ``None`` when no row has a target.
    """
    n = len(rows)
    verdicts = Counter(r.get("verdict") if r.get("status") != "error" else "error" for r in rows)
    flags = Counter(f for r in rows for f in (r.get("flags") or []))
    harmonies = [r["harmony"] for r in rows if isinstance(r.get("harmony"), (int, float))]
    targeted = [r for r in rows if r.get("target")]
    return {
        "images": n,
        "status": dict(Counter(str(r.get("status")) for r in rows)),
        "verdicts": {v: verdicts.get(v, 0) for v in (*VERDICTS, "error")},
        "rates": {v: (verdicts.get(v, 0) / n if n else 0.0) for v in (*VERDICTS, "error")},
        "flags": dict(flags.most_common()),
        "mean_harmony": sum(harmonies) / len(harmonies) if harmonies else None,
        "with_target": len(targeted),
        "target_match_rate": (sum(r.get("emotion") == r["target"] for r in targeted) / len(targeted))
        if targeted else None,
    }  # fmt: skip


# ------------------------------------------------------------------------------------------ overlays


# -------------------------------------------------------------------------------------------- charts


def _charts(summary: dict, rows: list[dict], files: Path, thresholds: dict) -> None:
    from matplotlib.figure import Figure  # object API: no pyplot, no global backend switch

    fig = Figure(figsize=(5, 3), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    names = [*VERDICTS, "error"]
    counts = [summary["verdicts"][v] for v in names]
    bars = ax.bar(names, counts, color=[VERDICT_COLOURS[v] for v in names])
    ax.bar_label(bars, padding=2)
    ax.set_ylabel("images")
    ax.set_title("Verdicts")
    ax.set_ylim(0, max(counts + [1]) * 1.18)
    ax.spines[["top", "right"]].set_visible(False)
    fig.savefig(files / "verdicts.png")

    fig = Figure(figsize=(5, 3), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    groups = [[r["harmony"] for r in rows if r.get("verdict") == v and isinstance(r.get("harmony"), (int, float))]
              for v in VERDICTS]  # fmt: skip
    ax.hist(groups, bins=[i / 20 for i in range(21)], stacked=True, label=list(VERDICTS),
            color=[VERDICT_COLOURS[v] for v in VERDICTS])  # fmt: skip
    for key in ("broken_harmony", "perfect_harmony"):
        if isinstance(thresholds.get(key), (int, float)):
            ax.axvline(thresholds[key], color="#333", ls="--", lw=1)
    ax.set_xlim(0, 1)
    ax.set_xlabel("harmony (dashed: verdict thresholds)")
    ax.set_ylabel("images")
    ax.set_title("Harmony")
    ax.legend(frameon=False, fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    fig.savefig(files / "harmony.png")


# ---------------------------------------------------------------------------------------------- html

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2127;background:#f4f5f7}
header,main{max-width:1360px;margin:auto;padding:0 20px}header{padding-top:18px}h1{font-size:22px;margin:0 0 4px}
h2{font-size:17px;margin:26px 0 10px}.muted{color:#68707a}.tiles{display:flex;flex-wrap:wrap;gap:10px}
.tile{background:#fff;border-radius:8px;padding:10px 14px;min-width:120px;box-shadow:0 1px 2px #0002}
.tile b{display:block;font-size:22px}.tile span{color:#68707a;font-size:12px}.charts{display:flex;flex-wrap:wrap;gap:12px}
.charts img{background:#fff;border-radius:8px;box-shadow:0 1px 2px #0002;max-width:100%;height:auto}
table.t{border-collapse:collapse;background:#fff;border-radius:8px;box-shadow:0 1px 2px #0002;margin-right:12px}
.t td,.t th{padding:4px 12px;border-bottom:1px solid #eceef1;text-align:left}.t td.n{text-align:right}
.tables{display:flex;flex-wrap:wrap;align-items:flex-start;gap:12px}details pre{background:#fff;padding:10px;overflow:auto}
.legend span{display:inline-block;margin-right:12px}.chip{display:inline-block;width:11px;height:11px;border-radius:2px;
vertical-align:-1px;margin-right:4px}.bar{position:sticky;top:0;background:#f4f5f7;padding:8px 0;z-index:1;
display:flex;gap:8px;flex-wrap:wrap;align-items:center}.bar button{border:1px solid #c9ced6;background:#fff;
border-radius:14px;padding:3px 12px;cursor:pointer}.bar button.on{background:#1d2127;color:#fff}.bar input{padding:4px 8px;
border:1px solid #c9ced6;border-radius:6px;min-width:240px}.grid{display:grid;grid-template-columns:repeat(auto-fill,
minmax(330px,1fr));gap:14px;padding-bottom:40px}.card{background:#fff;border-radius:8px;box-shadow:0 1px 2px #0002;
overflow:hidden;border-top:4px solid var(--v)}.card img{display:block;width:100%;height:auto;background:#eceef1}
.noimg{padding:30px 12px;text-align:center;color:#68707a;background:#eceef1}.meta{padding:8px 12px 12px}
.badge{color:#fff;background:var(--v);border-radius:4px;padding:1px 8px;font-weight:600;font-size:12px}
.path{font-family:ui-monospace,monospace;font-size:12px;word-break:break-all;margin:4px 0}.path a{color:inherit}
.reason{margin:4px 0}.flag{display:inline-block;background:#fde8e7;color:#a3302b;border-radius:4px;padding:0 6px;
margin:2px 4px 0 0;font-size:12px}.sc{width:100%;font-size:12px;border-collapse:collapse;margin-top:6px}.sc td{padding:1px 0}
.sc td:last-child{width:45%}.meter{background:#eceef1;border-radius:3px;height:7px}.meter i{display:block;height:7px;
border-radius:3px;background:#5b6b7f}.regions{font-size:12px;margin-top:6px}.hidden{display:none}
"""
_JS = """
const cards=[...document.querySelectorAll('.card')];let v='all';const q=document.getElementById('q');
function apply(){const s=q.value.toLowerCase();let n=0;for(const c of cards){const ok=(v==='all'||c.dataset.v===v)&&
(!s||c.dataset.text.includes(s));c.classList.toggle('hidden',!ok);n+=ok}document.getElementById('shown').textContent=n}
for(const b of document.querySelectorAll('.bar button'))b.onclick=()=>{v=b.dataset.v;
for(const o of document.querySelectorAll('.bar button'))o.classList.toggle('on',o===b);apply()};q.oninput=apply;
"""


def _e(x: Any) -> str:
    return escape(str(x), quote=True)


def _num(x: Any, nd: int = 2) -> str:
    return f"{x:.{nd}f}" if isinstance(x, (int, float)) and math.isfinite(x) else "–"


def _href(path: str, out_dir: Path) -> str | None:
    p = Path(path)
    if not p.is_file():
        return None
    try:
        rel = os.path.relpath(p.resolve(), out_dir.resolve())
    except ValueError:  # another drive on Windows
        return p.resolve().as_uri()
    return quote(rel.replace(os.sep, "/"))


def _card(row: dict, overlay: tuple, out_dir: Path) -> str:
    kind = "error" if row.get("status") == "error" else (row.get("verdict") or "error")
    kind = kind if kind in VERDICT_COLOURS else "error"
    label = row.get("verdict") or str(row.get("status") or "error")
    path = str(row.get("path", ""))
    name, size, problem = overlay
    if name:
        img = (f'<img loading="lazy" decoding="async" src="{FILES}/overlays/{_e(quote(name))}" '
               f'width="{size[0]}" height="{size[1]}" alt="{_e(path)}">')  # fmt: skip
    else:
        img = f'<div class="noimg">{_e(problem or "no image")}</div>'
    href = _href(path, out_dir)
    path_html = f'<a href="{_e(href)}">{_e(path)}</a>' if href else _e(path)
    target, emotion = row.get("target"), row.get("emotion")
    te = f"read <b>{_e(emotion or '–')}</b>"
    if target:
        te = f"target <b>{_e(target)}</b> · {te} {'✓' if emotion == target else '✗'}"
    flags = "".join(f'<span class="flag">{_e(f)}</span>' for f in (row.get("flags") or []))
    scores = row.get("scores") if isinstance(row.get("scores"), dict) else {}
    sc = "".join(
        f"<tr><td>{_e(_SCORE_LABELS.get(k, k))}</td><td>{_num(v)}</td><td><div class=meter>"
        f'<i style="width:{max(0.0, min(1.0, v)) * 100:.0f}%"></i></div></td></tr>'
        for k, v in [*scores.items(), ("harmony", row.get("harmony"))]
        if isinstance(v, (int, float))
    )
    regs = []
    for r in ("eyes", "brows", "mouth", "face"):
        top = top_reading(((row.get("regions") or {}).get(r) or {}).get("probs"))
        if top:
            regs.append(f'{r} <span class=chip style="background:{emotion_colour(top[0])}"></span>'
                        f"{_e(top[0])} {top[1]:.2f}")  # fmt: skip
    error = f'<div class="reason muted">{_e(row["error"])}</div>' if row.get("error") else ""
    text = " ".join(
        map(str, [path, label, row.get("reason", ""), *(row.get("flags") or []), target, emotion])
    )
    return (
        f'<article class="card" style="--v:{VERDICT_COLOURS[kind]}" data-v="{_e(kind)}" data-text="{_e(text.lower())}">'
        f"{img}<div class=meta><span class=badge>{_e(label)}</span> <span class=muted>harmony "
        f"{_num(row.get('harmony'))} · {te}</span><div class=path>{path_html}</div>"
        f"<div class=reason>{_e(row.get('reason') or '')}</div>{error}{flags}"
        f"<table class=sc>{sc}</table><div class=regions>{' · '.join(regs)}</div></div></article>"
    )


def _summary_html(s: dict, rows: list[dict]) -> str:
    n = s["images"] or 1
    tiles = [("images", s["images"], ""), ("mean harmony", _num(s["mean_harmony"]), "")]
    tiles += [(v, s["verdicts"][v], f"{100 * s['rates'][v]:.1f}%") for v in (*VERDICTS, "error")]
    if s["target_match_rate"] is not None:
        tiles.append(
            ("target match", f"{100 * s['target_match_rate']:.1f}%", f"of {s['with_target']} with a target")
        )
    out = '<div class="tiles">' + "".join(
        f'<div class="tile"><span>{_e(k)}</span><b>{_e(v)}</b><span>{_e(sub)}</span></div>'
        for k, v, sub in tiles
    )
    out += '</div><h2>Charts</h2><div class="charts">'
    out += f'<img src="{FILES}/verdicts.png" width="500" height="300" alt="verdict counts">'
    out += f'<img src="{FILES}/harmony.png" width="500" height="300" alt="harmony histogram"></div>'
    flag_rows = (
        "".join(
            f'<tr><td>{_e(f)}</td><td class="n">{c}</td><td class="n">{100 * c / n:.1f}%</td></tr>'
            for f, c in s["flags"].items()
        )
        or '<tr><td colspan="3" class="muted">no flags raised</td></tr>'
    )
    tables = f'<table class="t"><tr><th>flag</th><th>images</th><th>share</th></tr>{flag_rows}</table>'
    status = "".join(
        f'<tr><td>{_e(k)}</td><td class="n">{v}</td></tr>' for k, v in sorted(s["status"].items())
    )
    tables += f'<table class="t"><tr><th>status</th><th>images</th></tr>{status}</table>'
    by_target: dict[str, list[dict]] = {}
    for r in rows:
        if r.get("target"):
            by_target.setdefault(str(r["target"]), []).append(r)
    if by_target:
        body = ""
        for t, rs in sorted(by_target.items()):
            hs = [r["harmony"] for r in rs if isinstance(r.get("harmony"), (int, float))]
            verdicts = Counter(r.get("verdict") for r in rs)
            cells = "".join(f'<td class="n">{verdicts.get(v, 0)}</td>' for v in VERDICTS)
            body += (f'<tr><td>{_e(t)}</td><td class="n">{len(rs)}</td><td class="n">'
                     f"{100 * sum(r.get('emotion') == t for r in rs) / len(rs):.0f}%</td>"
                     f'<td class="n">{_num(sum(hs) / len(hs) if hs else None)}</td>{cells}</tr>')  # fmt: skip
        head = "".join(f"<th>{v}</th>" for v in VERDICTS)
        tables += (f'<table class="t"><tr><th>target</th><th>images</th><th>match</th><th>harmony</th>{head}</tr>'
                   f"{body}</table>")  # fmt: skip
    return out + f'<h2>Flags and targets</h2><div class="tables">{tables}</div>'


def write_report(
    rows: list[dict],
    out_dir: Path,
    *,
    title: str = "harmony_eval report",
    run_info: dict | None = None,
    progress: bool | None = None,
) -> Path:
    """Write ``out_dir/report.html`` (+ ``report_files/``) for output-contract ``rows``; returns its path.

    ``progress``: tqdm bar while drawing overlays (``None``: only on a terminal). Overlays no row uses
    any more are deleted from ``report_files/overlays``.
    """
    from tqdm.auto import tqdm

    out_dir = Path(out_dir)
    overlays = out_dir / FILES / "overlays"
    overlays.mkdir(parents=True, exist_ok=True)
    rows = [
        r if isinstance(r, dict) else {"path": repr(r), "status": "error", "error": "not a row"} for r in rows
    ]
    info = run_info if isinstance(run_info, dict) else {}
    cfg = info.get("config") if isinstance(info.get("config"), dict) else {}
    emotions = [str(e) for e in cfg.get("emotions") or []]
    emotions = emotions or list(
        dict.fromkeys(e for r in rows if isinstance(r.get("probs"), dict) for e in r["probs"])
    )
    emotions = emotions or list(EMOTION_COLOURS)
    ordered = sort_rows(rows)
    cards, used = [], set()
    for row in tqdm(
        ordered, desc="report", unit="img", disable=(not progress) if progress is not None else None
    ):
        try:
            ov = ensure_overlay(row, overlays, emotions)
        except Exception as e:  # never let one bad row stop the report
            ov = (None, None, f"overlay failed: {type(e).__name__}: {e}")
        used.add(ov[0])
        try:
            cards.append(_card(row, ov, out_dir))
        except Exception as e:
            cards.append(f'<article class="card" data-v="error" data-text=""><div class="noimg">row '
                         f"{_e(row.get('path'))} could not be shown: {_e(e)}</div></article>")  # fmt: skip
    for f in overlays.glob("*.png"):
        if f.name not in used:
            f.unlink()
    summary = summarize(rows)
    thresholds = cfg.get("thresholds") or {}
    _charts(summary, rows, out_dir / FILES, thresholds if isinstance(thresholds, dict) else {})
    legend = "".join(
        f'<span><i class="chip" style="background:{emotion_colour(e)}"></i>{_e(e)}</span>' for e in emotions
    )
    sub = " · ".join(
        f"{k} {_e(v)}"
        for k, v in (
            ("backend", cfg.get("backend")),
            ("emotions", ", ".join(emotions)),
            ("calibrated with", cfg.get("calibration")),  # a calibrated run says so at the top
        )
        if v
    )
    buttons = "".join(
        f'<button data-v="{v}">{v} ({summary["verdicts"][v]})</button>' for v in (*VERDICTS, "error")
    )
    details = (f"<details><summary>Run information</summary><pre>{_e(json.dumps(info, indent=2, default=str))}"
               "</pre></details>") if info else ""  # fmt: skip
    doc = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
        f'content="width=device-width,initial-scale=1"><title>{_e(title)}</title><style>{_CSS}{READER_CSS}</style></head><body>'
        f'<header><h1>{_e(title)}</h1><div class="muted">{sub}</div>{reader_html(info.get("reader"))}</header><main>'
        f"<h2>Summary</h2>{_summary_html(summary, rows)}{details}"
        f'<h2>Images, worst first</h2><div class="legend muted">box colours: {legend}</div>'
        f'<div class="bar"><button data-v="all" class="on">all ({len(rows)})</button>{buttons}'
        f'<input id="q" placeholder="filter by path, flag, emotion…"><span class="muted"><span id="shown">'
        f'{len(rows)}</span> shown</span></div><div class="grid">{"".join(cards)}</div></main>'
        f"<script>{_JS}</script></body></html>\n"
    )
    path = out_dir / "report.html"
    path.write_text(doc, encoding="utf-8")
    return path
