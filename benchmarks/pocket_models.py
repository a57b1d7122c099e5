"""The bundled pocket models against their budgets: render time, scoring time and size on disk.

Bars (issue 3): 4 candidates at 20 steps render in <= 2 s on this 2-core CPU; all pocket weights
together <= 40 MB. Both models load through imagineer's ordinary loaders (``DiffusersGenerator``,
``ClipScorer``), so this times exactly what ``imagineer imagine`` runs.

    .venv/bin/python benchmarks/pocket_models.py                 # the bundled models
    .venv/bin/python benchmarks/pocket_models.py --models runs/pocket/interim --repeats 9

Prints a table and, with ``--json``, one JSON object as the last line. Times are medians over
``--repeats`` runs after one warm-up render (the first call also builds the scheduler's tables);
on a shared machine, run it when nothing else trains.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from overhead import median_wall, timings  # this folder's timing helpers

RENDER_BAR_SECONDS = 2.0
SIZE_BAR_MB = 40.0
PROMPT = "a small red star on the left, sunset lighting, pixel art"


def weights_mb(directory: Path) -> float:
    """Megabytes of weight files (``*.safetensors``) under ``directory``."""
    return sum(p.stat().st_size for p in directory.rglob("*.safetensors")) / 1e6


def median_seconds(call, repeats: int) -> float:  # type: ignore[no-untyped-def]
    """Median wall time of ``repeats`` calls of ``call`` after one warm-up call."""
    call()
    return median_wall(timings(call, repeats))


def main() -> None:
    """CLI: measure and print the figures."""
    import torch

    from imagineer.generators.diffusers_generator import DiffusersConfig, DiffusersGenerator
    from imagineer.pocket.paths import pocket_generator_dir, pocket_scorer_dir
    from imagineer.scoring.clip_scorer import ClipScorer

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", type=Path, default=None, help="Default: the bundled models.")
    parser.add_argument("--candidates", type=int, default=4)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    generator_dir = args.models / "generator" if args.models else pocket_generator_dir()
    scorer_dir = args.models / "scorer" if args.models else pocket_scorer_dir()

    started = time.perf_counter()
    generator = DiffusersGenerator(DiffusersConfig(model=str(generator_dir)))
    generator.render(PROMPT, n=1, seed=0, steps=1)
    load_seconds = time.perf_counter() - started
    seeds = iter(range(1, 1_000_000))
    render_seconds = median_seconds(
        lambda: generator.render(PROMPT, n=args.candidates, seed=next(seeds), steps=args.steps),
        args.repeats,
    )
    images = [c.image for c in generator.render(PROMPT, n=args.candidates, seed=0)]
    scorer = ClipScorer(str(scorer_dir))
    texts = iter(f"{PROMPT} #{i}" for i in range(1_000_000))  # fresh text: no cache hits
    score_seconds = median_seconds(lambda: scorer.score(images, next(texts)), args.repeats)
    sizes = {"generator": weights_mb(generator_dir), "scorer": weights_mb(scorer_dir)}
    result = {
        "candidates": args.candidates,
        "steps": args.steps,
        "threads": torch.get_num_threads(),
        "render_seconds": round(render_seconds, 3),
        "render_bar_seconds": RENDER_BAR_SECONDS,
        "score_seconds": round(score_seconds, 4),
        "load_seconds": round(load_seconds, 2),
        "weights_mb": {name: round(mb, 1) for name, mb in sizes.items()},
        "total_mb": round(sum(sizes.values()), 1),
        "size_bar_mb": SIZE_BAR_MB,
    }
    rows = [
        (f"render {args.candidates} x {args.steps} steps", f"{render_seconds:.2f} s", "<= 2 s"),
        (f"score {args.candidates} images, new text", f"{score_seconds * 1000:.0f} ms", ""),
        ("load + first render", f"{load_seconds:.1f} s", ""),
        ("weights on disk", f"{result['total_mb']} MB {result['weights_mb']}", "<= 40 MB"),
    ]
    for name, value, bar in rows:
        print(f"{name:<36} {value:<40} {bar}")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
