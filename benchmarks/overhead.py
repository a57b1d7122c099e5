"""imagineer's overhead over bare diffusers + open_clip, and batched+cached vs naive scoring.

Both sides run on the same loaded components, interleaved in one process, so machine noise hits
them alike. Ratios compare the CPU time of the fastest run of each side (CPU time, because on a
shared 2-core machine other processes stretch wall time far more than the work itself; the
fastest run, as timeit does, because interference only ever adds). Wall-time medians are printed
beside them.

    .venv/bin/python benchmarks/overhead.py            # a table
    .venv/bin/python benchmarks/overhead.py --json     # ... and one JSON object as the last line

Goals: overhead_ratio <= 1.05 (imagineer render+score time / bare time), scoring_speedup >= 3
(naive per-image scoring time / imagineer's batched, cached scoring time).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from imagineer.generators import DiffusersConfig, DiffusersGenerator
from imagineer.pocket.paths import GENERATOR_DIR, SCORER_DIR
from imagineer.scoring import ClipScorer

PROMPT = "a small red star on the left, night, pixel art"
NEGATIVE = "blurry, grainy"
CONCEPTS = ["red", "star", "left", "night", "pixel art"]


def models(scratch: Path) -> tuple[str, str]:
    """The bundled pocket models, or tiny untrained ones of the same formats if none are bundled."""
    if (GENERATOR_DIR / "model_index.json").is_file() and (
        SCORER_DIR / "open_clip_config.json"
    ).is_file():
        return str(GENERATOR_DIR), str(SCORER_DIR)
    from imagineer.pocket.tiny import build_tiny_clip, build_tiny_pipeline

    return (
        str(build_tiny_pipeline(scratch / "generator", image_size=64)),
        str(build_tiny_clip(scratch / "scorer")),
    )


def timings(fn: Callable[[], object], repeats: int) -> list[tuple[float, float]]:
    """``(cpu_seconds, wall_seconds)`` of ``repeats`` calls of ``fn``."""
    times = []
    for _ in range(repeats):
        cpu, wall = time.process_time(), time.perf_counter()
        fn()
        times.append((time.process_time() - cpu, time.perf_counter() - wall))
    return times


def fastest_cpu(times: list[tuple[float, float]]) -> float:
    return min(cpu for cpu, _ in times)


def median_wall(times: list[tuple[float, float]]) -> float:
    return statistics.median(wall for _, wall in times)


def bare_render_and_score(pipe, clip, seeds: list[int], steps: int, guidance: float) -> None:  # type: ignore[no-untyped-def]
    """What a user would write by hand: one pipeline call, one open_clip pass, no records."""
    generators = [torch.Generator("cpu").manual_seed(s) for s in seeds]
    with torch.inference_mode():
        images = pipe(
            prompt=[PROMPT] * len(seeds),
            negative_prompt=[NEGATIVE] * len(seeds),
            num_inference_steps=steps,
            guidance_scale=guidance,
            generator=generators,
        ).images
        pixels = torch.stack([clip.preprocess(im) for im in images])
        image_emb = torch.nn.functional.normalize(clip.model.encode_image(pixels), dim=-1)
        text_emb = torch.nn.functional.normalize(
            clip.model.encode_text(clip.tokenizer([PROMPT, *CONCEPTS])), dim=-1
        )
        (image_emb @ text_emb.T).tolist()


def naive_scoring(clip, images) -> None:  # type: ignore[no-untyped-def]
    """Per-image scoring with no batching and no text cache, as many scripts do it."""
    with torch.inference_mode():
        for image in images:
            image_emb = clip.model.encode_image(clip.preprocess(image)[None])
            for text in (PROMPT, *CONCEPTS):
                text_emb = clip.model.encode_text(clip.tokenizer([text]))
                torch.nn.functional.cosine_similarity(image_emb, text_emb).item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--candidates", type=int, default=8, help="K images per render")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per side")
    parser.add_argument(
        "--threads", type=int, default=None,
        help="torch threads (1 keeps a busy machine's OpenMP spin-waits out of the figures)",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as scratch:
        model, scorer_dir = models(Path(scratch))
        generator = DiffusersGenerator(DiffusersConfig(model=model, steps=args.steps))
        scorer = ClipScorer(scorer_dir)
        pipe, clip = generator.pipeline, scorer.loaded
        guidance = float(generator.default("guidance"))
        seeds = list(range(args.candidates))

        def ours() -> None:
            candidates = generator.render(PROMPT, NEGATIVE, seeds=seeds, guidance=guidance)
            scorer.score([c.image for c in candidates], PROMPT, CONCEPTS)

        def bare() -> None:
            bare_render_and_score(pipe, clip, seeds, args.steps, guidance)

        ours(), bare()  # warm up both (allocator, caches, lazy imports)
        ours_times, bare_times = [], []
        for _ in range(args.repeats):  # interleaved, so drift in machine load hits both sides
            ours_times += timings(ours, 1)
            bare_times += timings(bare, 1)
        images = [c.image for c in generator.render(PROMPT, seeds=seeds * 2)]
        scorer.score(images, PROMPT, CONCEPTS)  # warm the text cache, as any second round is
        cached_times = timings(lambda: scorer.score(images, PROMPT, CONCEPTS), args.repeats)
        naive_times = timings(lambda: naive_scoring(clip, images), args.repeats)

    result = {
        "model": model,
        "scorer": scorer_dir,
        "candidates": args.candidates,
        "threads": torch.get_num_threads(),
        "steps": args.steps,
        "imagineer_cpu_seconds": fastest_cpu(ours_times),
        "bare_cpu_seconds": fastest_cpu(bare_times),
        "imagineer_wall_seconds": median_wall(ours_times),
        "bare_wall_seconds": median_wall(bare_times),
        "overhead_ratio": fastest_cpu(ours_times) / fastest_cpu(bare_times),
        "overhead_ratio_wall_median": median_wall(ours_times) / median_wall(bare_times),
        "scoring_images": len(images),
        "scoring_concepts": len(CONCEPTS),
        "naive_scoring_cpu_seconds": fastest_cpu(naive_times),
        "batched_cached_scoring_cpu_seconds": fastest_cpu(cached_times),
        "scoring_speedup": fastest_cpu(naive_times) / fastest_cpu(cached_times),
        "scoring_speedup_wall_median": median_wall(naive_times) / median_wall(cached_times),
    }
    print(
        f"render+score {args.candidates} candidates, {args.steps} steps, {args.repeats} runs each"
    )
    print(
        f"  CPU s: imagineer {result['imagineer_cpu_seconds']:.3f}, "
        f"bare {result['bare_cpu_seconds']:.3f}; wall s (median): "
        f"{result['imagineer_wall_seconds']:.3f} vs {result['bare_wall_seconds']:.3f}"
    )
    print(
        f"  overhead ratio {result['overhead_ratio']:.3f} (CPU; wall medians "
        f"{result['overhead_ratio_wall_median']:.3f})   goal <= 1.05"
    )
    print(f"scoring {len(images)} images x {1 + len(CONCEPTS)} texts")
    print(
        f"  CPU s: naive {result['naive_scoring_cpu_seconds']:.4f}, batched+cached "
        f"{result['batched_cached_scoring_cpu_seconds']:.4f}"
    )
    print(
        f"  speedup {result['scoring_speedup']:.1f}x (CPU; wall medians "
        f"{result['scoring_speedup_wall_median']:.1f}x)   goal >= 3x"
    )
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
