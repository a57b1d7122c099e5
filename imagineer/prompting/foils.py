"""Foils: captions that differ from an idea in one checkable detail, for contrastive scoring.

A raw CLIP cosine says how well an image matches a text, but it barely moves when only a detail is
wrong: "a red heart beside a yellow square" scores almost the same on a picture of a yellow heart
beside a red square. Asking instead "does the image prefer the idea to its foils?" (the idea
against the same words with the colours swapped, the relation reversed, another count, another
lighting or style) turns the scorer into a check of exactly the details the idea states, the way
compositional benchmarks (Winoground, ARO, SugarCrepe) probe CLIP with hard negatives.

Foils are written from the idea's own words and the vocabulary's ``relation``, ``number``,
``object``, ``colour``, ``lighting`` and ``style`` groups, so they exist only where the idea
states such a detail: a plain "a fox" gets none, and is scored by its cosine alone.
"""

from __future__ import annotations

import re

from imagineer.prompting.layout import joined_things, split_relation
from imagineer.prompting.vocabulary import TermGroup, Vocabulary

_ARTICLE = re.compile(r"^(a|an|the)\s+", re.I)
_PREPOSITIONS = {"at", "in", "under", "by", "during", "with", "on"}


def foils_for(idea: str, vocabulary: Vocabulary, limit: int = 24) -> list[str]:
    """Up to ``limit`` distinct foils of ``idea``, the most telling kinds first.

    Args:
        idea: The user's words.
        vocabulary: Supplies relation, number, lighting and style phrases.
        limit: Most foils returned.

    Returns:
        Foils in this order: colour/attribute binding swapped, relation reversed, one thing
        doubled instead of two things, other counts, each named object or colour replaced by
        the others (vocabulary groups ``object`` and ``colour``), other lightings, other styles.

    Example:
        >>> foils_for("a red heart beside a yellow square", vocabulary)[:1]
        ['a yellow heart beside a red square']
    """
    foils = _relation_and_binding(idea, vocabulary) + _counts(idea, vocabulary)
    for name in ("object", "colour"):
        foils += _each_mention(idea, vocabulary.group(name))
    for name in ("lighting", "style"):
        foils += _replaced(idea, vocabulary.group(name))
    distinct = [f for f in dict.fromkeys(foils) if f.lower() != idea.lower()]
    return distinct[:limit]


def _each_mention(idea: str, group: TermGroup) -> list[str]:
    """For every mention of an option of ``group`` ("heart", "hot pink"), the idea with that
    mention replaced by each other option; plurals stay plural ("3 hearts" -> "3 stars")."""
    spans: list[tuple[int, int, str, bool]] = []
    phrases = sorted(
        ((p, o.name) for o in group.options for p in {o.name, *o.phrases}),
        key=lambda pair: -len(pair[0]),
    )
    for phrase, name in phrases:
        pattern = rf"(?<!\w){re.escape(phrase)}(e?s)?(?!\w)"
        for match in re.finditer(pattern, idea, flags=re.I):
            if all(match.end() <= s or match.start() >= e for s, e, _, _ in spans):
                spans.append((match.start(), match.end(), name, bool(match.group(1))))
    foils = []
    for start, end, name, plural in sorted(spans):
        for other in group.options:
            if other.name != name:
                word = _plural(other.phrase) if plural else other.phrase
                foils.append(_fix_articles(idea[:start] + word + idea[end:]))
    return foils


def _fix_articles(text: str) -> str:
    """'a orange' -> 'an orange', 'an red' -> 'a red'."""
    text = re.sub(r"\b([Aa]) (?=[aeiouAEIOU])", r"\1n ", text)
    return re.sub(r"\b([Aa])n (?=[^aeiouAEIOU\W])", r"\1 ", text)


def _relation_and_binding(idea: str, vocabulary: Vocabulary) -> list[str]:
    """Binding swapped, relation reversed, and each of two things drawn twice instead."""
    split = split_relation(idea, vocabulary)
    if split is not None:
        first, joiner, second = split.subject, split.phrase, split.reference
        foils = [f"{second} {joiner} {first}"]
    else:
        things = joined_things(idea)
        if len(things) != 2:
            return []
        first, second = things
        start, end = idea.find(first) + len(first), idea.rfind(second)
        if not 0 <= start <= end:
            return []
        joiner, foils = idea[start:end].strip(), []
    swapped = _swap_modifiers(first, second)
    if swapped is not None:
        foils.insert(
            0, idea.replace(first, "\0").replace(second, swapped[1]).replace("\0", swapped[0])
        )
    two = _number_phrase(vocabulary, "2")
    foils += [f"{two} {_plural(_noun(thing))}" for thing in (first, second) if two]
    return foils


def _swap_modifiers(first: str, second: str) -> tuple[str, str] | None:
    """("a red heart", "a yellow square") -> ("a yellow heart", "a red square")."""
    words = [_ARTICLE.sub("", thing).split() for thing in (first, second)]
    if any(len(w) < 2 for w in words) or words[0][:-1] == words[1][:-1]:
        return None
    a_mods, b_mods, a_noun, b_noun = words[0][:-1], words[1][:-1], words[0][-1], words[1][-1]
    return (
        _with_article(" ".join([*b_mods, a_noun]), first),
        _with_article(" ".join([*a_mods, b_noun]), second),
    )


def _counts(idea: str, vocabulary: Vocabulary) -> list[str]:
    """The idea with each stated count replaced by the others, and by a single thing."""
    group = vocabulary.group("number")
    for option in group.options:
        for phrase in sorted(option.phrases, key=len, reverse=True):
            match = re.search(rf"(?<!\w){re.escape(phrase)}\s+(\w+)", idea, flags=re.I)
            if match is None:
                continue
            others = [o.phrase for o in group.options if _near(o.name, option.name)]
            foils = [
                idea[: match.start()] + f"{o} {match.group(1)}" + idea[match.end() :]
                for o in others
            ]
            single = _singular(match.group(1))
            foils.append(idea[: match.start()] + _with_article(single, "a") + idea[match.end() :])
            return foils
    return []


def _replaced(idea: str, group: TermGroup) -> list[str]:
    """The idea with its mention of one option of ``group`` replaced by each other option."""
    for option in group.options:
        for phrase in sorted({option.name, *option.phrases}, key=len, reverse=True):
            pattern = rf"(?<!\w){re.escape(phrase)}(?!\w)"
            if re.search(pattern, idea, flags=re.I):
                return [
                    re.sub(pattern, _same_form(phrase, other.phrases), idea, count=1, flags=re.I)
                    for other in group.options
                    if other.name != option.name
                ]
    return []


def _same_form(said: str, phrases: list[str]) -> str:
    """The phrase that fits where ``said`` was: "at sunset" is replaced by "at night", not
    by "night"."""
    said_first = said.split()[0].lower()
    if said_first in _PREPOSITIONS:
        for phrase in phrases:
            if phrase.split()[0].lower() in _PREPOSITIONS:
                return phrase
    return phrases[0]


def _near(name: str, stated: str) -> bool:
    """Counts next to the stated one (2 -> 3, 5 -> 4 and 6); any other name when not numbers."""
    if name == stated:
        return False
    if name.isdigit() and stated.isdigit():
        return abs(int(name) - int(stated)) == 1
    return True


def _number_phrase(vocabulary: Vocabulary, count: str) -> str | None:
    option = vocabulary.group("number").owner(count)
    return option.phrase if option is not None else None


def _noun(thing: str) -> str:
    return thing.split()[-1]


def _plural(noun: str) -> str:
    if noun.endswith("s") and not noun.endswith("ss"):
        return noun  # already plural ("clouds")
    return noun + ("es" if re.search(r"(s|x|sh|ch)$", noun) else "s")


def _singular(noun: str) -> str:
    if re.search(r"(ss|x|sh|ch)es$", noun):
        return noun[:-2]
    return noun[:-1] if noun.endswith("s") and not noun.endswith("ss") else noun


def _with_article(phrase: str, like: str) -> str:
    """``phrase`` with the article ``like`` starts with ("a"/"an" fitted to the sound)."""
    match = _ARTICLE.match(like) or re.match(r"^(a|an)$", like, flags=re.I)
    if match is None:
        return phrase
    if match.group(1).lower() == "the":
        return f"the {phrase}"
    return ("an " if phrase[:1].lower() in "aeiou" else "a ") + phrase
