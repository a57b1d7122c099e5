"""Measure the pocket models against the issue's bars, with the analysis judge.

Bars (issue 3), all on fully specified single-object captions unless said otherwise:
    * every attribute >= 80% correct, and >= 50% of single-shot renders correct in all at once;
    * best-of-16 ranked by the pocket scorer beats single-shot by >= 10 points;
    * the scorer ranks the true caption first among 10 attribute-swapped ones for >= 80% of
      ground-truth scenes.

Run: ``.venv/bin/python -m imagineer.pocket.evaluate --models imagineer/pocket/models``
(``--quick`` for a smaller sample). Prints one JSON object as its last line.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from imagineer.errors import UnknownAttribute
from imagineer.pocket.judge import judge
from imagineer.pocket.world import Scene, World, load_world

logger = logging.getLogger(__name__)

ATTRIBUTES = ("shape", "colour", "size", "position", "count", "lighting", "style", "defects")


def _group(attribute: str) -> str:
    """The bar an issue-judge check counts towards: 'object0.colour' -> 'colour', and so on."""
    if attribute.startswith("defect."):
        return "defects"
    if attribute.startswith("object"):
        name = attribute.split(".", 1)[1]
        return "count" if name == "present" else name
    return "relations" if attribute.startswith("relation") else attribute


def judge_hits(image: np.ndarray, scene: Scene, world: World) -> dict[str, bool]:
    """Which attribute groups of ``scene`` the judge finds in ``image`` (all their checks pass).

    An image the analysis cannot read at all (early-training noise can leave it no sky to
    match) shows nothing the caption asked for, so it gets every attribute wrong.
    """
    try:
        verdict = judge(image, scene, world)
    except (ValueError, IndexError) as error:
        if isinstance(error, UnknownAttribute):
            raise
        logger.debug("judge could not read an image (%s); counted as all wrong", error)
        return dict.fromkeys(ATTRIBUTES, False)
    hits = dict.fromkeys(ATTRIBUTES, True)
    for check in verdict.checks:
        group = _group(check.attribute)
        hits[group] = hits.get(group, True) and check.correct
    return hits


def judge_accuracy(
    images: Sequence[np.ndarray] | np.ndarray, scenes: Sequence[Scene], world: World
) -> dict[str, float]:
    """Per-attribute accuracy and ``all`` (every attribute right at once), each 0-1."""
    rows = [judge_hits(image, scene, world) for image, scene in zip(images, scenes, strict=True)]
    report = {name: float(np.mean([row[name] for row in rows])) for name in ATTRIBUTES}
    report["all"] = float(np.mean([all(row.values()) for row in rows]))
    return report


def single_object_scenes(n: int, seed: int, world: World) -> list[Scene]:
    """``n`` random one-object scenes (the population the quality bars grade)."""
    from imagineer.pocket.world import sample_scene

    rng = np.random.default_rng(seed)
    return [sample_scene(rng, world, n_objects=1) for _ in range(n)]


def evaluate_generator(
    models: Path, n: int, best_of: int, seed: int, world: World
) -> dict[str, object]:
    """Single-shot and best-of-N judge accuracy of the pocket generator on full captions."""
    from imagineer.generators.diffusers_generator import DiffusersConfig, DiffusersGenerator
    from imagineer.pocket.datasets import describe
    from imagineer.scoring.clip_scorer import ClipScorer

    generator = DiffusersGenerator(DiffusersConfig(model=str(models / "generator")))
    scorer = ClipScorer(str(models / "scorer"))
    scenes = single_object_scenes(n, seed, world)
    single, best = [], []
    started = time.perf_counter()
    for index, scene in enumerate(scenes):
        caption = describe(scene, seed + index, world, full=True)
        candidates = generator.render(caption, n=best_of, seed=seed * 100_000 + index * 100)
        images = [candidate.image for candidate in candidates]
        scores = [s.cosine for s in scorer.score(images, caption)]
        single.append(np.asarray(images[0]))
        best.append(np.asarray(images[int(np.argmax(scores))]))
    seconds = (time.perf_counter() - started) / n
    return {
        "single_shot": judge_accuracy(single, scenes, world),
        f"best_of_{best_of}": judge_accuracy(best, scenes, world),
        "seconds_per_scene": seconds,
    }


def main() -> None:
    """CLI: print the bars as one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", type=Path, default=Path(__file__).parent / "models")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--best-of", type=int, default=16)
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument("--quick", action="store_true", help="48 scenes, best of 8")
    parser.add_argument("--only", default="scorer,generator")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    world = load_world()
    n, best_of = (48, 8) if args.quick else (args.n, args.best_of)
    result: dict[str, object] = {}
    if "scorer" in args.only:
        scorer = evaluate_scorer(args.models, n, args.seed, world)
        result["scorer_swap_rank"] = scorer["swap_rank"]
        result["scorer_pairwise"] = scorer["pairwise"]
        result["scorer_swap_rank_by_things"] = scorer["swap_rank_by_things"]
        result["scorer_beaten_by"] = scorer["beaten_by"]
    if "generator" in args.only:
        result.update(evaluate_generator(args.models, n, best_of, args.seed, world))
    print(json.dumps(result))


def evaluate_scorer(models: Path, n: int, seed: int, world: World) -> dict[str, object]:
    """How well the scorer reads ground-truth scenes.

    ``swap_rank``: the share of scenes whose full caption it ranks above 10 one-attribute swaps
    of it (the bar), also per number of things in the scene (``swap_rank_by_things``: share and
    scenes). ``beaten_by``: in the scenes it misses, how many swaps of each kind scored at least
    the true caption. ``pairwise``: per kind of swap, the share of scenes whose caption it ranks
    above that one swap, i.e. which attributes it sees.
    """
    from PIL import Image

    from imagineer.pocket.datasets import SWAP_KINDS, build_renders, describe, swap
    from imagineer.pocket.train_clip import swapped_captions_with_kinds
    from imagineer.scoring.clip_scorer import ClipScorer

    scorer = ClipScorer(str(models / "scorer"))
    images, scenes = build_renders(n, seed, world, p_single=0.5)
    features = scorer.embed_images([Image.fromarray(image) for image in images])
    rng, pair_rng = np.random.default_rng(seed), np.random.default_rng(seed + 1)
    hits = 0
    by_things: dict[int, list[bool]] = {}
    beaten_by = dict.fromkeys(SWAP_KINDS, 0)
    pairs: dict[str, list[bool]] = {kind: [] for kind in SWAP_KINDS}
    for feature, scene in zip(features, scenes, strict=True):
        caption_seed = int(rng.integers(2**31))
        texts, kinds = swapped_captions_with_kinds(scene, caption_seed, rng, world, 10)
        values = scorer.embed_texts(texts) @ feature
        hit = bool(values[0] > values[1:].max())
        hits += int(hit)
        by_things.setdefault(len(scene.objects), []).append(hit)
        if not hit:
            for kind, value in zip(kinds, values[1:], strict=True):
                beaten_by[kind] += int(value >= values[0])
        for kind in SWAP_KINDS:
            other = swap(scene, kind, pair_rng, world)
            text = describe(other, caption_seed, world, True) if other is not None else texts[0]
            if text != texts[0]:
                pair = scorer.embed_texts([texts[0], text]) @ feature
                pairs[kind].append(bool(pair[0] > pair[1]))
    return {
        "swap_rank": hits / n,
        "swap_rank_by_things": {
            count: {"share": round(float(np.mean(v)), 3), "scenes": len(v)}
            for count, v in sorted(by_things.items())
        },
        "beaten_by": {kind: count for kind, count in beaten_by.items() if count},
        "pairwise": {kind: round(float(np.mean(v)), 3) for kind, v in pairs.items() if v},
    }


if __name__ == "__main__":
    main()
