"""Layout hints: composition terms that spell out how an idea's things are arranged.

Text-to-image models are weakest at the parts of an idea that take more than one thing: two
objects each with its own colour, which is above which, how many. A model given "a red circle
next to a blue star" often swaps the colours or draws one shape twice; the same model given the
extra words "a red circle on the left, a blue star on the right" keeps them apart far more often
(the planning step of layout-guided pipelines such as LLM-grounded diffusion, done here with
words). Two hints are offered, both derived from the idea alone and added as composition terms,
so the user's words stay the subject:

- placement: two or three things named together get a place each; a stated relation ("a star
  above a heart") decides the places, otherwise they are set side by side;
- numbers: a count written as a digit or an idiom ("3 stars", "a pair of stars") is restated in
  the vocabulary's written form ("three stars"), the form captions use most.

The words come from the vocabulary's ``placement``, ``relation`` and ``number`` groups, so the
pocket world and the general vocabulary each speak their own phrases.

``layout_regions`` turns the same plan into regions (`imagineer.region.Region`): each placed
thing gets its own prompt and its own part of the canvas, the layout-to-image step of
LLM-grounded diffusion, for generators that render regional prompts. A counted thing ("three
stars") gets one region per copy ("a star on the left", "a star on the right", "a star at the
bottom").
"""

from __future__ import annotations

import re
from typing import NamedTuple

from imagineer.prompting.vocabulary import TermOption, Vocabulary
from imagineer.region import Region

# Where the two things of a relation go: (the subject's place, the reference's place).
_RELATION_PLACES = {
    "left_of": ("left", "right"),
    "right_of": ("right", "left"),
    "above": ("top", "bottom"),
    "below": ("bottom", "top"),
}
# Places for things named together, in the order the idea lists them: two side by side, three
# as two above and one below (a row of three thirds left the middle one out of most pocket
# renders: 3 of 48 right against 14 of 48, ideas 0-5 of the three-of-a-kind counting ideas).
_SIDE_BY_SIDE = {2: ("left", "right"), 3: ("left", "right", "bottom")}
# The part of the canvas each place gets, (left, top, right, bottom), by how many things share it.
_BOXES: dict[int, dict[str, tuple[float, float, float, float]]] = {
    2: {
        "left": (0.0, 0.0, 0.5, 1.0),
        "right": (0.5, 0.0, 1.0, 1.0),
        "top": (0.0, 0.0, 1.0, 0.5),
        "bottom": (0.0, 0.5, 1.0, 1.0),
    },
    3: {
        "left": (0.0, 0.0, 0.4, 0.6),
        "right": (0.6, 0.0, 1.0, 0.6),
        "bottom": (0.25, 0.6, 0.75, 1.0),
    },
}
# Words that name things side by side ("a cat and a dog", "a cup next to a plate"); locative
# words ("a fox in the snow", "apples on a table") describe a setting and are left alone.
_JOINED = re.compile(r"\s*(?:,|;|\band\b|\bwith\b|\bnext to\b|\bbeside\b|\balongside\b)\s*", re.I)
_TOGETHER = re.compile(r"\s+(?:together|side by side)\s*$", re.I)
_DETERMINER = re.compile(r"(a|an|the|some|one|two|three|four|five|\d+)\s", re.I)
# Words that tie a modifier to a thing ("a square *at* sunset", "a fox *in* watercolor").
_LINKS = r"(?:at|in|under|during|on|with|by|as)"
# Groups whose terms modify a picture rather than name a thing in it.
_MODIFIER_GROUPS = ("lighting", "style", "composition", "details", "negative", "mood")


def layout_terms(idea: str, vocabulary: Vocabulary) -> list[str]:
    """Composition terms that make the idea's arrangement and counts explicit.

    Args:
        idea: The user's words.
        vocabulary: Supplies the placement, relation and number phrases; a vocabulary without
            those groups yields no hints.

    Returns:
        Placement terms ("a red circle on the left", "a blue star on the right") and restated
        counts ("three stars"); empty when the idea names one thing or places things itself.

    Example:
        >>> layout_terms("a red circle next to a blue star", vocabulary_from_world(WORLD_FILE))
        ['a red circle on the left', 'a blue star on the right']
    """
    return _placements(idea, vocabulary) + _numbers(idea, vocabulary)


def layout_regions(idea: str, vocabulary: Vocabulary) -> list[Region]:
    """Regions for the idea's things: each placed thing, or each copy of a counted thing.

    Args:
        idea: The user's words.
        vocabulary: Supplies the placement, relation and number phrases.

    Returns:
        One region per thing, its prompt the thing with its place ("a red circle on the left")
        and its box that part of the canvas; empty when the idea names one thing, places things
        itself, or counts something this cannot write in the singular.

    Example:
        >>> [r.prompt for r in layout_regions("3 stars", vocabulary_from_world(WORLD_FILE))]
        ['a star on the left', 'a star on the right', 'a star at the bottom']
    """
    planned = _plan(idea, vocabulary) or _copies(idea, vocabulary)
    if planned is None:
        return []
    things, places = planned
    phrases, boxes = _place_phrases(vocabulary), _BOXES[len(places)]
    # What the idea says of the whole picture ("at sunset") holds in every region too.
    parts = _JOINED.split(_TOGETHER.sub("", idea.strip()))
    tails = [tail for part in parts if (tail := split_modifiers(part, vocabulary)[1])]
    suffix = "".join(f", {tail}" for tail in tails)
    return [
        Region(prompt=f"{_article(thing)} {phrases[place]}{suffix}", box=boxes[place])
        for thing, place in zip(things, places, strict=True)
    ]


def _place_phrases(vocabulary: Vocabulary) -> dict[str, str]:
    return {option.name: option.phrase for option in vocabulary.group("placement").options}


def _plan(idea: str, vocabulary: Vocabulary) -> tuple[list[str], tuple[str, ...]] | None:
    """The things an idea names together and a place for each, or None."""
    placement = vocabulary.group("placement")
    if not placement.options:
        return None
    related = _relation(idea, vocabulary)
    if related is not None:
        things, places = related
    elif placement.find(idea):
        return None  # the idea already says where its things go
    else:
        things = joined_things(idea, vocabulary)
        if len(things) not in _SIDE_BY_SIDE:
            return None
        places = _SIDE_BY_SIDE[len(things)]
    if any(place not in _place_phrases(vocabulary) for place in places):
        return None
    return things, places


def _copies(idea: str, vocabulary: Vocabulary) -> tuple[list[str], tuple[str, ...]] | None:
    """For "three stars": (["a star"] * 3, the places side by side), or None."""
    if vocabulary.group("placement").find(idea):
        return None
    for option in vocabulary.group("number").options:
        if not option.name.isdigit() or int(option.name) not in _SIDE_BY_SIDE:
            continue
        for phrase in sorted(option.phrases, key=len, reverse=True):
            pattern = rf"(?:^|\s){re.escape(phrase)}\s+([a-z]+)\s*$"
            match = re.search(pattern, idea.strip(), flags=re.I)
            if match is None:
                continue
            thing = _singular(match.group(1))
            if thing is None or _is_modifier(thing, vocabulary):
                return None
            places = _SIDE_BY_SIDE[int(option.name)]
            if any(place not in _place_phrases(vocabulary) for place in places):
                return None
            return [thing] * len(places), places
    return None


def _singular(noun: str) -> str | None:
    """The singular of a regular English plural ("crosses" -> "cross"); None if not one."""
    lowered = noun.lower()
    if re.search(r"(?:ss|x|z|ch|sh)es$", lowered):
        return noun[:-2]
    if re.search(r"[^aeiou]ies$", lowered):
        return noun[:-3] + "y"
    if lowered.endswith("s") and not lowered.endswith("ss"):
        return noun[:-1]
    return None


def _placements(idea: str, vocabulary: Vocabulary) -> list[str]:
    planned = _plan(idea, vocabulary)
    if planned is None:
        return []
    phrases = _place_phrases(vocabulary)
    return [f"{_article(thing)} {phrases[place]}" for thing, place in zip(*planned, strict=True)]


def joined_things(idea: str, vocabulary: Vocabulary | None = None) -> list[str]:
    """The things an idea names side by side, as written: "a cat and a dog" -> both.

    Args:
        idea: The user's words.
        vocabulary: When given, parts that are modifiers ("oil painting", "at night") are left
            out.

    Returns:
        The parts between joining words ("and", "with", "next to", "beside", commas); one part
        when nothing joins.
    """
    parts = [p.strip() for p in _JOINED.split(_TOGETHER.sub("", idea.strip())) if p.strip()]
    if vocabulary is not None:
        things = [split_modifiers(p, vocabulary)[0] for p in parts]
        parts = [t for t in things if t and not _is_modifier(t, vocabulary)]
    # A thing comes with a determiner ("a cross"); "a cross, please" names one thing, not two.
    return [p for p in parts if _DETERMINER.match(p)] if len(parts) > 1 else parts


def split_modifiers(part: str, vocabulary: Vocabulary) -> tuple[str, str]:
    """A part of an idea split into its thing and the modifier words after it.

    ``"a yellow square at sunset"`` -> ``("a yellow square", "at sunset")``; a part that is
    all modifier (``"oil painting"``) -> ``("", "oil painting")``; no modifier -> ``(part, "")``.
    """
    starts = [
        match.start()
        for name in _MODIFIER_GROUPS
        for option in vocabulary.group(name).options
        for phrase in option.phrases
        if (match := re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", part, flags=re.I))
    ]
    if not starts:
        return part.strip(), ""
    head = part[: min(starts)]
    link = re.search(rf"[\s,]*(?:\b{_LINKS}\s+)?$", head, flags=re.I)
    cut = link.start() if link is not None else len(head)
    return head[:cut].strip(" ,"), part[cut:].strip(" ,")


def _relation(idea: str, vocabulary: Vocabulary) -> tuple[list[str], tuple[str, ...]] | None:
    """``(["a star", "a heart"], ("top", "bottom"))`` for "a star above a heart", else None."""
    split = split_relation(idea, vocabulary)
    if split is None or split.relation not in _RELATION_PLACES:
        return None
    return [split.subject, split.reference], _RELATION_PLACES[split.relation]


class RelationSplit(NamedTuple):
    """An idea read as ``subject phrase reference``: "a star" "above" "a heart"."""

    subject: str
    phrase: str
    reference: str
    relation: str


def split_relation(idea: str, vocabulary: Vocabulary) -> RelationSplit | None:
    """The idea split at a phrase of the vocabulary's ``relation`` group, or None.

    A reference that is a modifier is no second thing ("a star under neon lights" is a
    lighting), so such an idea is not split.
    """
    for option in vocabulary.group("relation").options:
        for phrase in sorted(option.phrases, key=len, reverse=True):
            match = re.fullmatch(rf"(.+?)\s+({re.escape(phrase)})\s+(.+)", idea, flags=re.I)
            if match is None:
                continue
            subject, reference = match.group(1).strip(" ,"), match.group(3).strip(" ,")
            if _is_modifier(reference, vocabulary):
                return None
            return RelationSplit(subject, match.group(2), reference, option.name)
    return None


def _numbers(idea: str, vocabulary: Vocabulary) -> list[str]:
    """The idea restated with each count in its written form, when it was written otherwise."""
    restated = idea
    for option in vocabulary.group("number").options:
        restated = _restate(restated, option)
    return [restated] if restated != idea else []


def _restate(text: str, option: TermOption) -> str:
    for phrase in sorted(option.phrases[1:], key=len, reverse=True):
        pattern = rf"(?<!\w){re.escape(phrase)}(?!\w)"
        if re.search(pattern, text, flags=re.I):
            return re.sub(pattern, option.phrase, text, count=1, flags=re.I)
    return text


def _is_modifier(phrase: str, vocabulary: Vocabulary) -> bool:
    """Whether ``phrase`` mentions a modifier term, or is part of one ("sharp" of "sharp focus")."""
    words = rf"(?<!\w){re.escape(phrase.strip().lower())}(?!\w)"
    for name in _MODIFIER_GROUPS:
        group = vocabulary.group(name)
        if group.find(phrase) or any(re.search(words, p.lower()) for p in group.phrases()):
            return True
    return False


def _article(thing: str) -> str:
    """The thing as the user wrote it, with "a" or "an" only when it has no determiner."""
    thing = thing.strip()
    if _DETERMINER.match(thing):
        return thing
    return ("an " if thing[:1].lower() in "aeiou" else "a ") + thing
