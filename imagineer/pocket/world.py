"""The pocket world: its vocabulary, its scenes, and how to sample them.

The pocket world is a tiny procedural universe that stands in for "the real world" wherever
imagineer needs models it can train on this machine: a 64x64 canvas holding one to three simple
shapes, each with a colour, a size and a position, over a lighting (a background gradient), drawn
in a style and possibly spoiled by defects. Everything about it (names, colours, geometry, caption
phrases) lives in ``world.json`` so that the renderer, the captioner, the judge, the dataset and
PocketBench all read one source of truth.

Example:
    >>> import numpy as np
    >>> world = load_world()
    >>> scene = sample_scene(np.random.default_rng(0), world)
    >>> check_scene(scene, world)  # raises UnknownAttribute / InvalidInput if invalid
"""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from imagineer.errors import InvalidInput, UnknownAttribute

logger = logging.getLogger(__name__)

DEFAULT_WORLD_PATH = Path(__file__).with_name("world.json")

AttributeKind = Literal["shape", "colour", "size", "position", "lighting", "style", "defect"]


class Geometry(BaseModel):
    """How to draw a shape in the unit box [-1, 1]^2 (y grows downwards, as in images)."""

    kind: Literal["ellipse", "polygon", "star", "heart"]
    points: list[tuple[float, float]] = Field(default_factory=list)
    n_points: int = Field(default=5, ge=3, description="Arms of a star.")
    inner_ratio: float = Field(default=0.46, gt=0, lt=1, description="Star inner/outer radius.")
    samples: int = Field(default=40, ge=8, description="Vertices used for curved outlines.")


class ShapeDef(BaseModel):
    """A shape of the world; ``extent`` is its half-width as a fraction of the size radius."""

    name: str
    synonyms: list[str] = Field(min_length=1)
    geometry: Geometry
    extent: float = Field(gt=0, le=1)


class ColourDef(BaseModel):
    """An object colour: a name, its sRGB value (0-255) and the words captions may use."""

    name: str
    rgb: tuple[int, int, int]
    synonyms: list[str] = Field(min_length=1)


class SizeDef(BaseModel):
    """An object size; ``radius_px`` is the half-width of its box on the 64 px canvas."""

    name: str
    radius_px: float = Field(gt=0)
    synonyms: list[str] = Field(min_length=1)


class PositionDef(BaseModel):
    """A place on the canvas: the pixel (x, y) where an object's box is centred."""

    name: str
    centre_px: tuple[float, float]
    phrases: list[str] = Field(min_length=1)


class LightingDef(BaseModel):
    """A lighting is the background: a vertical gradient from ``top_rgb`` to ``bottom_rgb``."""

    name: str
    top_rgb: tuple[int, int, int]
    bottom_rgb: tuple[int, int, int]
    phrases: list[str] = Field(min_length=1)
    adverbials: list[str] = Field(min_length=1, description="Phrases that follow a noun.")


class NamedPhrases(BaseModel):
    """A style or a defect: a name and the caption phrases that express it."""

    name: str
    phrases: list[str] = Field(min_length=1)


class RenderParams(BaseModel):
    """Strengths of the styles and defects, in 64 px canvas units and 0-255 colour units."""

    outline_width_px: float = Field(gt=0)
    pixel_block_px: int = Field(ge=2)
    pixel_bands: int = Field(ge=2, description="Tone levels of a pixel-art sky.")
    watercolor_texture: float = Field(ge=0, description="Relative amplitude of pigment mottling.")
    watercolor_rim: float = Field(ge=0, description="Relative darkening at a wet edge.")
    watercolor_paper: float = Field(ge=0, description="Paper texture amplitude, 0-255.")
    glossy_shade: float = Field(ge=0, description="Relative light-to-dark shading across a body.")
    glossy_highlight: float = Field(ge=0, le=1, description="Opacity of the specular spot.")
    blur_sigma_px: float = Field(gt=0)
    grain_sigma: float = Field(gt=0, description="Per-channel noise std, 0-255.")
    contrast_keep: float = Field(gt=0, lt=1, description="Contrast kept by 'low_contrast'.")
    contrast_grey: tuple[int, int, int]


class SamplingParams(BaseModel):
    """How random scenes are drawn: object-count weights (1, 2, 3) and defect probability."""

    n_objects_weights: list[float] = Field(min_length=1)
    p_defect: float = Field(ge=0, le=1)


class CaptionTemplate(BaseModel):
    """A caption pattern; ``needs`` lists the slots that must be filled for it to read well."""

    text: str
    needs: list[str] = Field(default_factory=list)


class CaptionParams(BaseModel):
    """Caption templates and how often a partial caption mentions each attribute."""

    templates: list[CaptionTemplate] = Field(min_length=1)
    p_canonical: float = Field(ge=0, le=1, description="Chance of a value's first synonym.")
    p_size: float
    p_colour: float
    p_position: float
    p_relative: float
    p_pair: float = Field(
        0, ge=0, le=1, description="Chance that two objects are joined by a pair phrase."
    )
    p_group: float
    p_lighting: float
    p_style: float
    p_defect: float
    p_quality: float


class World(BaseModel):
    """The pocket world's vocabulary and grammar, as loaded from ``world.json``.

    Example:
        >>> world = load_world()
        >>> world.names("shape")[:3]
        ['circle', 'square', 'triangle']
    """

    model_config = ConfigDict(frozen=True)

    name: str
    version: int
    canvas_px: int = Field(ge=16)
    supersample: int = Field(ge=1)
    max_objects: int = Field(ge=1)
    min_gap_px: float = Field(ge=0, description="Clear space kept between object boxes.")
    shapes: list[ShapeDef]
    colours: list[ColourDef]
    sizes: list[SizeDef]
    positions: list[PositionDef]
    lightings: list[LightingDef]
    styles: list[NamedPhrases]
    defects: list[NamedPhrases]
    quality_phrases: list[str]
    count_words: dict[str, list[str]]
    relation_phrases: dict[str, list[str]]
    pair_phrases: dict[str, str] = Field(
        default_factory=dict, description="Ways to name two things at once: '{a} next to {b}'."
    )
    render: RenderParams
    sampling: SamplingParams
    captions: CaptionParams

    def __hash__(self) -> int:
        # Equal worlds share name and version; hashing lets caches key on the world itself.
        return hash((self.name, self.version))

    def names(self, kind: AttributeKind) -> list[str]:
        """The allowed values of one attribute, in the world file's order."""
        table: dict[
            str,
            list[ShapeDef]
            | list[ColourDef]
            | list[SizeDef]
            | list[PositionDef]
            | list[LightingDef]
            | list[NamedPhrases],
        ] = {
            "shape": self.shapes,
            "colour": self.colours,
            "size": self.sizes,
            "position": self.positions,
            "lighting": self.lightings,
            "style": self.styles,
            "defect": self.defects,
        }
        return [entry.name for entry in table[kind]]

    def check_value(self, kind: AttributeKind, value: str) -> str:
        """Return ``value`` if the world knows it as a ``kind``, else raise ``UnknownAttribute``."""
        allowed = self.names(kind)
        if value not in allowed:
            raise UnknownAttribute(
                f"unknown {kind} {value!r}; the pocket world's {kind}s are: {', '.join(allowed)}"
            )
        return value

    def shape(self, name: str) -> ShapeDef:
        """The definition of a shape, by name."""
        return self.shapes[self.names("shape").index(self.check_value("shape", name))]

    def colour_rgb(self, name: str) -> tuple[int, int, int]:
        """The sRGB value of a colour, by name."""
        return self.colours[self.names("colour").index(self.check_value("colour", name))].rgb

    def radius(self, size: str) -> float:
        """The box half-width in pixels of a size, by name."""
        return self.sizes[self.names("size").index(self.check_value("size", size))].radius_px

    def centre(self, position: str) -> tuple[float, float]:
        """The pixel (x, y) centre of a position, by name."""
        index = self.names("position").index(self.check_value("position", position))
        return self.positions[index].centre_px

    def lighting(self, name: str) -> LightingDef:
        """The definition of a lighting, by name."""
        return self.lightings[self.names("lighting").index(self.check_value("lighting", name))]


class SceneObject(BaseModel):
    """One object of a scene. Values are world names; ``check_scene`` validates them.

    Example:
        >>> SceneObject(shape="star", colour="red", size="small", position="left")
        SceneObject(shape='star', colour='red', size='small', position='left')
    """

    model_config = ConfigDict(frozen=True)

    shape: str
    colour: str
    size: str
    position: str


class Scene(BaseModel):
    """What one pocket image shows: 1 to ``world.max_objects`` objects, a lighting, a style, and
    the defects spoiling it (``()`` for a clean image).

    Scenes are frozen and hashable so they can key caches and be compared.

    Example:
        >>> obj = SceneObject(shape="star", colour="red", size="small", position="left")
        >>> scene = Scene(objects=(obj,), lighting="night", style="pixel", defects=("blur",))
    """

    model_config = ConfigDict(frozen=True)

    objects: tuple[SceneObject, ...] = Field(min_length=1)
    lighting: str
    style: str
    defects: tuple[str, ...] = ()


@functools.lru_cache(maxsize=8)
def load_world(path: str | Path | None = None) -> World:
    """Load and validate the world file (once per path and process).

    Args:
        path: A world JSON file; ``None`` means the bundled ``world.json``.

    Returns:
        The validated world.

    Raises:
        InvalidInput: The file is missing, not JSON, or does not describe a valid world.
    """
    world_path = Path(path) if path is not None else DEFAULT_WORLD_PATH
    try:
        data = json.loads(world_path.read_text(encoding="utf-8"))
        world = World.model_validate(data)
    except (OSError, ValueError) as error:
        raise InvalidInput(f"cannot load pocket world {str(world_path)!r}: {error}") from error
    _check_world(world)
    logger.debug("loaded pocket world %s v%d from %s", world.name, world.version, world_path)
    return world


def _check_world(world: World) -> None:
    """Reject worlds whose names collide, because every lookup is by name."""
    for kind in ("shape", "colour", "size", "position", "lighting", "style", "defect"):
        names = world.names(kind)  # type: ignore[arg-type]
        if len(set(names)) != len(names) or not names:
            raise InvalidInput(f"pocket world {world.name!r}: {kind} names must be unique: {names}")
    if len(world.sampling.n_objects_weights) > world.max_objects:
        raise InvalidInput("sampling.n_objects_weights has more entries than max_objects")
    for template in world.captions.templates:
        # Every template must be able to state every attribute, or full captions would not be.
        slots = {"{subject}", "{style}", "{extras}"}
        lit = "{lighting}" in template.text or "{adverbial}" in template.text
        if not lit or any(slot not in template.text for slot in slots):
            raise InvalidInput(f"caption template {template.text!r} lacks a slot")
    for name, phrase in world.pair_phrases.items():
        if phrase.count("{a}") != 1 or phrase.count("{b}") != 1:
            raise InvalidInput(f"pair phrase {name!r} must hold {{a}} and {{b}} once: {phrase!r}")


@functools.lru_cache(maxsize=64)
def _unit_polygon_cached(geometry_json: str, extent: float) -> np.ndarray:
    geometry = Geometry.model_validate_json(geometry_json)
    if geometry.kind == "ellipse":
        angles = np.linspace(0, 2 * np.pi, geometry.samples, endpoint=False)
        points = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    elif geometry.kind == "polygon":
        points = np.asarray(geometry.points, dtype=np.float64)
    elif geometry.kind == "star":
        k = np.arange(2 * geometry.n_points)
        radii = np.where(k % 2 == 0, 1.0, geometry.inner_ratio)
        angles = -np.pi / 2 + k * np.pi / geometry.n_points
        points = np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)
    else:  # heart: the classic parametric curve, y flipped so the point is at the bottom
        t = np.linspace(0, 2 * np.pi, geometry.samples, endpoint=False)
        x = 16 * np.sin(t) ** 3
        y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
        points = np.stack([x, y], axis=1)
    low, high = points.min(axis=0), points.max(axis=0)
    points = (points - (low + high) / 2) / ((high - low).max() / 2) * extent
    points.setflags(write=False)
    return points


def unit_polygon(shape: ShapeDef) -> np.ndarray:
    """The outline of a shape as an (N, 2) array of (x, y) vertices.

    The polygon's bounding box is centred on 0 and its larger half-side equals ``shape.extent``,
    so that "position" means the box centre and "size" the box width for every shape alike (the
    judge measures exactly these). Circles are returned as many-sided polygons.

    Args:
        shape: A shape definition from the world.

    Returns:
        A read-only float array of vertices in the unit box.
    """
    return _unit_polygon_cached(shape.geometry.model_dump_json(), shape.extent)


def placements_compatible(a: tuple[str, str], b: tuple[str, str], world: World) -> bool:
    """Whether two (size, position) placements can share a canvas without touching.

    Two placements are compatible when their positions differ and their square boxes (half-width
    = size radius, whatever the shape) stay ``world.min_gap_px`` apart along x or y. Boxes are a
    conservative stand-in for the true outlines, chosen so the rule does not depend on shape and
    so that every rendered scene segments into separate blobs, even blurred. With the default world
    a large object only fits opposite another one (left/right or top/bottom), and small objects fit
    anywhere.
    """
    (size_a, position_a), (size_b, position_b) = a, b
    if position_a == position_b:
        return False
    (ax, ay), (bx, by) = world.centre(position_a), world.centre(position_b)
    separation = max(abs(ax - bx), abs(ay - by))
    return separation - world.radius(size_a) - world.radius(size_b) >= world.min_gap_px


def objects_compatible(a: SceneObject, b: SceneObject, world: World) -> bool:
    """Whether two objects can share a canvas; see ``placements_compatible``."""
    return placements_compatible((a.size, a.position), (b.size, b.position), world)


def check_scene(scene: Scene, world: World | None = None) -> Scene:
    """Validate a scene against the world and return it unchanged.

    Args:
        scene: The scene to check.
        world: The world to check against; ``None`` means the bundled one.

    Returns:
        ``scene``, so the call can be chained.

    Raises:
        UnknownAttribute: A value is not in the world's vocabulary (the message lists the allowed
            values).
        InvalidInput: Too many objects, repeated defects, or objects that would overlap.
    """
    world = world or load_world()
    if len(scene.objects) > world.max_objects:
        raise InvalidInput(
            f"a scene holds at most {world.max_objects} objects, got {len(scene.objects)}"
        )
    for obj in scene.objects:
        world.check_value("shape", obj.shape)
        world.check_value("colour", obj.colour)
        world.check_value("size", obj.size)
        world.check_value("position", obj.position)
    world.check_value("lighting", scene.lighting)
    world.check_value("style", scene.style)
    for defect in scene.defects:
        world.check_value("defect", defect)
    if len(set(scene.defects)) != len(scene.defects):
        raise InvalidInput(f"repeated defect in {list(scene.defects)}")
    for i, a in enumerate(scene.objects):
        for b in scene.objects[i + 1 :]:
            if not objects_compatible(a, b, world):
                raise InvalidInput(
                    f"a {a.size} object at {a.position!r} and a {b.size} one at {b.position!r} "
                    "would overlap; use distinct positions, opposite sides for large objects"
                )
    return scene


def sample_layout(
    rng: np.random.Generator, world: World, n_objects: int, sizes: list[str | None] | None = None
) -> list[tuple[str, str]]:
    """Draw (size, position) pairs for ``n_objects`` mutually compatible objects.

    Sizes given in ``sizes`` are kept; ``None`` entries are drawn uniformly. Rejection sampling is
    cheap here (at most a few dozen tries) and keeps every valid layout possible.

    Raises:
        InvalidInput: No compatible layout exists for the requested sizes.
    """
    wanted = sizes if sizes is not None else [None] * n_objects
    size_names, position_names = world.names("size"), world.names("position")
    for _ in range(500):
        drawn = [s if s is not None else str(rng.choice(size_names)) for s in wanted]
        places = rng.choice(position_names, size=n_objects, replace=False)
        layout = [(size, str(place)) for size, place in zip(drawn, places, strict=True)]
        if all(
            placements_compatible(a, b, world)
            for i, a in enumerate(layout)
            for b in layout[i + 1 :]
        ):
            return layout
    raise InvalidInput(f"no layout fits {n_objects} objects of sizes {wanted} in the pocket world")


def sample_scene(
    rng: np.random.Generator, world: World | None = None, n_objects: int | None = None
) -> Scene:
    """Draw a random valid scene.

    Shapes, colours, lighting and style are uniform; the object count follows
    ``world.sampling.n_objects_weights``; each defect is present independently with probability
    ``world.sampling.p_defect`` (so about half of the scenes are clean). Layouts never overlap (see
    ``objects_compatible``), which in the default world means three-object scenes are all small.

    Args:
        rng: The random generator; the same generator state gives the same scene.
        world: The world; ``None`` means the bundled one.
        n_objects: Force the number of objects (1 to ``world.max_objects``).

    Returns:
        A scene that passes ``check_scene``.
    """
    world = world or load_world()
    if n_objects is None:
        weights = np.asarray(world.sampling.n_objects_weights, dtype=np.float64)
        n_objects = int(rng.choice(len(weights), p=weights / weights.sum())) + 1
    if not 1 <= n_objects <= world.max_objects:
        raise InvalidInput(f"n_objects must be 1..{world.max_objects}, got {n_objects}")
    layout = sample_layout(rng, world, n_objects)
    objects = tuple(
        SceneObject(
            shape=str(rng.choice(world.names("shape"))),
            colour=str(rng.choice(world.names("colour"))),
            size=size,
            position=position,
        )
        for size, position in layout
    )
    defects = tuple(d for d in world.names("defect") if rng.random() < world.sampling.p_defect)
    return Scene(
        objects=objects,
        lighting=str(rng.choice(world.names("lighting"))),
        style=str(rng.choice(world.names("style"))),
        defects=defects,
    )
