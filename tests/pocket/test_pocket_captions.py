"""Captions: full ones say everything, partial ones follow the world's rules."""

from __future__ import annotations

import re

import numpy as np

from imagineer.pocket.captions import caption
from imagineer.pocket.datasets import training_scene
from imagineer.pocket.world import Scene, SceneObject, World, load_world, sample_scene

N_SCENES = 400


def _scenes() -> list[Scene]:
    rng = np.random.default_rng(11)
    return [sample_scene(rng) for _ in range(N_SCENES)]


def _says(text: str, phrases: list[str]) -> bool:
    return any(re.search(rf"\b{re.escape(p)}\b", text) for p in phrases)


def _entry(entries: list, name: str):  # type: ignore[no-untyped-def, type-arg]
    return next(e for e in entries if e.name == name)


def _quality_words(world: World) -> list[str]:
    return [*world.quality_phrases, "sharp", "high detail", "crisp"]


def test_full_captions_state_every_attribute() -> None:
    world = load_world()
    rng = np.random.default_rng(0)
    for scene in _scenes():
        text = caption(scene, rng, full=True)
        for obj in scene.objects:
            assert _says(text, world.shape(obj.shape).synonyms), text
            assert _says(text, _entry(world.colours, obj.colour).synonyms), text
            assert _says(text, _entry(world.sizes, obj.size).synonyms), text
            assert _says(text, _entry(world.positions, obj.position).phrases), text
        lighting = world.lighting(scene.lighting)
        assert _says(text, lighting.phrases + lighting.adverbials), text
        assert _says(text, _entry(world.styles, scene.style).phrases), text
        for defect in scene.defects:
            assert _says(text, _entry(world.defects, defect).phrases), text
        if not scene.defects:
            assert _says(text, world.quality_phrases), text


def test_quality_words_only_come_with_clean_images() -> None:
    world = load_world()
    rng = np.random.default_rng(1)
    said_quality = 0
    for scene in _scenes():
        for full in (False, True):
            text = caption(scene, rng, full=full)
            if _says(text, _quality_words(world)):
                said_quality += 1
                assert not scene.defects, text
    assert said_quality > 50


def test_partial_captions_leave_things_out_and_hide_some_defects() -> None:
    world = load_world()
    rng = np.random.default_rng(2)
    scenes = _scenes()
    texts = [caption(scene, rng) for scene in scenes]
    no_size = sum(
        not any(_says(t, _entry(world.sizes, o.size).synonyms) for o in s.objects)
        for s, t in zip(scenes, texts, strict=True)
    )
    no_lighting = sum(
        not _says(t, world.lighting(s.lighting).phrases + world.lighting(s.lighting).adverbials)
        for s, t in zip(scenes, texts, strict=True)
    )
    hidden_defects = sum(
        any(not _says(t, _entry(world.defects, d).phrases) for d in s.defects)
        for s, t in zip(scenes, texts, strict=True)
    )
    assert no_size > N_SCENES * 0.2 and no_lighting > N_SCENES * 0.15
    assert hidden_defects > 10
    assert len(set(texts)) > N_SCENES * 0.95


def test_colours_are_bound_to_their_shapes() -> None:
    world = load_world()
    scene = Scene(
        objects=(
            SceneObject(shape="circle", colour="red", size="small", position="left"),
            SceneObject(shape="square", colour="blue", size="small", position="right"),
        ),
        lighting="daylight",
        style="flat",
    )
    rng = np.random.default_rng(3)
    for _ in range(50):
        text = caption(scene, rng, full=True)
        reds, blues = _entry(world.colours, "red").synonyms, _entry(world.colours, "blue").synonyms
        circles, squares = world.shape("circle").synonyms, world.shape("square").synonyms
        red_circle = rf"({'|'.join(reds)}) ({'|'.join(circles)})"
        blue_square = rf"({'|'.join(blues)}) ({'|'.join(squares)})"
        assert re.search(red_circle, text) and re.search(blue_square, text), text


def test_captions_are_short_and_reproducible() -> None:
    rng = np.random.default_rng(4)
    longest = 0
    for scene in _scenes():
        text = caption(scene, rng, full=True)
        # CLIP's BPE spends about one token per word or punctuation mark here.
        longest = max(longest, len(re.findall(r"\w+|[^\w\s]", text)))
    assert longest < 60
    scene = _scenes()[0]
    assert caption(scene, np.random.default_rng(9)) == caption(scene, np.random.default_rng(9))


def test_partial_captions_use_the_wording_users_type() -> None:
    """Pairs ("next to", "beside", "together") and numerals ("2 stars") come from the world file,
    the same source PocketBench's ideas are written from."""
    world = load_world()
    rng = np.random.default_rng(5)
    texts = [caption(scene, rng) for scene in _scenes() for _ in range(3)]
    for name, phrase in world.pair_phrases.items():
        pattern = re.escape(phrase).replace(r"\{a\}", ".+").replace(r"\{b\}", ".+")
        if name != "and":
            assert any(re.search(pattern, t) for t in texts), phrase
    numerals = [w for words in world.count_words.values() for w in words if w.isdigit()]
    # grouped counts need objects of one shape, which training scenes draw often
    same_rng = np.random.default_rng(6)
    grouped = [caption(training_scene(same_rng, world), same_rng) for _ in range(600)]
    assert numerals and any(re.search(rf"\b({'|'.join(numerals)}) \w", t) for t in grouped)
