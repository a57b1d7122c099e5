"""PocketBench: short ideas of the kind users type, each with what its image must show.

Modelled on GenEval's tasks (single object, two objects, counting, colours, position, colour
binding) plus three of ours (lighting, style, defects). Every item's requirement is a partial
``Requirement`` the pocket judge checks, so a run scores per task exactly as GenEval does. The
data lives in ``pocketbench.json``, generated reproducibly by ``make_pocketbench.py``.

Example:
    >>> items = load_pocketbench(quick=True)
    >>> items[0].idea, items[0].task
    ('a star', 'single_object')
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from imagineer.errors import InvalidInput
from imagineer.pocket.requirement import Requirement, check_requirement
from imagineer.pocket.world import World, load_world

logger = logging.getLogger(__name__)

DEFAULT_BENCH_PATH = Path(__file__).with_name("pocketbench.json")

TaskType = Literal[
    "single_object",
    "two_objects",
    "counting",
    "colours",
    "position",
    "colour_binding",
    "lighting",
    "style",
    "defects",
]
TASK_TYPES: tuple[str, ...] = get_args(TaskType)


class BenchItem(BaseModel):
    """One PocketBench idea.

    Attributes:
        id: Stable identifier, ``<task>-<nnn>``.
        task: The task type it measures.
        idea: What a user would type, short and under-specified.
        requirement: What the image must show (everything else is free).
        quick: Whether it belongs to the quick subset (about 10%, balanced across tasks).
    """

    model_config = ConfigDict(frozen=True)

    id: str
    task: TaskType
    idea: str = Field(min_length=1)
    requirement: Requirement
    quick: bool = False


class PocketBench(BaseModel):
    """The file format of ``pocketbench.json``."""

    name: str
    version: int
    seed: int = Field(description="Seed make_pocketbench.py used.")
    items: list[BenchItem]


def load_pocketbench(
    path: str | Path | None = None, quick: bool = False, world: World | None = None
) -> list[BenchItem]:
    """Load PocketBench and validate every requirement against the world.

    Args:
        path: A bench JSON file; ``None`` means the bundled ``pocketbench.json``.
        quick: Return only the quick subset.
        world: The world to validate against; ``None`` means the bundled one.

    Returns:
        The items, in file order.

    Raises:
        InvalidInput: The file is missing or malformed, or has duplicate ids.
        UnknownAttribute: A requirement uses a value outside the world's vocabulary.
    """
    bench_path = Path(path) if path is not None else DEFAULT_BENCH_PATH
    try:
        bench = PocketBench.model_validate(json.loads(bench_path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as error:
        raise InvalidInput(f"cannot load PocketBench {str(bench_path)!r}: {error}") from error
    world = world or load_world()
    ids = [item.id for item in bench.items]
    if len(set(ids)) != len(ids):
        raise InvalidInput(f"PocketBench {str(bench_path)!r} has duplicate item ids")
    for item in bench.items:
        check_requirement(item.requirement, world)
    logger.debug("loaded %d PocketBench items from %s", len(bench.items), bench_path)
    return quick_subset(bench.items) if quick else bench.items


def quick_subset(items: list[BenchItem]) -> list[BenchItem]:
    """The items flagged ``quick``: a small subset, balanced across task types."""
    return [item for item in items if item.quick]


def by_task(items: list[BenchItem]) -> dict[str, list[BenchItem]]:
    """Items grouped by task type, in ``TASK_TYPES`` order (for per-task scores)."""
    return {task: [item for item in items if item.task == task] for task in TASK_TYPES}


def per_task(items: list[BenchItem], k: int, offset: int = 0) -> list[BenchItem]:
    """Each task's ideas ``offset`` to ``offset + k`` (in file order), tasks in order of first
    appearance: a balanced sample, and with ``offset`` a disjoint one for tuning."""
    by_task: dict[str, list[BenchItem]] = {}
    for item in items:
        by_task.setdefault(item.task, []).append(item)
    return [item for group in by_task.values() for item in group[offset : offset + k]]
