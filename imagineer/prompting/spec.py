"""PromptSpec: a structured prompt, and how it becomes the strings a text encoder reads.

A spec keeps the user's subject apart from the modifiers an expander or refiner adds, so a refiner
can change lighting or emphasis without touching the idea, and rendering can drop the least
important modifiers when a text encoder's window is full while never touching the subject.

Emphasis has two spellings, because pipelines read prompts differently:

- ``"a1111"`` writes ``(term:1.3)``, the syntax A1111, ComfyUI and compel parse into weights.
- ``"plain"`` is for pipelines that read the text literally (diffusers' own ``__call__``), where
  ``(term:1.3)`` would just be five odd tokens. There, emphasis is expressed the way CLIP actually
  responds to it: by order (emphasised modifiers right after the subject, de-emphasised ones last,
  so they are also the first to go when the window is full) and by repetition: an emphasised
  phrase of the subject is mentioned again right after it, and a term weighted
  ``STRONG_EMPHASIS`` or more is written once more near the end. Weights below 1 on a phrase of
  the subject cannot be expressed in plain text and change nothing there.

In both syntaxes an emphasised term found nowhere in the spec is added as a modifier (that is how
a refiner asks for a missing concept), and a term of the negative prompt is weighted there only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from imagineer.errors import UnknownStyle
from imagineer.prompting.styles import StyleLibrary, StylePreset
from imagineer.region import Region

logger = logging.getLogger(__name__)

EMPHASIS_MIN = 0.5
"""Lowest emphasis weight a spec accepts; below it a term is better dropped."""
EMPHASIS_MAX = 2.0
"""Highest emphasis weight; past it CLIP embeddings distort more than they emphasise."""
STRONG_EMPHASIS = 1.5
"""From this weight on, plain syntax repeats the term."""

Syntax = Literal["plain", "a1111"]
Overflow = Literal["drop", "keep"]

# Drop ranks: lower ranks are dropped first when the window is full (ties broken by weight first).
_RANK = {
    "details": 10,
    "negative": 20,
    "composition": 20,
    "template": 25,
    "style": 25,
    "lighting": 30,
    "boost": 40,
}


def clean_terms(terms: list[str]) -> list[str]:
    """Strip, collapse whitespace, drop empty terms and case-insensitive duplicates, keep order."""
    seen: set[str] = set()
    out: list[str] = []
    for term in terms:
        text = " ".join(str(term).split()).strip(" ,")
        if text and text.lower() not in seen:
            seen.add(text.lower())
            out.append(text)
    return out


class RenderedPrompt(BaseModel):
    """The strings a generator receives, with what rendering had to leave out.

    ``tokens`` and ``negative_tokens`` are None when no token counter was given. When they exceed
    ``window`` (``overflow="keep"``, or a subject longer than the window) the generator must encode
    in chunks or record its own cut.
    """

    positive: str
    negative: str
    tokens: int | None = Field(default=None, description="Tokens in `positive`, no markers.")
    negative_tokens: int | None = Field(default=None, description="Tokens in `negative`.")
    window: int = Field(description="The text encoder's window in tokens, without markers.")
    dropped: list[str] = Field(
        default_factory=list,
        description="What was left out to fit, in drop order: terms, 'style:NAME', "
        "'negative:TERM', 'negative-style:NAME'.",
    )
    regions: list[Region] = Field(
        default_factory=list,
        description="Regional prompts as sent: each region's text with the spec's style and "
        "lighting, so every part of the picture shares them.",
    )

    @property
    def chunks(self) -> int:
        """How many windows the positive prompt needs (1 when unknown or when it fits)."""
        if self.tokens is None:
            return 1
        return max(1, math.ceil(self.tokens / self.window))


class PromptSpec(BaseModel):
    """A prompt as parts: the user's subject plus the modifiers engines add and refiners change.

    Example:
        >>> spec = PromptSpec(subject="a fox in the snow", lighting=["golden hour"],
        ...                   details=["highly detailed"], emphasis={"snow": 1.3})
        >>> spec.render(syntax="a1111").positive
        'a fox in the (snow:1.3), golden hour, highly detailed'
    """

    model_config = ConfigDict(extra="forbid")

    subject: str = Field(min_length=1, description="The idea in the user's own words; never cut.")
    style: str | None = Field(default=None, description="A style preset name, or a style phrase.")
    lighting: list[str] = Field(default_factory=list, description="Lighting terms.")
    composition: list[str] = Field(default_factory=list, description="Framing and camera terms.")
    details: list[str] = Field(default_factory=list, description="Detail and quality terms.")
    negative: list[str] = Field(default_factory=list, description="Terms for the negative prompt.")
    emphasis: dict[str, float] = Field(
        default_factory=dict,
        description=f"Term -> weight in [{EMPHASIS_MIN}, {EMPHASIS_MAX}]; 1 is neutral. A term "
        "found nowhere else in the spec is added as a modifier when its weight is above 1.",
    )
    guidance: float | None = Field(
        default=None, ge=0.0, le=30.0, description="Classifier-free guidance hint; None: default."
    )
    regions: list[Region] = Field(
        default_factory=list,
        description="Parts of the picture with their own prompt (layout-grounded rendering), "
        "e.g. 'a red heart on the left' in the left half; for generators that support them.",
    )

    @field_validator("subject")
    @classmethod
    def _subject_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the subject must not be blank")
        return value.strip()

    @field_validator("style")
    @classmethod
    def _style_clean(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @field_validator("lighting", "composition", "details", "negative")
    @classmethod
    def _terms_clean(cls, value: list[str]) -> list[str]:
        return clean_terms(value)

    @field_validator("emphasis")
    @classmethod
    def _emphasis_in_range(cls, value: dict[str, float]) -> dict[str, float]:
        out: dict[str, float] = {}
        for term, weight in value.items():
            key = " ".join(term.split())
            if not key:
                raise ValueError("emphasis terms must not be blank")
            if not EMPHASIS_MIN <= weight <= EMPHASIS_MAX:
                raise ValueError(
                    f"emphasis weight {weight} for {key!r} is outside "
                    f"[{EMPHASIS_MIN}, {EMPHASIS_MAX}]"
                )
            out[key] = float(weight)
        return out

    def weight(self, term: str) -> float:
        """The emphasis weight of ``term`` (case-insensitive), 1.0 when it has none."""
        lowered = term.lower()
        for key, value in self.emphasis.items():
            if key.lower() == lowered:
                return value
        return 1.0

    def fingerprint(self) -> str:
        """A short hash that two specs share when they would render the same way.

        Term order inside a list and letter case are ignored and weights are rounded to 0.05, so
        refiners do not propose a "new" spec that only shuffles an old one.
        """
        canon = {
            "subject": self.subject.lower(),
            "style": (self.style or "").lower(),
            **{
                name: sorted(t.lower() for t in getattr(self, name))
                for name in ("lighting", "composition", "details", "negative")
            },
            "emphasis": sorted(
                (k.lower(), round(v * 20) / 20) for k, v in self.emphasis.items() if v != 1.0
            ),
            "guidance": None if self.guidance is None else round(self.guidance, 2),
        }
        if self.regions:  # only when present, so fingerprints of specs without regions stay
            canon["regions"] = [
                [r.prompt.lower(), [round(v, 3) for v in r.box]] for r in self.regions
            ]
        return hashlib.sha256(json.dumps(canon, sort_keys=True).encode()).hexdigest()[:16]

    def render(
        self,
        styles: StyleLibrary | Mapping[str, StylePreset] | None = None,
        count_tokens: Callable[[str], int] | None = None,
        window: int = 75,
        syntax: Syntax = "plain",
        overflow: Overflow = "drop",
    ) -> RenderedPrompt:
        """Render the positive and negative prompt for one text encoder.

        Args:
            styles: Presets to resolve ``style`` with. When None, a style is written as a plain
                term after the subject (how a vocabulary style like "pixel art" is used).
            count_tokens: The generator's token counter (no start/end markers). Without it nothing
                is measured or dropped.
            window: Tokens the encoder reads per pass, without markers (75 for CLIP).
            syntax: ``"plain"`` or ``"a1111"``; see the module docstring.
            overflow: ``"drop"`` leaves out the lowest-priority modifiers until the prompt fits
                (de-emphasised terms, then repeats, details, composition, the style template,
                lighting, emphasised terms; the style's negative prompt before negative terms),
                recording each in ``dropped``; the subject always stays.
                ``"keep"`` keeps everything for a generator that encodes long prompts in chunks.

        Returns:
            The prompt strings, their token counts and what was dropped.

        Raises:
            UnknownStyle: ``style`` is not in ``styles``.
        """
        preset = self._preset(styles)
        units = self._positive_units(preset, syntax)
        negative_units = self._negative_units(preset, syntax)
        positive, tokens, dropped = _fit(units, preset, count_tokens, window, overflow)
        negative, negative_tokens, negative_dropped = _fit(
            negative_units, None, count_tokens, window, overflow
        )
        if tokens is not None and tokens > window and overflow == "drop":
            logger.warning(
                "The subject alone is %d tokens, over the %d-token window; it is kept whole and "
                "the generator must chunk or record its cut: %r",
                tokens,
                window,
                self.subject,
            )
        return RenderedPrompt(
            positive=positive,
            negative=negative,
            tokens=tokens,
            negative_tokens=negative_tokens,
            window=window,
            dropped=dropped + negative_dropped,
            regions=[
                r.model_copy(update={"prompt": self._region_text(r, preset)}) for r in self.regions
            ],
        )

    def _region_text(self, region: Region, preset: StylePreset | None) -> str:
        """A region's prompt with the spec's style and lighting, so the parts agree."""
        terms = [region.prompt]
        if self.style is not None and preset is None:
            terms.append(self.style)
        terms += [t for t in self.lighting if not _in_text(t, region.prompt)]
        core = ", ".join(clean_terms(terms))
        return preset.apply(core) if preset is not None else core

    def _preset(
        self, styles: StyleLibrary | Mapping[str, StylePreset] | None
    ) -> StylePreset | None:
        if self.style is None or styles is None:
            return None
        preset = styles.get(self.style)
        if preset is None:
            raise UnknownStyle(
                f"style {self.style!r} is not in the style library; pick one of its names "
                "(StyleLibrary.names()) or render with styles=None to use it as a plain term"
            )
        return preset

    def _positive_units(self, preset: StylePreset | None, syntax: Syntax) -> list[_Unit]:
        """The subject and every modifier as droppable units, in the order they are written."""
        fields: list[tuple[str, str]] = []
        if self.style is not None and preset is None:
            fields.append(("style", self.style))
        for name in ("lighting", "composition", "details"):
            fields.extend((name, term) for term in getattr(self, name))
        present = {term.lower() for _, term in fields} | {t.lower() for t in self.negative}
        boosts = [
            term
            for term, weight in self.emphasis.items()
            if weight > 1.0
            and term.lower() not in present
            # a1111 weights a subject phrase in place; plain text can only mention it again
            and (syntax == "plain" or not _in_text(term, self.subject))
        ]
        units = [_Unit(_subject_text(self, syntax), key=None, label="subject")]
        modifiers = [_term_unit(self, "boost", t, syntax) for t in boosts]
        modifiers += [_term_unit(self, name, t, syntax) for name, t in fields]
        if syntax == "plain":
            modifiers.sort(key=lambda u: -u.weight)
            units += modifiers
            units += _repeats(self, [t for _, t in fields] + boosts)
        else:
            units += modifiers
        if preset is not None:
            units.append(
                _Unit("", (1.0, _RANK["template"], 0), f"style:{preset.name}", template=True)
            )
        return _index(units)

    def _negative_units(self, preset: StylePreset | None, syntax: Syntax) -> list[_Unit]:
        units = [_term_unit(self, "negative", term, syntax) for term in self.negative]
        units = [
            _Unit(u.text, key=u.key, label=f"negative:{u.label}", weight=u.weight) for u in units
        ]
        if syntax == "plain":
            units.sort(key=lambda u: -u.weight)
        if preset is not None and preset.negative_prompt:
            units.append(
                _Unit(
                    preset.negative_prompt, key=(0.0, 0, 0), label=f"negative-style:{preset.name}"
                )
            )
        return _index(units)


@dataclass
class _Unit:
    """One droppable piece of a prompt; ``key`` orders dropping (lowest first), None: never."""

    text: str
    key: tuple[float, int, int] | None
    label: str
    weight: float = 1.0
    template: bool = False


def _index(units: list[_Unit]) -> list[_Unit]:
    """Break drop ties so that, among equals, later-written units go first."""
    for position, unit in enumerate(units):
        if unit.key is not None:
            unit.key = (unit.key[0], unit.key[1], -position)
    return units


def _fmt_weight(weight: float) -> str:
    return f"{weight:.2f}".rstrip("0").rstrip(".")


def _escape(text: str) -> str:
    """Escape the characters A1111 reads as emphasis syntax, so user text stays literal."""
    return re.sub(r"([()\[\]])", r"\\\1", text)


def _in_text(term: str, text: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(term)}(?!\w)", text, flags=re.IGNORECASE) is not None


def _subject_text(spec: PromptSpec, syntax: Syntax) -> str:
    """The subject as written; in a1111 syntax, its emphasised phrases get their weights."""
    if syntax == "plain":
        return spec.subject
    text = _escape(spec.subject)
    for term, weight in spec.emphasis.items():
        if weight == 1.0 or not _in_text(term, spec.subject):
            continue
        pattern = rf"(?<![\w(]){re.escape(_escape(term))}(?![\w:])"
        match = re.search(pattern, text, flags=re.IGNORECASE)
        if match is not None:
            weighted = f"({match.group(0)}:{_fmt_weight(weight)})"
            text = text[: match.start()] + weighted + text[match.end() :]
    return text


def _term_unit(spec: PromptSpec, field: str, term: str, syntax: Syntax) -> _Unit:
    weight = spec.weight(term)
    text = term
    if syntax == "a1111":
        text = _escape(term)
        if weight != 1.0:
            text = f"({text}:{_fmt_weight(weight)})"
    return _Unit(text, key=(weight, _RANK[field], 0), label=term, weight=weight)


def _repeats(spec: PromptSpec, terms: list[str]) -> list[_Unit]:
    """Plain syntax's strong emphasis: one more mention near the end, dropped early.

    ``terms`` are the positive prompt's modifiers (emphasised subject phrases included), so a
    strongly weighted negative term is never repeated into the positive prompt.
    """
    strong = [t for t in terms if spec.weight(t) >= STRONG_EMPHASIS]
    return [_Unit(t, key=(1.0, 0, 0), label=f"{t} (repeat)") for t in clean_terms(strong)]


def _compose(units: list[_Unit], preset: StylePreset | None) -> str:
    core = ", ".join(u.text for u in units if u.text)
    templated = any(u.template for u in units)
    return preset.apply(core) if preset is not None and templated else core


def _fit(
    units: list[_Unit],
    preset: StylePreset | None,
    count_tokens: Callable[[str], int] | None,
    window: int,
    overflow: Overflow,
) -> tuple[str, int | None, list[str]]:
    """Drop units lowest key first until the text fits ``window``; return text, tokens, drops."""
    kept = list(units)
    text = _compose(kept, preset)
    if count_tokens is None:
        return text, None, []
    tokens = count_tokens(text)
    dropped: list[str] = []
    if overflow == "keep":
        return text, tokens, dropped
    droppable = sorted((u for u in units if u.key is not None), key=lambda u: u.key or ())
    for unit in droppable:
        if tokens <= window:
            break
        kept.remove(unit)
        dropped.append(unit.label)
        text = _compose(kept, preset)
        tokens = count_tokens(text)
    if dropped:
        logger.info("Dropped %d prompt part(s) to fit %d tokens: %s", len(dropped), window, dropped)
    return text, tokens, dropped


class ScoredSpec(BaseModel):
    """One rendered spec with its scores: the history format refiners read.

    Scores are plain floats so prompting never imports the scorer; ``concepts`` maps each concept
    phrase (see `concepts_for`) to its score on the candidate's image.

    Example:
        >>> ScoredSpec(spec=PromptSpec(subject="a fox in the snow"), score=0.31,
        ...            concepts={"fox": 0.28, "snow": 0.19}, round=0, candidate_id="r0c1")
    """

    model_config = ConfigDict(extra="forbid")

    spec: PromptSpec
    score: float = Field(description="Overall score of the candidate (higher is better).")
    concepts: dict[str, float] = Field(default_factory=dict, description="Concept -> score.")
    round: int = Field(default=0, ge=0, description="Round the candidate was rendered in.")
    candidate_id: str | None = Field(default=None, description="The agent's candidate id.")
