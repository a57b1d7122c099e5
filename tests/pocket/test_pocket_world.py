"""The pocket world: vocabulary, validation and scene sampling."""

from __future__ import annotations

import json

import numpy as np
import pytest

from imagineer.errors import InvalidInput, UnknownAttribute
from imagineer.pocket.world import (
    DEFAULT_WORLD_PATH,
    Scene,
    SceneObject,
    check_scene,
    load_world,
    objects_compatible,
    sample_scene,
    unit_polygon,
)


def _obj(**overrides: str) -> SceneObject:
    values = {"shape": "circle", "colour": "red", "size": "small", "position": "left"}
    return SceneObject(**{**values, **overrides})


def test_vocabulary_loads_with_the_required_breadth() -> None:
    world = load_world()
    assert len(world.names("shape")) >= 5
    assert len(world.names("colour")) == 8
    assert world.names("size") == ["small", "large"]
    assert set(world.names("position")) == {"left", "right", "top", "bottom", "center"}
    assert len(world.names("lighting")) >= 5
    assert len(world.names("style")) >= 5
    assert set(world.names("defect")) == {"blur", "grain", "low_contrast"}
    assert load_world() is world  # cached: one parse per process


def test_colours_are_far_apart() -> None:
    rgb = np.array([c.rgb for c in load_world().colours], dtype=float)
    distances = np.linalg.norm(rgb[:, None] - rgb[None], axis=-1)
    assert distances[~np.eye(len(rgb), dtype=bool)].min() > 80


def test_unknown_attribute_names_the_value_and_the_allowed_ones() -> None:
    scene = Scene(objects=(_obj(shape="hexagon"),), lighting="night", style="flat")
    with pytest.raises(UnknownAttribute) as error:
        check_scene(scene)
    assert "'hexagon'" in str(error.value)
    assert "circle" in str(error.value) and "star" in str(error.value)
    with pytest.raises(UnknownAttribute, match="'underwater'"):
        check_scene(scene.model_copy(update={"objects": (_obj(),), "lighting": "underwater"}))
    with pytest.raises(ValueError):  # UnknownAttribute is also a ValueError
        check_scene(Scene(objects=(_obj(colour="mauve"),), lighting="night", style="flat"))


def test_overlapping_or_repeated_objects_are_rejected() -> None:
    same_place = Scene(objects=(_obj(), _obj(shape="star")), lighting="night", style="flat")
    with pytest.raises(InvalidInput, match="overlap"):
        check_scene(same_place)
    big_neighbours = Scene(
        objects=(_obj(size="large"), _obj(size="large", position="center")),
        lighting="night",
        style="flat",
    )
    with pytest.raises(InvalidInput):
        check_scene(big_neighbours)
    world = load_world()
    assert objects_compatible(_obj(size="large"), _obj(size="large", position="right"), world)
    assert objects_compatible(_obj(), _obj(position="center"), world)


def test_sampled_scenes_are_valid_varied_and_reproducible() -> None:
    world = load_world()
    scenes = [sample_scene(np.random.default_rng(seed), world) for seed in range(300)]
    for scene in scenes:
        check_scene(scene, world)
    assert {len(s.objects) for s in scenes} == {1, 2, 3}
    assert {s.style for s in scenes} == set(world.names("style"))
    assert any(not s.defects for s in scenes) and any(len(s.defects) >= 2 for s in scenes)
    again = sample_scene(np.random.default_rng(7), world)
    assert again == scenes[7]
    forced = sample_scene(np.random.default_rng(1), world, n_objects=3)
    assert len(forced.objects) == 3
    with pytest.raises(InvalidInput):
        sample_scene(np.random.default_rng(1), world, n_objects=4)


def test_scene_round_trips_through_json() -> None:
    scene = sample_scene(np.random.default_rng(3))
    assert Scene.model_validate_json(scene.model_dump_json()) == scene
    assert hash(scene) == hash(Scene.model_validate(json.loads(scene.model_dump_json())))


def test_shapes_fill_their_box_the_same_way() -> None:
    world = load_world()
    for shape in world.shapes:
        polygon = unit_polygon(shape)
        low, high = polygon.min(axis=0), polygon.max(axis=0)
        assert np.allclose((low + high) / 2, 0, atol=1e-9)
        assert np.isclose(np.max(high - low) / 2, shape.extent)


def test_a_broken_world_file_raises_a_typed_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput, match="cannot load"):
        load_world(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x"}')
    with pytest.raises(InvalidInput):
        load_world(bad)


def test_a_pair_phrase_must_name_both_things(tmp_path) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(DEFAULT_WORLD_PATH.read_text(encoding="utf-8"))
    data["pair_phrases"]["beside"] = "{a} beside"
    broken = tmp_path / "world.json"
    broken.write_text(json.dumps(data))
    with pytest.raises(InvalidInput, match="beside"):
        load_world(broken)
