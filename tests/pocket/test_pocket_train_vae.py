"""The decoder stage: it sharpens the VAE's decoder and nothing else, resumes exactly, and the
pipeline hands its decoder (with the unchanged encoder) to everything after it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from tiny_specs import TINY_VAE

from imagineer.pocket.checkpoints import Deadline
from imagineer.pocket.datasets import build_renders
from imagineer.pocket.models import build_vae
from imagineer.pocket.train_vae import DecoderStage, train_decoder
from imagineer.pocket.world import load_world

STAGE = DecoderStage(steps=3, batch=4, warmup=1, save_every=1, eval_every=3)


@pytest.fixture(scope="module")
def data() -> dict[str, Any]:
    world = load_world()
    images, scenes = build_renders(12, 0, world)
    torch.manual_seed(0)
    return {"world": world, "images": images, "scenes": scenes, "vae": build_vae(TINY_VAE)}


def _fresh_vae(data: dict[str, Any]) -> Any:
    vae = build_vae(TINY_VAE)
    vae.load_state_dict(data["vae"].state_dict())
    return vae


def _train(data: dict[str, Any], run_dir: Path, steps: int) -> Any:
    held_out = (data["images"][:4], data["scenes"][:4])
    stage = STAGE.model_copy(update={"steps": steps})
    vae, done = train_decoder(
        _fresh_vae(data), stage, data["images"], held_out, data["world"], run_dir, 0,
        Deadline(None),
    )  # fmt: skip
    assert done
    return vae


def test_decoder_stage_trains_the_decoder_only_and_resumes_exactly(
    data: dict[str, Any], tmp_path: Path
) -> None:
    before = data["vae"].state_dict()
    straight = _train(data, tmp_path / "straight", 3)
    after = straight.state_dict()
    changed = {name for name, value in after.items() if not torch.equal(value, before[name])}
    assert changed and all(n.startswith(("decoder.", "post_quant_conv.")) for n in changed)
    assert not any(p.requires_grad for p in straight.parameters())  # handed over frozen

    _train(data, tmp_path / "split", 2)
    resumed = _train(data, tmp_path / "split", 3)
    for name, value in resumed.state_dict().items():
        assert torch.equal(value, after[name]), name


def test_pipeline_replaces_the_decoder_once_and_keeps_the_encoder(
    data: dict[str, Any], tmp_path: Path
) -> None:
    from diffusers import AutoencoderKL

    from imagineer.pocket.pipeline import decoder_stage
    from imagineer.pocket.train import TrainConfig

    run_dir = tmp_path
    vae = _fresh_vae(data)
    vae.register_to_config(scaling_factor=0.5)
    vae.save_pretrained(str(run_dir / "vae"))
    config = TrainConfig(vae_spec=TINY_VAE, decoder=STAGE)
    held_out = (data["images"][:4], data["scenes"][:4])
    world = data["world"]
    decoder_stage(config, data["images"], held_out, world, run_dir, Deadline(None))

    saved = AutoencoderKL.from_pretrained(str(run_dir / "vae"))
    assert saved.config.scaling_factor == 0.5
    original, state = vae.state_dict(), saved.state_dict()
    decoding = {n for n in original if n.startswith(("decoder.", "post_quant_conv."))}
    for name in set(original) - decoding:  # the encoder: the UNet's latent space
        assert torch.equal(state[name], original[name]), name
    assert any(not torch.equal(state[name], original[name]) for name in decoding)

    mtime = (run_dir / "vae" / "diffusion_pytorch_model.safetensors").stat().st_mtime_ns
    decoder_stage(config, data["images"], held_out, world, run_dir, Deadline(None))  # done
    assert (run_dir / "vae" / "diffusion_pytorch_model.safetensors").stat().st_mtime_ns == mtime
