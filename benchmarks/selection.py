"""How well does a scorer pick among renders? Scorers side by side on the same PocketBench renders.

Best-of-N is only as good as the scorer's ranking of images for one short idea. This renders N
images per idea once (the seeds ``pocketbench.py`` uses, so its best-of-N is reproduced), judges
every render, and then, for each scorer given, reports per task and overall:

- ``best``: the all-attributes accuracy of the render the scorer ranks first (best-of-N);
- ``auc``: over ideas with both right and wrong renders, how often a right render outscores a
  wrong one (0.5 is a scorer that cannot tell them apart);
- ``single`` (the first render, PocketBench's single shot), ``mean`` (all N renders: the same
  quantity with less noise) and ``oracle`` (any render right) bound what selection can do.

``--contrast-weight W`` also ranks by the agent's objective, ``cosine + W * contrast`` (the
softmax over the idea and its foils, the idea with one stated detail changed), to show what
that selector alone is worth on the same renders.

``--failures`` lists, per task, the checks the judge fails in the first scorer's wrong picks and
in the other wrong renders: what a scorer would have to tell apart.

``--shape-margin T`` splits each task's right renders by how sure the judge is of the shapes
it reads (the gap between the best shape template's overlap and the runner-up's, at least ``T``
or below it) and gives the first scorer's AUC for each part, beside the same margins on exact
renders. ``--shift`` reports how often a one-pixel shift of a render changes the judge's verdict.
Both show where "right" is a near-tie no scorer can rank by.

``--guidance G`` renders with another guidance scale than the generator's default, to see how
the sampler's setting moves single renders, best-of-N and the ranking.

``--bench FILE`` measures on other ideas (``make_pocketbench --seed S``, less any idea
PocketBench holds word for word), so scorers need not be chosen on PocketBench itself.

Renders and verdicts are cached (``--cache``), so comparing scorers costs seconds after the
first run.

``--references`` adds the same AUC on ground-truth renders instead of generated ones: for each
idea, scenes drawn to satisfy it alternate with one-attribute swaps that break it (rendered
exactly, so the labels are exact). ``--img2img S`` first passes those references through the
generator's img2img at strength ``S`` with each scene's full caption, so they look generated
while (mostly) keeping their content; the share the judge still reads as labelled is printed.
A scorer that ranks references well but generated renders poorly is reading the renderer's
pictures, not the generator's.

    .venv/bin/python benchmarks/selection.py --per-task 10 \
        --scorer imagineer/pocket/models/scorer --scorer runs/pocket7/models/scorer --json
    .venv/bin/python benchmarks/selection.py --per-task 10 --references --img2img 0.5
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from imagineer.agent.loop import sub_seed
from imagineer.generators import DiffusersGenerator
from imagineer.pocket.adapt_clip import img2img_pipeline
from imagineer.pocket.analysis import analyze
from imagineer.pocket.bench import BenchItem, load_pocketbench, per_task
from imagineer.pocket.datasets import SWAP_KINDS, describe, swap
from imagineer.pocket.judge import (
    Check,
    finding_from_scene,
    judge,
    judge_finding,
    sample_scene_for,
)
from imagineer.pocket.judged import pairwise_auc as auc
from imagineer.pocket.paths import WORLD_FILE, pocket_generator_dir, pocket_scorer_dir
from imagineer.pocket.render import render_scene
from imagineer.pocket.world import World, load_world, sample_scene
from imagineer.prompting.foils import foils_for
from imagineer.prompting.vocabulary import vocabulary_from_world
from imagineer.scoring.clip_scorer import ClipScorer


def renders(
    items: list[BenchItem],
    model: str,
    budget: int,
    seed: int,
    cache: Path,
    other: bool = False,
    guidance: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(ideas, budget, H, W, 3) uint8 renders and (ideas, budget) judge verdicts, cached; the
    cache of ``other`` ideas (``--bench``) is keyed by their text too, since benches share ids,
    and a local model by its manifest's hash, since retraining keeps the path.
    ``guidance`` overrides the generator's default guidance scale (None: its default)."""
    key: dict[str, Any] = {"ids": [i.id for i in items], "model": model, "budget": budget}
    key["seed"] = seed
    manifest = Path(model) / "manifest.json"
    if manifest.is_file():  # a local pocket model: its content, not just its path
        key["manifest_sha256"] = hashlib.sha256(manifest.read_bytes()).hexdigest()
    if other:
        key["ideas"] = [i.idea for i in items]
    if guidance is not None:
        key["guidance"] = guidance
    if cache.exists():
        stored = np.load(cache, allow_pickle=False)
        if json.loads(str(stored["key"])) == key:
            return stored["images"], stored["right"]
    generator = DiffusersGenerator(model)
    images, right = [], []
    for index, item in enumerate(items, start=1):
        candidates = generator.render(
            item.idea, n=budget, seed=sub_seed(seed, "pocketbench", item.id), guidance=guidance
        )
        images.append(np.stack([np.asarray(c.image.convert("RGB")) for c in candidates]))
        right.append([judge(c.image, item.requirement).all_correct for c in candidates])
        print(f"[{index}/{len(items)}] {item.id} {item.idea!r}: {sum(right[-1])}/{budget} right")
    result = np.stack(images), np.array(right, dtype=bool)
    cache.parent.mkdir(parents=True, exist_ok=True)
    partial = cache.with_suffix(".partial.npz")
    np.savez_compressed(partial, key=json.dumps(key), images=result[0], right=result[1])
    partial.replace(cache)
    return result


def references(
    item: BenchItem, n: int, seed: int, world: World
) -> tuple[list[Image.Image], list[str], np.ndarray]:
    """``n`` ground-truth renders for an idea, alternately right and wrong, with full captions.

    Right scenes are drawn to satisfy the idea; each wrong one is a right scene with one
    attribute swapped so that it no longer does (the hard case for a scorer).
    """
    rng = np.random.default_rng(sub_seed(seed, "references", item.id))
    pictures: list[Image.Image] = []
    captions: list[str] = []
    right: list[bool] = []
    while len(pictures) < n:
        scene = sample_scene_for(item.requirement, rng, world)
        wanted = len(pictures) % 2 == 0
        if not wanted:
            other = swap(scene, str(rng.choice(SWAP_KINDS)), rng, world)
            if other is None:
                continue
            if judge_finding(finding_from_scene(other, world), item.requirement, world).all_correct:
                continue
            scene = other
        pictures.append(render_scene(scene, world, seed=int(rng.integers(2**31))))
        captions.append(describe(scene, int(rng.integers(2**31)), world, True))
        right.append(wanted)
    return pictures, captions, np.array(right)


def reference_aucs(
    scorers: dict[str, ClipScorer],
    items: list[BenchItem],
    seed: int,
    model: str,
    strength: float | None,
) -> dict[str, Any]:
    """Per scorer and task: mean AUC on reference renders (through img2img if ``strength``)."""
    world = load_world()
    aucs: dict[str, dict[str, list[float]]] = {name: defaultdict(list) for name in scorers}
    agree: list[float] = []
    img2img = img2img_pipeline(model) if strength is not None else None
    for index, item in enumerate(items):
        pictures, captions, right = references(item, 8, seed, world)
        if img2img is not None:
            pictures = img2img(
                prompt=captions,
                image=pictures,
                strength=strength,
                num_inference_steps=20,
                guidance_scale=4.0,
                generator=_torch_generator(sub_seed(seed, "img2img", item.id)),
            ).images
            agree += [
                judge(p, item.requirement).all_correct == r
                for p, r in zip(pictures, right, strict=True)
            ]
        for name, scorer in scorers.items():
            cosines = np.array([s.cosine for s in scorer.score(pictures, item.idea)])
            value = auc(cosines, right)
            if value is not None:
                aucs[name][item.task].append(value)
                aucs[name]["overall"].append(value)
        print(f"references [{index + 1}/{len(items)}] {item.id}", flush=True)
    return {
        "img2img_strength": strength,
        "judge_agrees_with_labels": float(np.mean(agree)) if agree else None,
        "auc": {name: {t: float(np.mean(v)) for t, v in by.items()} for name, by in aucs.items()},
    }


def _torch_generator(seed: int) -> Any:
    import torch

    return torch.Generator().manual_seed(seed)


def evaluate(
    scorer: ClipScorer,
    items: list[BenchItem],
    images: np.ndarray,
    right: np.ndarray,
    contrast_weight: float = 0.0,
) -> dict[str, dict[str, float | None]]:
    """Per task (and ``overall``): best-of-N accuracy and mean AUC of ``scorer``'s ranking,
    by cosine, plus ``contrast_weight`` times the contrast against the idea's foils."""
    best: dict[str, list[bool]] = defaultdict(list)
    aucs: dict[str, list[float]] = defaultdict(list)
    vocabulary = vocabulary_from_world(WORLD_FILE) if contrast_weight else None
    for item, stack, verdicts in zip(items, images, right, strict=True):
        pictures = [Image.fromarray(image) for image in stack]
        foils = foils_for(item.idea, vocabulary) if vocabulary is not None else []
        scores = scorer.score(pictures, item.idea, foils=foils)
        cosines = np.array([s.cosine + contrast_weight * (s.contrast or 0.0) for s in scores])
        for task in (item.task, "overall"):
            best[task].append(bool(verdicts[int(cosines.argmax())]))
            value = auc(cosines, verdicts)
            if value is not None:
                aucs[task].append(value)
    return {
        task: {
            "best": 100.0 * float(np.mean(hits)),
            "auc": float(np.mean(aucs[task])) if aucs[task] else None,
        }
        for task, hits in best.items()
    }


def failures(
    scorer: ClipScorer, items: list[BenchItem], images: np.ndarray, right: np.ndarray
) -> dict[str, dict[str, dict[str, int]]]:
    """Per task: which checks the judge fails in ``scorer``'s wrong picks, and in the other
    wrong renders (what the scorer would have to tell apart). A check counts once per render;
    ``count E->F`` says what was asked and found."""
    tally: dict[str, dict[str, Counter[str]]] = defaultdict(
        lambda: {"wrong_picks": Counter(), "other_wrong": Counter()}
    )
    for item, stack, verdicts in zip(items, images, right, strict=True):
        pictures = [Image.fromarray(image) for image in stack]
        best = int(np.argmax([s.cosine for s in scorer.score(pictures, item.idea)]))
        for index in np.flatnonzero(~verdicts):
            kind = "wrong_picks" if index == best else "other_wrong"
            failed = judge(pictures[index], item.requirement).failed()
            tally[item.task][kind].update({_failure_label(c) for c in failed})
    return {
        task: {k: dict(v.most_common()) for k, v in kinds.items()} for task, kinds in tally.items()
    }


def shape_margin(image: np.ndarray, world: World) -> float:
    """How sure the judge is of the shapes it reads: over the things it finds, the smallest gap
    between the best shape template's overlap (IoU) and the runner-up's; 0 with nothing found."""
    ranked = [sorted(o.shape_scores.values(), reverse=True) for o in analyze(image, world).objects]
    return min((best - second for best, second, *_ in ranked), default=0.0)


def margins(
    scorer: ClipScorer,
    items: list[BenchItem],
    images: np.ndarray,
    right: np.ndarray,
    threshold: float,
    seed: int,
) -> dict[str, Any]:
    """Per task: the first scorer's AUC with right renders split by the judge's shape margin
    (``confident``: at least ``threshold``; ``near_tie``: below it), how many right renders each
    holds, and the median margin of right renders; then the same margins on exact renders of
    training-like scenes by number of things, where shapes are drawn crisply."""
    world = load_world()
    rows: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    overall: list[list[float]] = []  # per idea: one render, best-of-N, oracle (right and sure)
    for item, stack, verdicts in zip(items, images, right, strict=True):
        scores = scorer.score([Image.fromarray(image) for image in stack], item.idea)
        cosines = np.array([s.cosine for s in scores])
        gap = np.array([shape_margin(image, world) for image in stack])
        row = rows[item.task]
        row["right_margins"] += gap[verdicts].tolist()
        sure = verdicts & (gap >= threshold)  # right, and the judge sure of every shape
        overall.append([float(sure.mean()), float(sure[cosines.argmax()]), float(sure.any())])
        for name, kept in (("confident", gap >= threshold), ("near_tie", gap < threshold)):
            value = auc(cosines[~verdicts | kept], verdicts[~verdicts | kept])
            if value is not None:
                row[name].append(value)
            row[f"{name}_right"].append(float((verdicts & kept).sum()))
    sure = np.mean(np.array(overall, dtype=float), axis=0) * 100
    generated = {
        task: {
            "auc_confident": float(np.mean(row["confident"])) if row["confident"] else None,
            "auc_near_tie": float(np.mean(row["near_tie"])) if row["near_tie"] else None,
            "right_confident": int(sum(row["confident_right"])),
            "right_near_tie": int(sum(row["near_tie_right"])),
            "median_right_margin": (
                float(np.median(row["right_margins"])) if row["right_margins"] else None
            ),
        }
        for task, row in rows.items()
    }
    exact: dict[int, list[float]] = defaultdict(list)
    for index in range(300):
        rng = np.random.default_rng(sub_seed(seed, "margins", str(index)))
        scene = sample_scene(rng, world)
        image = np.asarray(render_scene(scene, world, seed=index))
        exact[len(scene.objects)].append(shape_margin(image, world))
    references = {
        things: {
            "median_margin": float(np.median(gaps)),
            "below_threshold": float(np.mean(np.array(gaps) < threshold)),
        }
        for things, gaps in sorted(exact.items())
    }
    return {
        "threshold": threshold,
        "generated": generated,
        "exact_by_things": references,
        "confident_only": dict(zip(("mean_single", "best", "oracle"), sure.tolist(), strict=True)),
    }


def shift_flips(
    items: list[BenchItem], images: np.ndarray, right: np.ndarray
) -> dict[str, dict[str, float]]:
    """Per task: how often the judge's verdict changes when a render moves by one pixel (right,
    then down; the edge row or column repeated), for right renders and for wrong ones. A picture
    does not change its content by a pixel; a verdict that does is a near-tie, which no scorer
    can rank by."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for item, stack, verdicts in zip(items, images, right, strict=True):
        for image, verdict in zip(stack, verdicts, strict=True):
            kind = "right" if verdict else "wrong"
            for shift in (((0, 0), (1, 0)), ((1, 0), (0, 0))):
                padded = np.pad(image, (*shift, (0, 0)), mode="edge")
                moved = Image.fromarray(padded[: image.shape[0], : image.shape[1]])
                counts[item.task][kind] += 1
                counts[item.task][f"{kind}_flipped"] += judge(
                    moved, item.requirement
                ).all_correct != bool(verdict)
    return {
        task: {
            kind: 100.0 * tally[f"{kind}_flipped"] / tally[kind]
            for kind in ("right", "wrong")
            if tally[kind]
        }
        for task, tally in counts.items()
    }


def _cell(value: float | None, width: int, digits: int) -> str:
    return f"{value:{width}.{digits}f}" if value is not None else " " * (width - 1) + "-"


def _failure_label(check: Check) -> str:
    name = re.sub(r"^object\d+\.", "", re.sub(r"^relation\d+", "relation", check.attribute))
    return f"count {check.expected}->{check.found}" if name == "count" else name


def bounds(items: list[BenchItem], right: np.ndarray) -> dict[str, dict[str, float]]:
    """Per task (and ``overall``): single-shot (the first render), the mean over all N renders
    (the same quantity, less noisy) and oracle accuracies in percent."""
    rows: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    for item, verdicts in zip(items, right, strict=True):
        for task in (item.task, "overall"):
            rows[task].append((float(verdicts[0]), float(verdicts.mean()), float(verdicts.any())))
    return {
        task: dict(
            zip(("single", "mean", "oracle"), (100.0 * np.mean(v, axis=0)).tolist(), strict=True)
        )
        for task, v in rows.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget", type=int, default=16, help="renders per idea (N)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="the representative quick subset")
    parser.add_argument("--per-task", type=int, default=None, help="first K ideas of each task")
    parser.add_argument("--model", default=None, help="generator (pocket default)")
    parser.add_argument(
        "--scorer", action="append", default=None, help="scorer to compare (repeatable)"
    )
    parser.add_argument("--cache", type=Path, default=Path("runs/selection-cache.npz"))
    parser.add_argument(
        "--contrast-weight", type=float, default=None, help="also rank by cosine + W * contrast"
    )
    parser.add_argument(
        "--references", action="store_true", help="also AUC on ground-truth renders"
    )
    parser.add_argument(
        "--img2img", type=float, default=None, help="references through img2img at strength S"
    )
    parser.add_argument(
        "--failures", action="store_true", help="what the judge fails in the first scorer's picks"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    parser.add_argument(
        "--shape-margin",
        type=float,
        default=None,
        metavar="T",
        help="the first scorer's AUC with right renders split by the judge's shape margin "
        "(at least T or below it), and the margins on exact renders",
    )
    parser.add_argument(
        "--shift",
        action="store_true",
        help="how often a one-pixel shift changes the judge's verdict, per task",
    )
    parser.add_argument(
        "--bench",
        type=Path,
        default=None,
        help="validation ideas: a bench file from make_pocketbench --seed S (ideas PocketBench "
        "holds word for word are dropped), so scorers are not chosen on PocketBench itself",
    )
    parser.add_argument(
        "--guidance",
        type=float,
        default=None,
        help="render with this classifier-free guidance scale (default: the generator's)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    items = load_pocketbench(quick=args.quick)
    if args.bench is not None:
        # validation ideas: another seed's bench, less any idea PocketBench holds word for word
        held = {item.idea for item in items}
        items = [
            item.model_copy(update={"id": f"val-{item.id}"})
            for item in load_pocketbench(args.bench, quick=args.quick)
            if item.idea not in held
        ]
    if args.per_task is not None:
        items = per_task(items, args.per_task)
    model = args.model or str(pocket_generator_dir())
    images, right = renders(
        items, model, args.budget, args.seed, args.cache, args.bench is not None, args.guidance
    )
    table: dict[str, Any] = {"bounds": bounds(items, right), "scorers": {}}
    scorers = {name: ClipScorer(name) for name in args.scorer or [str(pocket_scorer_dir())]}
    for name, scorer in scorers.items():
        table["scorers"][name] = evaluate(scorer, items, images, right)
        if args.contrast_weight:
            label = f"{name} + {args.contrast_weight:g} * contrast"
            table["scorers"][label] = evaluate(scorer, items, images, right, args.contrast_weight)
    if args.failures:
        table["failures"] = failures(next(iter(scorers.values())), items, images, right)
    if args.shape_margin is not None:
        first = next(iter(scorers.values()))
        table["margins"] = margins(first, items, images, right, args.shape_margin, args.seed)
    if args.shift:
        table["shift_flips"] = shift_flips(items, images, right)
    if args.references or args.img2img is not None:
        table["references"] = reference_aucs(scorers, items, args.seed, model, args.img2img)

    tasks = list(table["bounds"])
    print(
        f"{'task':<16}{'single':>8}{'mean':>8}{'oracle':>8}"
        + "".join(f"{'best':>8}{'auc':>6}" for _ in table["scorers"])
    )
    for task in tasks:
        row = table["bounds"][task]
        line = f"{task:<16}{row['single']:7.1f}%{row['mean']:7.1f}%{row['oracle']:7.1f}%"
        for result in table["scorers"].values():
            value = result[task]["auc"]
            line += f"{result[task]['best']:7.1f}%" + (
                f"{value:6.2f}" if value is not None else "     -"
            )
        print(line)
    if "references" in table:
        kind = "img2img'd references" if args.img2img is not None else "references"
        print(f"AUC on {kind}:")
        for task in tasks:
            values = [table["references"]["auc"][name].get(task) for name in scorers]
            print(
                f"{task:<16}" + "".join(f"{v:6.2f}" if v is not None else "     -" for v in values)
            )
        if args.img2img is not None:
            agreed = table["references"]["judge_agrees_with_labels"]
            print(f"judge agrees with the reference labels after img2img: {100 * agreed:.1f}%")
    if "failures" in table:
        print("failed checks, first scorer's wrong picks | the other wrong renders:")
        for task, kinds in table["failures"].items():
            picks = ", ".join(f"{k} {v}" for k, v in kinds["wrong_picks"].items())
            others = ", ".join(f"{k} {v}" for k, v in list(kinds["other_wrong"].items())[:5])
            print(f"{task:<16}{picks or '-'} | {others or '-'}")
    if "margins" in table:
        found = table["margins"]
        print(
            f"first scorer's AUC, right renders split by the judge's shape margin "
            f"(T = {found['threshold']:g}):"
        )
        print(f"{'task':<16}{'confident':>10}{'right':>7}{'near tie':>10}{'right':>7}{'median':>8}")
        for task, row in found["generated"].items():
            print(
                f"{task:<16}{_cell(row['auc_confident'], 10, 2)}{row['right_confident']:7d}"
                f"{_cell(row['auc_near_tie'], 10, 2)}{row['right_near_tie']:7d}"
                f"{_cell(row['median_right_margin'], 8, 3)}"
            )
        only = found["confident_only"]
        print(
            "right and confident only, overall: one render (mean of N) "
            f"{only['mean_single']:.1f}%, best-of-N {only['best']:.1f}%, "
            f"oracle {only['oracle']:.1f}%"
        )
        for things, row in found["exact_by_things"].items():
            print(
                f"exact renders, {things} thing(s): median margin {row['median_margin']:.3f}, "
                f"{100 * row['below_threshold']:.0f}% below T"
            )
    if "shift_flips" in table:
        print("verdicts changed by a one-pixel shift (right renders | wrong renders):")
        for task, flipped in table["shift_flips"].items():
            moved = (_cell(flipped.get(kind), 6, 1) for kind in ("right", "wrong"))
            print(f"{task:<16}" + "% |".join(moved) + "%")
    for index, name in enumerate(table["scorers"], start=1):
        print(f"scorer {index}: {name}")
    if args.json:
        print(json.dumps({"budget": args.budget, "seed": args.seed, "ideas": len(items), **table}))


if __name__ == "__main__":
    main()
