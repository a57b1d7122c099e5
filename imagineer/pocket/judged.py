"""Stage 8: teach the scorer the generator's own mistakes, labelled by the judge.

Best-of-N asks the scorer to rank the generator's renders of one prompt. The wrong ones are
rarely one clean attribute away from the prompt: a star drawn halfway to a cross, three squares
where two were asked, two things on the wrong sides (``docs/pocket-training.md``, sessions 6-9).
Exact renders, swapped copies and img2img versions of them never show those mistakes, and a
scorer trained on them ranks generated renders barely above chance (AUC .66).

This stage shows it the mistakes themselves. It captions training scenes the way the CLIP's own
batches do, partially and in both of the world's captioners, renders every caption ``renders``
times with the exported generator exactly as best-of-N does (text-to-image, the generator's
defaults, one seed per render), and labels each render with the judge: a render is right for its
caption when the caption, in the same wording, describes the scene the judge reads in it word
for word (for some order of its objects), so an attribute the caption leaves out is free and one
it states must be there. The judge reads pixels by analysis, not by a learned model; its labels
stand where human preference labels stand behind PickScore or ImageReward. The prompts are
training scenes' captions, never PocketBench ideas.

The tuning then mixes clean batches (exact renders with swapped captions, as the CLIP learnt)
with pool captions, each paired with one of its right renders and holding its wrong renders as
image-side negatives: each caption must rank a right render above its own wrong ones.

With ``read_share``, part of each batch is pool renders captioned with what the judge reads in
them, whatever they were asked for, with that reading's swaps as hard negatives: every render is
right for something (measured in ``docs/pocket-training.md``, session 11).

The pool is built in chunks saved as they finish, and the tuning checkpoints like every stage,
so both resume.
"""

from __future__ import annotations

import itertools
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, Field, model_validator

from imagineer.errors import InvalidInput
from imagineer.pocket.analysis import Finding, analyze
from imagineer.pocket.checkpoints import (
    Deadline,
    optimise,
    save_checkpoint,
    set_warmup_lr,
    step_rng,
)
from imagineer.pocket.models import encode_text_prefix
from imagineer.pocket.train_clip import (
    ClipStage,
    Wording,
    caption_batch,
    contrastive_loss,
    pixels_to_clip,
    restore,
    swap_rank_accuracy,
    training_state,
)
from imagineer.pocket.world import Scene, SceneObject, World

logger = logging.getLogger(__name__)

POOL_STREAM, TUNE_STREAM = 9, 10


class JudgedStage(BaseModel):
    """Knobs of the judged-renders stage (``steps`` 0 leaves it out)."""

    steps: int = Field(0, ge=0)
    scenes: int = Field(600, ge=1, description="Training scenes captioned and rendered.")
    renders: int = Field(8, ge=2, description="Generator renders per caption (seeds differ).")
    chunk: int = Field(8, ge=1, description="Captions per generator call and per saved file.")
    batch: int = Field(64, ge=2)
    pool_share: float = Field(0.25, gt=0, lt=1, description="Share of each batch from the pool.")
    negatives: int = Field(3, ge=1, description="Wrong renders per pool caption and step.")
    held_out: float = Field(
        0.1, ge=0, lt=1, description="Share of pool captions (evenly spaced) kept out to measure."
    )
    p_world_caption: float = Field(
        0.5, ge=0, le=1, description="Share of pool captions from the world's captioner."
    )
    p_multi: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Share of pool scenes with two or three things (the first such training "
        "scenes, then the first single-thing ones); None: the first ``scenes`` scenes as drawn.",
    )
    p_sparse: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Share of pool captions worded sparsely (the CLIP stage's sparse_scale), "
        "short the way ideas are ('a star next to a circle').",
    )
    lr: float = Field(5e-5, gt=0)
    warmup: int = Field(50, ge=0)
    image_weight: float = Field(1.0, ge=0, description="Weight of the image-side ranking term.")
    read_share: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="Share of each batch made of pool renders captioned with what the judge "
        "reads in them, with the read scene's one-attribute swaps as hard negatives, like clean "
        "batches but in the generator's pixels and at the judge's own boundaries.",
    )
    save_every: int = Field(100, ge=1)
    eval_every: int = Field(250, ge=1)

    @model_validator(mode="after")
    def _clean_part_left(self) -> JudgedStage:
        pool = max(1, round(self.batch * self.pool_share))  # as the tuning takes it
        clean = self.batch - pool - round(self.batch * self.read_share)
        if clean < 1:
            raise ValueError(
                f"pool_share {self.pool_share} and read_share {self.read_share} leave no clean "
                f"scene in a batch of {self.batch}"
            )
        return self


class JudgedPool:
    """Captions and their generated renders: ``images[i, r]`` is render ``r`` of caption
    ``captions[i]``, which the judge reads as right for it when ``right[i, r]``."""

    def __init__(self, captions: list[str], images: np.ndarray, right: np.ndarray) -> None:
        self.captions, self.images, self.right = captions, images, right

    def __len__(self) -> int:
        return len(self.captions)

    def usable(self, share: float = 0.0, held_out: bool = False) -> np.ndarray:
        """Indices of captions with both right and wrong renders (the ones that teach), outside
        an evenly spaced ``share`` of all captions, or (``held_out``) inside it. Evenly spaced,
        not the last ones: a pool ordered by kind (``p_multi``) ends with one kind only."""
        mixed = self.right.any(axis=1) & ~self.right.all(axis=1)
        index = np.arange(len(self))
        kept_out = np.floor((index + 1) * share) > np.floor(index * share)
        return np.flatnonzero(mixed & (kept_out if held_out else ~kept_out))


def read_scene(finding: Finding, order: tuple[int, ...]) -> Scene:
    """The scene the judge reads, its objects in ``order`` (not validated against the world)."""
    objects = tuple(
        SceneObject.model_construct(
            shape=finding.objects[i].shape,
            colour=finding.objects[i].colour,
            size=finding.objects[i].size,
            position=finding.objects[i].position,
        )
        for i in order
    )
    return Scene.model_construct(
        objects=objects,
        lighting=finding.lighting,
        style=finding.style,
        defects=tuple(finding.defects),
    )


def fits(finding: Finding, scene: Scene, wording: Wording, world: World, clip: ClipStage) -> bool:
    """Whether the caption ``wording`` gives ``scene`` is true of what the judge read.

    True when, for some order of the objects read, the same wording describes the read scene
    with the same text: every attribute the caption states is read as stated, and the number
    of things is right. A read scene the world could not hold (objects overlapping) fits
    nothing.
    """
    if len(finding.objects) != len(scene.objects):
        return False
    text = wording.describe(scene, world, clip)
    for order in itertools.permutations(range(len(finding.objects))):
        try:
            if wording.describe(read_scene(finding, order), world, clip) == text:
                return True
        except InvalidInput:
            return False
    return False


def pool_wording(rng: np.random.Generator, stage: JudgedStage) -> Wording:
    """A partial caption's wording: users leave things out, and so do these prompts."""
    seed, worded = int(rng.integers(2**31)), bool(rng.random() < stage.p_world_caption)
    # (no draw when p_sparse is 0, so pools without sparse captions replay exactly)
    sparse = stage.p_sparse > 0 and bool(rng.random() < stage.p_sparse)
    return Wording(seed, full=False, worded=worded, sparse=sparse)


def pool_scenes(stage: JudgedStage, scenes: list[Scene]) -> list[Scene]:
    """The training scenes the pool captions, in order (see ``JudgedStage.p_multi``).

    Raises:
        ValueError: The training set holds too few scenes of a kind.
    """
    if stage.p_multi is None:
        if stage.scenes > len(scenes):
            raise ValueError(f"judged.scenes {stage.scenes} > {len(scenes)} training scenes")
        return scenes[: stage.scenes]
    multi = round(stage.p_multi * stage.scenes)
    several = [s for s in scenes if len(s.objects) > 1][:multi]
    single = [s for s in scenes if len(s.objects) == 1][: stage.scenes - multi]
    if len(several) + len(single) < stage.scenes:
        raise ValueError(
            f"the training set holds too few scenes for judged.scenes {stage.scenes} at "
            f"p_multi {stage.p_multi}"
        )
    return several + single


def build_judged_pool(
    stage: JudgedStage,
    scenes: list[Scene],
    world: World,
    clip: ClipStage,
    generator_dir: Path,
    pool_dir: Path,
    seed: int,
    deadline: Deadline,
    part: tuple[int, int] | None = None,
) -> JudgedPool | None:
    """Caption the pool's training scenes (``pool_scenes``), render each caption, judge every
    render; in chunks saved as they finish. None if the deadline stopped it first.

    With ``part`` ``(k, n)``, build only the chunks numbered ``k`` modulo ``n`` and return None:
    ``n`` processes side by side build the pool faster than one on all cores (``lanes.py``).
    Every chunk draws from its own seed, so the pool is the same however it was split.
    """
    scenes = pool_scenes(stage, scenes)
    pool_dir.mkdir(parents=True, exist_ok=True)
    generator: Any = None
    chunks = range(0, stage.scenes, stage.chunk)
    for number, start in enumerate(chunks):
        path = pool_dir / f"judged-{number:05d}.npz"
        if path.is_file() or (part is not None and number % part[1] != part[0]):
            continue
        if deadline.passed():
            return None
        if generator is None:
            from imagineer.generators import DiffusersGenerator

            generator = DiffusersGenerator(str(generator_dir))
        stop = min(start + stage.chunk, stage.scenes)
        rng = step_rng(seed, number, stream=POOL_STREAM)
        wordings = [pool_wording(rng, stage) for _ in range(start, stop)]
        own = scenes[start:stop]
        captions = [w.describe(s, world, clip) for w, s in zip(wordings, own, strict=True)]
        candidates = generator.render(captions, n=stage.renders, seed=int(rng.integers(2**31)))
        pixels = np.stack([np.asarray(c.image.convert("RGB")) for c in candidates])
        pixels = pixels.reshape(stop - start, stage.renders, *pixels.shape[1:])
        right = np.array(
            [
                [fits(analyze(image, world), scene, w, world, clip) for image in renders]
                for renders, w, scene in zip(pixels, wordings, own, strict=True)
            ]
        )
        temporary = path.with_suffix(".partial.npz")
        np.savez_compressed(temporary, images=pixels, right=right, captions=json.dumps(captions))
        temporary.replace(path)
        logger.info(
            "judged pool: %d/%d captions, %.0f%% of this chunk's renders right",
            stop,
            stage.scenes,
            100 * right.mean(),
        )
    if part is not None:
        return None
    return load_judged_pool(pool_dir, len(chunks))


def load_judged_pool(pool_dir: Path, chunks: int) -> JudgedPool:
    """The pool's saved chunks, in order."""
    captions: list[str] = []
    images, right = [], []
    for number in range(chunks):
        with np.load(pool_dir / f"judged-{number:05d}.npz", allow_pickle=False) as stored:
            images.append(stored["images"])
            right.append(stored["right"])
            captions += json.loads(str(stored["captions"]))
    return JudgedPool(captions, np.concatenate(images), np.concatenate(right))


def _pool_picks(
    pool: JudgedPool, picked: np.ndarray, negatives: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """For each picked caption: one right render, and up to ``negatives`` wrong ones with the
    caption's slot among the picks."""
    positives, wrong, owners = [], [], []
    for slot, index in enumerate(picked):
        good = np.flatnonzero(pool.right[index])
        bad = np.flatnonzero(~pool.right[index])
        positives.append(pool.images[index, rng.choice(good)])
        for r in rng.choice(bad, size=min(negatives, len(bad)), replace=False):
            wrong.append(pool.images[index, r])
            owners.append(slot)
    return np.stack(positives), np.stack(wrong), owners


def read_renders(
    pool: JudgedPool, captions: np.ndarray, world: World, cache: Path | None = None
) -> tuple[np.ndarray, list[Scene]]:
    """The renders of ``captions`` whose reading by the judge is a scene the world holds, and
    those scenes: every render is right for what it shows, whatever it was asked for.

    The readings of the whole pool are kept in ``cache`` (a JSON list, one scene or null per
    render) so a resumed run does not judge them again.
    """
    from imagineer.pocket.world import check_scene

    renders = pool.images.shape[1]
    stored = json.loads(cache.read_text()) if cache is not None and cache.is_file() else None
    if stored is None or len(stored) != len(pool) * renders:
        stored = []
        for image in pool.images.reshape(-1, *pool.images.shape[2:]):
            finding = analyze(image, world)
            try:
                read = read_scene(finding, tuple(range(len(finding.objects))))
                scene = check_scene(Scene.model_validate(read.model_dump()), world)
                stored.append(scene.model_dump(mode="json"))
            except (InvalidInput, ValueError):  # nothing found, or overlapping, or too many
                stored.append(None)
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            temporary = cache.with_suffix(".partial")
            temporary.write_text(json.dumps(stored))
            temporary.replace(cache)
    kept = [(i, r) for i in captions for r in range(renders) if stored[i * renders + r]]
    images = np.stack([pool.images[i, r] for i, r in kept]) if kept else pool.images[:0, 0]
    scenes = [Scene.model_validate(stored[i * renders + r]) for i, r in kept]
    return images, scenes


def held_out_auc(model: Any, tokenizer: Any, pool: JudgedPool, captions: np.ndarray) -> float:
    """Mean over ``captions`` of how often a right render outscores a wrong one (by cosine)."""
    import torch.nn.functional as F

    aucs = []
    with torch.inference_mode():
        for index in captions:
            images = F.normalize(model.encode_image(pixels_to_clip(pool.images[index])), dim=-1)
            text = F.normalize(encode_text_prefix(model, tokenizer([pool.captions[index]])), dim=-1)
            value = pairwise_auc((images @ text[0]).numpy(), pool.right[index])
            if value is not None:
                aucs.append(value)
    return float(np.mean(aucs)) if aucs else float("nan")


def pairwise_auc(scores: np.ndarray, right: np.ndarray) -> float | None:
    """P(score of a right render > score of a wrong one), ties half; None without both kinds."""
    good, bad = scores[right], scores[~right]
    if len(good) == 0 or len(bad) == 0:
        return None
    wins = (good[:, None] > bad[None, :]).sum() + 0.5 * (good[:, None] == bad[None, :]).sum()
    return float(wins / (len(good) * len(bad)))


def tune_on_judged(
    model: Any,
    clip: ClipStage,
    stage: JudgedStage,
    pool: JudgedPool,
    data: tuple[np.ndarray, list[Scene]],
    held_out: tuple[np.ndarray, list[Scene]],
    world: World,
    run_dir: Path,
    seed: int,
    deadline: Deadline,
) -> Any:
    """Fine-tune the finished CLIP ``model`` on clean and judged batches; the model when done,
    None if the deadline stopped it first (at a checkpoint)."""
    import open_clip

    usable, measured = pool.usable(stage.held_out), pool.usable(stage.held_out, held_out=True)
    if len(usable) == 0:
        raise ValueError("the judged pool has no caption with both right and wrong renders")
    tokenizer = open_clip.get_tokenizer("ViT-B-32")
    optimiser = torch.optim.AdamW(model.parameters(), lr=stage.lr, weight_decay=clip.weight_decay)
    path = run_dir / "judged.pt"
    step = restore(path, model, optimiser)
    images, scenes = data
    from_pool = min(len(usable), max(1, round(stage.batch * stage.pool_share)))
    from_reads = round(stage.batch * stage.read_share)
    if from_reads:
        kept_out = set(measured.tolist())
        learn_from = np.array([i for i in range(len(pool)) if i not in kept_out])
        read_images, read_scenes = read_renders(pool, learn_from, world, run_dir / "reads.json")
        logger.info("judged tuning: %d renders captioned as the judge reads them", len(read_scenes))
        if len(read_scenes) < from_reads:
            raise ValueError("the judged pool has too few renders the judge reads as a scene")
    logger.info(
        "judged tuning: %d captions with right and wrong renders to learn from, %d to measure",
        len(usable),
        len(measured),
    )
    if step == 0 and len(measured):
        model.eval()
        auc = held_out_auc(model, tokenizer, pool, measured)
        logger.info("judged step 0 held-out AUC %.3f", auc)
    while step < stage.steps and not deadline.passed():
        rng = step_rng(seed, step, stream=TUNE_STREAM)
        size = stage.batch - from_pool - from_reads
        clean = rng.choice(len(scenes), size=size, replace=False)
        picked = rng.choice(usable, size=from_pool, replace=False)
        # (no draw without reads, so recipes without them replay exactly)
        reads = np.arange(0)
        if from_reads:
            reads = rng.choice(len(read_scenes), size=from_reads, replace=False)
        shown = [scenes[i] for i in clean] + [read_scenes[i] for i in reads]
        batch = caption_batch(shown, rng, world, clip)
        positives, wrong, owners = _pool_picks(pool, picked, stage.negatives, rng)
        texts = batch.positives + [pool.captions[i] for i in picked]
        tokens = tokenizer(texts + [t for own in batch.negatives for t in own])
        text_owners = [i for i, own in enumerate(batch.negatives) for _ in own]
        seen = [images[clean], read_images[reads]] if from_reads else [images[clean]]
        pixels = np.concatenate([*seen, positives, wrong])
        set_warmup_lr(
            optimiser, stage.lr, stage.warmup, step, steps=stage.steps, cooldown=stage.steps
        )
        model.train()
        loss = contrastive_loss(
            model,
            pixels_to_clip(pixels),
            tokens,
            text_owners,
            clip.hard_weight,
            image_owners=[len(shown) + slot for slot in owners],
            image_weight=stage.image_weight,
        )
        optimise(optimiser, model, loss)
        step += 1
        if step % 25 == 0:
            logger.info("judged step %d loss %.4f", step, loss.item())
        if step % stage.eval_every == 0 or step == stage.steps:
            model.eval()
            accuracy = swap_rank_accuracy(model, tokenizer, *held_out, world, seed)
            auc = held_out_auc(model, tokenizer, pool, measured)
            logger.info("judged step %d swap-rank %.3f, held-out AUC %.3f", step, accuracy, auc)
        if step % stage.save_every == 0 or step == stage.steps or deadline.passed():
            save_checkpoint(path, training_state(model, optimiser, step))
    return model.eval() if step >= stage.steps else None
