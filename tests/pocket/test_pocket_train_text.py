"""The text stage: scenes become order-free target bits, the encoder learns from them, resumes
exactly, and the pipeline hands its product (not the CLIP's tower) to the UNet."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from tiny_specs import TINY_CLIP

from imagineer.pocket.checkpoints import Deadline
from imagineer.pocket.convert import to_clip_text_model
from imagineer.pocket.datasets import build_renders
from imagineer.pocket.models import build_clip
from imagineer.pocket.tokenizer import build_clip_tokenizer
from imagineer.pocket.train_text import SceneCode, TextStage, train_text_encoder
from imagineer.pocket.world import Scene, SceneObject, load_world


def _bits(code: SceneCode, scene: Scene) -> dict[str, list[int]]:
    bits = code.encode(scene)
    return {group: [i - a for i in range(a, b) if bits[i]] for group, (a, b) in code.groups.items()}


def test_scene_code_binds_attributes_to_shapes_and_ignores_object_order() -> None:
    world = load_world()
    code = SceneCode(world)
    circle = SceneObject(shape="circle", colour="red", size="small", position="left")
    square = SceneObject(shape="square", colour="blue", size="large", position="right")
    twin = SceneObject(shape="circle", colour="red", size="small", position="top")
    one = Scene(objects=(circle, square), lighting="night", style="flat", defects=("blur",))
    other = Scene(objects=(square, circle), lighting="night", style="flat", defects=("blur",))
    assert (code.encode(one) == code.encode(other)).all()

    bits = _bits(code, one)
    colours, shapes = world.names("colour"), world.names("shape")
    bound = {(shapes[i // len(colours)], colours[i % len(colours)]) for i in bits["shape_colour"]}
    assert bound == {("circle", "red"), ("square", "blue")}  # a swap of colours would differ
    assert bits["lighting"] == [world.names("lighting").index("night")]
    assert bits["defect"] == [world.names("defect").index("blur")]
    counts = _bits(code, Scene(objects=(circle, twin), lighting="night", style="flat"))
    assert counts["shape_count"] == [shapes.index("circle") * world.max_objects + 1]  # "two"


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    world = load_world()
    _, scenes = build_renders(16, 0, world)
    torch.manual_seed(0)
    return {
        "world": world,
        "scenes": scenes,
        "clip": build_clip(TINY_CLIP),
        "tokenizer": build_clip_tokenizer(tmp_path_factory.mktemp("tok")),
    }


def _train(parts: dict[str, Any], run_dir: Path, steps: int) -> Any:
    text_encoder = to_clip_text_model(parts["clip"]).eval()
    stage = TextStage(steps=steps, batch=4, warmup=1, save_every=1, eval_every=2, queries=2)
    scenes = parts["scenes"]
    model, done = train_text_encoder(
        stage, (text_encoder, parts["tokenizer"]), scenes, scenes[:4], parts["world"], run_dir,
        0, Deadline(None),
    )  # fmt: skip
    assert done
    return model


def test_text_stage_trains_the_encoder_and_resumes_exactly(
    parts: dict[str, Any], tmp_path: Path
) -> None:
    before = to_clip_text_model(parts["clip"]).state_dict()
    straight = _train(parts, tmp_path / "straight", 3)
    assert any(not torch.equal(v, before[n]) for n, v in straight.state_dict().items())
    assert not any(p.requires_grad for p in straight.parameters())  # handed over frozen

    _train(parts, tmp_path / "split", 2)
    resumed = _train(parts, tmp_path / "split", 3)
    pairs = zip(straight.state_dict().items(), resumed.state_dict().values(), strict=True)
    for (name, a), b in pairs:
        assert torch.equal(a, b), name


def test_pipeline_gives_the_unet_the_text_stage_product(
    parts: dict[str, Any], tmp_path: Path
) -> None:
    from imagineer.pocket.pipeline import text_encoder_and_tokenizer, text_stage
    from imagineer.pocket.train import TrainConfig

    run_dir = tmp_path
    to_clip_text_model(parts["clip"]).save_pretrained(str(run_dir / "text_encoder"))
    stage = TextStage(steps=2, batch=4, warmup=1, save_every=1, eval_every=2, queries=2)
    config = TrainConfig(clip_spec=TINY_CLIP, text=stage)
    frozen = TrainConfig(clip_spec=TINY_CLIP)  # text.steps 0: the CLIP's tower as it is
    scenes = parts["scenes"]
    text_stage(config, scenes, scenes[:4], parts["world"], run_dir, Deadline(None))
    assert (run_dir / "generator_text" / "config.json").is_file()

    tower, _ = text_encoder_and_tokenizer(frozen, run_dir)
    tuned, _ = text_encoder_and_tokenizer(config, run_dir)
    tower_state = tower.state_dict()
    assert any(not torch.equal(v, tower_state[n]) for n, v in tuned.state_dict().items())
