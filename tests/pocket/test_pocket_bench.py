"""PocketBench: size, coverage, the quick subset, reproducibility and satisfiability."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from imagineer.errors import InvalidInput, UnknownAttribute
from imagineer.pocket.bench import TASK_TYPES, by_task, load_pocketbench
from imagineer.pocket.judge import judge, sample_scene_for
from imagineer.pocket.make_pocketbench import build_pocketbench, to_json
from imagineer.pocket.render import render_scene


def test_bench_has_300_items_over_every_task() -> None:
    items = load_pocketbench()
    assert len(items) >= 300
    counts = Counter(item.task for item in items)
    assert set(counts) == set(TASK_TYPES)
    assert min(counts.values()) >= 30
    assert len({item.idea for item in items}) == len(items)
    assert all(len(item.idea.split()) <= 10 for item in items)  # short, as users type


def test_quick_subset_is_about_a_tenth_and_balanced() -> None:
    items = load_pocketbench()
    quick = load_pocketbench(quick=True)
    assert 0.07 * len(items) <= len(quick) <= 0.15 * len(items)
    per_task = Counter(item.task for item in quick)
    assert set(per_task) == set(TASK_TYPES)
    assert max(per_task.values()) - min(per_task.values()) <= 1
    assert [len(group) for group in by_task(items).values()] == [
        Counter(i.task for i in items)[t] for t in TASK_TYPES
    ]


def test_bundled_file_is_what_the_generator_makes() -> None:
    bench = build_pocketbench()
    assert [item.model_dump() for item in bench.items] == [
        item.model_dump() for item in load_pocketbench()
    ]
    assert json.loads(to_json(bench))["items"][0]["id"] == bench.items[0].id


def test_every_requirement_is_satisfiable() -> None:
    rng = np.random.default_rng(0)
    for item in load_pocketbench():
        scene = sample_scene_for(item.requirement, rng)
        assert scene.objects


def test_the_judge_passes_renders_of_satisfying_scenes() -> None:
    rng = np.random.default_rng(1)
    failures = []
    for item in load_pocketbench(quick=True):
        scene = sample_scene_for(item.requirement, rng)
        verdict = judge(render_scene(scene, seed=3), item.requirement)
        if not verdict.all_correct:
            failures.append((item.idea, [c.attribute for c in verdict.failed()]))
    assert not failures


def test_bad_bench_files_raise_typed_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput):
        load_pocketbench(tmp_path / "missing.json")
    item = {"id": "x-000", "task": "colours", "idea": "a mauve star"}
    bad = {
        "name": "b",
        "version": 1,
        "seed": 0,
        "items": [{**item, "requirement": {"objects": [{"shape": "star", "colour": "mauve"}]}}],
    }
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(UnknownAttribute, match="'mauve'"):
        load_pocketbench(path)


def test_per_task_takes_disjoint_balanced_slices() -> None:
    from imagineer.pocket.bench import TASK_TYPES, per_task

    items = load_pocketbench()
    first, second = per_task(items, 3), per_task(items, 3, offset=3)
    assert len(first) == len(second) == 3 * len(TASK_TYPES)
    assert {i.id for i in first}.isdisjoint({i.id for i in second})
    for task in TASK_TYPES:
        mine = [i for i in items if i.task == task]
        assert [i for i in first if i.task == task] == mine[:3]
