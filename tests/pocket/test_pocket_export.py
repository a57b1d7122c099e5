"""Exported pocket models load through imagineer's ordinary loaders, with no special case."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from tiny_specs import TINY_CLIP, TINY_UNET, TINY_VAE

from imagineer.generators.diffusers_generator import DiffusersConfig, DiffusersGenerator
from imagineer.pocket.convert import to_clip_text_model
from imagineer.pocket.export import export_generator, export_scorer
from imagineer.pocket.models import build_clip, build_unet, build_vae
from imagineer.pocket.paths import verified
from imagineer.scoring.clip_scorer import ClipScorer


def test_scorer_and_generator_load_and_run(tmp_path: Path) -> None:
    torch.manual_seed(0)
    clip = build_clip(TINY_CLIP).eval()
    export_scorer(clip, TINY_CLIP, tmp_path / "scorer")
    vae = build_vae(TINY_VAE).eval()
    unet = build_unet(TINY_UNET, TINY_CLIP.text_width, sample_size=32).eval()
    defaults = {"steps": 2, "guidance": 3.0, "scheduler": "euler"}
    export_generator(to_clip_text_model(clip), vae, unet, tmp_path / "generator", defaults)

    for name in ("scorer", "generator"):  # the export records every file's content
        assert verified(tmp_path / name, name) == tmp_path / name
    generator = DiffusersGenerator(DiffusersConfig(model=str(tmp_path / "generator")))
    candidates = generator.render("a red star on the left", n=2, seed=0)
    assert [c.image.size for c in candidates] == [(64, 64)] * 2
    assert candidates[0].params.steps == 2
    scores = ClipScorer(str(tmp_path / "scorer")).score([c.image for c in candidates], "a star")
    assert len(scores) == 2 and -1 <= scores[0].cosine <= 1
    hub = json.loads((tmp_path / "scorer" / "open_clip_config.json").read_text())
    assert hub["model_cfg"]["text_cfg"]["vocab_size"] == 49408


def test_export_stage_writes_the_scorer_from_the_latest_clip_checkpoint(tmp_path: Path) -> None:
    import open_clip

    from imagineer.pocket.checkpoints import save_checkpoint
    from imagineer.pocket.pipeline import export_scorer_checkpoint
    from imagineer.pocket.train import TrainConfig

    config = TrainConfig(clip_spec=TINY_CLIP)
    export_scorer_checkpoint(config, tmp_path / "run", tmp_path / "out")  # nothing trained yet
    assert not (tmp_path / "out" / "scorer").exists()
    torch.manual_seed(1)
    clip = build_clip(TINY_CLIP).eval()
    save_checkpoint(tmp_path / "run" / "clip.pt", {"model": clip.state_dict(), "step": 7})
    export_scorer_checkpoint(config, tmp_path / "run", tmp_path / "out")

    scorer = ClipScorer(str(tmp_path / "out" / "scorer"))
    texts = ["a red star on the left", "two blue circles at night"]
    tokens = open_clip.get_tokenizer("ViT-B-32")(texts)
    with torch.inference_mode():
        expected = torch.nn.functional.normalize(clip.encode_text(tokens), dim=-1)
    assert torch.allclose(torch.as_tensor(scorer.embed_texts(texts)), expected, atol=2e-2)


def test_scorer_evaluation_reports_rank_and_per_kind_pairs(tmp_path: Path) -> None:
    from imagineer.pocket.datasets import SWAP_KINDS
    from imagineer.pocket.evaluate import evaluate_scorer
    from imagineer.pocket.world import load_world

    torch.manual_seed(2)
    export_scorer(build_clip(TINY_CLIP).eval(), TINY_CLIP, tmp_path / "scorer")
    report = evaluate_scorer(tmp_path, 6, 0, load_world())
    assert report["swap_rank"] in {i / 6 for i in range(7)}
    pairwise = report["pairwise"]
    assert {"colour", "shape", "lighting", "style"} <= set(pairwise) <= set(SWAP_KINDS)
    assert all(0.0 <= value <= 1.0 for value in pairwise.values())
    # The per-count split adds up to the whole, and a scene missed was beaten by some swap.
    by_things = report["swap_rank_by_things"]
    assert sum(row["scenes"] for row in by_things.values()) == 6
    assert set(by_things) <= {1, 2, 3}
    hits = sum(row["share"] * row["scenes"] for row in by_things.values())
    assert abs(hits / 6 - report["swap_rank"]) < 0.01
    assert set(report["beaten_by"]) <= set(SWAP_KINDS)
    assert (sum(report["beaten_by"].values()) > 0) == (report["swap_rank"] < 1)


def test_swapped_captions_name_the_kind_each_swap_changed() -> None:
    from imagineer.pocket.datasets import SWAP_KINDS, describe, swap
    from imagineer.pocket.train_clip import swapped_captions, swapped_captions_with_kinds
    from imagineer.pocket.world import Scene, SceneObject, load_world

    world = load_world()
    scene = Scene(
        objects=[
            SceneObject(shape="star", colour="red", size="small", position="left"),
            SceneObject(shape="heart", colour="blue", size="large", position="right"),
        ],
        lighting="sunset",
        style="flat",
    )
    texts, kinds = swapped_captions_with_kinds(scene, 5, np.random.default_rng(1), world, 10)
    assert texts == swapped_captions(scene, 5, np.random.default_rng(1), world, 10)
    assert len(kinds) == len(texts) - 1 == 10
    assert "binding" in kinds  # two things of different colours can trade them
    # Each kind is the one that made its text: redo that swap with the generator's draws.
    replay = np.random.default_rng(1)
    made: dict[str, str] = {}
    for attempt in range(200):
        kind = SWAP_KINDS[attempt % len(SWAP_KINDS)]
        other = swap(scene, kind, replay, world)
        if other is not None:
            made.setdefault(describe(other, 5, world, True), kind)
    assert all(made[text] == kind for text, kind in zip(texts[1:], kinds, strict=True))


def test_a_run_reuses_an_exported_generators_text_encoder_and_vae(tmp_path: Path) -> None:
    from diffusers import AutoencoderKL
    from transformers import CLIPTextModel

    from imagineer.pocket.pipeline import reuse_generator_parts

    torch.manual_seed(0)
    clip = build_clip(TINY_CLIP).eval()
    vae = build_vae(TINY_VAE).eval()
    unet = build_unet(TINY_UNET, TINY_CLIP.text_width, sample_size=32).eval()
    defaults = {"steps": 2, "guidance": 3.0, "scheduler": "euler"}
    generator = tmp_path / "generator"
    export_generator(to_clip_text_model(clip), vae, unet, generator, defaults)

    run_dir = tmp_path / "run"
    reuse_generator_parts(generator, run_dir)
    record = json.loads((run_dir / "reused.json").read_text())
    assert record["parts"] == ["text_encoder", "vae"] and len(record["manifest_sha256"]) == 64
    text = CLIPTextModel.from_pretrained(str(run_dir / "text_encoder"))
    assert text.dtype == torch.float32  # upcast for training, not the export's fp16
    exported = CLIPTextModel.from_pretrained(str(generator / "text_encoder"))
    for (name, a), b in zip(text.state_dict().items(), exported.state_dict().values(), strict=True):
        assert torch.equal(a, b.float()), name
    reused_vae = AutoencoderKL.from_pretrained(str(run_dir / "vae"))
    assert reused_vae.config.scaling_factor == vae.config.scaling_factor

    reuse_generator_parts(generator, run_dir)  # a resumed run: already seeded, nothing changes
    (run_dir / "reused.json").unlink()
    with pytest.raises(FileExistsError):  # never overwrite a run's own products
        reuse_generator_parts(generator, run_dir)
    with pytest.raises(FileNotFoundError, match="not an exported pocket generator"):
        reuse_generator_parts(tmp_path / "nowhere", tmp_path / "other")


def test_a_resnet_tower_scorer_exports_and_scores_like_the_vit(tmp_path: Path) -> None:
    spec = TINY_CLIP.model_copy(update={"resnet_layers": (1, 1, 1, 1), "vision_width": 16})
    torch.manual_seed(0)
    clip = build_clip(spec).eval()
    export_scorer(clip, spec, tmp_path / "scorer")

    scorer = ClipScorer(str(tmp_path / "scorer"))
    image = Image.fromarray(np.full((64, 64, 3), 200, dtype=np.uint8))
    cosine = scorer.score([image], "a star")[0].cosine
    with torch.inference_mode():
        pixels = scorer.loaded.preprocess(image).unsqueeze(0)
        expected = F.cosine_similarity(
            clip.encode_image(pixels), clip.encode_text(scorer.loaded.tokenizer(["a star"]))
        )
    assert cosine == pytest.approx(float(expected), abs=2e-3)  # fp16 weights on disk
    hub = json.loads((tmp_path / "scorer" / "open_clip_config.json").read_text())
    assert hub["model_cfg"]["vision_cfg"]["layers"] == [1, 1, 1, 1]


def test_a_resnet_tower_needs_a_side_that_is_a_multiple_of_32() -> None:
    with pytest.raises(ValueError, match="multiple of 32"):
        TINY_CLIP.model_validate(
            {**TINY_CLIP.model_dump(), "resnet_layers": (1, 1, 1, 1), "image_size": 48}
        )


def test_a_recipe_with_a_scorer_of_its_own_trains_and_exports_it_apart(tmp_path: Path) -> None:
    from imagineer.pocket.checkpoints import Deadline
    from imagineer.pocket.pipeline import export_scorer_checkpoint, run
    from imagineer.pocket.train import TrainConfig
    from imagineer.pocket.train_clip import ClipStage

    small = {"batch": 4, "negatives": 1, "save_every": 1, "eval_every": 100}
    resnet = TINY_CLIP.model_copy(update={"resnet_layers": (1, 1, 1, 1), "vision_width": 16})
    config = TrainConfig(
        n_scenes=100,
        n_held_out=10,
        clip_spec=TINY_CLIP,
        clip=ClipStage(steps=2, **small),
        scorer_spec=resnet,
        scorer=ClipStage(steps=3, restarts=(2,), **small),
    )
    run_dir, out = tmp_path / "run", tmp_path / "out"
    run(config, ["clip"], run_dir, out, Deadline(None))
    assert (run_dir / "text_encoder" / "config.json").is_file()
    assert not (out / "scorer").exists()  # the generator's CLIP is not the scorer here
    run(config, ["clip", "scorer"], run_dir, out, Deadline(None))
    assert torch.load(run_dir / "scorer" / "clip.pt", weights_only=True)["step"] == 3
    hub = json.loads((out / "scorer" / "open_clip_config.json").read_text())
    assert hub["model_cfg"]["vision_cfg"]["layers"] == [1, 1, 1, 1]
    exported = (out / "scorer" / "open_clip_model.safetensors").read_bytes()
    export_scorer_checkpoint(config, run_dir, tmp_path / "again")  # --stages export
    assert (tmp_path / "again" / "scorer" / "open_clip_model.safetensors").read_bytes() == exported

    with pytest.raises(ValueError, match="scorer_spec and scorer go together"):
        TrainConfig(scorer_spec=resnet)
