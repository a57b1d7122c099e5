"""Stage 2: the pocket VAE, an ``AutoencoderKL`` that must give back what the judge reads.

The generator cannot beat its VAE, and the spike's VAE (f = 8, MSE only, 320 steps) washed out
colours and softened edges. This one works at f = 4 (16x16x4 latents), trains with L1 + MSE, and
adds a texture term: the local spread of the high-pass residual must match the target's. Plain
pixel losses would teach the decoder to average grain away (its optimum under MSE is the noise's
mean), which erases a defect the world asks the generator to show and the judge to see.
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
    Deadline,
    load_checkpoint,
    optimise,
    save_checkpoint,
    set_warmup_lr,
    step_rng,
)
from imagineer.pocket.models import VaeSpec, build_vae
from imagineer.pocket.world import Scene, World

logger = logging.getLogger(__name__)


class VaeStage(BaseModel):
    """Knobs of the VAE stage."""

    steps: int = Field(2000, ge=1)
    batch: int = Field(16, ge=1)
    lr: float = Field(1e-3, gt=0)
    warmup: int = Field(100, ge=0)
    kl_weight: float = Field(1e-6, ge=0)
    edge_weight: float = Field(2.0, ge=0, description="L1 between image gradients.")
    edge_from_step: int = Field(0, ge=0, description="First step with the edge term.")
    sample_posterior: bool = Field(
        False, description="Decode posterior samples (True) or means (False) during training."
    )
    l1_weight: float = Field(1.0, ge=0)
    texture_weight: float = Field(10.0, ge=0, description="Match of local high-pass spread.")
    save_every: int = Field(100, ge=1)
    eval_every: int = Field(500, ge=1)


class DecoderStage(BaseModel):
    """Knobs of the decoder stage: the VAE's decoder sharpened with its encoder frozen.

    The encoder, hence the latent space the UNet learns, does not change, so this stage can run
    before or after the UNet's. ``steps`` 0 skips it.
    """

    steps: int = Field(0, ge=0)
    batch: int = Field(16, ge=1)
    lr: float = Field(2e-4, gt=0)
    warmup: int = Field(20, ge=0)
    l1_weight: float = Field(1.0, ge=0)
    edge_weight: float = Field(2.0, ge=0, description="L1 between image gradients.")
    texture_weight: float = Field(10.0, ge=0, description="Match of local high-pass spread.")
    save_every: int = Field(50, ge=1)
    eval_every: int = Field(200, ge=1)


def pixels_to_vae(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float (N, 3, H, W) in [-1, 1], the range SD's VAEs use."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def vae_to_pixels(x: torch.Tensor) -> np.ndarray:
    """The inverse of ``pixels_to_vae``, rounded and clipped to uint8."""
    x = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def local_texture(x: torch.Tensor, patch: int = 8) -> torch.Tensor:
    """Per-patch RMS of what a 3x3 box blur removes: ~0 on flat paint, ~noise std on grain."""
    residual = x - F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    return F.avg_pool2d(residual.pow(2), patch).add(1e-6).sqrt()


def edge_loss(out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """L1 between horizontal and vertical pixel differences of two image batches.

    The judge calls an image blurry once its edges are as soft as a Gaussian of sigma ~0.8 px
    (measured on ground-truth renders), which pixel losses alone left the VAE short of: after
    1,100 steps it flagged 70% of clean round trips as blurry.
    """
    dx = F.l1_loss(out[..., :, 1:] - out[..., :, :-1], x[..., :, 1:] - x[..., :, :-1])
    dy = F.l1_loss(out[..., 1:, :] - out[..., :-1, :], x[..., 1:, :] - x[..., :-1, :])
    return dx + dy


def vae_loss(
    vae: Any, x: torch.Tensor, stage: VaeStage, generator: torch.Generator, step: int = 0
) -> Any:
    """Reconstruction (L1 + MSE + texture) plus a small KL, on one batch.

    By default the posterior mean is decoded, as the generator's latents will be: measured here,
    decoding samples (posterior std ~1 at initialisation against means ~0.25) left the decoder
    guessing through noise, blurry with wrong colours after 500 steps, while the 1e-6 KL weight
    was too weak to make the encoder shrink the variance quickly.
    """
    posterior = vae.encode(x).latent_dist
    latents = posterior.mean
    if stage.sample_posterior:
        latents = latents + posterior.std * torch.randn(latents.shape, generator=generator)
    out = vae.decode(latents).sample
    edge_weight = stage.edge_weight if step >= stage.edge_from_step else 0.0
    loss = reconstruction_loss(out, x, stage.l1_weight, edge_weight, stage.texture_weight)
    return loss + stage.kl_weight * posterior.kl().mean()


def reconstruction_loss(
    out: torch.Tensor, x: torch.Tensor, l1_weight: float, edge_weight: float, texture_weight: float
) -> Any:
    """MSE + L1 + edges + texture: what both the VAE and the decoder stage minimise."""
    loss = F.mse_loss(out, x) + l1_weight * F.l1_loss(out, x)
    if edge_weight:
        loss = loss + edge_weight * edge_loss(out, x)
    return loss + texture_weight * F.mse_loss(local_texture(out), local_texture(x))


def decoder_loss(vae: Any, x: torch.Tensor, stage: DecoderStage) -> Any:
    """Reconstruction (MSE + L1 + edges + texture) of the frozen encoder's posterior means."""
    with torch.no_grad():
        latents = vae.encode(x).latent_dist.mean
    out = vae.decode(latents).sample
    return reconstruction_loss(out, x, stage.l1_weight, stage.edge_weight, stage.texture_weight)


def train_decoder(
    vae: Any,
    stage: DecoderStage,
    images: np.ndarray,
    held_out: tuple[np.ndarray, list[Scene]],
    world: World,
    run_dir: Path,
    seed: int,
    deadline: Deadline,
) -> tuple[Any, bool]:
    """Fine-tune (or resume fine-tuning) ``vae``'s decoder; its encoder stays as it is.

    Returns:
        The VAE and whether ``stage.steps`` are done.
    """
    vae.requires_grad_(False)
    trained = [*vae.decoder.parameters(), *vae.post_quant_conv.parameters()]
    for parameter in trained:
        parameter.requires_grad_(True)
    optimiser = torch.optim.AdamW(trained, lr=stage.lr, weight_decay=0.0)
    path = run_dir / "decoder.pt"
    step = _restore(path, vae, optimiser)
    while step < stage.steps and not deadline.passed():
        rng = step_rng(seed, step, stream=5)
        index = rng.choice(len(images), size=stage.batch, replace=False)
        set_warmup_lr(optimiser, stage.lr, stage.warmup, step)
        vae.decoder.train()
        loss = decoder_loss(vae, pixels_to_vae(images[index]), stage)
        optimise(optimiser, vae, loss)
        step += 1
        _log_evaluate_save(
            "decoder", step, loss, stage, vae, optimiser, held_out, world, path, deadline
        )
    vae.requires_grad_(False)
    return vae.eval(), step >= stage.steps


@torch.inference_mode()
def round_trip(vae: Any, images: np.ndarray, batch: int = 64) -> np.ndarray:
    """Encode (posterior mean) and decode renders, as the generator's latents will be decoded."""
    out = []
    for start in range(0, len(images), batch):
        x = pixels_to_vae(images[start : start + batch])
        out.append(vae_to_pixels(vae.decode(vae.encode(x).latent_dist.mean).sample))
    return np.concatenate(out)


def train_vae(
    spec: VaeSpec,
    stage: VaeStage,
    images: np.ndarray,
    held_out: tuple[np.ndarray, list[Scene]],
    world: World,
    run_dir: Path,
    seed: int,
    deadline: Deadline,
) -> Any:
    """Train (or resume) the VAE stage; returns the VAE when ``stage.steps`` are done."""
    torch.manual_seed(seed + 1)
    vae = build_vae(spec)
    optimiser = torch.optim.AdamW(vae.parameters(), lr=stage.lr, weight_decay=0.0)
    path = run_dir / "vae.pt"
    step = _restore(path, vae, optimiser)
    while step < stage.steps and not deadline.passed():
        rng = step_rng(seed, step, stream=2)
        index = rng.choice(len(images), size=stage.batch, replace=False)
        set_warmup_lr(optimiser, stage.lr, stage.warmup, step)
        vae.train()
        generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
        loss = vae_loss(vae, pixels_to_vae(images[index]), stage, generator, step)
        optimise(optimiser, vae, loss)
        step += 1
        _log_evaluate_save(
            "vae", step, loss, stage, vae, optimiser, held_out, world, path, deadline
        )
    return vae.eval() if step >= stage.steps else None


def _log_evaluate_save(
    name: str,
    step: int,
    loss: torch.Tensor,
    stage: VaeStage | DecoderStage,
    vae: Any,
    optimiser: Any,
    held_out: tuple[np.ndarray, list[Scene]],
    world: World,
    path: Path,
    deadline: Deadline,
) -> None:
    """After a VAE or decoder step: log the loss, judge held-out round trips, checkpoint."""
    from imagineer.pocket.evaluate import judge_accuracy

    if step % 25 == 0:
        logger.info("%s step %d loss %.5f", name, step, loss.item())
    if step % stage.eval_every == 0 or step == stage.steps:
        vae.eval()
        report = judge_accuracy(round_trip(vae, held_out[0]), held_out[1], world)
        logger.info("%s step %d round-trip judge %s", name, step, _fmt(report))
    if step % stage.save_every == 0 or step == stage.steps or deadline.passed():
        state = {"model": vae.state_dict(), "optimiser": optimiser.state_dict(), "step": step}
        save_checkpoint(path, state)


def _fmt(report: dict[str, float]) -> str:
    return " ".join(f"{name}={value:.2f}" for name, value in report.items())


def _restore(path: Path, model: Any, optimiser: Any) -> int:
    state = load_checkpoint(path)
    if state is None:
        return 0
    model.load_state_dict(state["model"])
    optimiser.load_state_dict(state["optimiser"])
    logger.info("resumed %s at step %d", path, state["step"])
    return int(state["step"])
