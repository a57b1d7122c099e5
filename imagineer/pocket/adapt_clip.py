"""Stage 7: adapt the scorer to the pictures it will rank, the generator's.

The CLIP learns from exact renders, but best-of-N asks it to rank the generator's renders,
which are softer, with mushier shapes. Measured on the same PocketBench ideas
(``benchmarks/selection.py --references``): the bundled scorer tells right renders from wrong
ones with AUC 0.89 on exact renders and 0.64 on generated ones, so best-of-16 hardly beats a
single shot.

This stage builds a pool of generated-looking pictures with exact labels: training scenes, and
copies with one attribute swapped (same render seed), each passed through the generator's own
img2img with its full caption at a moderate strength, which keeps most of the content while
the pixels become the generator's. It then fine-tunes the finished CLIP on batches that mix
clean renders with pool pictures, the latter with both text-side and image-side hard
negatives (a caption must rank its picture above the swapped ones it rules out).

The pool is built in chunks saved as they finish, and the tuning checkpoints like every stage,
so both resume.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, Field, model_validator

from imagineer.pocket.checkpoints import (
    Deadline,
    optimise,
    save_checkpoint,
    set_warmup_lr,
    step_generator,
    step_rng,
)
from imagineer.pocket.datasets import LAYOUT_KINDS, describe, render_seed, swap
from imagineer.pocket.render import render_scene
from imagineer.pocket.train_clip import (
    CaptionBatch,
    ClipStage,
    caption_batch,
    contrastive_loss,
    pixels_to_clip,
    restore,
    swap_rank_accuracy,
    training_state,
)
from imagineer.pocket.world import Scene, World

logger = logging.getLogger(__name__)

POOL_STREAM, TUNE_STREAM = 7, 8


class AdaptStage(BaseModel):
    """Knobs of the scorer-adaptation stage (``steps`` 0 leaves it out)."""

    steps: int = Field(0, ge=0)
    scenes: int = Field(1500, ge=1, description="Training scenes passed through img2img.")
    swaps: int = Field(2, ge=1, description="Swapped copies of each, also passed through.")
    kinds: tuple[str, ...] = Field(
        LAYOUT_KINDS, min_length=1, description="Swap kinds the copies are drawn from."
    )
    strength: tuple[float, float] = Field(
        (0.4, 0.6), description="img2img strength range (one draw per chunk)."
    )
    chunk: int = Field(16, ge=1, description="Scenes per img2img call and per saved pool file.")
    batch: int = Field(64, ge=2)
    pool_share: float = Field(0.5, gt=0, le=1, description="Share of each batch from the pool.")
    lr: float = Field(1e-4, gt=0)
    warmup: int = Field(50, ge=0)
    image_weight: float = Field(1.0, ge=0, description="Weight of the image-side hard term.")
    save_every: int = Field(100, ge=1)
    eval_every: int = Field(250, ge=1)

    @model_validator(mode="after")
    def _strengths(self) -> AdaptStage:
        low, high = self.strength
        if not 0 < low <= high <= 1:
            raise ValueError(
                f"strength range must satisfy 0 < low <= high <= 1, got {self.strength}"
            )
        unknown = sorted(set(self.kinds) - set(LAYOUT_KINDS))
        if unknown:
            raise ValueError(f"unknown swap kinds {unknown}; choose from {', '.join(LAYOUT_KINDS)}")
        return self


class Pool:
    """The generated-looking pictures: ``images[i, 0]`` is training scene ``i`` through img2img,
    ``images[i, 1:]`` its swapped copies ``swapped[i]`` (a missing swap repeats the scene and is
    marked in ``valid``)."""

    def __init__(self, images: np.ndarray, swapped: list[list[Scene]], valid: np.ndarray) -> None:
        self.images, self.swapped, self.valid = images, swapped, valid


def build_pool(
    stage: AdaptStage,
    data: tuple[np.ndarray, list[Scene]],
    world: World,
    generator_dir: Path,
    pool_dir: Path,
    seed: int,
    deadline: Deadline,
) -> Pool | None:
    """Pass the first ``stage.scenes`` training scenes and their swaps through img2img, in
    chunks saved as they finish; None if the deadline stopped it first."""
    scenes = data[1]
    if stage.scenes > len(scenes):
        raise ValueError(f"adapt.scenes {stage.scenes} > {len(scenes)} training scenes")
    pool_dir.mkdir(parents=True, exist_ok=True)
    img2img: Any = None
    chunks = range(0, stage.scenes, stage.chunk)
    for number, start in enumerate(chunks):
        path = pool_dir / f"pool-{number:05d}.npz"
        if path.is_file():
            continue
        if deadline.passed():
            return None
        if img2img is None:
            img2img = img2img_pipeline(generator_dir)
        stop = min(start + stage.chunk, stage.scenes)
        rng = step_rng(seed, number, stream=POOL_STREAM)
        pictures, captions, swapped, valid = [], [], [], []
        for index in range(start, stop):
            changed = _swaps(scenes[index], stage.swaps, stage.kinds, rng, world)
            own = [scenes[index], *changed] + [scenes[index]] * (stage.swaps - len(changed))
            for scene in own:
                pictures.append(render_scene(scene, world, seed=render_seed(seed, index)))
                captions.append(describe(scene, int(rng.integers(2**31)), world, True))
            swapped.append([s.model_dump(mode="json") for s in changed])
            valid.append([True] * (1 + len(changed)) + [False] * (stage.swaps - len(changed)))
        low, high = stage.strength
        out = img2img(
            prompt=captions,
            image=pictures,
            strength=float(rng.uniform(low, high)),
            num_inference_steps=20,
            guidance_scale=4.0,
            generator=step_generator(seed, number, stream=POOL_STREAM),
            output_type="np",
        ).images
        pixels = (np.clip(out, 0, 1) * 255).round().astype(np.uint8)
        pixels = pixels.reshape(stop - start, 1 + stage.swaps, *pixels.shape[1:])
        temporary = path.with_suffix(".partial.npz")
        np.savez_compressed(
            temporary, images=pixels, swapped=json.dumps(swapped), valid=np.array(valid)
        )
        temporary.replace(path)
        logger.info("adapt pool: %d/%d scenes", stop, stage.scenes)
    return load_pool(pool_dir, len(chunks))


def load_pool(pool_dir: Path, chunks: int) -> Pool:
    """The pool's saved chunks, in order."""
    images, swapped, valid = [], [], []
    for number in range(chunks):
        with np.load(pool_dir / f"pool-{number:05d}.npz", allow_pickle=False) as stored:
            images.append(stored["images"])
            swapped += [
                [Scene.model_validate(s) for s in own] for own in json.loads(str(stored["swapped"]))
            ]
            valid.append(stored["valid"])
    return Pool(np.concatenate(images), swapped, np.concatenate(valid))


def _swaps(
    scene: Scene, n: int, kinds: tuple[str, ...], rng: np.random.Generator, world: World
) -> list[Scene]:
    """Up to ``n`` distinct one-attribute swaps of ``scene``, of different kinds."""
    changed: list[Scene] = []
    for kind in rng.permutation(list(kinds)):
        other = swap(scene, str(kind), rng, world)
        if other is not None and other not in changed:
            changed.append(other)
        if len(changed) == n:
            break
    return changed


def img2img_pipeline(generator_dir: Path | str) -> Any:
    """The exported generator, loaded as users load it, as a diffusers img2img pipeline."""
    from diffusers import StableDiffusionImg2ImgPipeline

    from imagineer.generators import DiffusersGenerator

    text2img = DiffusersGenerator(str(generator_dir)).pipeline
    pipe: Any = StableDiffusionImg2ImgPipeline(**text2img.components)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _pool_negatives(
    batch: CaptionBatch,
    pooled: np.ndarray,
    offset: int,
    pool: Pool,
    world: World,
    clip: ClipStage,
) -> tuple[np.ndarray, list[int]]:
    """The pool's swapped pictures that the captions rule out, with their owners.

    Pool scene ``pooled[k]`` has caption ``offset + k``; a swapped copy is a negative only if
    the same wording describes it differently, i.e. the caption mentions what the swap changed.
    """
    pictures, owners = [], []
    for slot, index in enumerate(pooled):
        owner = offset + slot
        for j, other in enumerate(pool.swapped[index]):
            said = batch.wordings[owner].describe(other, world, clip)
            if pool.valid[index, j + 1] and said != batch.positives[owner]:
                pictures.append(pool.images[index, j + 1])
                owners.append(owner)
    empty = np.empty((0, *pool.images.shape[2:]), dtype=np.uint8)
    return (np.stack(pictures) if pictures else empty), owners


def adapt_clip(
    model: Any,
    clip: ClipStage,
    stage: AdaptStage,
    pool: Pool,
    data: tuple[np.ndarray, list[Scene]],
    held_out: tuple[np.ndarray, list[Scene]],
    world: World,
    run_dir: Path,
    seed: int,
    deadline: Deadline,
) -> Any:
    """Fine-tune the finished CLIP ``model`` on clean and pool batches; the model when done."""
    import open_clip

    tokenizer = open_clip.get_tokenizer("ViT-B-32")
    optimiser = torch.optim.AdamW(model.parameters(), lr=stage.lr, weight_decay=clip.weight_decay)
    path = run_dir / "adapt.pt"
    step = restore(path, model, optimiser)
    images, scenes = data
    from_pool = max(1, round(stage.batch * stage.pool_share))
    while step < stage.steps and not deadline.passed():
        rng = step_rng(seed, step, stream=TUNE_STREAM)
        clean = rng.choice(len(scenes), size=stage.batch - from_pool, replace=False)
        pooled = rng.choice(len(pool.swapped), size=from_pool, replace=False)
        batch_scenes = [scenes[i] for i in clean] + [scenes[i] for i in pooled]
        batch = caption_batch(batch_scenes, rng, world, clip)
        negatives, image_owners = _pool_negatives(batch, pooled, len(clean), pool, world, clip)
        pixels = np.concatenate([images[clean], pool.images[pooled, 0], negatives])
        tokens = tokenizer(batch.positives + [t for own in batch.negatives for t in own])
        owners = [i for i, own in enumerate(batch.negatives) for _ in own]
        set_warmup_lr(
            optimiser, stage.lr, stage.warmup, step, steps=stage.steps, cooldown=stage.steps
        )
        model.train()
        loss = contrastive_loss(
            model,
            pixels_to_clip(pixels),
            tokens,
            owners,
            clip.hard_weight,
            image_owners=image_owners,
            image_weight=stage.image_weight,
        )
        optimise(optimiser, model, loss)
        step += 1
        if step % 25 == 0:
            logger.info("adapt step %d loss %.4f", step, loss.item())
        if step % stage.eval_every == 0 or step == stage.steps:
            model.eval()
            accuracy = swap_rank_accuracy(model, tokenizer, *held_out, world, seed)
            logger.info("adapt step %d swap-rank accuracy %.3f", step, accuracy)
        if step % stage.save_every == 0 or step == stage.steps or deadline.passed():
            save_checkpoint(path, training_state(model, optimiser, step))
    return model.eval() if step >= stage.steps else None
