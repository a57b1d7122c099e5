"""Stage 2b: teach the generator's text encoder to carry every attribute of a caption.

A UNet can only follow what its text encoder tells apart. The pocket CLIP's text tower, frozen
when the generator starts, had learned to ignore the words its image tower could not yet see:
changing the shape word moved its states a fifth as much as changing the colour word, changing
the position word hardly at all, and the generator followed colour and lighting but took shape
and position from the noise seed. This stage fine-tunes that tower (text only, minutes on a
CPU) so a *cross-attention reader*, the same mechanism the UNet reads it with (learned queries
attending over all 77 token states, padding included), recovers the scene from the caption:
which shape has which colour, size and position, how many of each shape, the lighting, the
style and the defects. Attributes a caption leaves out cannot be recovered and only cost an
irreducible share of the loss; the reader is thrown away after training.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, Field

from imagineer.pocket.checkpoints import (
    EMA,
    Deadline,
    load_checkpoint,
    optimise,
    save_checkpoint,
    set_warmup_lr,
    step_rng,
)
from imagineer.pocket.world import AttributeKind, Scene, World

logger = logging.getLogger(__name__)


class TextStage(BaseModel):
    """Knobs of the text-encoder stage (``steps`` 0 skips it: the CLIP tower is used as is)."""

    steps: int = Field(0, ge=0)
    batch: int = Field(128, ge=1)
    lr: float = Field(1e-3, gt=0)
    warmup: int = Field(50, ge=0)
    ema_decay: float = Field(0.99, gt=0, lt=1)
    queries: int = Field(16, ge=1, description="Learned queries of the cross-attention reader.")
    p_full: float = Field(0.7, ge=0, le=1, description="Share of fully specified captions.")
    p_world_caption: float = Field(
        0.5, ge=0, le=1, description="Share of captions from captions.caption, not describe."
    )
    save_every: int = Field(100, ge=1)
    eval_every: int = Field(250, ge=1)


class SceneCode:
    """A scene as multi-hot target bits, grouped by what they test; order-free over objects.

    Groups: ``shape_colour`` (which shape has which colour: colour binding), ``shape_position``,
    ``shape_size``, ``shape_count`` (how many of each shape), ``lighting``, ``style``, ``defects``.
    """

    def __init__(self, world: World) -> None:
        self.shapes = world.names("shape")
        names = {
            "shape_colour": world.names("colour"),
            "shape_position": world.names("position"),
            "shape_size": world.names("size"),
            "shape_count": [str(n) for n in range(1, world.max_objects + 1)],
        }
        self.groups: dict[str, tuple[int, int]] = {}
        self._index: dict[str, dict[str, int]] = {}
        start = 0
        for group, values in names.items():
            self._index[group] = {v: i for i, v in enumerate(values)}
            width = len(self.shapes) * len(values)
            self.groups[group] = (start, start + width)
            start += width
        scene_wide: tuple[AttributeKind, ...] = ("lighting", "style", "defect")
        for group in scene_wide:
            values = world.names(group)
            self._index[group] = {v: i for i, v in enumerate(values)}
            self.groups[group] = (start, start + len(values))
            start += len(values)
        self.width = start

    def encode(self, scene: Scene) -> np.ndarray:
        """The scene's target bits."""
        bits = np.zeros(self.width, dtype=np.float32)
        counts: dict[str, int] = {}
        for obj in scene.objects:
            counts[obj.shape] = counts.get(obj.shape, 0) + 1
            for group, value in (
                ("shape_colour", obj.colour),
                ("shape_position", obj.position),
                ("shape_size", obj.size),
            ):
                bits[self._bound(group, obj.shape, value)] = 1
        for shape, count in counts.items():
            bits[self._bound("shape_count", shape, str(count))] = 1
        for group, value in (("lighting", scene.lighting), ("style", scene.style)):
            bits[self.groups[group][0] + self._index[group][value]] = 1
        for defect in scene.defects:
            bits[self.groups["defect"][0] + self._index["defect"][defect]] = 1
        return bits

    def _bound(self, group: str, shape: str, value: str) -> int:
        values = len(self._index[group])
        return self.groups[group][0] + self.shapes.index(shape) * values + self._index[group][value]


class Reader(torch.nn.Module):
    """Learned queries cross-attending over the token states, then a linear read-out."""

    def __init__(self, width: int, queries: int, outputs: int) -> None:
        super().__init__()
        self.queries = torch.nn.Parameter(torch.randn(queries, width) * width**-0.5)
        heads = max(1, width // 32)
        self.attention = torch.nn.MultiheadAttention(width, heads, batch_first=True)
        self.norm = torch.nn.LayerNorm(width)
        self.out = torch.nn.Linear(queries * width, outputs)

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        queries = self.queries.expand(states.shape[0], -1, -1)
        read, _ = self.attention(queries, states, states, need_weights=False)
        return self.out(self.norm(read).flatten(1))


def train_text_encoder(
    stage: TextStage,
    text: tuple[Any, Any],
    scenes: list[Scene],
    held_out: list[Scene],
    world: World,
    run_dir: Path,
    seed: int,
    deadline: Deadline,
) -> tuple[Any, bool]:
    """Fine-tune (or resume) the text encoder ``text[0]`` in place; checkpoints to ``text.pt``.

    Returns:
        The encoder holding its EMA weights, and whether ``stage.steps`` are done.
    """
    from imagineer.pocket.train_unet import batch_captions, encode_captions

    text_encoder, tokenizer = text
    code = SceneCode(world)
    torch.manual_seed(seed + 4)
    reader = Reader(text_encoder.config.hidden_size, stage.queries, code.width)
    text_encoder.requires_grad_(True)
    parts = torch.nn.ModuleList([text_encoder, reader])
    optimiser = torch.optim.AdamW(parts.parameters(), lr=stage.lr, weight_decay=0.01)
    ema = EMA(text_encoder, stage.ema_decay)
    path = run_dir / "text.pt"
    step = 0
    state = load_checkpoint(path)
    if state is not None:
        parts.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        ema.shadow, step = state["ema"], int(state["step"])
        logger.info("resumed the text encoder at step %d", step)
    while step < stage.steps and not deadline.passed():
        rng = step_rng(seed, step, stream=5)
        index = rng.choice(len(scenes), size=stage.batch, replace=False)
        batch = [scenes[i] for i in index]
        captions = batch_captions(
            batch, rng, world, p_full=stage.p_full, p_world_caption=stage.p_world_caption
        )
        target = torch.from_numpy(np.stack([code.encode(s) for s in batch]))
        set_warmup_lr(optimiser, stage.lr, stage.warmup, step)
        parts.train()
        logits = reader(encode_captions(text_encoder, tokenizer, captions, grad=True))
        loss = F.binary_cross_entropy_with_logits(logits, target)
        optimise(optimiser, parts, loss)
        ema.update(text_encoder, step)
        step += 1
        if step % 25 == 0:
            logger.info("text step %d loss %.5f", step, loss.item())
        if step % stage.eval_every == 0 or step == stage.steps:
            report = read_accuracy(parts, code, held_out, tokenizer, world, seed)
            logger.info("text step %d held-out read accuracy %s", step, report)
        if step % stage.save_every == 0 or step == stage.steps or deadline.passed():
            save_checkpoint(
                path,
                {
                    "model": parts.state_dict(),
                    "optimiser": optimiser.state_dict(),
                    "ema": ema.shadow,
                    "step": step,
                },
            )
    ema.copy_to(text_encoder)
    text_encoder.requires_grad_(False)
    return text_encoder.eval(), step >= stage.steps


@torch.inference_mode()
def read_accuracy(
    parts: torch.nn.ModuleList,
    code: SceneCode,
    scenes: list[Scene],
    tokenizer: Any,
    world: World,
    seed: int,
) -> dict[str, float]:
    """Per group, the share of fully captioned held-out scenes whose bits are all read right."""
    from imagineer.pocket.datasets import describe
    from imagineer.pocket.train_unet import encode_captions

    text_encoder, reader = parts
    parts.eval()
    captions = [describe(scene, seed + i, world, full=True) for i, scene in enumerate(scenes)]
    guess = reader(encode_captions(text_encoder, tokenizer, captions)) > 0
    truth = torch.from_numpy(np.stack([code.encode(s) for s in scenes])) > 0.5
    return {
        group: round(float((guess[:, a:b] == truth[:, a:b]).all(dim=1).float().mean()), 3)
        for group, (a, b) in code.groups.items()
    }
