"""Seconds per training step of each pocket-model piece on this machine (2 threads).

Run: ``OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/pocket_training_costs.py [--steps 6]``.
Prints one line per variant: parameters (millions) and mean seconds per optimiser step after one
warm-up step. On a shared machine, run it twice and keep the lower figures: two OpenMP threads
that busy-wait while another process holds a core measured up to 4x slower than one thread
(hence ``OMP_WAIT_POLICY=PASSIVE``).

``--lanes`` measures, side by side in one run, what training in lanes (``imagineer/pocket/
lanes.py``) rests on: each of the recipe's pieces (the CLIP, VAE and UNet steps with the bundled
specs and batches, and the generator's renders) alone on two threads, alone on one, and two
pieces at once on one thread each, in child processes; then the throughput of two lanes against
one process on both threads.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable

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
from imagineer.pocket.train import RECIPE_FILE

PROMPT = "a small red star on the left, sunset lighting, pixel art"


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


def recipe_step(piece: str) -> Callable[[], None]:
    """One step of a piece of the bundled recipe: ``clip``, ``vae``, ``unet`` (a training step
    of the model on a batch of the recipe's size) or ``render`` (the bundled generator on one
    chunk of the judged stage's pool: 8 captions x 8 renders)."""
    recipe = json.loads(RECIPE_FILE.read_text())
    if piece == "render":
        from imagineer.generators import DiffusersGenerator
        from imagineer.pocket.paths import pocket_generator_dir

        generator = DiffusersGenerator(str(pocket_generator_dir()))
        knobs = recipe["judged"]
        prompts = [PROMPT] * knobs["chunk"]
        return lambda: generator.render(prompts, n=knobs["renders"], seed=0) and None
    if piece == "clip":
        model, knobs = build_clip(ClipSpec(**recipe["clip_spec"])), recipe["clip"]
        batch, negatives = knobs["batch"], knobs["negatives"]
        images, text = torch.randn(batch, 3, 64, 64), torch.randint(1, 40000, (batch * 4, 77))
        text[:, 31], text[:, 32:] = 49407, 0

        def forward() -> torch.Tensor:
            image = F.normalize(model.encode_image(images), dim=-1)
            texts = F.normalize(encode_text_prefix(model, text[: batch * (1 + negatives)]), dim=-1)
            return F.cross_entropy(20 * image @ texts.T, torch.arange(batch))

    elif piece == "vae":
        model, batch = build_vae(VaeSpec(**recipe["vae_spec"])), recipe["vae"]["batch"]
        pixels = torch.randn(batch, 3, 64, 64)

        def forward() -> torch.Tensor:
            out = model.decode(model.encode(pixels).latent_dist.mode()).sample
            return F.l1_loss(out, pixels) + F.mse_loss(out, pixels)

    else:
        width = recipe["clip_spec"]["text_width"]
        model = build_unet(UnetSpec(**recipe["unet_spec"]), width, sample_size=16)
        batch = recipe["unet"]["batch"]
        latents, context = torch.randn(batch, 4, 16, 16), torch.randn(batch, 77, width)
        timesteps = torch.randint(0, 1000, (batch,))

        def forward() -> torch.Tensor:
            return F.mse_loss(model(latents, timesteps, context).sample, latents)

    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step() -> None:
        loss = forward()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

    return step


def _piece_child(piece: str, threads: int, seconds: float) -> None:
    """(child) Print the seconds per step of ``piece`` over about ``seconds``, as JSON."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    step = recipe_step(piece)
    step()
    started, steps = time.perf_counter(), 0
    while time.perf_counter() - started < seconds:
        step()
        steps += 1
    print(json.dumps({"piece": piece, "seconds": (time.perf_counter() - started) / steps}))


def _measure(pieces: list[tuple[str, int]], seconds: float) -> list[float]:
    """Seconds per step of each (piece, threads), all run at once in child processes."""
    command = [sys.executable, __file__, "--piece-child"]
    children = [
        subprocess.Popen(
            [*command, f"{piece}:{threads}:{seconds}"], stdout=subprocess.PIPE, text=True
        )
        for piece, threads in pieces
    ]
    outputs = [child.communicate()[0] for child in children]
    return [json.loads(output.strip().splitlines()[-1])["seconds"] for output in outputs]


def lanes(seconds: float) -> None:
    """Alone on 2 threads, alone on 1, and side by side on 1 each: the case for lanes."""
    pieces = ("clip", "vae", "unet", "render")
    alone2 = {p: _measure([(p, 2)], seconds)[0] for p in pieces}
    alone1 = {p: _measure([(p, 1)], seconds)[0] for p in pieces}
    print(f"{'piece':8} {'2 threads':>10} {'1 thread':>9} {'2t speed-up':>11}")
    for piece, value in alone2.items():
        print(f"{piece:8} {value:9.3f}s {alone1[piece]:8.3f}s {alone1[piece] / value:10.2f}x")
    print("side by side, 1 thread each: each piece's step against its step alone on 2 threads;")
    print("throughput = work done per second by both, in units of one process on 2 threads")
    for pair in (("clip", "vae"), ("clip", "unet"), ("render", "render")):
        side = _measure([(pair[0], 1), (pair[1], 1)], seconds)
        slow = [s / alone2[p] for s, p in zip(side, pair, strict=True)]
        print(
            f"{pair[0]} + {pair[1]}: {side[0]:.3f}s ({slow[0]:.2f}x) and {side[1]:.3f}s "
            f"({slow[1]:.2f}x): throughput {1 / slow[0] + 1 / slow[1]:.2f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--only", default="clip,vae,unet")
    parser.add_argument("--lanes", action="store_true", help="Measure training in lanes.")
    parser.add_argument("--seconds", type=float, default=30, help="(--lanes) per measurement")
    parser.add_argument("--piece-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.piece_child is not None:
        piece, threads, seconds = args.piece_child.split(":")
        _piece_child(piece, int(threads), float(seconds))
        return
    if args.lanes:
        lanes(args.seconds)
        return
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
