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


@torch.inference_mode()
def encode_captions(text_encoder: Any, tokenizer: Any, captions: list[str]) -> torch.Tensor:
    """Frozen text-encoder states for captions, padded to 77 tokens as the pipeline pads them."""
    ids = tokenizer(
        captions, padding="max_length", max_length=77, truncation=True, return_tensors="pt"
    ).input_ids
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
    scenes: list[Scene], rng: np.random.Generator, world: World, stage: UnetStage
) -> list[str]:
    """Captions for one batch: full, partial or empty (for classifier-free guidance).

    Half come from the world's captioner (``captions.caption``: relative positions, grouped
    counts, the wording PocketBench and users write), half from ``describe``, the wording the
    pocket CLIP was trained on.
    """
    from imagineer.pocket.captions import caption

    captions = []
    for scene in scenes:
        draw, seed, full = rng.random(), int(rng.integers(2**31)), rng.random() < stage.p_full
        if draw < stage.p_drop:
            captions.append("")
        elif rng.random() < stage.p_world_caption:
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
    step = _restore(path, unet, optimiser, ema)
    while step < stage.steps and not deadline.passed():
        rng = step_rng(seed, step, stream=3)
        index = rng.choice(len(scenes), size=stage.batch, replace=False)
        context = encode_captions(
            text_encoder, tokenizer, batch_captions([scenes[i] for i in index], rng, world, stage)
        )
        set_warmup_lr(optimiser, stage.lr, stage.warmup, step)
        unet.train()
        gen = step_generator(seed, step, stream=3)
        loss = unet_loss(unet, latents[index], context.clone(), stage.snr_gamma, gen)
        optimise(optimiser, unet, loss)
        ema.update(unet, step)
        step += 1
        if step % 25 == 0:
            logger.info("unet step %d loss %.5f", step, loss.item())
        if step % stage.save_every == 0 or step == stage.steps or deadline.passed():
            save_checkpoint(path, _state(unet, optimiser, ema, step))
    ema.copy_to(unet)
    return unet.eval(), step >= stage.steps


def _state(unet: Any, optimiser: Any, ema: EMA, step: int) -> dict[str, Any]:
    return {
        "model": unet.state_dict(),
        "optimiser": optimiser.state_dict(),
        "ema": ema.shadow,
        "step": step,
    }


def _restore(path: Path, unet: Any, optimiser: Any, ema: EMA) -> int:
    state = load_checkpoint(path)
    if state is None:
        return 0
    unet.load_state_dict(state["model"])
    optimiser.load_state_dict(state["optimiser"])
    ema.shadow = state["ema"]
    logger.info("resumed %s at step %d", path, state["step"])
    return int(state["step"])
