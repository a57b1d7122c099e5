"""The judge's reading of the sky: noise, background colour per row, lighting and contrast.

In the pocket world the background is the lighting: a vertical two-colour gradient, banded in
pixel art, pulled towards grey by the low-contrast defect. Objects never reach the outer columns,
so the sky can be measured first and everything else measured against it.
"""

from __future__ import annotations

import functools

import numpy as np
from pydantic import BaseModel, ConfigDict

from imagineer.pocket import imageops
from imagineer.pocket.render import background, gaussian_blur
from imagineer.pocket.world import World


class SkyReading(BaseModel):
    """What the sky says: its colour per row and the lighting it matches best."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    rows: np.ndarray  # (H, 3) background colour of each row, 0-255
    clear: np.ndarray  # (H, W) pixels well away from any object
    lighting: str
    low_contrast: bool
    banded: bool
    band_margin: float  # > 0: a banded (pixel-art) sky explains the rows better than a smooth one
    distance: float  # mean distance (0-255 units) between the rows and the matched lighting


def noise_sigma(pixels: np.ndarray) -> float:
    """Robust std of per-pixel noise, from horizontal differences in the outer columns.

    The sky only varies vertically and objects never reach the two outermost columns, so
    neighbouring pixels there differ by noise alone. The median absolute difference ignores the
    few rows a blurred object may bleed into.
    """
    diffs = np.concatenate([pixels[:, 1] - pixels[:, 0], pixels[:, -1] - pixels[:, -2]]).ravel()
    return float(1.4826 * np.median(np.abs(diffs - np.median(diffs))) / np.sqrt(2))


def sky_rows(work: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """The background colour of every row, and the mask of pixels well clear of any object.

    A first guess from the outer columns finds the objects; the sky is then re-measured on every
    pixel well away from them (median per row), which also follows banded and textured skies.
    """
    first = np.median(np.concatenate([work[:, :3], work[:, -3:]], axis=1), axis=1)
    rough = np.linalg.norm(work - first[:, None, :], axis=-1) > threshold
    clear = ~imageops.dilate(rough, 2)
    masked = np.where(clear[..., None], work, np.nan)
    enough = clear.sum(axis=1) >= 6
    rows = first.copy()
    rows[enough] = np.nanmedian(masked[enough], axis=1)
    return rows, clear


@functools.lru_cache(maxsize=4)
def _sky_candidates(world: World) -> tuple[list[tuple[str, bool, bool]], np.ndarray]:
    """Every sky the renderer can paint: lighting x (low contrast or not) x (banded or not), each
    also blurred; returned as labels and a (K, H, 3) array of row colours."""
    params = world.render
    grey = np.asarray(params.contrast_grey, dtype=np.float64)
    labels, profiles = [], []
    for lighting in world.names("lighting"):
        for banded in (False, True):
            rows = background(world, lighting, "pixel" if banded else "flat")[:, :8]
            for blurred in (False, True):
                sky = gaussian_blur(rows, params.blur_sigma_px) if blurred else rows
                for low in (False, True):
                    profile = grey + params.contrast_keep * (sky - grey) if low else sky
                    labels.append((lighting, low, banded))
                    profiles.append(profile.mean(axis=1))
    return labels, np.stack(profiles)


def read_sky(world: World, work: np.ndarray, threshold: float) -> SkyReading:
    """Measure the sky of an image and match it to the world's lightings.

    Args:
        world: The world.
        work: The image as floats (denoised if grainy).
        threshold: Colour distance above which a pixel may belong to an object.

    Returns:
        The reading; ``band_margin`` compares the best banded and best smooth explanations.
    """
    rows, clear = sky_rows(work, threshold)
    labels, profiles = _sky_candidates(world)
    distances = np.linalg.norm(profiles - rows[None], axis=-1).mean(axis=1)
    best = int(np.argmin(distances))
    lighting, low, banded = labels[best]
    smooth = min(d for (_, _, b), d in zip(labels, distances, strict=True) if not b)
    stepped = min(d for (_, _, b), d in zip(labels, distances, strict=True) if b)
    return SkyReading(
        rows=rows,
        clear=clear,
        lighting=lighting,
        low_contrast=low,
        banded=banded,
        band_margin=float(smooth - stepped),
        distance=float(distances[best]),
    )


def undo_contrast(values: np.ndarray, world: World) -> np.ndarray:
    """Invert the renderer's low-contrast defect, so colours can be named as usual."""
    grey = np.asarray(world.render.contrast_grey, dtype=np.float64)
    return grey + (values - grey) / world.render.contrast_keep
