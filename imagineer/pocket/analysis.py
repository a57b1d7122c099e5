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
from typing import NamedTuple

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

    The defaults were set on ground-truth renders (see ``tests/pocket/test_pocket_judge.py``) with
    margins on both sides, so that generated images get the benefit of the doubt.
    """

    grain_sigma: float = Field(default=5.0, gt=0, description="Noise std above which: grainy.")
    min_object_area_px: int = Field(default=10, ge=1, description="Smaller parts are dropped.")
    min_core_px: int = Field(
        default=25, ge=1, description="Least core of an object (a small star has 60+)."
    )
    min_contrast: float = Field(default=14.0, gt=0, description="Least object-sky distance.")
    object_contrast: float = Field(
        default=40.0, gt=0, description="Every object has pixels this far from the sky."
    )
    sky_margin: float = Field(default=1.3, gt=0, description="Objects exceed the sky's q99 by.")
    blocky_phase: float = Field(
        default=0.5, gt=0, le=1, description="Block-edge share above which: unblurred pixel art."
    )
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
        default=0.75, ge=0, description="Re-paint on the named position when this close."
    )
    snap_scale: float = Field(
        default=0.15, ge=0, description="Re-paint at the named size when this close (ratio)."
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
    parts = _find_parts(config, work, rows, sky.clear)
    # 6. Style, blur and shapes: the hypothesis whose re-painting explains the image best.
    if parts:
        evidence = _Evidence(world, config, pixels, sky, grainy)
        style, blurred, objects, residuals = _explain(evidence, parts)
    else:  # nothing to explain: no evidence of blur, and only the sky can tell pixel art
        style, blurred, objects, residuals = _plausible_styles(world, config, sky)[0], False, [], {}
    defects = {"blur": blurred, "grain": grainy, "low_contrast": sky.low_contrast}
    features = {"noise_sigma": sigma, "band_margin": sky.band_margin, "sky_distance": sky.distance}
    features.update(residuals)
    logger.debug("pocket judge: %d objects, %s, %s, %s", len(objects), sky.lighting, style, defects)
    return Finding(
        objects=objects,
        count=len(objects),
        lighting=sky.lighting,
        style=style,
        defects=[name for name in world.names("defect") if defects.get(name, False)],
        features=features,
    )


def _find_parts(
    config: JudgeConfig, work: np.ndarray, rows: np.ndarray, clear: np.ndarray
) -> list[Part]:
    """Segment and measure the objects, with thresholds set by the sky's own texture.

    Sky texture is measured everywhere but near clear object cores, so that paper blotches and
    noise set the threshold they must stay under.
    """
    distance = np.linalg.norm(work - rows[:, None, :], axis=-1)
    away = ~imageops.dilate(distance > config.object_contrast, 4)
    spread = next(d for d in (distance[away], distance[clear], distance.ravel()) if d.size > 100)
    low = max(config.min_contrast, config.sky_margin * float(np.quantile(spread, 0.99)))
    high = max(config.object_contrast, 2 * low)
    masks = segment(work, rows, low, high, config.min_core_px, config.min_object_area_px)
    return measure_all(work, rows, masks)


class _Evidence(NamedTuple):
    """What every hypothesis is tested against."""

    world: World
    config: JudgeConfig
    pixels: np.ndarray  # raw pixels, contrast undone
    sky: SkyReading
    grainy: bool


def _explain(
    evidence: _Evidence, parts: list[Part]
) -> tuple[str, bool, list[FoundObject], dict[str, float]]:
    """Try every (style, blur) hypothesis and keep the one whose painting is closest to the image.

    Paintings are compared with the raw pixels (contrast undone): grain then adds the same error
    to every hypothesis, whereas comparing denoised images would favour blur (denoising jitters
    edges, and a blurred edge is the best average of jittered ones). Shapes, though, are read on
    the denoised image against templates that went through the same filter. Pixel art competes
    like any style: its banded sky and blocky edges are part of its painting; and clean 2x2
    blocks prove it was not blurred, however far off the grid its objects sit.
    """
    world, config, pixels, sky, grainy = evidence
    residuals: dict[str, float] = {}
    best: tuple[float, str, bool, list[FoundObject]] | None = None
    blocky = block_phase(pixels) > config.blocky_phase
    regions = _regions(parts)
    for style in _plausible_styles(world, config, sky):
        for blurred in (False, True) if not (style == "pixel" and blocky) else (False,):
            settled = [
                _refine(
                    evidence, style, blurred, part, _identify(world, part, style, blurred, grainy)
                )
                for part in parts
            ]
            placements = [item for _, item in settled]
            painted = paint(
                placements, sky.lighting, style, ("blur",) if blurred else (), world, None
            )
            residual = _fitted_residual(pixels, painted, regions)
            residuals[f"residual.{style}{'+blur' if blurred else ''}"] = residual
            if best is None or residual < best[0]:
                best = (residual, style, blurred, [obj for obj, _ in settled])
    assert best is not None
    return best[1], best[2], best[3], residuals


def _regions(parts: list[Part]) -> list[np.ndarray]:
    """Disjoint neighbourhoods of the parts, then the rest of the image (the open sky)."""
    taken = np.zeros_like(parts[0].mask)
    regions = []
    for part in parts:
        region = imageops.dilate(part.mask, 3) & ~taken
        regions.append(region)
        taken |= region
    return [*regions, ~taken]


def _fitted_residual(pixels: np.ndarray, painted: np.ndarray, regions: list[np.ndarray]) -> float:
    """Mean squared difference once each object's colours are fitted, channel by channel.

    Around each object the painting may be re-coloured by a gain and an offset before it is
    compared, so a hypothesis is judged on form (edges, strokes, shading, blur) rather than on a
    generated object's colour being a little off its palette value, which would otherwise favour
    whichever hypothesis smears the difference best. Ground truth fits with gain 1, offset 0.
    """
    total = 0.0
    for region in regions[:-1]:
        x, y = painted[region], pixels[region]
        dx, dy = x - x.mean(axis=0), y - y.mean(axis=0)
        spread = (dx**2).sum(axis=0)
        gain = np.where(spread > 1e-6, (dx * dy).sum(axis=0) / np.maximum(spread, 1e-6), 0.0)
        gain = np.where(spread > 1e-6, np.clip(gain, 0.5, 2.0), 0.0)
        total += float(((dy - gain * dx) ** 2).sum())
    total += float(((pixels[regions[-1]] - painted[regions[-1]]) ** 2).sum())
    return total / pixels.size


def block_phase(pixels: np.ndarray, block: int = 2) -> float:
    """Share of pixel-to-pixel change that falls on ``block`` boundaries, beyond chance.

    1 for pixel art's hard-edged blocks, about 0 for anything else (and for blurred pixel art).
    """
    dx = np.abs(np.diff(pixels, axis=1)).sum(axis=-1)
    dy = np.abs(np.diff(pixels, axis=0)).sum(axis=-1)
    on_edges = dx[:, block - 1 :: block].sum() + dy[block - 1 :: block, :].sum()
    total = dx.sum() + dy.sum()
    return float((on_edges - (total - on_edges) / (block - 1)) / max(total, 1e-6))


def _plausible_styles(world: World, config: JudgeConfig, sky: SkyReading) -> list[str]:
    """Styles worth painting: a clearly banded sky is pixel art's alone, and a clearly smooth
    sky rules pixel art out; in between, every style competes."""
    styles = world.names("style")
    if sky.band_margin > config.clearly_banded:
        return ["pixel"]
    if sky.band_margin < -config.clearly_banded:
        return [s for s in styles if s != "pixel"]
    return styles


def _refine(
    evidence: _Evidence, style: str, blurred: bool, part: Part, obj: FoundObject
) -> tuple[FoundObject, Placement]:
    """Settle close calls on an object's shape, colour and geometry by re-painting each contender.

    Contenders are the shapes whose templates fit nearly as well as the best one and the colours
    that explain the measured colour nearly as well as the best one; each combination is painted
    where the object was found, and the one closest to the image around the object wins. Small,
    blurred or grainy objects are where silhouettes and median colours hesitate (a soft small
    square is nearly a disc; a watercolour's dark wet edge pulls pink towards red), and where the
    full painting still tells them apart. Each contender is painted both on its named position and
    size and as measured (see ``_placements``). Clear calls cost nothing.
    """
    world, config, pixels, sky, grainy = evidence
    templates = shape_templates(world, style, blurred, grainy)
    best_score = max(obj.shape_scores.values())
    shapes = [s for s, v in obj.shape_scores.items() if v >= best_score - config.shape_margin]
    ranked = rank_colours(world, part.rgb, part.sky)
    colours = [c for c, r in ranked[:3] if r <= ranked[0][1] * config.colour_margin + 10]
    options = _placements(world, config, obj, templates[(obj.shape, obj.size)], style)
    if len(shapes) == 1 and len(colours) == 1 and len(options) == 1:
        return obj, options[0]
    region = imageops.dilate(part.mask, 3)
    defects = ("blur",) if blurred else ()
    best, best_item, best_residual = obj, options[0], np.inf
    for shape in shapes:
        size = _nearest_size(world, templates, shape, part.extent)
        cx, cy = _centre(part, templates[(shape, size)])
        where = {"centre_px": (cx, cy), "position": _nearest_position(world, cx, cy)}
        for colour in colours:
            update = {"shape": shape, "size": size, "colour": colour, **where}
            candidate = obj.model_copy(update=update)
            for item in _placements(world, config, candidate, templates[(shape, size)], style):
                painted = paint([item], sky.lighting, style, defects, world, None)
                residual = float(np.mean((pixels[region] - painted[region]) ** 2))
                if residual < best_residual:
                    best, best_item, best_residual = candidate, item, residual
    return best.model_copy(update={"shape_score": obj.shape_scores[best.shape]}), best_item


def _nearest_size(
    world: World,
    templates: dict[tuple[str, str], Template],
    shape: str,
    extent: float,
) -> str:
    """The size whose template extent for ``shape`` is nearest (by ratio) to ``extent``."""
    return min(
        world.names("size"),
        key=lambda s: abs(np.log(max(extent, 1e-6) / templates[(shape, s)].extent)),
    )


def _placements(
    world: World, config: JudgeConfig, obj: FoundObject, template: Template, style: str = ""
) -> list[Placement]:
    """Ways to re-paint a found object: on its named position and size, and as measured.

    The named geometry reproduces ground truth exactly. The measured one (centre, and the size
    scaled to the measured extent) re-paints an object that is a little off its place or size,
    as generated ones are, over itself: a misplaced edge would otherwise favour the blurred
    hypotheses, a soft edge being the best guess at an uncertain one. When the object sits on its
    named place and size only the named geometry is returned.
    """
    named = Placement(
        shape=obj.shape,
        rgb=world.colour_rgb(obj.colour),
        centre_px=world.centre(obj.position),
        radius_px=world.radius(obj.size),
    )
    (cx, cy), (px, py) = obj.centre_px, named.centre_px
    scale = obj.extent_px / max(template.extent, 1e-6)
    if (px - cx) ** 2 + (py - cy) ** 2 <= config.snap_px**2 and abs(scale - 1) <= config.snap_scale:
        return [named]
    # Pixel art snaps edges to 2 px blocks, so its measured centre is only known to a block.
    shifts = [-0.5, 0.0, 0.5] if style == "pixel" else [0.0]
    return [named] + [
        named.model_copy(
            update={"centre_px": (cx + dx, cy + dy), "radius_px": named.radius_px * scale}
        )
        for dx in shifts
        for dy in shifts
    ]


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
    cx, cy = _centre(part, templates[(shape, size)])
    return FoundObject(
        shape=shape,
        colour=nearest_colour(world, part.rgb, part.sky),
        size=size,
        position=_nearest_position(world, cx, cy),
        centre_px=(cx, cy),
        extent_px=part.extent,
        area_px=int(part.mask.sum()),
        shape_score=scores[shape],
        shape_scores=scores,
        rgb=(float(part.rgb[0]), float(part.rgb[1]), float(part.rgb[2])),
    )


def _centre(part: Part, template: Template) -> tuple[float, float]:
    """The object's true centre: its measured centre less the bias its shape gives the
    measurement (a triangle's thin apex pulls the coverage-weighted centre down)."""
    return part.box[0] - template.offset[0], part.box[1] - template.offset[1]


def _nearest_position(world: World, cx: float, cy: float) -> str:
    return min(
        world.positions, key=lambda p: (p.centre_px[0] - cx) ** 2 + (p.centre_px[1] - cy) ** 2
    ).name


class Template(NamedTuple):
    """A shape painted alone and measured: extent (px), silhouette sample, and the offset
    (px) between its measured and true centres."""

    extent: float
    sample: np.ndarray
    offset: tuple[float, float]


@functools.lru_cache(maxsize=32)
def _template_stack(
    world: World, style: str, blurred: bool, denoised: bool
) -> tuple[list[tuple[str, str]], np.ndarray]:
    """The templates' keys and silhouette samples stacked as one (K, S, S) array."""
    templates = shape_templates(world, style, blurred, denoised)
    keys = list(templates)
    return keys, np.stack([templates[key].sample for key in keys])


@functools.lru_cache(maxsize=32)
def shape_templates(
    world: World, style: str, blurred: bool, denoised: bool = False
) -> dict[tuple[str, str], Template]:
    """Every (shape, size) painted alone in a style, measured the way the judge measures parts.

    Args:
        world: The world.
        style: A style name.
        blurred: Paint with the blur defect.
        denoised: Pass the painting through the judge's grain filter, as grainy images are.

    Returns:
        (shape, size) -> its ``Template``, so that shapes, sizes and centres are
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
            offset = (part.box[0] - centre[0], part.box[1] - centre[1])
            templates[(shape, size)] = Template(part.extent, part.sample, offset)
    return templates
