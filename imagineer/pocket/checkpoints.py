"""Resumable training: atomic checkpoints, per-step seeds and a wall-clock deadline.

A pocket training session lasts at most a few hours and its background jobs die with it, so
every stage saves its full state (weights, optimiser, EMA, step) atomically every few minutes,
and derives each step's randomness from ``(seed, step)`` alone: re-running the same command
continues exactly where the last checkpoint stopped, with the same batches it would have drawn.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

logger = logging.getLogger(__name__)


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` with ``torch.save`` to a temporary file, then rename it over ``path``.

    The rename is atomic, so a job killed mid-save leaves the previous checkpoint intact.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    torch.save(state, temporary)
    temporary.replace(path)
    logger.info("saved checkpoint %s at step %s", path, state.get("step"))


def load_checkpoint(path: Path) -> dict[str, Any] | None:
    """The state saved at ``path``, or None when there is none yet."""
    if not path.is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=False)


def step_rng(seed: int, step: int, stream: int = 0) -> np.random.Generator:
    """The numpy generator of one training step (independent of how the run was split)."""
    return np.random.default_rng([seed, stream, step])


def step_generator(seed: int, step: int, stream: int = 0) -> torch.Generator:
    """The torch generator of one training step (noise, timesteps)."""
    return torch.Generator().manual_seed(int(step_rng(seed, step, stream).integers(2**62)))


class Deadline:
    """A wall-clock limit for a training process, so it stops at a checkpoint, not mid-step.

    Args:
        minutes: Stop after this many minutes from now (None: never).
    """

    def __init__(self, minutes: float | None) -> None:
        self.end = None if minutes is None else time.monotonic() + 60 * minutes
        self.signalled: int | None = None

    def passed(self) -> bool:
        """Whether the limit has been reached (or a stop was asked for by a signal)."""
        if self.signalled is not None:
            return True
        return self.end is not None and time.monotonic() >= self.end

    def stop_on_signals(self) -> None:
        """Make SIGTERM and the first Ctrl-C (SIGINT) end the run like the deadline does: at
        the next step, with a checkpoint, instead of losing the steps since the last one.

        A second Ctrl-C interrupts at once. The training lanes (``lanes.py``) use SIGTERM to
        stop a lane and resume it on more threads. Call from the main thread.
        """

        def stop(number: int, frame: object) -> None:
            self.signalled = number
            signal.signal(signal.SIGINT, signal.default_int_handler)
            logger.warning("signal %d: stopping at the next step, with a checkpoint", number)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)


class EMA:
    """An exponential moving average of a model's parameters (the weights that get exported).

    The decay warms up as ``(1 + step) / (10 + step)`` so early averages do not remember the
    random initialisation for thousands of steps.
    """

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.shadow = [p.detach().clone() for p in model.parameters()]

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int) -> None:
        """Move the average towards the model's current parameters."""
        decay = min(self.decay, (1 + step) / (10 + step))
        params = [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(self.shadow, params, 1 - decay)

    @torch.no_grad()
    def copy_to(self, model: torch.nn.Module) -> None:
        """Overwrite the model's parameters with the averages."""
        for target, average in zip(model.parameters(), self.shadow, strict=True):
            target.copy_(average)


def set_warmup_lr(
    optimiser: torch.optim.Optimizer,
    lr: float,
    warmup: int,
    step: int,
    *,
    steps: int | None = None,
    cooldown: int = 0,
) -> None:
    """Linear learning-rate warm-up over ``warmup`` steps, then ``lr`` (every stage uses it);
    with ``cooldown``, a linear decay to zero over the last ``cooldown`` of ``steps``."""
    factor = min(1.0, (step + 1) / max(1, warmup))
    if cooldown > 0 and steps is not None:
        factor *= min(1.0, max(0, steps - step) / cooldown)
    for group in optimiser.param_groups:
        group["lr"] = lr * factor


def optimise(
    optimiser: torch.optim.Optimizer,
    module: torch.nn.Module,
    loss: torch.Tensor,
    also: Sequence[tuple[torch.optim.Optimizer, torch.nn.Module]] = (),
) -> None:
    """One update: backward, gradients clipped to norm 1 (stabilises the tiny models), step.

    ``also`` lists further (optimiser, module) pairs updated from the same backward pass, each
    clipped on its own (the UNet stage's jointly trained text encoder).
    """
    pairs = [(optimiser, module), *also]
    for each, _ in pairs:
        each.zero_grad(set_to_none=True)
    loss.backward()
    for _, part in pairs:
        torch.nn.utils.clip_grad_norm_(part.parameters(), 1.0)
    for each, _ in pairs:
        each.step()
