"""The prompt grid: archetypes x emotions x CFG scales x seeds (x LoRA scales), built from ``prompts/``.

Prompt text is data: ``templates.txt`` (one template per line), ``archetypes.yaml`` (``prompt`` per
archetype), ``emotions.yaml`` (``prompt`` per emotion) and ``negative.txt`` (the default negative
prompt, one phrase per line). The seed's default grid is 4 archetypes x 4 active emotions x
CFG {5.0, 7.0, 9.0} x 1 seed = 48 images.

>>> items = build_grid()                                  # doctest: +SKIP
>>> len(items), items[0].file                              # doctest: +SKIP
(48, 'images/soft_neutral_cfg5_seed0.png')
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harmony_eval import resources

DEFAULT_CFGS = (5.0, 7.0, 9.0)  # the seed's three guidance scales: loose, SD 1.5's usual 7, strict
DEFAULT_SEEDS = (0,)
TEMPLATE_FIELDS = {"archetype", "emotion", "archetype_prompt", "emotion_prompt"}


@dataclass(frozen=True)
class GridItem:
    """One image to generate. ``lora_scale`` is None when no LoRA is applied."""

    archetype: str
    emotion: str
    cfg: float
    seed: int
    prompt: str
    negative: str
    lora_scale: float | None = None

    @property
    def file(self) -> str:
        """Path of the PNG relative to the run folder; unique per grid cell, stable across reruns
        (that is what lets a rerun skip finished images)."""
        name = f"{_slug(self.archetype)}_{_slug(self.emotion)}_cfg{self.cfg:g}_seed{self.seed}"
        if self.lora_scale is not None:
            name += f"_lora{self.lora_scale:g}"
        return f"images/{name}.png"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def load_templates(folder: str | Path | None = None) -> list[str]:
    """Templates from ``templates.txt``; blank lines and ``#`` comments skipped."""
    path = Path(folder or resources.prompts_dir()) / "templates.txt"
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
    templates = [ln for ln in lines if ln and not ln.startswith("#")]
    if not templates:
        raise ValueError(f"{path}: no templates (one per line expected, '#' starts a comment)")
    return templates


def load_negative(folder: str | Path | None = None) -> str:
    """The default negative prompt: ``negative.txt`` phrases joined with ", "."""
    path = Path(folder or resources.prompts_dir()) / "negative.txt"
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
    return ", ".join(ln for ln in lines if ln and not ln.startswith("#"))


def load_archetypes(folder: str | Path | None = None) -> dict[str, str]:
    """``{archetype name: prompt phrase}`` in file order."""
    path = Path(folder or resources.prompts_dir()) / "archetypes.yaml"
    table = resources.load_yaml(path).get("archetypes") or {}
    missing = [k for k, v in table.items() if not (v or {}).get("prompt")]
    if missing:
        raise ValueError(f"{path}: archetype(s) {missing} have no `prompt`; add one to each")
    return {k: v["prompt"] for k, v in table.items()}


def _pick(kind: str, wanted: Sequence[str] | None, known: Sequence[str], default: Sequence[str]) -> list[str]:
    """Validate a user selection against the names a data file defines (exact names, file order kept
    when nothing is asked for)."""
    if wanted is None:
        return list(default)
    wanted = list(wanted)
    unknown = [w for w in wanted if w not in known]
    if unknown:
        raise ValueError(
            f"Unknown {kind}(s) {unknown}; prompts/ defines {list(known)}. "
            f"Pick from that list (names are case-sensitive) or add the {kind} to prompts/."
        )
    if not wanted or len(set(wanted)) != len(wanted):
        raise ValueError(f"`{kind}s` must list distinct names, got {wanted}")
    return wanted


def _numbers(kind: str, values: Sequence[float], cast: type) -> list:
    out = [cast(v) for v in values]
    if not out or len(set(out)) != len(out):
        raise ValueError(f"`{kind}` must list at least one value and no duplicates, got {list(values)}")
    return out


def render_prompt(
    template: str, archetype: str, archetype_prompt: str, emotion: str, emotion_prompt: str
) -> str:
    """Fill a template's ``{archetype}``, ``{emotion}``, ``{archetype_prompt}``, ``{emotion_prompt}``."""
    fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    unknown = fields - TEMPLATE_FIELDS
    if unknown:
        raise ValueError(
            f"Template {template!r} uses unknown field(s) {sorted(unknown)}; "
            f"allowed fields are {sorted(TEMPLATE_FIELDS)}"
        )
    return template.format(
        archetype=archetype,
        emotion=emotion,
        archetype_prompt=archetype_prompt,
        emotion_prompt=emotion_prompt,
    )


def build_grid(
    archetypes: Sequence[str] | None = None,
    emotions: Sequence[str] | None = None,
    cfgs: Sequence[float] = DEFAULT_CFGS,
    seeds: Sequence[int] = DEFAULT_SEEDS,
    template: int | str = 0,
    negative: str | None = None,
    lora_scales: Sequence[float] | None = None,
    prompts_folder: str | Path | None = None,
) -> list[GridItem]:
    """The grid, in archetype -> emotion -> CFG -> seed -> LoRA scale order.

    Args:
        archetypes: names from ``archetypes.yaml``; None = all, in file order.
        emotions: names from ``emotions.yaml``; None = the active ones (neutral, happy, sad, angry).
            A single emotion is allowed here (unlike the scoring vocabulary).
        cfgs: classifier-free guidance scales.
        seeds: one image per seed per cell.
        template: index into ``templates.txt`` or a template string with the fields above.
        negative: negative prompt; None = ``negative.txt``; "" = none.
        lora_scales: adds a LoRA-scale dimension; None = no LoRA.
    Returns:
        ``len(archetypes) * len(emotions) * len(cfgs) * len(seeds) * max(1, len(lora_scales))`` items.
    """
    folder = Path(prompts_folder) if prompts_folder else resources.prompts_dir()
    arche_table = load_archetypes(folder)
    emo_table = resources.load_yaml(folder / "emotions.yaml")["emotions"]
    arche = _pick("archetype", archetypes, list(arche_table), list(arche_table))
    active = [k for k, v in emo_table.items() if v.get("active", False)]
    emos = _pick("emotion", emotions, list(emo_table), active)
    no_prompt = [e for e in emos if not emo_table[e].get("prompt")]
    if no_prompt:
        raise ValueError(f"{folder / 'emotions.yaml'}: emotion(s) {no_prompt} have no `prompt`; add one")
    cfg_list = _numbers("cfgs", cfgs, float)
    if any(c < 0 for c in cfg_list):
        raise ValueError(f"`cfgs` must be >= 0 (1.0 turns guidance off), got {cfg_list}")
    seed_list = _numbers("seeds", seeds, int)
    if any(s < 0 for s in seed_list):
        raise ValueError(f"`seeds` must be non-negative integers, got {seed_list}")
    scale_list: list[float | None] = (
        [None] if lora_scales is None else _numbers("lora_scales", lora_scales, float)
    )

    if isinstance(template, int):
        templates = load_templates(folder)
        if not 0 <= template < len(templates):
            raise ValueError(
                f"`template` index {template} is out of range: {folder / 'templates.txt'} has "
                f"{len(templates)} template(s) (0..{len(templates) - 1})"
            )
        tmpl = templates[template]
    else:
        tmpl = template
    neg = load_negative(folder) if negative is None else negative

    items = []
    for a in arche:
        for e in emos:
            prompt = render_prompt(tmpl, a, arche_table[a], e, emo_table[e]["prompt"])
            for c in cfg_list:
                for s in seed_list:
                    for ls in scale_list:
                        items.append(GridItem(a, e, c, s, prompt, neg, ls))
    return items
