"""The UNet stage: a frozen text encoder stays frozen; a joint one trains and resumes exactly,
also from a frozen-encoder checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from tiny_specs import TINY_CLIP, TINY_UNET

from imagineer.pocket.checkpoints import Deadline, load_checkpoint
from imagineer.pocket.convert import to_clip_text_model
from imagineer.pocket.datasets import build_renders
from imagineer.pocket.models import build_clip
from imagineer.pocket.tokenizer import build_clip_tokenizer
from imagineer.pocket.train_unet import UnetStage, train_unet
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


def _train(parts: dict[str, Any], run_dir: Path, steps: int, text_lr: float) -> tuple[Any, Any]:
    text_encoder = to_clip_text_model(parts["clip"]).eval()
    text_encoder.requires_grad_(False)
    stage = UnetStage(steps=steps, batch=4, warmup=1, save_every=1, text_encoder_lr=text_lr)
    unet, _ = train_unet(
        TINY_UNET, stage, parts["latents"], parts["scenes"],
        (text_encoder, parts["tokenizer"]), parts["world"], run_dir, 0, Deadline(None),
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
