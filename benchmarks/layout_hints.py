"""Do layout hints make right renders likelier? Raw idea vs the offline expander's first spec.

For each PocketBench quick idea of the multi-thing tasks, render the raw idea and the expanded
spec (layout hints, plus the expander's other terms) on the same seeds and count the renders
the judge accepts. No scorer is involved: this measures the generator's response to the words.

    .venv/bin/python benchmarks/layout_hints.py                 # 8 seeds per idea
    .venv/bin/python benchmarks/layout_hints.py --seeds 16 --json
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict

from imagineer.agent.loop import sub_seed
from imagineer.generators import DiffusersGenerator
from imagineer.pocket.bench import load_pocketbench
from imagineer.pocket.judge import judge
from imagineer.pocket.paths import WORLD_FILE, pocket_generator_dir
from imagineer.prompting.offline import OfflineExpander
from imagineer.prompting.vocabulary import vocabulary_from_world

TASKS = ("two_objects", "counting", "position", "colour_binding")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=8, help="renders per idea and prompt")
    parser.add_argument("--model", default=None, help="generator (pocket default)")
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    args = parser.parse_args()
    generator = DiffusersGenerator(args.model or str(pocket_generator_dir()))
    expander = OfflineExpander(vocabulary_from_world(WORLD_FILE))
    right: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for item in (i for i in load_pocketbench(quick=True) if i.task in TASKS):
        seed = sub_seed(0, "pocketbench", item.id)
        prompt = expander.expand(item.idea, 1, seed=seed).specs[0].render()
        pairs = {"raw": (item.idea, ""), "hinted": (prompt.positive, prompt.negative)}
        for name, (positive, negative) in pairs.items():
            n = args.seeds
            images = generator.render([positive] * n, [negative] * n, seeds=range(seed, seed + n))
            count = sum(judge(c.image, item.requirement).all_correct for c in images)
            right[item.task][name].append(count)
            print(f"{item.task:<15}{name:<8}{count:>3}/{n}  {positive!r}", flush=True)
    share = {
        task: {name: 100.0 * sum(v) / (args.seeds * len(v)) for name, v in by.items()}
        for task, by in right.items()
    }
    for task, row in share.items():
        print(f"{task:<15} raw {row['raw']:5.1f}%  hinted {row['hinted']:5.1f}%")
    if args.json:
        print(json.dumps({"seeds": args.seeds, "right_renders_percent": share}))


if __name__ == "__main__":
    main()
