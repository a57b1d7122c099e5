"""The judge's reading of objects: segmentation against the sky and per-object measurements.

Measurements are chosen to mean the same thing on every style: an object's ``alpha`` is how far
each pixel has moved from the sky towards the object's colour, its ``solid`` silhouette fills
holes (outlines, specular spots), and its box comes from coverage profiles, which blur spreads
but does not grow.
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict

from imagineer.pocket import imageops
from imagineer.pocket.world import World

SAMPLE_PX = 24
GROW_PX = 3  # blur spreads an edge about 2 sigma = 3 px


class Part(BaseModel):
    """One segmented object and its measurements (canvas-sized arrays)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    mask: np.ndarray  # bool: the segmented pixels
    alpha: np.ndarray  # float 0-1: coverage towards the object's colour, 0 outside its region
    solid: np.ndarray  # float 0-1: alpha with the silhouette's holes filled
    rgb: np.ndarray  # (3,) measured colour
    sky: np.ndarray  # (3,) sky colour behind it
    box: tuple[float, float, float, float]  # centre x, centre y, width, height (pixels)
    sample: np.ndarray  # (SAMPLE_PX, SAMPLE_PX) solid resampled to its own box

    @property
    def extent(self) -> float:
        """Larger side of the object's box, in pixels."""
        return max(self.box[2], self.box[3])


def segment(
    work: np.ndarray, rows: np.ndarray, low: float, high: float, min_core: int, min_area: int
) -> list[np.ndarray]:
    """Objects as connected parts standing out from the sky, largest first.

    Objects are found as cores, then grown. A core is a connected set of pixels that stand out
    from the sky by at least 0.4 of their neighbourhood's strongest contrast (so the faint bridge
    that blur or paper texture lays between two nearby objects never joins them) and that holds a
    few pixels above ``high`` (so sky texture never seeds an object) and ``min_core`` pixels in
    all (so a fragment, such as a watercolour's dark rim that nearly matches the sky, never counts
    as an object of its own). Each core then grows, by at most ``GROW_PX``, through the pixels
    above ``low``, which keeps faint blurred edges and such fragments attached to their object
    without letting it creep along sky texture.
    """
    distance = np.linalg.norm(work - rows[:, None, :], axis=-1)
    above = distance > low
    relative = distance >= 0.4 * imageops.max_filter(distance, 4)
    cores, count = imageops.label(above & relative)
    strong = distance > high
    sizes = np.bincount(cores.ravel(), minlength=count + 1)
    strong_sizes = np.bincount(cores[strong], minlength=count + 1)
    keep = (sizes >= min_core) & (strong_sizes >= 3)
    keep[0] = False
    grown = imageops.grow(np.where(keep[cores], cores, 0), above, GROW_PX)
    parts = [grown == i for i in np.nonzero(keep)[0]]
    parts = [p for p in parts if int(p.sum()) >= min_area]
    return sorted(parts, key=lambda p: -int(p.sum()))


def measure(work: np.ndarray, rows: np.ndarray, mask: np.ndarray, others: np.ndarray) -> Part:
    """Measure one segmented part.

    Args:
        work: The image (denoised, contrast undone).
        rows: Sky colour per row.
        mask: The part's pixels.
        others: Pixels of every other part, kept out of this part's region.

    Returns:
        The part and its measurements.
    """
    region = imageops.dilate(mask, 2) & ~imageops.dilate(others, 1)
    rgb = part_colour(work, rows, mask)
    alpha = part_alpha(work, rows, rgb, region)
    solid = np.where(imageops.fill_holes(alpha >= 0.5), 1.0, alpha)
    box = profile_box(solid)
    sky = rows[np.nonzero(mask.any(axis=1))[0]].mean(axis=0)
    return Part(
        mask=mask, alpha=alpha, solid=solid, rgb=rgb, sky=sky, box=box, sample=resample(solid, box)
    )


def measure_all(work: np.ndarray, rows: np.ndarray, masks: list[np.ndarray]) -> list[Part]:
    """Measure every part, each kept clear of the others."""
    parts = []
    for i, mask in enumerate(masks):
        others = np.zeros_like(mask)
        for j, other in enumerate(masks):
            if j != i:
                others |= other
        parts.append(measure(work, rows, mask, others))
    return parts


def part_colour(work: np.ndarray, rows: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The object's own colour: the median of its interior (or of its strongest pixels when it is
    too thin to have an interior, as outlines are)."""
    interior = mask & imageops.erode(mask, 1)
    if interior.sum() < 0.3 * mask.sum():
        distance = np.linalg.norm(work - rows[:, None, :], axis=-1)
        interior = mask & (distance >= 0.5 * np.quantile(distance[mask], 0.9))
    return np.median(work[interior], axis=0)


def part_alpha(
    work: np.ndarray, rows: np.ndarray, rgb: np.ndarray, region: np.ndarray
) -> np.ndarray:
    """How far each pixel is from the sky towards the object's colour (1 = fully the object)."""
    full = np.linalg.norm(rgb[None, :] - rows, axis=-1)[:, None]
    alpha = np.linalg.norm(work - rows[:, None, :], axis=-1) / np.maximum(full, 1e-6)
    return np.where(region, np.clip(alpha, 0, 1), 0.0)


def profile_box(solid: np.ndarray) -> tuple[float, float, float, float]:
    """Sub-pixel (centre x, centre y, width, height) of an object from its coverage profiles.

    The width is the sum over columns of the column's strongest coverage: exact for anti-aliased
    shapes and nearly unchanged by blur, which spreads coverage without adding to it.
    """
    columns, lines = solid.max(axis=0), solid.max(axis=1)
    width, height = float(columns.sum()), float(lines.sum())
    xs = np.arange(solid.shape[1]) + 0.5
    ys = np.arange(solid.shape[0]) + 0.5
    cx = float(xs @ columns / max(width, 1e-6))
    cy = float(ys @ lines / max(height, 1e-6))
    return cx, cy, width, height


def resample(solid: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """The silhouette inside its box, resampled to SAMPLE_PX square: shape without size."""
    cx, cy, width, height = box
    crop = (cx - width / 2, cy - height / 2, cx + width / 2, cy + height / 2)
    image = Image.fromarray(solid.astype(np.float32), mode="F")
    return np.asarray(image.resize((SAMPLE_PX, SAMPLE_PX), Image.Resampling.BILINEAR, box=crop))


def overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Soft intersection over union of two coverage maps."""
    return float(np.minimum(a, b).sum() / max(np.maximum(a, b).sum(), 1e-6))


def rank_colours(world: World, rgb: np.ndarray, sky: np.ndarray) -> list[tuple[str, float]]:
    """Palette colours ranked by how well each explains ``rgb`` as that colour laid over ``sky``.

    Each candidate may be partly mixed with the sky (coverage 0.4-1.15), which keeps thin or
    blurred strokes, and imperfect generated colours, on the right name.

    Returns:
        (colour name, residual distance in 0-255 units), best first.
    """
    names, palette = _palette(world)
    delta = rgb - sky
    directions = palette - sky
    mix = np.clip(directions @ delta / np.maximum((directions**2).sum(axis=1), 1e-6), 0.4, 1.15)
    residuals = np.linalg.norm(delta[None, :] - mix[:, None] * directions, axis=1)
    order = np.argsort(residuals, kind="stable")
    return [(names[i], float(residuals[i])) for i in order]


@functools.lru_cache(maxsize=4)
def _palette(world: World) -> tuple[list[str], np.ndarray]:
    """Colour names and their RGB values as an (N, 3) float array."""
    return world.names("colour"), np.array([c.rgb for c in world.colours], dtype=np.float64)


def nearest_colour(world: World, rgb: np.ndarray, sky: np.ndarray) -> str:
    """The palette colour that best explains ``rgb`` over ``sky`` (see ``rank_colours``)."""
    return rank_colours(world, rgb, sky)[0][0]
