"""Small numpy image operations the judge needs (no scipy here): filters and connected parts.

Every function takes and returns plain arrays; none knows about the pocket world.
"""

from __future__ import annotations

import numpy as np


def shifted_stack(image: np.ndarray, radius: int) -> np.ndarray:
    """All (2r+1)^2 shifted copies of an image, edge-padded: shape (K, H, W, ...)."""
    height, width = image.shape[:2]
    pad = [(radius, radius), (radius, radius)] + [(0, 0)] * (image.ndim - 2)
    padded = np.pad(image, pad, mode="edge")
    size = 2 * radius + 1
    return np.stack(
        [padded[dy : dy + height, dx : dx + width] for dy in range(size) for dx in range(size)]
    )


def median3(image: np.ndarray) -> np.ndarray:
    """3x3 median filter: removes grain while keeping edges where they are."""
    return np.median(shifted_stack(image, 1), axis=0)


def box_mean(image: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2r+1)^2 window, edge-padded."""
    return shifted_stack(image, radius).mean(axis=0)


def local_range(image: np.ndarray, radius: int) -> np.ndarray:
    """Per pixel, the largest max-minus-min over channels in a (2r+1)^2 window."""
    stack = shifted_stack(image, radius)
    spread = stack.max(axis=0) - stack.min(axis=0)
    return spread.max(axis=-1) if spread.ndim == 3 else spread


def max_filter(image: np.ndarray, radius: int) -> np.ndarray:
    """Maximum over a (2r+1)^2 window of a 2-D array, computed separably."""
    padded = np.pad(image, radius, mode="edge")
    height, width = image.shape
    size = 2 * radius + 1
    rows = np.max([padded[:, dx : dx + width] for dx in range(size)], axis=0)
    return np.max([rows[dy : dy + height, :] for dy in range(size)], axis=0)


def grow(seeds: np.ndarray, allowed: np.ndarray, steps: int) -> np.ndarray:
    """Grow labelled seeds (ints, 0 = none) through ``allowed`` pixels, nearest seed first.

    Each round hands every unlabelled allowed pixel the largest label among its 8 neighbours;
    it stops after ``steps`` rounds or when nothing changes.
    """
    labels = np.where(allowed, seeds, 0)
    for _ in range(steps):
        neighbours = shifted_stack(labels, 1).max(axis=0)
        updated = np.where((labels == 0) & allowed, neighbours, labels)
        if np.array_equal(updated, labels):
            break
        labels = updated
    return labels


def dilate(mask: np.ndarray, radius: int = 1) -> np.ndarray:
    """Binary dilation with a square window."""
    return np.asarray(shifted_stack(mask, radius).any(axis=0))


def erode(mask: np.ndarray, radius: int = 1) -> np.ndarray:
    """Binary erosion with a square window (outside the image counts as set)."""
    return np.asarray(shifted_stack(mask, radius).all(axis=0))


def label(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Label 8-connected parts of a binary mask.

    Labels spread as the minimum pixel index over neighbours, with pointer jumping so that long
    thin parts (outlines) converge in a handful of rounds.

    Returns:
        (labels, count): labels are 0 for background and 1..count for parts, ordered by their
        first pixel in raster order.
    """
    height, width = mask.shape
    none = height * width
    index = np.arange(none).reshape(height, width)
    labels = np.where(mask, index, none)
    while True:
        neighbours = shifted_stack(np.where(mask, labels, none), 1).min(axis=0)
        flat = np.append(labels.ravel(), none)
        jumped = flat[np.minimum(neighbours, none)]
        updated = np.where(mask, np.minimum(neighbours, jumped), none)
        if np.array_equal(updated, labels):
            break
        labels = updated
    roots = np.unique(labels[mask])
    relabel = np.zeros(none + 1, dtype=np.int64)
    relabel[roots] = np.arange(1, len(roots) + 1)
    return relabel[labels], len(roots)


def dilate_cross(mask: np.ndarray) -> np.ndarray:
    """Binary dilation by the 4-neighbourhood (a plus-shaped window)."""
    out = mask.copy()
    out[1:, :] |= mask[:-1, :]
    out[:-1, :] |= mask[1:, :]
    out[:, 1:] |= mask[:, :-1]
    out[:, :-1] |= mask[:, 1:]
    return out


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Set every unset pixel that cannot reach the image border through unset pixels.

    The unset region is walked 4-connected, the complement of the 8-connected parts ``label``
    finds, so a diagonal-only gap in an outline still closes it.
    """
    free = ~mask
    reach = np.zeros_like(mask)
    reach[0, :], reach[-1, :], reach[:, 0], reach[:, -1] = (
        free[0, :],
        free[-1, :],
        free[:, 0],
        free[:, -1],
    )
    while True:
        grown = dilate_cross(reach) & free
        if np.array_equal(grown, reach):
            return ~reach
        reach = grown
