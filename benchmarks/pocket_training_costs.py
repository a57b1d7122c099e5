"""Seconds per training step of each pocket-model piece on this machine (2 threads).

Run: ``OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/pocket_training_costs.py [--steps 6]``.
Prints one line per variant: parameters (millions) and mean seconds per optimiser step after one
warm-up step. On a shared machine, run it twice and keep the lower figures: two OpenMP threads
that busy-wait while another process holds a core measured up to 4x slower than one thread
(hence ``OMP_WAIT_POLICY=PASSIVE``).
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from imagineer.pocket.models import (
    ClipSpec,
    UnetSpec,
    VaeSpec,
    build_clip,
    build_unet,
    build_vae,
    encode_text_prefix,
)


def _timed(step, steps: int) -> float:
    step()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - started) / steps


def _millions(module: torch.nn.Module) -> float:
    return sum(p.numel() for p in module.parameters()) / 1e6


def clip_cost(spec: ClipSpec, batch: int, negatives: int, tokens: int, steps: int) -> None:
    model = build_clip(spec)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-4)
    images = torch.randn(batch, 3, 64, 64)
    text = torch.randint(1, 40000, (batch * (1 + negatives), 77))
    text[:, tokens - 1] = 49407
    text[:, tokens:] = 0

    def step() -> None:
        image = F.normalize(model.encode_image(images), dim=-1)
        texts = F.normalize(encode_text_prefix(model, text), dim=-1)
        loss = F.cross_entropy(20 * image @ texts.T, torch.arange(batch))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

    seconds = _timed(step, steps)
    tower = (
        f"resnet{spec.resnet_layers} w{spec.vision_width}"
        if spec.resnet_layers is not None
        else f"vit w{spec.vision_width} L{spec.vision_layers} p{spec.patch_size}"
    )
    print(
        f"clip {tower} text {spec.text_width} b{batch} neg{negatives}: "
        f"{_millions(model):.2f}M ({_millions(model.visual):.2f}M image tower) {seconds:.3f}s"
    )


def vae_cost(spec: VaeSpec, batch: int, steps: int) -> None:
    vae = build_vae(spec)
    optimiser = torch.optim.AdamW(vae.parameters(), lr=1e-4)
    images = torch.randn(batch, 3, 64, 64)

    def step() -> None:
        posterior = vae.encode(images).latent_dist
        out = vae.decode(posterior.sample()).sample
        loss = F.mse_loss(out, images) + 1e-6 * posterior.kl().mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

    seconds = _timed(step, steps)
    print(f"vae {spec.block_out_channels} f{spec.factor}: {_millions(vae):.2f}M {seconds:.3f}s")


def unet_cost(spec: UnetSpec, side: int, batch: int, width: int, steps: int) -> None:
    unet = build_unet(spec, width, sample_size=side)
    optimiser = torch.optim.AdamW(unet.parameters(), lr=1e-4)
    latents = torch.randn(batch, 4, side, side)
    context = torch.randn(batch, 77, width)
    timesteps = torch.randint(0, 1000, (batch,))

    def step() -> None:
        loss = F.mse_loss(unet(latents, timesteps, context).sample, latents)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

    seconds = _timed(step, steps)
    with torch.inference_mode():
        sample = _timed(lambda: unet(latents[:8], timesteps[:8], context[:8]), steps)
    print(
        f"unet {spec.block_out_channels} {spec.cross_attention_levels} {side}x{side}: "
        f"{_millions(unet):.2f}M train {seconds:.3f}s/step, forward b8 {sample:.4f}s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--only", default="clip,vae,unet")
    args = parser.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    only = args.only.split(",")
    if "clip" in only:
        clip_cost(ClipSpec(text_width=96), 64, 3, 32, args.steps)
        clip_cost(ClipSpec(text_width=64), 64, 3, 32, args.steps)  # the bundled scorer
        # Image towers for the scorer's weakest skills (counts, shapes on generated renders).
        clip_cost(ClipSpec(vision_width=192, vision_layers=6), 64, 3, 32, args.steps)
        clip_cost(ClipSpec(patch_size=4), 64, 3, 32, args.steps)
        clip_cost(ClipSpec(resnet_layers=(1, 1, 1, 1), vision_width=32), 64, 3, 32, args.steps)
    if "vae" in only:
        vae_cost(VaeSpec(block_out_channels=(32, 64, 64)), 32, args.steps)
        vae_cost(VaeSpec(block_out_channels=(32, 64, 64, 64)), 32, args.steps)
        vae_cost(VaeSpec(block_out_channels=(32, 48, 64), norm_num_groups=16), 32, args.steps)
    if "unet" in only:
        unet_cost(UnetSpec(block_out_channels=(64, 128, 128)), 16, 64, 64, args.steps)
        unet_cost(UnetSpec(block_out_channels=(64, 96, 128)), 16, 64, 64, args.steps)
        unet_cost(
            UnetSpec(block_out_channels=(64, 128), cross_attention_levels=(True, True)),
            8,
            64,
            96,
            args.steps,
        )
        unet_cost(
            UnetSpec(block_out_channels=(96, 192), cross_attention_levels=(True, True)),
            8,
            64,
            96,
            args.steps,
        )


if __name__ == "__main__":
    main()
