"""Stage 1: the pocket CLIP, trained contrastively with attribute-swapped hard negatives.

In-batch negatives alone teach a CLIP the easy attributes (a night sky, a style); they rarely put
two captions that differ only in a position or a colour binding side by side. Each image here
also meets ``negatives`` captions of its own scene with one attribute swapped, in the same
softmax, so the model must read every attribute to rank its caption first. The same text tower
later conditions the generator, which is why this matters twice.

Ranking captions for one image is not what best-of-N asks, though: it ranks images for one
caption. An optional last phase (``ClipStage.tune``) adds the mirror image of the hard
negatives: each caption also meets renders of its own scene with one *mentioned* attribute
changed (same render seed, so every texture and the grain are shared and only the change
differs), and must rank its true render above them.
"""

from __future__ import annotations

import logging
from itertools import pairwise
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, Field, model_validator

from imagineer.pocket.captions import caption
from imagineer.pocket.checkpoints import (
    Deadline,
    load_checkpoint,
    optimise,
    save_checkpoint,
    set_warmup_lr,
    step_rng,
)
from imagineer.pocket.datasets import SWAP_KINDS, describe, render_seed, swap
from imagineer.pocket.models import ClipSpec, build_clip, encode_text_prefix
from imagineer.pocket.render import render_scene
from imagineer.pocket.world import Scene, World

logger = logging.getLogger(__name__)

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)  # open_clip's OPENAI_DATASET_MEAN
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class RankTune(BaseModel):
    """The CLIP stage's last phase: rank renders for one caption, as best-of-N asks of a scorer.

    It runs after the stage's ``steps`` with its own learning rate (warm-up, then a linear
    decay to zero over the phase), keeping every loss of the main phase and adding the
    image-side hard negatives. ``steps`` 0 leaves it out.
    """

    steps: int = Field(0, ge=0)
    lr: float = Field(1e-4, gt=0)
    warmup: int = Field(50, ge=0)
    image_negatives: int = Field(
        2,
        ge=1,
        description="Renders per caption of its scene with one mentioned attribute swapped.",
    )
    image_weight: float = Field(1.0, ge=0, description="Weight of the image-side hard term.")


class ClipStage(BaseModel):
    """Knobs of the CLIP stage."""

    steps: int = Field(1500, ge=1)
    batch: int = Field(64, ge=2)
    negatives: int = Field(3, ge=0, description="Attribute-swapped captions per image.")
    lr: float = Field(5e-4, gt=0)
    warmup: int = Field(100, ge=0)
    weight_decay: float = Field(0.1, ge=0)
    p_full: float = Field(0.6, ge=0, le=1, description="Share of fully specified captions.")
    p_world_caption: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Share of captions from captions.caption (the UNet's mix), not describe.",
    )
    p_sparse: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Share of partial captions that say little, as short user ideas do.",
    )
    sparse_scale: float = Field(
        0.3, gt=0, le=1, description="Sparse captions mention each attribute this much as often."
    )
    hard_weight: float = Field(1.0, ge=0, description="Weight of the own-negatives-only term.")
    hard_from_step: int = Field(0, ge=0, description="First step with the own-negatives term.")
    text_encoder_step: int | None = Field(
        None, ge=1, description="Step whose text tower conditions the generator (None: last)."
    )
    cooldown: int = Field(
        0, ge=0, description="Decay the lr linearly to zero over the last this many steps."
    )
    restarts: tuple[int, ...] = Field(
        (),
        description="Steps where the lr schedule starts over (warm restarts): the lr cools down "
        "to zero before each, over ``cooldown`` steps, and is back at ``lr`` on it.",
    )
    save_every: int = Field(150, ge=1)
    eval_every: int = Field(250, ge=1)
    tune: RankTune = RankTune()

    @model_validator(mode="after")
    def _restarts_inside(self) -> ClipStage:
        bounds = (0, *self.restarts, self.steps)
        if any(a >= b for a, b in pairwise(bounds)):
            raise ValueError(
                f"restarts must increase strictly inside (0, steps={self.steps}), "
                f"got {list(self.restarts)}"
            )
        return self

    @property
    def total_steps(self) -> int:
        """The main phase and the ranking phase."""
        return self.steps + self.tune.steps

    def cycle_end(self, step: int) -> int:
        """Where the main phase's lr cycle holding ``step`` ends: the next restart, else
        ``steps``. A run resumed with more steps (``--clip-steps``) after finishing its first
        ``steps`` replays as one run with a restart there."""
        return next((r for r in self.restarts if step < r < self.steps), self.steps)


class Wording(NamedTuple):
    """How one caption was drawn; the same wording describes a changed scene alike."""

    seed: int
    full: bool
    worded: bool
    sparse: bool

    def describe(self, scene: Scene, world: World, stage: ClipStage) -> str:
        """The caption of ``scene`` in this wording."""
        words = _sparse(world, stage.sparse_scale) if self.sparse else world
        return _describe(scene, self.seed, words, self.full, self.worded)


class CaptionBatch(NamedTuple):
    """Captions of a batch of scenes, with each scene's hard negatives.

    ``negatives[i][j]`` is the caption of ``swapped[i][j]``, scene ``i`` with one attribute
    changed; it differs from ``positives[i]``, so the change is one the caption mentions and
    ``positives[i]`` is false of ``swapped[i][j]``. ``wordings[i]`` drew ``positives[i]``.
    """

    positives: list[str]
    negatives: list[list[str]]
    swapped: list[list[Scene]]
    wordings: list[Wording]


def pixels_to_clip(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) renders -> normalised float (N, 3, H, W), as open_clip preprocesses."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def caption_batch(
    scenes: list[Scene], rng: np.random.Generator, world: World, stage: ClipStage
) -> CaptionBatch:
    """Each scene's caption and its hard negatives (same seed, one attribute swapped).

    A share ``stage.p_world_caption`` of captions comes from the world's captioner, the wording
    users and PocketBench write ("a star next to a heart", "3 stars", "a star left of a heart"),
    the rest from ``describe``; a scene's negatives are always worded by the same captioner and
    seed as its caption. A share ``stage.p_sparse`` of partial captions mentions each attribute
    ``stage.sparse_scale`` times as often as the world's rates ("a circle next to a star"):
    short ideas leave most of a picture unsaid, and a scorer that has only seen captions naming
    nearly everything ranks images by what the idea does not say.
    """
    batch = CaptionBatch([], [], [], [])
    for scene in scenes:
        seed, full = int(rng.integers(2**31)), bool(rng.random() < stage.p_full)
        worded = bool(rng.random() < stage.p_world_caption)
        # (no draw when p_sparse is 0, so recipes without it replay their captions exactly)
        sparse = not full and stage.p_sparse > 0 and bool(rng.random() < stage.p_sparse)
        wording = Wording(seed, full, worded, sparse)
        text = wording.describe(scene, world, stage)
        own: list[str] = []
        changed: list[Scene] = []
        for kind in rng.permutation(SWAP_KINDS):
            if len(own) == stage.negatives:
                break
            other = swap(scene, str(kind), rng, world)
            if other is None:
                continue
            other_text = wording.describe(other, world, stage)
            if other_text != text and other_text not in own:
                own.append(other_text)
                changed.append(other)
        batch.positives.append(text)
        batch.negatives.append(own)
        batch.swapped.append(changed)
        batch.wordings.append(wording)
    return batch


def _sparse(world: World, scale: float) -> World:
    """The world with every attribute's mention rate in partial captions times ``scale``."""
    rates = ("p_size", "p_colour", "p_position", "p_lighting", "p_style", "p_defect", "p_quality")
    params = world.captions
    update = {name: getattr(params, name) * scale for name in rates}
    return world.model_copy(update={"captions": params.model_copy(update=update)})


def _describe(scene: Scene, seed: int, world: World, full: bool, worded: bool) -> str:
    """``captions.caption`` when ``worded``, else ``describe``; both fixed by ``seed``."""
    if worded:
        return caption(scene, np.random.default_rng(seed), world, full=full)
    return describe(scene, seed, world, full)


def contrastive_loss(
    model: Any,
    images: torch.Tensor,
    tokens: torch.Tensor,
    owners: list[int],
    hard_weight: float,
    image_owners: list[int] | None = None,
    image_weight: float = 0.0,
) -> Any:
    """Symmetric CLIP loss plus a term that ranks each image's caption above its own swaps.

    The first ``batch`` texts are the captions; the others are hard negatives, the one at
    ``batch + j`` belonging to image ``owners[j]``. In the batch-wide softmax a few swapped
    captions are outweighed by hundreds of easy in-batch ones (measured: colour and lighting
    near 100% pairwise after 450 steps, shape, position and style near chance), so the second
    term scores each image against its caption and its own negatives only.

    With ``image_owners``, ``images`` holds ``batch`` true renders followed by image-side hard
    negatives, the one at ``batch + j`` a swapped render for caption ``image_owners[j]``, and a
    third term (weight ``image_weight``) ranks each caption's render above its own swapped ones.
    """
    batch = tokens.shape[0] - len(owners)
    features = F.normalize(model.encode_image(images), dim=-1)
    image = features[:batch]
    text = F.normalize(encode_text_prefix(model, tokens), dim=-1)
    scale = model.logit_scale.exp().clamp(max=100)
    targets = torch.arange(batch)
    per_image = F.cross_entropy(scale * image @ text.T, targets)
    per_text = F.cross_entropy(scale * text[:batch] @ image.T, targets)
    loss = (per_image + per_text) / 2
    if hard_weight > 0 and owners:
        loss = loss + hard_weight * _own_negatives_loss(image, text, owners, scale)
    if image_weight > 0 and image_owners:
        loss = loss + image_weight * _own_negatives_loss(
            text[:batch], features, image_owners, scale
        )
    return loss


def _own_negatives_loss(
    anchor: torch.Tensor, candidates: torch.Tensor, owners: list[int], scale: torch.Tensor
) -> torch.Tensor:
    """Cross-entropy of [match, own negatives...] per anchor (missing slots masked out).

    ``candidates`` holds each anchor's match (rows ``0..batch-1``) followed by negatives, the
    one at ``batch + j`` belonging to anchor ``owners[j]``: captions for image anchors, or
    renders for caption anchors.
    """
    batch = anchor.shape[0]
    owner = torch.tensor(owners)
    slot = torch.zeros(len(owners), dtype=torch.long)
    counts = [0] * batch
    for j, i in enumerate(owners):
        counts[i] += 1
        slot[j] = counts[i]
    logits = torch.full((batch, max(counts) + 1), float("-inf"))
    logits[:, 0] = scale * (anchor * candidates[:batch]).sum(-1)
    logits = logits.index_put((owner, slot), scale * (anchor[owner] * candidates[batch:]).sum(-1))
    return F.cross_entropy(logits, torch.zeros(batch, dtype=torch.long))


def swap_rank_accuracy(
    model: Any, tokenizer: Any, images: np.ndarray, scenes: list[Scene], world: World, seed: int
) -> float:
    """Share of scenes whose full caption outranks all of 10 attribute-swapped ones (issue bar)."""
    rng = np.random.default_rng(seed)
    hits = 0
    with torch.inference_mode():
        features = F.normalize(model.encode_image(pixels_to_clip(images)), dim=-1)
        for index, scene in enumerate(scenes):
            texts = swapped_captions(scene, int(rng.integers(2**31)), rng, world, 10)
            text = F.normalize(encode_text_prefix(model, tokenizer(texts)), dim=-1)
            scores = text @ features[index]
            hits += int(scores[0] > scores[1:].max())
    return hits / len(scenes)


def swapped_captions(
    scene: Scene, seed: int, rng: np.random.Generator, world: World, n: int
) -> list[str]:
    """The full caption of ``scene`` followed by ``n`` distinct one-attribute swaps of it."""
    return swapped_captions_with_kinds(scene, seed, rng, world, n)[0]


def swapped_captions_with_kinds(
    scene: Scene, seed: int, rng: np.random.Generator, world: World, n: int
) -> tuple[list[str], list[str]]:
    """``swapped_captions`` and, for each swap after the first text, the kind it changed."""
    text = describe(scene, seed, world, True)
    texts, kinds = [text], []
    for attempt in range(20 * n):
        kind = SWAP_KINDS[attempt % len(SWAP_KINDS)]
        other = swap(scene, kind, rng, world)
        candidate = describe(other, seed, world, True) if other is not None else text
        if candidate not in texts:
            texts.append(candidate)
            kinds.append(kind)
        if len(texts) == n + 1:
            break
    return texts, kinds


def train_clip(
    spec: ClipSpec,
    stage: ClipStage,
    data: tuple[np.ndarray, list[Scene]],
    held_out: tuple[np.ndarray, list[Scene]],
    world: World,
    run_dir: Path,
    seed: int,
    deadline: Deadline,
) -> Any:
    """Train (or resume) the CLIP stage; returns the model when ``stage.steps`` are done."""
    import open_clip

    tokenizer = open_clip.get_tokenizer("ViT-B-32")  # the plain CLIP BPE, 77 tokens
    torch.manual_seed(seed)
    model = build_clip(spec)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    other = [p for n, p in model.named_parameters() if p.ndim < 2 or "embedding" in n]
    optimiser = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": stage.weight_decay},
            {"params": other, "weight_decay": 0},
        ],
        lr=stage.lr,
    )
    path = run_dir / "clip.pt"
    step = restore(path, model, optimiser)
    images, scenes = data
    end = stage.total_steps
    while step < end and not deadline.passed():
        rng = step_rng(seed, step, stream=1)
        index = rng.choice(len(scenes), size=stage.batch, replace=False)
        batch = caption_batch([scenes[i] for i in index], rng, world, stage)
        tokens = tokenizer(batch.positives + [t for own in batch.negatives for t in own])
        owners = [i for i, own in enumerate(batch.negatives) for _ in own]
        hard = stage.hard_weight if step >= stage.hard_from_step else 0.0
        pixels, image_owners = images[index], None
        if step < stage.steps:
            set_warmup_lr(
                optimiser,
                stage.lr,
                stage.warmup,
                step,
                steps=stage.cycle_end(step),
                cooldown=stage.cooldown,
            )
        else:  # 1b. the ranking phase
            tune = stage.tune
            set_warmup_lr(
                optimiser,
                tune.lr,
                tune.warmup,
                step - stage.steps,
                steps=tune.steps,
                cooldown=tune.steps,
            )
            swapped, image_owners = swapped_renders(batch, index, seed, world, tune.image_negatives)
            pixels = np.concatenate([pixels, swapped])
        model.train()
        loss = contrastive_loss(
            model,
            pixels_to_clip(pixels),
            tokens,
            owners,
            hard,
            image_owners=image_owners,
            image_weight=stage.tune.image_weight,
        )
        optimise(optimiser, model, loss)
        step += 1
        if step % 25 == 0:
            logger.info("clip step %d loss %.4f", step, loss.item())
        if step % stage.eval_every == 0 or step == end:
            model.eval()
            accuracy = swap_rank_accuracy(model, tokenizer, *held_out, world, seed)
            logger.info("clip step %d swap-rank accuracy %.3f", step, accuracy)
        if step % stage.save_every == 0 or step == end or deadline.passed():
            save_checkpoint(path, training_state(model, optimiser, step))
    return model.eval() if step >= end else None


def swapped_renders(
    batch: CaptionBatch, index: np.ndarray, seed: int, world: World, per_caption: int
) -> tuple[np.ndarray, list[int]]:
    """Renders of the first ``per_caption`` swapped scenes of each caption, with their owners.

    Each is rendered with its training scene's own render seed, so it differs from the true
    render only by the swapped attribute.
    """
    pictures, owners = [], []
    for i, changed in enumerate(batch.swapped):
        for scene in changed[:per_caption]:
            render = render_scene(scene, world, seed=render_seed(seed, int(index[i])))
            pictures.append(np.asarray(render))
            owners.append(i)
    size = world.canvas_px
    empty = np.empty((0, size, size, 3), dtype=np.uint8)
    return (np.stack(pictures) if pictures else empty), owners


def training_state(model: Any, optimiser: Any, step: int) -> dict[str, Any]:
    """What a checkpoint holds: the weights, the optimiser and the step."""
    return {"model": model.state_dict(), "optimiser": optimiser.state_dict(), "step": step}


def restore(path: Path, model: Any, optimiser: Any) -> int:
    """Load a checkpoint into ``model`` and ``optimiser``; the step it was saved at (0: none)."""
    state = load_checkpoint(path)
    if state is None:
        return 0
    model.load_state_dict(state["model"])
    if state["optimiser"] is None:  # a reused export (``pipeline.reuse_scorer``): weights only
        logger.warning("%s has no optimiser state (a reused scorer); starting it afresh", path)
    else:
        optimiser.load_state_dict(state["optimiser"])
    logger.info("resumed %s at step %d", path, state["step"])
    return int(state["step"])
