"""Rendering: format, determinism, and that styles and defects change what they should."""

from __future__ import annotations

import numpy as np
import pytest

from imagineer.errors import UnknownAttribute
from imagineer.pocket.render import background, gaussian_blur, render_scene
from imagineer.pocket.world import Scene, SceneObject, load_world, sample_scene

STAR = SceneObject(shape="star", colour="red", size="large", position="center")


def _pixels(scene: Scene, seed: int = 0) -> np.ndarray:
    return np.asarray(render_scene(scene, seed=seed), dtype=np.int16)


def test_render_is_a_64px_rgb_image() -> None:
    image = render_scene(sample_scene(np.random.default_rng(0)))
    assert image.size == (64, 64) and image.mode == "RGB"


def test_render_is_deterministic_given_scene_and_seed() -> None:
    rng = np.random.default_rng(1)
    for _ in range(20):
        scene = sample_scene(rng)
        assert np.array_equal(_pixels(scene, seed=5), _pixels(scene, seed=5))
    grainy = Scene(objects=(STAR,), lighting="night", style="flat", defects=("grain",))
    assert not np.array_equal(_pixels(grainy, seed=1), _pixels(grainy, seed=2))
    clean = Scene(objects=(STAR,), lighting="night", style="flat")
    assert np.array_equal(_pixels(clean, seed=1), _pixels(clean, seed=2))


def test_the_object_sits_where_its_position_says() -> None:
    world = load_world()
    for position in world.names("position"):
        obj = STAR.model_copy(update={"position": position, "size": "small"})
        pixels = _pixels(Scene(objects=(obj,), lighting="studio", style="flat"))
        red = (pixels[..., 0] > 180) & (pixels[..., 1] < 90)
        ys, xs = np.nonzero(red)
        cx, cy = world.centre(position)
        assert abs(xs.mean() + 0.5 - cx) < 1.5 and abs(ys.mean() + 0.5 - cy) < 2.5


def test_lighting_is_the_background_gradient() -> None:
    world = load_world()
    for lighting in world.lightings:
        sky = background(world, lighting.name)
        assert np.allclose(sky[0, 0], lighting.top_rgb, atol=2)
        assert np.allclose(sky[-1, 0], lighting.bottom_rgb, atol=2)


def _steepest(pixels: np.ndarray) -> float:
    return float(np.abs(np.diff(pixels.astype(float), axis=1)).max())


def test_defects_change_the_image_as_named() -> None:
    clean = _pixels(Scene(objects=(STAR,), lighting="daylight", style="flat"))
    blurred = _pixels(Scene(objects=(STAR,), lighting="daylight", style="flat", defects=("blur",)))
    washed = _pixels(
        Scene(objects=(STAR,), lighting="daylight", style="flat", defects=("low_contrast",))
    )
    assert _steepest(blurred) < 0.5 * _steepest(clean)
    assert washed.std() < 0.7 * clean.std()


def test_outline_is_hollow_and_pixel_art_is_blocky() -> None:
    outline = _pixels(Scene(objects=(STAR,), lighting="studio", style="outline"))
    flat = _pixels(Scene(objects=(STAR,), lighting="studio", style="flat"))
    assert not np.array_equal(outline[32, 32], flat[32, 32])  # the middle is empty
    pixel = _pixels(Scene(objects=(STAR,), lighting="studio", style="pixel"))
    assert np.array_equal(pixel[0::2, 0::2], pixel[1::2, 1::2])


def test_blur_keeps_a_flat_colour_flat() -> None:
    flat = np.full((16, 16, 3), 90.0)
    assert np.allclose(gaussian_blur(flat, 1.5), 90.0)


def test_unknown_values_raise_before_drawing() -> None:
    with pytest.raises(UnknownAttribute, match="'sepia'"):
        render_scene(Scene(objects=(STAR,), lighting="night", style="sepia"))
