"""Training data for the pocket models: scenes, renders, captions and attribute-swapped captions.

Renders are cached once per (size, seed) under the run directory as ``.npy`` so the three
training stages (and every resumed session) read the same pixels. Captions are drawn afresh at
every step from a per-step seed, so a resumed run sees exactly the captions it would have seen.

Captions come from the world's own templates and phrases (``world.json``). ``describe`` uses a
seeded generator whose draws do not depend on attribute values, so the same seed describes a
scene and its one-attribute swap (``swap``) with the same template and synonyms: the two texts
differ only where the scenes differ, which is what makes them hard negatives.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from imagineer.pocket.render import render_scene
from imagineer.pocket.world import (
    Scene,
    SceneObject,
    World,
    check_scene,
    load_world,
    sample_scene,
)

logger = logging.getLogger(__name__)

SWAP_KINDS = (
    "colour",
    "shape",
    "size",
    "position",
    "lighting",
    "style",
    "count",
    "binding",
    "defect",
)
LAYOUT_KINDS = (*SWAP_KINDS, "trade")
"""``SWAP_KINDS`` and ``trade`` (two different objects trade places: "a star left of a circle"
becomes "a circle left of a star"). Kept apart so recipes drawing from ``SWAP_KINDS`` replay."""


def _pick(rng: np.random.Generator, options: Sequence[str], canonical: float) -> str:
    """One phrase; always two draws so the stream does not depend on ``len(options)``."""
    first, index = rng.random() < canonical, rng.random()
    return options[0] if first else options[int(index * len(options))]


def _plural(noun: str) -> str:
    return noun + ("es" if noun.endswith(("s", "x", "sh")) else "s")


def _object_phrase(obj: SceneObject, world: World, rng: np.random.Generator, full: bool) -> str:
    """'a small red circle on the left', with each part kept with its caption probability."""
    p, canon = world.captions, world.captions.p_canonical
    size = _pick(rng, world.sizes[world.names("size").index(obj.size)].synonyms, canon)
    colour = _pick(rng, world.colours[world.names("colour").index(obj.colour)].synonyms, canon)
    shape = _pick(rng, world.shape(obj.shape).synonyms, canon)
    place = _pick(rng, world.positions[world.names("position").index(obj.position)].phrases, canon)
    keep = rng.random(3)
    words = [
        size if full or keep[0] < p.p_size else "",
        colour if full or keep[1] < p.p_colour else "",
        shape,
    ]
    phrase = " ".join(w for w in words if w)
    article = "an" if phrase[0] in "aeiou" else "a"
    return f"{article} {phrase}" + (f" {place}" if full or keep[2] < p.p_position else "")


def _group_phrase(scene: Scene, world: World, rng: np.random.Generator) -> str | None:
    """'three red stars' when every object shares shape and colour (positions left out)."""
    first = scene.objects[0]
    same = all(o.shape == first.shape and o.colour == first.colour for o in scene.objects)
    count = world.count_words.get(str(len(scene.objects)))
    draw, canon = rng.random(), world.captions.p_canonical
    colour = _pick(rng, world.colours[world.names("colour").index(first.colour)].synonyms, canon)
    shape = _pick(rng, world.shape(first.shape).synonyms, canon)
    number = _pick(rng, count, canon) if count else ""
    if not same or not count or draw >= world.captions.p_group:
        return None
    return f"{number} {colour} {_plural(shape)}"


def describe(scene: Scene, seed: int, world: World | None = None, full: bool = True) -> str:
    """A caption of ``scene`` from the world's templates.

    Args:
        scene: The scene.
        seed: Fixes template and synonyms; a swapped scene with the same seed reads the same
            except where it differs.
        world: The world; ``None`` means the bundled one.
        full: Mention every attribute (shape, colour, size, position of each object, lighting,
            style, defects or a quality phrase); otherwise each is kept with the world's caption
            probability, as users under-specify.

    Returns:
        The caption.
    """
    world = world or load_world()
    rng = np.random.default_rng(seed)
    p, canon = world.captions, world.captions.p_canonical
    objects = [_object_phrase(obj, world, rng, full) for obj in scene.objects]
    group = _group_phrase(scene, world, rng) if len(scene.objects) > 1 else None
    subject = group if group and not full else " and ".join(objects)
    lighting_def = world.lighting(scene.lighting)
    lighting = _pick(rng, lighting_def.phrases, canon)
    adverbial = _pick(rng, lighting_def.adverbials, canon)
    style = _pick(rng, world.styles[world.names("style").index(scene.style)].phrases, canon)
    defects = [
        _pick(rng, world.defects[world.names("defect").index(d)].phrases, canon)
        for d in world.names("defect")
    ]
    quality = _pick(rng, world.quality_phrases, canon)
    keep = rng.random(4)
    template = p.templates[int(rng.random() * len(p.templates))].text
    extras = [
        text
        for name, text in zip(world.names("defect"), defects, strict=True)
        if name in scene.defects and (full or keep[2] < p.p_defect)
    ]
    if not scene.defects and (full or keep[3] < p.p_quality):
        extras.append(quality)
    slots = {
        "subject": subject,
        "lighting": lighting if full or keep[0] < p.p_lighting else "",
        "adverbial": adverbial if full or keep[0] < p.p_lighting else "",
        "style": style if full or keep[1] < p.p_style else "",
        "extras": ", ".join(extras),
    }
    return _fill(template, slots)


def _fill(template: str, slots: dict[str, str]) -> str:
    """Fill a template, dropping the comma-separated parts whose slots are all empty."""
    parts = []
    for part in template.split(", "):
        text = part
        for name, value in slots.items():
            text = text.replace("{" + name + "}", value)
        text = " ".join(text.split()).removeprefix("of ")
        if text:
            parts.append(text)
    return ", ".join(parts)


def _other(rng: np.random.Generator, names: list[str], current: str) -> str:
    choices = [n for n in names if n != current]
    return choices[int(rng.integers(len(choices)))]


def _with_object(scene: Scene, index: int, **changes: str) -> Scene:
    objects = list(scene.objects)
    objects[index] = objects[index].model_copy(update=changes)
    return scene.model_copy(update={"objects": tuple(objects)})


def swap(scene: Scene, kind: str, rng: np.random.Generator, world: World) -> Scene | None:
    """The scene with one attribute changed (a hard negative), or None if ``kind`` cannot apply.

    Kinds: one object's colour, shape, size or position; the lighting; the style; the count (one
    object more or fewer); the binding (two objects trade colours); the defects (one toggled);
    ``trade`` (two objects that look different trade positions).
    """
    i = int(rng.integers(len(scene.objects)))
    obj = scene.objects[i]
    new: Scene | None
    if kind in ("colour", "shape", "size", "position"):
        value = _other(rng, world.names(kind), getattr(obj, kind))  # type: ignore[arg-type]
        new = _with_object(scene, i, **{kind: value})
    elif kind in ("lighting", "style"):
        names = world.names(kind)  # type: ignore[arg-type]
        new = scene.model_copy(update={kind: _other(rng, names, getattr(scene, kind))})
    elif kind == "defect":
        toggled = str(rng.choice(world.names("defect")))
        kept = [d for d in world.names("defect") if (d in scene.defects) != (d == toggled)]
        new = scene.model_copy(update={"defects": tuple(kept)})
    elif kind == "trade":
        pairs = [
            (a, b)
            for a in range(len(scene.objects))
            for b in range(a + 1, len(scene.objects))
            if _looks(scene.objects[a]) != _looks(scene.objects[b])
        ]
        if not pairs:
            return None
        a, b = pairs[int(rng.integers(len(pairs)))]
        new = _with_object(scene, a, position=scene.objects[b].position)
        new = _with_object(new, b, position=scene.objects[a].position)
    elif kind == "binding":
        pairs = [
            (a, b)
            for a in range(len(scene.objects))
            for b in range(a + 1, len(scene.objects))
            if scene.objects[a].colour != scene.objects[b].colour
        ]
        if not pairs:
            return None
        a, b = pairs[int(rng.integers(len(pairs)))]
        new = _with_object(scene, a, colour=scene.objects[b].colour)
        new = _with_object(new, b, colour=scene.objects[a].colour)
    else:
        new = _count_swap(scene, rng, world)
    return new if new is not None and _valid(new, world) else None


def _looks(obj: SceneObject) -> tuple[str, str, str]:
    return obj.shape, obj.colour, obj.size


def _count_swap(scene: Scene, rng: np.random.Generator, world: World) -> Scene | None:
    """One object fewer, or one more of the same kind at a free position."""
    if len(scene.objects) > 1 and (len(scene.objects) == world.max_objects or rng.random() < 0.5):
        keep = list(scene.objects)
        keep.pop(int(rng.integers(len(keep))))
        return scene.model_copy(update={"objects": tuple(keep)})
    base = scene.objects[0]
    for position in rng.permutation(world.names("position")):
        extra = base.model_copy(update={"position": str(position)})
        new = scene.model_copy(update={"objects": (*scene.objects, extra)})
        if _valid(new, world):
            return new
    return None


def _valid(scene: Scene, world: World) -> bool:
    try:
        check_scene(scene, world)
    except ValueError:
        return False
    return True


def training_scene(rng: np.random.Generator, world: World, p_same: float = 0.3) -> Scene:
    """A random scene; with ``p_same`` a multi-object one repeats one shape and colour.

    The world's uniform sampler makes 'three red stars' rare; repeating the first object's
    shape and colour now and then gives counting captions enough examples.
    """
    scene = sample_scene(rng, world)
    if len(scene.objects) == 1 or rng.random() >= p_same:
        return scene
    first = scene.objects[0]
    same = tuple(
        o.model_copy(update={"shape": first.shape, "colour": first.colour}) for o in scene.objects
    )
    return scene.model_copy(update={"objects": same})


def build_renders(
    n: int, seed: int, world: World, p_single: float = 0.4
) -> tuple[np.ndarray, list[Scene]]:
    """Render ``n`` training scenes: (n, 64, 64, 3) uint8 pixels and their scenes.

    ``p_single`` of them are forced to one object, the case the quality bars grade.
    """
    rng = np.random.default_rng(seed)
    scenes, images = [], np.empty((n, world.canvas_px, world.canvas_px, 3), dtype=np.uint8)
    for index in range(n):
        if rng.random() < p_single:
            scene = sample_scene(rng, world, n_objects=1)
        else:
            scene = training_scene(rng, world)
        scenes.append(scene)
        images[index] = np.asarray(render_scene(scene, world, seed=render_seed(seed, index)))
    return images, scenes


def render_seed(seed: int, index: int) -> int:
    """The render seed of training scene ``index`` of the set drawn with ``seed``: rendering a
    changed copy of that scene with it keeps every texture and the grain, so only the change
    differs."""
    return seed * 1_000_003 + index


def cached_renders(
    directory: Path, n: int, seed: int, world: World | None = None
) -> tuple[np.ndarray, list[Scene]]:
    """``build_renders`` through a cache in ``directory`` (``renders-{n}-{seed}.npy/.jsonl``)."""
    world = world or load_world()
    pixels_path = Path(directory) / f"renders-{n}-{seed}.npy"
    scenes_path = pixels_path.with_suffix(".jsonl")
    if pixels_path.is_file() and scenes_path.is_file():
        lines = scenes_path.read_text().splitlines()
        return np.load(pixels_path), [Scene.model_validate_json(line) for line in lines]
    logger.info("rendering %d training scenes (seed %d) into %s", n, seed, directory)
    images, scenes = build_renders(n, seed, world)
    pixels_path.parent.mkdir(parents=True, exist_ok=True)
    np.save(pixels_path.with_suffix(".tmp.npy"), images)
    scenes_path.with_suffix(".tmp").write_text("\n".join(s.model_dump_json() for s in scenes))
    pixels_path.with_suffix(".tmp.npy").replace(pixels_path)
    scenes_path.with_suffix(".tmp").replace(scenes_path)
    return images, scenes


def scene_key(scene: Scene) -> str:
    """A compact, stable string for a scene (for logs and manifests)."""
    return json.dumps(scene.model_dump(), sort_keys=True, separators=(",", ":"))
