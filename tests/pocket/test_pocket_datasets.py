"""Training captions and hard negatives: seeded, and differing only where the scenes differ."""

from __future__ import annotations

import numpy as np

from imagineer.pocket.datasets import LAYOUT_KINDS, describe, swap, training_scene
from imagineer.pocket.world import Scene, SceneObject, check_scene, load_world

WORLD = load_world()
SCENE = Scene(
    objects=(
        SceneObject(shape="star", colour="red", size="small", position="left"),
        SceneObject(shape="circle", colour="blue", size="small", position="right"),
    ),
    lighting="night",
    style="pixel",
    defects=("blur",),
)


def test_same_seed_same_caption() -> None:
    assert describe(SCENE, 7, WORLD) == describe(SCENE, 7, WORLD)
    assert describe(SCENE, 7, WORLD, full=False) == describe(SCENE, 7, WORLD, full=False)


def test_every_swap_is_a_valid_different_scene_with_a_different_full_caption() -> None:
    rng = np.random.default_rng(0)
    for kind in LAYOUT_KINDS:
        # A draw may land on an impossible scene (two objects at one position): swap says None.
        drawn = [swap(SCENE, kind, rng, WORLD) for _ in range(10)]
        valid = [other for other in drawn if other is not None]
        assert valid, kind
        for other in valid:
            assert other != SCENE, kind
            check_scene(other, WORLD)
            assert describe(other, 3, WORLD) != describe(SCENE, 3, WORLD), kind


def test_trade_swaps_places_and_keeps_everything_else() -> None:
    rng = np.random.default_rng(2)
    other = swap(SCENE, "trade", rng, WORLD)
    assert other is not None
    before = sorted((o.shape, o.colour, o.size) for o in SCENE.objects)
    assert sorted((o.shape, o.colour, o.size) for o in other.objects) == before
    moved = [(a.position, b.position) for a, b in zip(SCENE.objects, other.objects, strict=True)]
    changed = [pair for pair in moved if pair[0] != pair[1]]
    assert len(changed) == 2 and changed[0] == changed[1][::-1]
    star = SCENE.objects[0]
    twins = SCENE.model_copy(
        update={"objects": (star, star.model_copy(update={"position": "right"}))}
    )
    assert swap(twins, "trade", rng, WORLD) is None  # identical objects: trading shows nothing


def test_single_attribute_swap_changes_one_word_group() -> None:
    rng = np.random.default_rng(1)
    other = swap(SCENE, "lighting", rng, WORLD)
    assert other is not None
    a, b = describe(SCENE, 5, WORLD).split(", "), describe(other, 5, WORLD).split(", ")
    assert len(a) == len(b) and sum(x != y for x, y in zip(a, b, strict=True)) == 1


def test_full_captions_name_every_attribute() -> None:
    rng = np.random.default_rng(2)
    for index in range(50):
        scene = training_scene(rng, WORLD)
        text = describe(scene, index, WORLD)
        obj = scene.objects[0]
        shape_words = WORLD.shape(obj.shape).synonyms
        assert any(word in text for word in shape_words), text
