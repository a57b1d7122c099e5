"""Read a pocket image back into words: objects, lighting, style and defects, by image analysis.

The judge must be exact on ground-truth renders and forgiving on generated images (nearest
palette colour, nearest position, nearest size). It uses no learned model, so it cannot share a
blind spot with the models it grades.

Measurements read what is robust to read directly: grain from the sky's pixel-to-pixel noise,
lighting and low contrast from the sky's colours, objects from their contrast with the sky. Style
and blur interact (a blurred outline looks like a soft blob), so they are decided by
explanation: the judge re-paints its reading of the image under each (style, blur) hypothesis,
with the renderer's deterministic part, and keeps the hypothesis whose painting is closest to the
image. Shapes are matched against templates painted under the same hypothesis.
"""

from __future__ import annotations

import functools
import logging

import numpy as np
from PIL import Image
from pydantic import BaseModel, Field

from imagineer.errors import InvalidInput
from imagineer.pocket import imageops
from imagineer.pocket.parts import (
    Part,
    measure,
    measure_all,
    nearest_colour,
    rank_colours,
    segment,
)
from imagineer.pocket.render import Placement, paint
from imagineer.pocket.sky import SkyReading, noise_sigma, read_sky, undo_contrast
from imagineer.pocket.world import World, load_world

logger = logging.getLogger(__name__)


class JudgeConfig(BaseModel):
    """Thresholds of the analysis, in 0-255 colour units and 64 px canvas units.

    The defaults were set on ground-truth renders (see ``tests/pocket/test_judge.py``) with wide
    margins on both sides, so that generated images get the benefit of the doubt.
    """

    grain_sigma: float = Field(default=5.0, gt=0, description="Noise std above which: grainy.")
    min_object_area_px: int = Field(default=10, ge=1)
    min_core_px: int = Field(
        default=25, ge=1, description="Least core of an object (a small star has 60+)."
    )
    min_contrast: float = Field(default=14.0, gt=0, description="Least object-sky distance.")
    object_contrast: float = Field(
        default=40.0, gt=0, description="Every object has pixels this far from the sky."
    )
    sky_margin: float = Field(default=1.3, gt=0, description="Objects exceed the sky's q99 by.")
    clearly_banded: float = Field(
        default=1.5, gt=0, description="Sky band margin beyond which pixel art is settled."
    )
    shape_margin: float = Field(default=0.08, ge=0, description="Template IoU gap of a close call.")
    colour_margin: float = Field(
        default=1.5, ge=1, description="Colour residual ratio of a close call."
    )
    relation_margin_px: float = Field(
        default=6.0, ge=0, description="'left of' means centres this much apart, at least."
    )
    snap_px: float = Field(
        default=3.0, ge=0, description="Snap found objects to a position this close."
    )


class FoundObject(BaseModel):
    """One object the judge found, with the evidence behind its labels."""

    shape: str
    colour: str
    size: str
    position: str
    centre_px: tuple[float, float]
    extent_px: float = Field(description="Larger side of the object's box, in pixels.")
    area_px: int
    shape_score: float = Field(description="Template overlap of the chosen shape (IoU, 0-1).")
    shape_scores: dict[str, float] = Field(
        default_factory=dict, description="Template overlap of every shape."
    )
    rgb: tuple[float, float, float] = Field(description="Measured colour, contrast undone.")


class Finding(BaseModel):
    """Everything the judge reads from one image.

    Example:
        >>> finding = analyze(render_scene(scene))
        >>> finding.count, finding.lighting, finding.style, finding.defects
    """

    objects: list[FoundObject]
    count: int
    lighting: str
    style: str
    defects: list[str]
    features: dict[str, float] = Field(default_factory=dict, description="Raw measurements.")


def as_pixels(image: Image.Image | np.ndarray, world: World) -> np.ndarray:
    """The image as a float (H, W, 3) array in 0-255, resized to the world's canvas if needed.

    Raises:
        InvalidInput: The array is not (H, W, 3) or (H, W), or is empty.
    """
    if isinstance(image, np.ndarray):
        array = image
        if array.ndim == 2:
            array = np.repeat(array[..., None], 3, axis=-1)
        if array.ndim != 3 or array.shape[-1] != 3 or array.size == 0:
            raise InvalidInput(f"expected an (H, W, 3) image array, got shape {array.shape}")
        if array.dtype != np.uint8 and float(np.max(array)) <= 1.0:
            array = array * 255.0
        image = Image.fromarray(np.clip(np.rint(array), 0, 255).astype(np.uint8), mode="RGB")
    image = image.convert("RGB")
    size = world.canvas_px
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BOX)
    return np.asarray(image, dtype=np.float64)


def analyze(
    image: Image.Image | np.ndarray, world: World | None = None, config: JudgeConfig | None = None
) -> Finding:
    """Read a pocket image: its objects, count, lighting, style and defects.

    Args:
        image: A PIL image or an (H, W, 3) array (uint8 0-255, or floats 0-1); resized to the
            world's canvas if needed.
        world: The world; ``None`` means the bundled one.
        config: Thresholds; ``None`` means the defaults.

    Returns:
        A ``Finding``; ``features`` keeps the raw measurements for debugging.
    """
    world = world or load_world()
    config = config or JudgeConfig()
    # 1. Pixels as floats.
    pixels = as_pixels(image, world)
    # 2. Grain: measured on the raw sky, then filtered away for everything else.
    sigma = noise_sigma(pixels)
    grainy = sigma > config.grain_sigma
    work = imageops.median3(pixels) if grainy else pixels
    # 3. The sky: lighting, low contrast, pixel-art banding.
    sky = read_sky(world, work, max(config.min_contrast, 4 * noise_sigma(work)))
    # 4. Contrast undone, so colours and contrasts read as in a clean render.
    rows = sky.rows
    if sky.low_contrast:
        pixels = undo_contrast(pixels, world)
        work, rows = undo_contrast(work, world), undo_contrast(rows, world)
    # 5. Objects: segmented against the sky, above its own texture and noise.
    distance = np.linalg.norm(work - rows[:, None, :], axis=-1)
    # Sky texture is measured everywhere but near clear object cores, so that paper blotches
    # and noise set the threshold they must stay under.
    away = ~imageops.dilate(distance > config.object_contrast, 4)
    spread = distance[away] if away.sum() > 100 else distance[sky.clear]
    low = max(config.min_contrast, config.sky_margin * float(np.quantile(spread, 0.99)))
    high = max(config.object_contrast, 2 * low)
    masks = segment(work, rows, low, high, config.min_core_px, config.min_object_area_px)
    parts = measure_all(work, rows, masks)
    # 6. Style, blur and shapes: the hypothesis whose re-painting explains the image best.
    style, blurred, objects, residuals = _explain(world, config, pixels, grainy, sky, parts)
    defects = {"blur": blurred, "grain": grainy, "low_contrast": sky.low_contrast}
    features = {"noise_sigma": sigma, "band_margin": sky.band_margin, "sky_distance": sky.distance}
    features.update(residuals)
    return Finding(
        objects=objects,
        count=len(objects),
        lighting=sky.lighting,
        style=style,
        defects=[name for name in world.names("defect") if defects.get(name, False)],
        features=features,
    )


def _explain(
    world: World,
    config: JudgeConfig,
    pixels: np.ndarray,
    grainy: bool,
    sky: SkyReading,
    parts: list[Part],
) -> tuple[str, bool, list[FoundObject], dict[str, float]]:
    """Try every (style, blur) hypothesis and keep the one whose painting is closest to the image.

    Paintings are compared with the raw pixels (contrast undone): grain then adds the same error
    to every hypothesis, whereas comparing denoised images would favour blur (denoising jitters
    edges, and a blurred edge is the best average of jittered ones). Shapes, though, are read on
    the denoised image against templates that went through the same filter. Pixel art competes
    like any style: its banded sky and blocky edges are part of its painting.
    """
    residuals: dict[str, float] = {}
    best: tuple[float, str, bool, list[FoundObject]] | None = None
    for style in _plausible_styles(world, config, sky):
        for blurred in (False, True):
            objects = [
                _refine(
                    world,
                    config,
                    pixels,
                    sky,
                    style,
                    blurred,
                    part,
                    _identify(world, part, style, blurred, grainy),
                )
                for part in parts
            ]
            residual = _residual(world, config, pixels, sky, style, blurred, objects)
            residuals[f"residual.{style}{'+blur' if blurred else ''}"] = residual
            if best is None or residual < best[0]:
                best = (residual, style, blurred, objects)
    assert best is not None
    return best[1], best[2], best[3], residuals


def _plausible_styles(world: World, config: JudgeConfig, sky: SkyReading) -> list[str]:
    """Styles worth painting: a clearly banded sky is pixel art's alone, and a clearly smooth
    sky rules pixel art out; in between, every style competes."""
    styles = world.names("style")
    if sky.band_margin > config.clearly_banded:
        return ["pixel"]
    if sky.band_margin < -config.clearly_banded:
        return [s for s in styles if s != "pixel"]
    return styles


def _residual(
    world: World,
    config: JudgeConfig,
    pixels: np.ndarray,
    sky: SkyReading,
    style: str,
    blurred: bool,
    objects: list[FoundObject],
) -> float:
    """Mean squared difference between the image and a re-painting of a reading of it."""
    placements = [_placement(world, config, obj) for obj in objects]
    painted = paint(placements, sky.lighting, style, ("blur",) if blurred else (), world, None)
    return float(np.mean((pixels - painted) ** 2))


def _refine(
    world: World,
    config: JudgeConfig,
    pixels: np.ndarray,
    sky: SkyReading,
    style: str,
    blurred: bool,
    part: Part,
    obj: FoundObject,
) -> FoundObject:
    """Settle close calls on an object's shape and colour by re-painting each contender.

    Contenders are the shapes whose templates fit nearly as well as the best one and the colours
    that explain the measured colour nearly as well as the best one; each combination is painted
    where the object was found, and the one closest to the image around the object wins. Small,
    blurred or grainy objects are where silhouettes and median colours hesitate (a soft small
    square is nearly a disc; a watercolour's dark wet edge pulls pink towards red), and where the
    full painting still tells them apart. Clear calls cost nothing.
    """
    best_score = max(obj.shape_scores.values())
    shapes = [s for s, v in obj.shape_scores.items() if v >= best_score - config.shape_margin]
    ranked = rank_colours(world, part.rgb, part.sky)
    colours = [c for c, r in ranked[:3] if r <= ranked[0][1] * config.colour_margin + 10]
    if len(shapes) == 1 and len(colours) == 1:
        return obj
    templates = shape_templates(world, style, blurred, False)
    region = imageops.dilate(part.mask, 3)
    defects = ("blur",) if blurred else ()
    best, best_residual = obj, np.inf
    for shape in shapes:
        size = _nearest_size(world, templates, shape, part.extent)
        for colour in colours:
            candidate = obj.model_copy(update={"shape": shape, "size": size, "colour": colour})
            item = _placement(world, config, candidate)
            painted = paint([item], sky.lighting, style, defects, world, None)
            residual = float(np.mean((pixels[region] - painted[region]) ** 2))
            if residual < best_residual:
                best, best_residual = candidate, residual
    return best.model_copy(update={"shape_score": obj.shape_scores[best.shape]})


def _nearest_size(
    world: World,
    templates: dict[tuple[str, str], tuple[float, np.ndarray]],
    shape: str,
    extent: float,
) -> str:
    """The size whose template extent for ``shape`` is nearest (by ratio) to ``extent``."""
    return min(
        world.names("size"),
        key=lambda s: abs(np.log(max(extent, 1e-6) / templates[(shape, s)][0])),
    )


def _placement(world: World, config: JudgeConfig, obj: FoundObject) -> Placement:
    """Where to re-paint a found object: on its named position if it sits (nearly) there."""
    cx, cy = obj.centre_px
    px, py = world.centre(obj.position)
    snapped = (px - cx) ** 2 + (py - cy) ** 2 <= config.snap_px**2
    return Placement(
        shape=obj.shape,
        rgb=tuple(float(v) for v in world.colour_rgb(obj.colour)),
        centre_px=(px, py) if snapped else (cx, cy),
        radius_px=world.radius(obj.size),
    )


def _identify(world: World, part: Part, style: str, blurred: bool, grainy: bool) -> FoundObject:
    """Name a part's shape, size, colour and position, assuming a style and blur."""
    templates = shape_templates(world, style, blurred, grainy)
    keys, samples = _template_stack(world, style, blurred, grainy)
    overlaps = np.minimum(samples, part.sample).sum(axis=(1, 2)) / np.maximum(
        np.maximum(samples, part.sample).sum(axis=(1, 2)), 1e-6
    )
    scores: dict[str, float] = {}
    for (shape, _size), value in zip(keys, overlaps.tolist(), strict=True):
        scores[shape] = max(scores.get(shape, 0.0), value)
    shape = max(scores, key=scores.__getitem__)
    size = _nearest_size(world, templates, shape, part.extent)
    cx, cy = part.box[0], part.box[1]
    position = min(
        world.positions, key=lambda p: (p.centre_px[0] - cx) ** 2 + (p.centre_px[1] - cy) ** 2
    ).name
    return FoundObject(
        shape=shape,
        colour=nearest_colour(world, part.rgb, part.sky),
        size=size,
        position=position,
        centre_px=(cx, cy),
        extent_px=part.extent,
        area_px=int(part.mask.sum()),
        shape_score=scores[shape],
        shape_scores=scores,
        rgb=(float(part.rgb[0]), float(part.rgb[1]), float(part.rgb[2])),
    )


@functools.lru_cache(maxsize=32)
def _template_stack(
    world: World, style: str, blurred: bool, denoised: bool
) -> tuple[list[tuple[str, str]], np.ndarray]:
    """The templates' keys and silhouette samples stacked as one (K, S, S) array."""
    templates = shape_templates(world, style, blurred, denoised)
    keys = list(templates)
    return keys, np.stack([templates[key][1] for key in keys])


@functools.lru_cache(maxsize=32)
def shape_templates(
    world: World, style: str, blurred: bool, denoised: bool = False
) -> dict[tuple[str, str], tuple[float, np.ndarray]]:
    """Every (shape, size) painted alone in a style, measured the way the judge measures parts.

    Args:
        world: The world.
        style: A style name.
        blurred: Paint with the blur defect.
        denoised: Pass the painting through the judge's grain filter, as grainy images are.

    Returns:
        (shape, size) -> (extent in pixels, silhouette sample), so that shapes and sizes are
        compared with references that went through the same style, blur and measurement.
    """
    centre = (world.canvas_px / 2, world.canvas_px / 2)
    defects = ("blur",) if blurred else ()
    rows = paint([], "studio", style, defects, world, None)[:, 0]
    templates = {}
    for shape in world.names("shape"):
        for size in world.names("size"):
            item = Placement(
                shape=shape, rgb=(220.0, 40.0, 40.0), centre_px=centre, radius_px=world.radius(size)
            )
            work = paint([item], "studio", style, defects, world, None)
            if denoised:
                work = imageops.median3(work)
            mask = np.linalg.norm(work - rows[:, None, :], axis=-1) > 14
            part = measure(work, rows, mask, np.zeros_like(mask))
            templates[(shape, size)] = (part.extent, part.sample)
    return templates
