"""Do layout hints and regions make right renders likelier? Raw idea vs the expander's first spec.

For PocketBench ideas of the multi-thing tasks, render on the same seeds:

- ``raw``: the idea as typed;
- ``hinted``: the offline expander's first spec (layout hints, plus its other terms) as text;
- ``regions@B``: the same spec with its regions (`imagineer.prompting.layout.layout_regions`),
  the whole prompt keeping weight ``B`` inside them (one arm per ``--region-base``);

and count the renders the judge accepts. No scorer is involved: this measures the generator's
response to the words and the layout, the raw material every selection method picks from.

    .venv/bin/python benchmarks/layout_hints.py                 # quick ideas, 8 seeds each
    .venv/bin/python benchmarks/layout_hints.py --per-task 4 --offset 20 \\
        --region-base 0.2 --region-base 0.4 --json
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict

from imagineer.agent.loop import sub_seed
from imagineer.generators import DiffusersConfig, DiffusersGenerator
from imagineer.pocket.bench import load_pocketbench, per_task
from imagineer.pocket.judge import judge
from imagineer.pocket.paths import WORLD_FILE, pocket_generator_dir
from imagineer.prompting.offline import OfflineExpander
from imagineer.prompting.vocabulary import vocabulary_from_world

TASKS = ("two_objects", "counting", "position", "colour_binding")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=8, help="renders per idea and arm")
    parser.add_argument("--per-task", type=int, default=None, help="K ideas per task, not quick")
    parser.add_argument("--offset", type=int, default=0, help="with --per-task: skip the first")
    parser.add_argument(
        "--region-base", type=float, action="append", default=None, help="regions arm (repeat)"
    )
    parser.add_argument("--model", default=None, help="generator (pocket default)")
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    args = parser.parse_args()
    model = args.model or str(pocket_generator_dir())
    generator = DiffusersGenerator(model)
    regional = {
        f"regions@{base:g}": DiffusersGenerator(DiffusersConfig(model=model, region_base=base))
        for base in args.region_base or [generator.config.region_base]
    }
    expander = OfflineExpander(vocabulary_from_world(WORLD_FILE))
    if args.per_task:
        items = per_task(load_pocketbench(), args.per_task, args.offset)
    else:
        items = load_pocketbench(quick=True)
    right: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for item in (i for i in items if i.task in TASKS):
        seed = sub_seed(0, "pocketbench", item.id)
        seeds = range(seed, seed + args.seeds)
        prompt = expander.expand(item.idea, 1, seed=seed).specs[0].render()
        arms = {
            "raw": generator.render([item.idea] * args.seeds, seeds=seeds),
            "hinted": generator.render(
                [prompt.positive] * args.seeds, [prompt.negative] * args.seeds, seeds=seeds
            ),
        }
        for name, with_regions in regional.items():
            arms[name] = with_regions.render(
                [prompt.positive] * args.seeds,
                [prompt.negative] * args.seeds,
                seeds=seeds,
                regions=[prompt.regions] * args.seeds,
            )
        counts = {
            name: sum(judge(c.image, item.requirement).all_correct for c in images)
            for name, images in arms.items()
        }
        for name, count in counts.items():
            right[item.task][name].append(count)
        shown = "  ".join(f"{name} {count}/{args.seeds}" for name, count in counts.items())
        print(f"{item.task:<15}{item.idea!r:<45}{shown}", flush=True)
    share = {
        task: {name: 100.0 * sum(v) / (args.seeds * len(v)) for name, v in by.items()}
        for task, by in right.items()
    }
    arms_order = list(next(iter(share.values())).keys()) if share else []
    print(f"{'right renders %':<15}" + "".join(f"{name:>14}" for name in arms_order))
    for task, row in share.items():
        print(f"{task:<15}" + "".join(f"{row[name]:>14.1f}" for name in arms_order))
    if args.json:
        print(json.dumps({"seeds": args.seeds, "right_renders_percent": share}))


if __name__ == "__main__":
    main()
