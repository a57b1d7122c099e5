"""Natural-English captions for pocket scenes, in the words real prompts use.

Captions teach the pocket text encoder and diffusion model how people describe images, so they
vary the way people do: synonyms ("big", "violet", "line drawing"), word order, grouped counts
("two red circles", "3 stars"), relative positions ("a star to the left of a heart"), pairs
("a circle next to a star") and tag-style extras ("sunset lighting, pixel art, grainy").

Two kinds of caption:
    full=True   every attribute is stated, including "no defects" (as a quality phrase), so a
                caption pins the image down; used to measure how faithful a model is.
    full=False  some attributes are left out (a model must guess, as real models do), some
                defects go unmentioned (so negative prompts have something to remove), and
                quality words ("sharp, high detail") appear only on clean images.

Colours are always bound to their shape inside one noun phrase ("a red circle on the left and a
blue square on the right"), never listed apart.
"""

from __future__ import annotations

import re

import numpy as np

from imagineer.pocket.world import Scene, SceneObject, World, check_scene, load_world


def caption(
    scene: Scene, rng: np.random.Generator, world: World | None = None, full: bool = False
) -> str:
    """Describe a scene in one line of English.

    Args:
        scene: The scene.
        rng: Draws the wording; the same generator state gives the same caption.
        world: The world; ``None`` means the bundled one.
        full: State every attribute (see the module docstring).

    Returns:
        The caption, lower case, well under CLIP's 77 tokens.

    Example:
        >>> caption(scene, np.random.default_rng(0), full=True)
        'a small red circle on the left, pixel art, at sunset, blurry'
    """
    world = world or load_world()
    check_scene(scene, world)
    params = world.captions
    # 1. What is in the picture.
    slots = {"subject": _subject(scene, rng, world, full)}
    # 2. How it looks: style, lighting, defects or quality.
    if full or rng.random() < params.p_style:
        slots["style"] = _pick(rng, _entry(world.styles, scene.style).phrases, world)
    if full or rng.random() < params.p_lighting:
        lighting = world.lighting(scene.lighting)
        slots["lighting"] = _pick(rng, lighting.phrases, world)
        slots["adverbial"] = _pick(rng, lighting.adverbials, world)
    extras = _extras(scene, rng, world, full)
    if extras:
        slots["extras"] = extras
    # 3. A template that can say everything chosen.
    eligible = [t for t in params.templates if all(slot in slots for slot in t.needs)]
    template = eligible[int(rng.integers(len(eligible)))]
    text = template.text
    if "{adverbial}" in text:
        slots.pop("lighting", None)
    return _tidy(text.format_map(_Blank(slots)))


class _Blank(dict):  # type: ignore[type-arg]
    """format_map helper: unfilled slots read as empty strings."""

    def __missing__(self, key: str) -> str:
        return ""


def _subject(scene: Scene, rng: np.random.Generator, world: World, full: bool) -> str:
    """The noun phrase(s) for the objects, colour always bound to its shape."""
    params = world.captions
    objects = list(scene.objects)
    if not full and len(objects) > 1 and rng.random() < params.p_group:
        grouped = _grouped(objects, rng, world)
        if grouped is not None:
            return grouped
    if not full and len(objects) == 2 and rng.random() < params.p_relative:
        relative = _relative(objects[0], objects[1], rng, world)
        if relative is not None:
            return relative
    if not full and len(objects) == 2 and world.pair_phrases and rng.random() < params.p_pair:
        return _pair(objects[0], objects[1], rng, world)
    phrases = [_object_phrase(obj, rng, world, full, with_position=True) for obj in objects]
    return _join(phrases)


def _object_phrase(
    obj: SceneObject, rng: np.random.Generator, world: World, full: bool, with_position: bool
) -> str:
    """'a small red circle on the left', with parts left out at the world's rates unless full."""
    params = world.captions
    words = ["a"]
    if full or rng.random() < params.p_size:
        words.append(_pick(rng, _entry(world.sizes, obj.size).synonyms, world))
    if full or rng.random() < params.p_colour:
        words.append(_pick(rng, _entry(world.colours, obj.colour).synonyms, world))
    words.append(_pick(rng, world.shape(obj.shape).synonyms, world))
    if with_position and (full or rng.random() < params.p_position):
        words.append(_pick(rng, _entry(world.positions, obj.position).phrases, world))
    return " ".join(words)


def _grouped(objects: list[SceneObject], rng: np.random.Generator, world: World) -> str | None:
    """'two red circles' when every object has the same shape (and colour, if it is said)."""
    if len({o.shape for o in objects}) != 1 or str(len(objects)) not in world.count_words:
        return None
    params = world.captions
    words = [_pick(rng, world.count_words[str(len(objects))], world)]
    if len({o.size for o in objects}) == 1 and rng.random() < params.p_size:
        words.append(_pick(rng, _entry(world.sizes, objects[0].size).synonyms, world))
    if len({o.colour for o in objects}) == 1:
        if rng.random() < params.p_colour:
            words.append(_pick(rng, _entry(world.colours, objects[0].colour).synonyms, world))
    elif rng.random() < params.p_colour:
        return None  # colours differ and would have to be said: list the objects instead
    words.append(_plural(_pick(rng, world.shape(objects[0].shape).synonyms, world)))
    return " ".join(words)


def _relative(a: SceneObject, b: SceneObject, rng: np.random.Generator, world: World) -> str | None:
    """'a red circle to the left of a blue square', when the two are clearly apart."""
    (ax, ay), (bx, by) = world.centre(a.position), world.centre(b.position)
    relations = [
        name
        for name, holds in (
            ("left_of", bx - ax > 6),
            ("right_of", ax - bx > 6),
            ("above", by - ay > 6),
            ("below", ay - by > 6),
        )
        if holds
    ]
    if not relations:
        return None
    relation = relations[int(rng.integers(len(relations)))]
    first = _object_phrase(a, rng, world, full=False, with_position=False)
    second = _object_phrase(b, rng, world, full=False, with_position=False)
    return f"{first} {_pick(rng, world.relation_phrases[relation], world)} {second}"


def _pair(a: SceneObject, b: SceneObject, rng: np.random.Generator, world: World) -> str:
    """'a red circle next to a blue square': two objects named together, places left out."""
    phrases = list(world.pair_phrases.values())
    template = phrases[int(rng.integers(len(phrases)))]
    first = _object_phrase(a, rng, world, full=False, with_position=False)
    second = _object_phrase(b, rng, world, full=False, with_position=False)
    return template.format(a=first, b=second)


def _extras(scene: Scene, rng: np.random.Generator, world: World, full: bool) -> str:
    """Defect words (each said at the world's rate unless full), or quality words when clean."""
    params = world.captions
    if scene.defects:
        said = [d for d in scene.defects if full or rng.random() < params.p_defect]
        return ", ".join(_pick(rng, _entry(world.defects, d).phrases, world) for d in said)
    if full or rng.random() < params.p_quality:
        return _pick(rng, world.quality_phrases, world)
    return ""


def _pick(rng: np.random.Generator, options: list[str], world: World) -> str:
    """The first (canonical) wording most of the time, another one otherwise."""
    if len(options) == 1 or rng.random() < world.captions.p_canonical:
        return options[0]
    return options[1 + int(rng.integers(len(options) - 1))]


def _entry(entries: list, name: str):  # type: ignore[no-untyped-def, type-arg]
    """The vocabulary entry called ``name`` (names were validated by ``check_scene``)."""
    return next(entry for entry in entries if entry.name == name)


def _plural(noun: str) -> str:
    """English plural of the last word: boxes, crosses, stars, heart shapes."""
    return noun + ("es" if re.search(r"(s|x|sh|ch)$", noun) else "s")


def _join(phrases: list[str]) -> str:
    """'A', 'A and B', 'A, B and C'."""
    if len(phrases) == 1:
        return phrases[0]
    return ", ".join(phrases[:-1]) + " and " + phrases[-1]


def _tidy(text: str) -> str:
    """Drop the separators of empty slots and fix 'a' before vowel sounds."""
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"(\s*,\s*)+", ", ", text)
    text = text.strip(" ,")
    text = re.sub(r"\s+,", ",", text)
    return re.sub(r"\ba (?=[aeiou8])", "an ", text)
