"""Concepts: the phrases of an idea that are scored one by one, and which of them are weakest.

Per-concept scores are the feedback refiners use to see what a picture is missing ("fox" is there,
"snow" is not). The decomposition is a deliberate, predictable heuristic rather than a parser: it
splits the subject at commas and conjunctions, then splits off prepositional phrases ("in the
snow" -> "snow"), except positional ones ("on the left"), which mean nothing to CLIP on their own
and stay attached to what they place.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from imagineer.prompting.spec import PromptSpec, ScoredSpec, clean_terms

_SPLIT = re.compile(r"\s*(?:[,;]|\band\b|\bwith\b|\bwhile\b|\bwearing\b|\bholding\b)\s*", re.I)
_PREPOSITION = re.compile(
    r"\s+\b(in|on|at|under|beneath|near|next to|beside|behind|above|below|over|inside|through|"
    r"across|against|among|by|under)\b\s+",
    re.I,
)
_POSITIONAL = {
    "left", "right", "top", "bottom", "center", "centre", "middle", "corner", "side",
    "background", "foreground", "distance", "front", "back",
}  # fmt: skip
_LEADING = re.compile(r"^(?:(?:a|an|the|some|its|his|her|their|of)\s+)+", re.I)
_TRAILING = re.compile(r"\s+(?:together|side by side)$", re.I)


def _strip(phrase: str) -> str:
    return _TRAILING.sub("", _LEADING.sub("", phrase.strip(" .!?")).strip())


def _split_prepositions(piece: str) -> list[str]:
    """``"a fox in the snow"`` -> ``["fox", "snow"]``; positional phrases stay attached."""
    parts = _PREPOSITION.split(piece)
    out = [parts[0]]
    for preposition, tail in zip(parts[1::2], parts[2::2], strict=False):
        words = set(re.findall(r"\w+", tail.lower()))
        if words & _POSITIONAL:
            out[-1] = f"{out[-1]} {preposition} {tail}"
        else:
            out.append(tail)
    return out


def concepts_for(spec: PromptSpec | str, *, include_modifiers: bool = False) -> list[str]:
    """The concept phrases to score for an idea or a spec.

    Args:
        spec: A spec (its subject is decomposed) or an idea string.
        include_modifiers: Also return the spec's style and lighting terms. Off by default so all
            specs of one idea share the same concepts, and scores compare across the history.

    Returns:
        Distinct, non-empty phrases in reading order (the whole subject when nothing splits).

    Example:
        >>> concepts_for("a fox in the snow, wearing a red scarf")
        ['fox', 'snow', 'red scarf']
    """
    subject = spec if isinstance(spec, str) else spec.subject
    phrases: list[str] = []
    for piece in _SPLIT.split(subject):
        if piece.strip():
            phrases.extend(_strip(p) for p in _split_prepositions(piece.strip()))
    if include_modifiers and isinstance(spec, PromptSpec):
        phrases += [spec.style or "", *spec.lighting]
    concepts = clean_terms(phrases)
    return concepts or [subject.strip()]


def weakest_concepts(
    history: Sequence[ScoredSpec], n: int = 2, top: int = 3
) -> list[tuple[str, float]]:
    """The ``n`` concepts the best candidates show least, weakest first.

    A concept's strength is its mean score over the ``top`` best entries (by overall score): the
    best pictures are the ones refiners build on, so their gaps are the ones worth fixing.

    Returns:
        ``(concept, mean score)`` pairs, lowest first; empty when the history has no concepts.
    """
    best = sorted(history, key=lambda h: -h.score)[:top]
    totals: dict[str, list[float]] = {}
    for entry in best:
        for concept, value in entry.concepts.items():
            totals.setdefault(concept, []).append(value)
    means = [(c, sum(v) / len(v)) for c, v in totals.items()]
    return sorted(means, key=lambda cv: (cv[1], cv[0]))[:n]
