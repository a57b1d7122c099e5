"""Stage 3: the pocket UNet, a ``UNet2DConditionModel`` trained as Stable Diffusion's was.

ε-prediction on SD's scaled-linear DDPM betas (so every SD sampler in diffusers applies), a frozen
text encoder (the pocket CLIP's text tower, converted), 10% empty captions for classifier-free
guidance, min-SNR loss weighting, AdamW and an EMA of the weights. Latents are the VAE's
posterior means of a fixed render set, encoded once: encoding every batch would waste a quarter
of each step on identical work.
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
    step_generator,
    step_rng,
)
from imagineer.pocket.datasets import describe
from imagineer.pocket.models import UnetSpec, build_unet
from imagineer.pocket.train_vae import pixels_to_vae
from imagineer.pocket.world import Scene, World

logger = logging.getLogger(__name__)

BETA_START, BETA_END, TRAIN_TIMESTEPS = 0.00085, 0.012, 1000  # SD 1.x / 2.x


class UnetStage(BaseModel):
    """Knobs of the UNet stage."""

    steps: int = Field(3000, ge=1)
    batch: int = Field(64, ge=1)
    lr: float = Field(1e-3, gt=0)
    warmup: int = Field(200, ge=0)
    ema_decay: float = Field(0.998, gt=0, lt=1)
    p_drop: float = Field(0.1, ge=0, le=1, description="Empty captions, for CFG.")
    p_full: float = Field(0.7, ge=0, le=1, description="Share of fully specified captions.")
    p_world_caption: float = Field(
        0.5, ge=0, le=1, description="Share of captions from captions.caption, not describe."
    )
    snr_gamma: float = Field(5.0, gt=0, description="Min-SNR-gamma loss weighting.")
    text_encoder_lr: float = Field(
        0.0,
        ge=0,
        description="0 keeps the text encoder frozen; above 0 it trains with the UNet at this lr "
        "(warmed up from the step it starts, which may be a resume of a frozen-encoder run).",
    )
    cooldown: int = Field(
        0,
        ge=0,
        description="The learning rate decays linearly to zero over the last ``cooldown`` steps "
        "(0: constant after the warm-up).",
    )
    cooldown_p_multi: float | None = Field(
        None,
        ge=0,
        le=1,
        description="During the cool-down, this share of each batch is scenes with two or three "
        "things (None: batches drawn uniformly, as before it).",
    )
    save_every: int = Field(100, ge=1)


def alphas_cumprod() -> torch.Tensor:
    """SD's ᾱ_t for t = 0..999 (scaled-linear betas), as diffusers' DDPMScheduler has them."""
    betas = torch.linspace(BETA_START**0.5, BETA_END**0.5, TRAIN_TIMESTEPS) ** 2
    return torch.cumprod(1 - betas, dim=0)


@torch.inference_mode()
def encode_latents(vae: Any, images: np.ndarray, batch: int = 128) -> torch.Tensor:
    """Posterior means of ``images``, scaled by the VAE's ``scaling_factor``."""
    out = []
    for start in range(0, len(images), batch):
        mean = vae.encode(pixels_to_vae(images[start : start + batch])).latent_dist.mean
        out.append(mean * vae.config.scaling_factor)
    return torch.cat(out)


def encode_captions(
    text_encoder: Any, tokenizer: Any, captions: list[str], *, grad: bool = False
) -> torch.Tensor:
    """Text-encoder states for captions, padded to 77 tokens as the pipeline pads them."""
    ids = tokenizer(
        captions, padding="max_length", max_length=77, truncation=True, return_tensors="pt"
    ).input_ids
    with torch.set_grad_enabled(grad):
        return text_encoder(ids).last_hidden_state


def unet_loss(
    unet: Any, latents: torch.Tensor, context: torch.Tensor, gamma: float, gen: torch.Generator
) -> Any:
    """Min-SNR-weighted ε-prediction loss at uniformly drawn timesteps."""
    abar = alphas_cumprod()
    t = torch.randint(0, TRAIN_TIMESTEPS, (latents.shape[0],), generator=gen)
    noise = torch.randn(latents.shape, generator=gen)
    a = abar[t].view(-1, 1, 1, 1)
    noisy = a.sqrt() * latents + (1 - a).sqrt() * noise
    prediction = unet(noisy, t, context).sample
    snr = abar[t] / (1 - abar[t])
    weight = snr.clamp(max=gamma) / snr
    per_sample = F.mse_loss(prediction, noise, reduction="none").mean(dim=(1, 2, 3))
    return (weight * per_sample).mean()


def batch_captions(
    scenes: list[Scene],
    rng: np.random.Generator,
    world: World,
    *,
    p_full: float,
    p_world_caption: float,
    p_drop: float = 0.0,
) -> list[str]:
    """Captions for one batch: full, partial or empty (for classifier-free guidance).

    Half come from the world's captioner (``captions.caption``: relative positions, grouped
    counts, the wording PocketBench and users write), half from ``describe``, the wording the
    pocket CLIP was trained on.
    """
    from imagineer.pocket.captions import caption

    captions = []
    for scene in scenes:
        draw, seed, full = rng.random(), int(rng.integers(2**31)), rng.random() < p_full
        if draw < p_drop:
            captions.append("")
        elif rng.random() < p_world_caption:
            captions.append(caption(scene, np.random.default_rng(seed), world, full=bool(full)))
        else:
            captions.append(describe(scene, seed, world, full=bool(full)))
    return captions


def train_unet(
    spec: UnetSpec,
    stage: UnetStage,
    latents: torch.Tensor,
    scenes: list[Scene],
    text: tuple[Any, Any],
    world: World,
    run_dir: Path,
    seed: int,
    deadline: Deadline,
) -> tuple[Any, bool]:
    """Train (or resume) the UNet stage.

    Returns:
        The UNet holding the EMA weights, and whether ``stage.steps`` are done.
    """
    text_encoder, tokenizer = text
    torch.manual_seed(seed + 2)
    unet = build_unet(
        spec, text_encoder.config.hidden_size, latents.shape[1], sample_size=latents.shape[-1]
    )
    optimiser = torch.optim.AdamW(unet.parameters(), lr=stage.lr, weight_decay=0.01)
    ema = EMA(unet, stage.ema_decay)
    path = run_dir / "unet.pt"
    state = load_checkpoint(path)
    step = _restore(state, unet, optimiser, ema)
    joint = _JointText(text_encoder, stage, state, step) if stage.text_encoder_lr > 0 else None
    warm_start = int(state.get("warm_start", 0)) if state is not None else 0
    multi = np.flatnonzero([len(scene.objects) > 1 for scene in scenes])
    single = np.setdiff1d(np.arange(len(scenes)), multi)
    while step < stage.steps and not deadline.passed():
        rng = step_rng(seed, step, stream=3)
        cooling = stage.cooldown > 0 and step >= stage.steps - stage.cooldown
        if cooling and stage.cooldown_p_multi is not None:
            index = mixed_batch(rng, multi, single, stage.batch, stage.cooldown_p_multi)
        else:
            index = rng.choice(len(scenes), size=stage.batch, replace=False)
        captions = batch_captions(
            [scenes[i] for i in index], rng, world,
            p_full=stage.p_full, p_world_caption=stage.p_world_caption, p_drop=stage.p_drop,
        )  # fmt: skip
        context = encode_captions(text_encoder, tokenizer, captions, grad=joint is not None)
        set_warmup_lr(
            optimiser, stage.lr, stage.warmup, step - warm_start,
            steps=stage.steps - warm_start, cooldown=stage.cooldown,
        )  # fmt: skip
        unet.train()
        gen = step_generator(seed, step, stream=3)
        loss = unet_loss(unet, latents[index], context, stage.snr_gamma, gen)
        if joint is None:
            optimise(optimiser, unet, loss)
        else:
            joint.optimise(optimiser, unet, loss, step)
        ema.update(unet, step)
        step += 1
        if step % 25 == 0:
            logger.info("unet step %d loss %.5f", step, loss.item())
        if step % stage.save_every == 0 or step == stage.steps or deadline.passed():
            extra = joint.state() if joint is not None else {}
            extra["warm_start"] = warm_start
            save_checkpoint(path, {**_state(unet, optimiser, ema, step), **extra})
    ema.copy_to(unet)
    if joint is not None:
        joint.ema.copy_to(text_encoder)
    return unet.eval(), step >= stage.steps


class _JointText:
    """The text encoder trained with the UNet: its own AdamW, warm-up and EMA, checkpointed
    beside the UNet's (``text_*`` keys). Starting from a frozen-encoder checkpoint is allowed:
    the warm-up then counts from that step."""

    def __init__(self, text_encoder: Any, stage: UnetStage, state: Any, step: int) -> None:
        self.module, self.stage = text_encoder, stage
        text_encoder.requires_grad_(True)
        self.optimiser = torch.optim.AdamW(
            text_encoder.parameters(), lr=stage.text_encoder_lr, weight_decay=0.01
        )
        if state is not None and "text_model" in state:
            text_encoder.load_state_dict(state["text_model"])
            self.optimiser.load_state_dict(state["text_optimiser"])
        self.ema = EMA(text_encoder, stage.ema_decay)
        if state is not None and "text_ema" in state:
            self.ema.shadow = state["text_ema"]
        self.from_step = (
            int(state["text_from_step"]) if state and "text_from_step" in state else step
        )

    def optimise(self, optimiser: Any, unet: Any, loss: Any, step: int) -> None:
        """One update of both models from one backward pass (each clipped to norm 1)."""
        set_warmup_lr(self.optimiser, self.stage.text_encoder_lr, 100, step - self.from_step)
        optimise(optimiser, unet, loss, also=[(self.optimiser, self.module)])
        self.ema.update(self.module, step - self.from_step)

    def state(self) -> dict[str, Any]:
        return {
            "text_model": self.module.state_dict(),
            "text_optimiser": self.optimiser.state_dict(),
            "text_ema": self.ema.shadow,
            "text_from_step": self.from_step,
        }


def mixed_batch(
    rng: np.random.Generator, multi: np.ndarray, single: np.ndarray, batch: int, p_multi: float
) -> np.ndarray:
    """A batch of distinct scene indices, ``p_multi`` of them scenes with two or three things
    (the other kind fills in when one kind has too few scenes)."""
    n_multi = min(len(multi), round(p_multi * batch))
    n_single = min(len(single), batch - n_multi)
    n_multi = min(len(multi), batch - n_single)
    chosen = [rng.choice(multi, size=n_multi, replace=False)]
    chosen.append(rng.choice(single, size=n_single, replace=False))
    return np.concatenate(chosen)


def _state(unet: Any, optimiser: Any, ema: EMA, step: int) -> dict[str, Any]:
    return {
        "model": unet.state_dict(),
        "optimiser": optimiser.state_dict(),
        "ema": ema.shadow,
        "step": step,
    }


def _restore(state: dict[str, Any] | None, unet: Any, optimiser: Any, ema: EMA) -> int:
    if state is None:
        return 0
    unet.load_state_dict(state["model"])
    if "optimiser" in state:
        optimiser.load_state_dict(state["optimiser"])
    else:  # seeded from an exported generator: fresh moments, warmed up from this step
        logger.info("UNet seeded at step %d without optimiser state", state["step"])
    ema.shadow = state["ema"]
    logger.info("resumed the UNet at step %d", state["step"])
    return int(state["step"])
