"""PocketBench: does the loop make images better? Judged exactly, in the pocket world.

For every idea, at the same image budget, three methods are judged by image analysis (the
pocket judge, independent of CLIP) on the attributes the idea requires:

- single_shot: one image of the raw idea (the first of the best-of-N batch: a random sample);
- best_of_n:   N images of the raw idea, the one CLIP scores highest against the idea;
- agent_loop:  the agent (offline expander and search refiner) with an N-image budget.

    .venv/bin/python benchmarks/pocketbench.py --quick            # a representative subset
    .venv/bin/python benchmarks/pocketbench.py --budget 16 --json # all ideas; JSON last line

The JSON's top-level ``single_shot``, ``best_of_n`` and ``agent_loop`` are all-attributes
accuracies in percent; ``per_task`` breaks them down; ``seconds_per_idea`` times each method.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from collections import defaultdict
from typing import Any

from imagineer.agent.defaults import pocket_components
from imagineer.agent.loop import Agent, AgentConfig, sub_seed
from imagineer.pocket.bench import BenchItem, load_pocketbench, per_task
from imagineer.pocket.judge import judge

METHODS = ("single_shot", "best_of_n", "agent_loop")


def run_item(item: BenchItem, parts: tuple[Any, ...], args: argparse.Namespace) -> dict[str, Any]:
    """Judge every method on one idea; returns correctness and seconds per method."""
    expander, generator, scorer, refiner = parts
    seed = sub_seed(args.seed, "pocketbench", item.id)
    outcome: dict[str, Any] = {"id": item.id, "task": item.task, "seconds": {}}
    if "baseline" in args.methods:  # best-of-N (and single shot, its first sample)
        started = time.perf_counter()
        candidates = generator.render(item.idea, n=args.budget, seed=seed)
        scores = scorer.score([c.image for c in candidates], item.idea)
        best = max(range(len(candidates)), key=lambda i: scores[i].cosine)
        outcome["seconds"]["best_of_n"] = time.perf_counter() - started
        outcome["single_shot"] = judge(candidates[0].image, item.requirement).all_correct
        outcome["best_of_n"] = judge(candidates[best].image, item.requirement).all_correct
    if "agent" in args.methods:
        started = time.perf_counter()
        config = agent_config(args, seed)
        run = Agent(expander, generator, scorer, refiner, config).run(item.idea)
        outcome["seconds"]["agent_loop"] = time.perf_counter() - started
        outcome["agent_loop"] = judge(run.best.candidate.image, item.requirement).all_correct
        outcome["agent_prompt"] = run.best.prompt.positive
    return outcome


def agent_config(args: argparse.Namespace, seed: int) -> AgentConfig:
    """The agent's configuration for one idea: the defaults, unless an option overrides them."""
    weights = {
        name: value
        for name, value in (
            ("concept_weight", args.concept_weight),
            ("contrast_weight", args.contrast_weight),
        )
        if value is not None
    }
    return AgentConfig(
        images=args.budget,
        rounds=args.rounds,
        specs_per_round=args.specs,
        seed=seed,
        regions=not args.no_regions,
        **weights,
    )


def summarise(outcomes: list[dict[str, Any]]) -> dict[str, Any]:
    """Accuracies in percent overall and per task, and median seconds per idea per method."""
    methods = [m for m in METHODS if m in outcomes[0]]
    per_task: dict[str, dict[str, Any]] = defaultdict(dict)
    tasks = sorted({o["task"] for o in outcomes})
    for task in tasks:
        rows = [o for o in outcomes if o["task"] == task]
        per_task[task] = {m: 100.0 * sum(o[m] for o in rows) / len(rows) for m in methods}
        per_task[task]["ideas"] = len(rows)
    summary: dict[str, Any] = {
        m: 100.0 * sum(o[m] for o in outcomes) / len(outcomes) for m in methods
    }
    seconds = {
        m: statistics.median(o["seconds"][m] for o in outcomes)
        for m in ("best_of_n", "agent_loop")
        if m in outcomes[0]["seconds"]
    }
    return {
        **summary,
        "per_task": dict(per_task),
        "ideas": len(outcomes),
        "seconds_per_idea": seconds,
    }


def print_table(summary: dict[str, Any], args: argparse.Namespace) -> None:
    methods = [m for m in METHODS if m in summary]
    print(f"PocketBench, budget {args.budget} images per idea, seed {args.seed}")
    print(f"{'task':<16}{'ideas':>6}" + "".join(f"{m:>13}" for m in methods))
    for task, row in summary["per_task"].items():
        print(f"{task:<16}{row['ideas']:>6}" + "".join(f"{row[m]:>12.1f}%" for m in methods))
    print(
        f"{'overall':<16}{summary['ideas']:>6}" + "".join(f"{summary[m]:>12.1f}%" for m in methods)
    )
    for method, seconds in summary["seconds_per_idea"].items():
        print(f"  {method}: {seconds:.1f} s per idea (median)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget", type=int, default=16, help="images per idea (N)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="the representative quick subset")
    parser.add_argument("--limit", type=int, default=None, help="only the first K ideas")
    parser.add_argument(
        "--per-task", type=int, default=None, help="only the first K ideas of each task type"
    )
    parser.add_argument(
        "--offset",
        type=int,
        default=0,
        help="with --per-task, skip each task's first S ideas (a disjoint split for tuning)",
    )
    parser.add_argument(
        "--task", action="append", default=None, help="only ideas of this task type (repeatable)"
    )
    parser.add_argument("--rounds", type=int, default=4, help="agent rounds")
    parser.add_argument("--specs", type=int, default=2, help="agent specs per round")
    parser.add_argument("--methods", default="baseline,agent", help="baseline[,agent]")
    parser.add_argument("--concept-weight", type=float, default=None, help="agent objective")
    parser.add_argument("--contrast-weight", type=float, default=None, help="agent objective")
    parser.add_argument(
        "--no-regions", action="store_true", help="agent renders without regional prompts"
    )
    parser.add_argument("--model", default=None, help="generator (pocket default)")
    parser.add_argument("--scorer", default=None, help="scorer (pocket default)")
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    items = load_pocketbench(quick=args.quick)
    if args.task:
        unknown = sorted(set(args.task) - {item.task for item in items})
        if unknown:
            parser.error(f"unknown task type(s) {unknown}")
        items = [item for item in items if item.task in args.task]
    if args.per_task is not None:
        items = per_task(items, args.per_task, args.offset)
    items = items[: args.limit]
    parts = pocket_components(model=args.model, scorer=args.scorer)
    outcomes = []
    for index, item in enumerate(items, start=1):
        outcomes.append(run_item(item, parts, args))
        marks = " ".join(f"{m}={int(outcomes[-1][m])}" for m in METHODS if m in outcomes[-1])
        print(f"[{index}/{len(items)}] {item.id} {item.idea!r}: {marks}", flush=True)
    summary = summarise(outcomes)
    print_table(summary, args)
    if args.json:
        print(
            json.dumps(
                {
                    "budget": args.budget,
                    "seed": args.seed,
                    "quick": args.quick,
                    "ideas_per_task": args.per_task,
                    "offset": args.offset,
                    "tasks": args.task,
                    "agent_config": agent_config(args, args.seed).model_dump(exclude={"seed"}),
                    **summary,
                }
            )
        )


if __name__ == "__main__":
    main()
