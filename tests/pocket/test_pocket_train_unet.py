"""The UNet stage: a frozen text encoder stays frozen; a joint one trains and resumes exactly,
also from a frozen-encoder checkpoint; a cool-down continues an exported generator's UNet."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from tiny_specs import TINY_CLIP, TINY_UNET, TINY_VAE, AfterChecks

from imagineer.pocket.checkpoints import Deadline, load_checkpoint
from imagineer.pocket.convert import to_clip_text_model
from imagineer.pocket.datasets import build_renders
from imagineer.pocket.export import export_generator
from imagineer.pocket.models import build_clip, build_unet, build_vae
from imagineer.pocket.tokenizer import build_clip_tokenizer
from imagineer.pocket.train_unet import UnetStage, mixed_batch, train_unet
from imagineer.pocket.world import load_world


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    world = load_world()
    _, scenes = build_renders(8, 0, world)
    torch.manual_seed(0)
    return {
        "world": world,
        "scenes": scenes,
        "latents": torch.randn(8, 4, 8, 8),
        "clip": build_clip(TINY_CLIP),
        "tokenizer": build_clip_tokenizer(tmp_path_factory.mktemp("tok")),
    }


def _train(
    parts: dict[str, Any],
    run_dir: Path,
    steps: int,
    text_lr: float,
    deadline: Deadline | None = None,
    **knobs: Any,
) -> tuple[Any, Any]:
    text_encoder = to_clip_text_model(parts["clip"]).eval()
    text_encoder.requires_grad_(False)
    stage = UnetStage(
        steps=steps, batch=4, warmup=1, save_every=1, text_encoder_lr=text_lr, **knobs
    )
    unet, _ = train_unet(
        TINY_UNET, stage, parts["latents"], parts["scenes"],
        (text_encoder, parts["tokenizer"]), parts["world"], run_dir, 0,
        deadline or Deadline(None),
    )  # fmt: skip
    return unet, text_encoder


def test_frozen_text_encoder_is_untouched(parts: dict[str, Any], tmp_path: Path) -> None:
    before = to_clip_text_model(parts["clip"]).state_dict()
    _, text_encoder = _train(parts, tmp_path, 2, 0.0)
    for name, value in text_encoder.state_dict().items():
        assert torch.equal(value, before[name]), name
    assert "text_model" not in load_checkpoint(tmp_path / "unet.pt")


def test_joint_text_encoder_trains_and_resumes_exactly(
    parts: dict[str, Any], tmp_path: Path
) -> None:
    before = to_clip_text_model(parts["clip"]).state_dict()
    unet, text_encoder = _train(parts, tmp_path / "straight", 3, 1e-2)
    moved = [n for n, v in text_encoder.state_dict().items() if not torch.equal(v, before[n])]
    assert moved, "the joint text encoder did not change"
    assert load_checkpoint(tmp_path / "straight" / "unet.pt")["text_from_step"] == 0

    _train(parts, tmp_path / "split", 2, 1e-2)
    unet2, text_encoder2 = _train(parts, tmp_path / "split", 3, 1e-2)
    for straight, resumed in ((text_encoder, text_encoder2), (unet, unet2)):
        pairs = zip(straight.state_dict().items(), resumed.state_dict().values(), strict=True)
        for (name, a), b in pairs:
            assert torch.equal(a, b), name


def test_joint_training_can_start_from_a_frozen_encoder_checkpoint(
    parts: dict[str, Any], tmp_path: Path
) -> None:
    _train(parts, tmp_path, 2, 0.0)
    _, text_encoder = _train(parts, tmp_path, 3, 1e-2)
    state = load_checkpoint(tmp_path / "unet.pt")
    assert state["step"] == 3 and state["text_from_step"] == 2
    before = to_clip_text_model(parts["clip"]).state_dict()
    assert any(not torch.equal(v, before[n]) for n, v in text_encoder.state_dict().items())


def test_cooldown_batches_hold_the_asked_share_of_multi_thing_scenes() -> None:
    multi, single = np.arange(0, 100), np.arange(100, 180)
    for p_multi, expected in ((0.75, 48), (0.0, 0), (1.0, 64)):
        index = mixed_batch(np.random.default_rng(0), multi, single, 64, p_multi)
        assert len(set(index.tolist())) == len(index) == 64
        assert int(np.isin(index, multi).sum()) == expected
    few = mixed_batch(np.random.default_rng(0), multi[:40], single, 64, 1.0)  # 40 multi only
    assert len(set(few.tolist())) == 64 and int(np.isin(few, multi).sum()) == 40


def test_a_cooldown_continues_an_exported_generators_unet_and_resumes_exactly(
    parts: dict[str, Any], tmp_path: Path
) -> None:
    from diffusers import UNet2DConditionModel

    from imagineer.pocket.pipeline import reuse_generator_parts

    torch.manual_seed(3)
    unet = build_unet(TINY_UNET, TINY_CLIP.text_width, 4, sample_size=8).eval()
    generator = tmp_path / "generator"
    defaults = {"steps": 2, "guidance": 3.0, "scheduler": "euler"}
    text = to_clip_text_model(parts["clip"]).eval()
    export_generator(text, build_vae(TINY_VAE).eval(), unet, generator, defaults)
    exported = UNet2DConditionModel.from_pretrained(str(generator / "unet")).state_dict()

    knobs = {"cooldown": 2, "cooldown_p_multi": 0.5}
    for name in ("straight", "split"):
        reuse_generator_parts(generator, tmp_path / name, unet_step=2)
    seeded = load_checkpoint(tmp_path / "straight" / "unet.pt")
    assert seeded["step"] == 2 and "optimiser" not in seeded
    assert all(torch.equal(seeded["model"][k], v.float()) for k, v in exported.items())
    record = (tmp_path / "straight" / "reused.json").read_text()
    assert '"unet_step": 2' in record and "generator_text" in record

    straight, _ = _train(parts, tmp_path / "straight", 4, 0.0, **knobs)
    state = load_checkpoint(tmp_path / "straight" / "unet.pt")
    assert state["step"] == 4 and state["warm_start"] == 2 and "optimiser" in state
    moved = [k for k, v in straight.state_dict().items() if not torch.equal(v, exported[k].float())]
    assert moved, "the continued UNet did not change"

    _train(parts, tmp_path / "split", 4, 0.0, AfterChecks(1), **knobs)  # stopped after 1 step
    assert load_checkpoint(tmp_path / "split" / "unet.pt")["step"] == 3
    split, _ = _train(parts, tmp_path / "split", 4, 0.0, **knobs)
    pairs = zip(straight.state_dict().items(), split.state_dict().values(), strict=True)
    for (name, a), b in pairs:
        assert torch.equal(a, b), name
