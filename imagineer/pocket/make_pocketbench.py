"""Generate ``pocketbench.json`` reproducibly: ``python -m imagineer.pocket.make_pocketbench``.

Ideas are written the way users type them (short, lower case, often under-specified) from the
world's own vocabulary, one small generator per task type. A fixed seed makes the file
reproducible; every requirement is checked to be satisfiable by some pocket scene before it is
written.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from imagineer.pocket.bench import DEFAULT_BENCH_PATH, TASK_TYPES, BenchItem, PocketBench
from imagineer.pocket.judge import sample_scene_for
from imagineer.pocket.requirement import ObjectSpec, Relation, Requirement
from imagineer.pocket.world import World, load_world

logger = logging.getLogger(__name__)

SEED = 20240607
PER_TASK = 36
QUICK_PER_TASK = 4

Idea = tuple[str, Requirement]
Rng = np.random.Generator


def build_pocketbench(world: World | None = None, seed: int = SEED) -> PocketBench:
    """Build PocketBench: ``PER_TASK`` distinct ideas per task type, ``QUICK_PER_TASK`` of them
    flagged for the quick subset.

    Raises:
        InvalidInput: A generated requirement cannot be satisfied (a bug in a generator).
    """
    world = world or load_world()
    rng = np.random.default_rng(seed)
    items: list[BenchItem] = []
    for task in TASK_TYPES:
        ideas = _distinct(GENERATORS[task], rng, world)
        quick = set(rng.choice(len(ideas), size=QUICK_PER_TASK, replace=False).tolist())
        for i, (idea, requirement) in enumerate(ideas):
            sample_scene_for(requirement, rng, world)  # raises if unsatisfiable
            items.append(
                BenchItem(
                    id=f"{task}-{i:03d}",
                    task=task,  # type: ignore[arg-type]
                    idea=idea,
                    requirement=requirement,
                    quick=i in quick,
                )
            )
    return PocketBench(name="PocketBench", version=1, seed=seed, items=items)


def _distinct(generate: Callable[[Rng, World], Idea], rng: Rng, world: World) -> list[Idea]:
    """``PER_TASK`` ideas with distinct wording from one generator."""
    seen: dict[str, Requirement] = {}
    for _ in range(PER_TASK * 200):
        idea, requirement = generate(rng, world)
        seen.setdefault(idea, requirement)
        if len(seen) == PER_TASK:
            return list(seen.items())
    raise RuntimeError(f"{generate.__name__} made only {len(seen)} distinct ideas")


def _one(rng: Rng, options: list[str]) -> str:
    return str(options[int(rng.integers(len(options)))])


def _word(rng: Rng, world: World, kind: str, name: str) -> str:
    """The word a user would type for a value: usually its name, sometimes a synonym."""
    table = {"colour": world.colours, "size": world.sizes}
    entry = next(e for e in table[kind] if e.name == name)  # type: ignore[attr-defined]
    return name if rng.random() < 0.8 else _one(rng, entry.synonyms)


def _a(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou8" else "a ") + phrase


def _plural(noun: str) -> str:
    return noun + ("es" if noun.endswith(("s", "x", "sh", "ch")) else "s")


def _single_object(rng: Rng, world: World) -> Idea:
    shape = _one(rng, world.names("shape"))
    if rng.random() < 0.25:
        size = _one(rng, world.names("size"))
        phrase = f"{_word(rng, world, 'size', size)} {shape}"
        return _a(phrase), Requirement(objects=(ObjectSpec(shape=shape, size=size),))
    template = _one(rng, ["{a}", "{a}", "draw {a}", "a picture of {a}", "just {a}", "{a}, please"])
    count = 1 if template.startswith("just") else None
    idea = template.format(a=_a(shape))
    return idea, Requirement(objects=(ObjectSpec(shape=shape),), count=count)


def _two_objects(rng: Rng, world: World) -> Idea:
    first, second = rng.choice(world.names("shape"), size=2, replace=False).tolist()
    template = world.pair_phrases[_one(rng, ["and", "next_to", "with", "together"])]
    idea = template.format(a=_a(first), b=_a(second))
    return idea, Requirement(objects=(ObjectSpec(shape=first), ObjectSpec(shape=second)))


def _counting(rng: Rng, world: World) -> Idea:
    shape = _one(rng, world.names("shape"))
    n = int(rng.integers(2, world.max_objects + 1))
    word = _one(rng, world.count_words[str(n)])
    idea = f"{word} {_plural(shape)}"
    objects = tuple(ObjectSpec(shape=shape) for _ in range(n))
    return idea, Requirement(objects=objects, count=n)


def _colours(rng: Rng, world: World) -> Idea:
    shape, colour = _one(rng, world.names("shape")), _one(rng, world.names("colour"))
    words = f"{_word(rng, world, 'colour', colour)} {shape}"
    if rng.random() < 0.2:
        size = _one(rng, world.names("size"))
        words = f"{_word(rng, world, 'size', size)} {words}"
        return _a(words), Requirement(objects=(ObjectSpec(shape=shape, colour=colour, size=size),))
    return _a(words), Requirement(objects=(ObjectSpec(shape=shape, colour=colour),))


def _position(rng: Rng, world: World) -> Idea:
    if rng.random() < 0.35:  # an absolute place on the canvas
        shape, position = _one(rng, world.names("shape")), _one(rng, world.names("position"))
        place = next(p for p in world.positions if p.name == position).phrases[0]
        return f"{_a(shape)} {place}", Requirement(
            objects=(ObjectSpec(shape=shape, position=position),)
        )
    first, second = rng.choice(world.names("shape"), size=2, replace=False).tolist()
    relation = _one(rng, ["left_of", "right_of", "above", "below"])
    words = world.relation_phrases[relation][0]
    return f"{_a(first)} {words} {_a(second)}", Requirement(
        objects=(ObjectSpec(shape=first), ObjectSpec(shape=second)),
        relations=(Relation(subject=0, relation=relation, reference=1),),  # type: ignore[arg-type]
    )


def _colour_binding(rng: Rng, world: World) -> Idea:
    shapes = rng.choice(world.names("shape"), size=2, replace=False).tolist()
    colours = rng.choice(world.names("colour"), size=2, replace=False).tolist()
    a, b = (f"{_word(rng, world, 'colour', c)} {s}" for c, s in zip(colours, shapes, strict=True))
    template = world.pair_phrases[_one(rng, ["and", "next_to", "beside"])]
    idea = template.format(a=_a(a), b=_a(b))
    return idea, Requirement(
        objects=tuple(ObjectSpec(shape=s, colour=c) for c, s in zip(colours, shapes, strict=True))
    )


def _lighting(rng: Rng, world: World) -> Idea:
    shape, lighting = _one(rng, world.names("shape")), _one(rng, world.names("lighting"))
    words = _one(rng, world.lighting(lighting).adverbials)
    if rng.random() < 0.4:
        colour = _one(rng, world.names("colour"))
        subject, spec = f"{colour} {shape}", ObjectSpec(shape=shape, colour=colour)
    else:
        subject, spec = shape, ObjectSpec(shape=shape)
    return f"{_a(subject)} {words}", Requirement(objects=(spec,), lighting=lighting)


def _style(rng: Rng, world: World) -> Idea:
    shape, style = _one(rng, world.names("shape")), _one(rng, world.names("style"))
    phrase = _one(rng, next(s for s in world.styles if s.name == style).phrases)
    colour = _one(rng, world.names("colour")) if rng.random() < 0.5 else None
    subject = f"{colour} {shape}" if colour else shape
    template = _one(rng, ["{a} in {style}", "{style} of {a}", "{a}, {style}"])
    idea = template.format(a=_a(subject), style=phrase)
    return idea, Requirement(objects=(ObjectSpec(shape=shape, colour=colour),), style=style)


def _defects(rng: Rng, world: World) -> Idea:
    shape = _one(rng, world.names("shape"))
    spec = (ObjectSpec(shape=shape),)
    every = tuple(world.names("defect"))
    clean = [
        ("a sharp, clean picture of {a}", ()),
        ("{a}, sharp, high detail", ()),
        ("a crisp {s}, no blur", ("blur",)),
        ("a clean {s} without noise", ("grain",)),
        ("a vivid, high-contrast {s}", ("low_contrast",)),
    ]
    spoiled = [
        ("a blurry photo of {a}", "blur"),
        ("an out of focus {s}", "blur"),
        ("a grainy picture of {a}", "grain"),
        ("{a} with film grain", "grain"),
        ("a faded, washed out {s}", "low_contrast"),
    ]
    if rng.random() < 0.6:
        template, absent = clean[int(rng.integers(len(clean)))]
        idea = template.format(a=_a(shape), s=shape)
        return idea, Requirement(objects=spec, defects_absent=absent or every)
    template, present = spoiled[int(rng.integers(len(spoiled)))]
    idea = template.format(a=_a(shape), s=shape)
    return idea, Requirement(objects=spec, defects_present=(present,))


GENERATORS: dict[str, Callable[[Rng, World], Idea]] = {
    "single_object": _single_object,
    "two_objects": _two_objects,
    "counting": _counting,
    "colours": _colours,
    "position": _position,
    "colour_binding": _colour_binding,
    "lighting": _lighting,
    "style": _style,
    "defects": _defects,
}


def main(argv: list[str] | None = None) -> None:
    """Write PocketBench as JSON (to the bundled path unless ``--out`` says otherwise)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=DEFAULT_BENCH_PATH)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    bench = build_pocketbench(seed=args.seed)
    args.out.write_text(to_json(bench), encoding="utf-8")
    logger.info("wrote %d PocketBench items to %s", len(bench.items), args.out)


def to_json(bench: PocketBench) -> str:
    """The bench as JSON with one item per line, so that changes read well in a diff."""
    head = bench.model_dump(exclude={"items"})
    lines = [json.dumps(item.model_dump(exclude_defaults=True)) for item in bench.items]
    body = ",\n  ".join(lines)
    return json.dumps(head)[:-1] + ', "items": [\n  ' + body + "\n]}\n"


if __name__ == "__main__":
    main()
