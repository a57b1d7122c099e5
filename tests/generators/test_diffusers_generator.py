"""DiffusersGenerator on a tiny real pipeline, loaded the way users load theirs."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from imagineer.errors import CorruptWeights, InvalidInput, ModelNotAvailable, UnknownScheduler
from imagineer.generators import DiffusersConfig, DiffusersGenerator, derive_seeds
from imagineer.generators.diffusers_generator import (
    RENDER_DEFAULTS_FILE,
    pick_device,
    pick_dtype,
    pipeline_loads,
)

STEPS = 3


@pytest.fixture(scope="module")
def generator(tiny_pipeline_dir: Path) -> DiffusersGenerator:
    return DiffusersGenerator(DiffusersConfig(model=str(tiny_pipeline_dir), steps=STEPS))


def pixels(candidate) -> np.ndarray:
    return np.asarray(candidate.image, dtype=np.int16)


def max_difference(a, b) -> int:
    """Largest per-channel difference in 8-bit levels between two candidates' images."""
    return int(np.abs(pixels(a) - pixels(b)).max())


# CPU kernels may round differently at another batch size, so an image re-rendered alone can
# differ from its batched original by a level or two out of 255 (bit-exact at equal batch size).
BATCH_TOLERANCE = 2


def test_same_seed_gives_identical_pixels(generator: DiffusersGenerator) -> None:
    first = generator.render("a red circle on the left", n=2, seed=11)
    second = generator.render("a red circle on the left", n=2, seed=11)
    for a, b in zip(first, second, strict=True):
        assert np.array_equal(pixels(a), pixels(b))
    assert not np.array_equal(pixels(first[0]), pixels(first[1]))


def test_n_candidates_get_n_distinct_recorded_seeds(generator: DiffusersGenerator) -> None:
    candidates = generator.render(["a cat", "a dog"], n=3, seed=5)
    seeds = [c.params.seed for c in candidates]
    assert len(candidates) == 6
    assert len(set(seeds)) == 6
    assert seeds == derive_seeds(5, 6)
    assert [c.params.prompt for c in candidates] == ["a cat"] * 3 + ["a dog"] * 3


def test_a_candidate_is_reproduced_from_its_record_alone(generator: DiffusersGenerator) -> None:
    batch = generator.render(["a cat", "a dog in the rain"], "blurry", n=2, seed=9)
    record = batch[3].record()
    again = generator.render(
        record["params"]["prompt"],
        record["params"]["negative_prompt"],
        seeds=[record["params"]["seed"]],
        steps=record["params"]["steps"],
        guidance=record["params"]["guidance"],
    )[0]
    assert max_difference(again, batch[3]) <= BATCH_TOLERANCE
    assert max_difference(again, batch[2]) > 20  # a different seed is a different image
    assert json.loads(json.dumps(record))["params"]["model_revision"].startswith("sha256-fp:")


def test_negative_prompt_changes_the_output(generator: DiffusersGenerator) -> None:
    plain = generator.render("a house", seeds=[1], guidance=7.0)[0]
    negated = generator.render("a house", "fog, blur, ugly", seeds=[1], guidance=7.0)[0]
    assert negated.params.negative_prompt == "fog, blur, ugly"
    assert not np.array_equal(pixels(plain), pixels(negated))


def test_save_and_load_round_trip_renders_the_same(
    generator: DiffusersGenerator, tmp_path: Path
) -> None:
    generator.pipeline.save_pretrained(str(tmp_path / "copy"), safe_serialization=True)
    copy = DiffusersGenerator(DiffusersConfig(model=str(tmp_path / "copy"), steps=STEPS))
    original = generator.render("a blue square", seeds=[42])[0]
    reloaded = copy.render("a blue square", seeds=[42])[0]
    assert np.array_equal(pixels(original), pixels(reloaded))
    assert not list((tmp_path / "copy").rglob("*.bin")), "weights must be safetensors only"


def test_pipelines_are_loaded_once_per_process(tiny_pipeline_dir: Path) -> None:
    config = DiffusersConfig(model=str(tiny_pipeline_dir), steps=STEPS)
    DiffusersGenerator(config).render("warm up", seeds=[0])
    before = pipeline_loads()
    first, second = DiffusersGenerator(config), DiffusersGenerator(config.model_copy())
    first.render("a", seeds=[1])
    second.render("b", seeds=[2])
    assert pipeline_loads() == before
    assert first.pipeline is second.pipeline


@pytest.mark.parametrize("name", ["euler", "euler_a", "dpmpp_2m", "ddim", "lcm", "DPM++ 2M Karras"])
def test_named_schedulers_render_and_are_recorded(generator: DiffusersGenerator, name: str) -> None:
    candidate = generator.render("a tree", seeds=[3], scheduler=name)[0]
    assert candidate.params.scheduler == name.lower().replace(" ", "_").replace("++", "pp")
    assert candidate.image.size == (32, 32)


def test_scheduler_choice_changes_the_output(generator: DiffusersGenerator) -> None:
    euler = generator.render("a tree", seeds=[3], scheduler="euler", steps=4)[0]
    ddim = generator.render("a tree", seeds=[3], scheduler="ddim", steps=4)[0]
    assert not np.array_equal(pixels(euler), pixels(ddim))
    back = generator.render("a tree", seeds=[3], scheduler="euler", steps=4)[0]
    assert np.array_equal(pixels(euler), pixels(back))


def test_size_and_defaults_are_recorded(generator: DiffusersGenerator) -> None:
    candidate = generator.render("a boat", seeds=[1], width=48, height=16)[0]
    assert candidate.image.size == (48, 16)
    params = candidate.params
    assert (params.width, params.height, params.steps, params.guidance) == (48, 16, STEPS, 7.0)
    assert params.device == "cpu" and params.dtype == "float32"
    assert params.pipeline == "StableDiffusionPipeline"


def test_model_directory_may_ship_its_own_render_defaults(
    tiny_pipeline_dir: Path, tmp_path: Path
) -> None:
    model = tmp_path / "with-defaults"
    shutil.copytree(tiny_pipeline_dir, model)
    (model / RENDER_DEFAULTS_FILE).write_text(json.dumps({"steps": 2, "guidance": 3.5}))
    candidate = DiffusersGenerator(str(model)).render("a boat", seeds=[1])[0]
    assert (candidate.params.steps, candidate.params.guidance) == (2, 3.5)


def test_device_and_dtype_choice() -> None:
    assert pick_device(None).type == "cpu"  # these machines have no accelerator
    assert str(pick_dtype(pick_device("cpu"), None)) == "torch.float32"
    assert str(pick_dtype(pick_device("cuda"), None)) == "torch.float16"
    assert str(pick_dtype(pick_device("cpu"), "bfloat16")) == "torch.bfloat16"
    with pytest.raises(InvalidInput, match="tpu9"):
        pick_device("tpu9")


# CLIP splits digits, so this is 89 tokens: more than one 75-token window, less than two.
LONG = ", ".join(f"detail number {i}" for i in range(20))


def test_long_prompts_are_encoded_in_windows_not_cut(generator: DiffusersGenerator) -> None:
    candidate = generator.render(LONG, seeds=[4])[0]
    window = candidate.prompt_window
    assert window is not None
    assert window.tokens > 75 and window.chunks == 2 and window.truncated == ""
    # The tail past token 75 reaches the model: changing only the tail changes the image.
    other_tail = generator.render(LONG + ", and a dragon", seeds=[4])[0]
    assert not np.array_equal(pixels(candidate), pixels(other_tail))


def test_long_prompt_in_a_batch_does_not_change_short_ones(generator: DiffusersGenerator) -> None:
    alone = generator.render("a short prompt", seeds=[8])[0]
    mixed = generator.render(["a short prompt", LONG], seeds=[8, 9])
    assert max_difference(alone, mixed[0]) <= BATCH_TOLERANCE
    assert mixed[1].prompt_window is not None and mixed[1].prompt_window.chunks == 2


def test_truncation_is_recorded_and_logged(
    tiny_pipeline_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = DiffusersConfig(model=str(tiny_pipeline_dir), steps=STEPS, long_prompts="truncate")
    with caplog.at_level(logging.WARNING):
        candidate = DiffusersGenerator(config).render(LONG, seeds=[4])[0]
    window = candidate.prompt_window
    assert window is not None and window.chunks == 1
    # The cut text is the decoded tokens: CLIP reads "19" as the two tokens "1" and "9".
    assert window.truncated.replace(" ", "").endswith("detailnumber19")
    assert window.truncated in caplog.text


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prompt": ""}, "prompt must be non-empty"),
        ({"prompt": "   "}, "prompt must be non-empty"),
        ({"prompt": "a", "n": 0}, "n must be >= 1, got 0"),
        ({"prompt": "a", "width": 30}, "width must be a positive multiple of 8, got 30"),
        ({"prompt": "a", "height": 0}, "height must be a positive multiple of 8, got 0"),
        ({"prompt": "a", "n": 1, "seeds": [1, 2]}, "got 2 seeds for 1 candidates"),
        ({"prompt": ["a", "b"], "seeds": [1, 2, 3]}, "got 3 seeds for 2 candidates"),
        ({"prompt": "a", "seeds": [-1]}, "seed -1 is outside"),
        ({"prompt": ["a", "b"], "negative_prompt": ["x"]}, "got 1 negative prompts for 2"),
    ],
)
def test_bad_input_raises_a_typed_error(
    generator: DiffusersGenerator, kwargs: dict, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        generator.render(**kwargs)


def test_unknown_scheduler_names_the_value_and_the_choices(generator: DiffusersGenerator) -> None:
    with pytest.raises(UnknownScheduler, match=r"'warp_drive'.*euler_a"):
        generator.render("a", scheduler="warp_drive")
    with pytest.raises(UnknownScheduler):
        DiffusersGenerator(DiffusersConfig(model="x/y", scheduler="nope"))


def test_missing_hub_model_offline_raises_model_not_available() -> None:
    generator = DiffusersGenerator("stabilityai/sd-turbo")
    with pytest.raises(ModelNotAvailable) as caught:
        generator.render("a fox")
    message = str(caught.value)
    assert "stabilityai/sd-turbo" in message and "HF cache" in message and "pocket" in message
    assert caught.value.__cause__ is not None


def test_missing_local_directory_raises_model_not_available(tmp_path: Path) -> None:
    with pytest.raises(ModelNotAvailable, match="no-such-model"):
        DiffusersGenerator(str(tmp_path / "no-such-model")).render("a fox")


def test_directory_that_is_not_a_pipeline_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"model_index\.json"):
        DiffusersGenerator(str(tmp_path)).render("a fox")


def test_unreadable_checkpoint_raises_corrupt_weights(
    tiny_pipeline_dir: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(tiny_pipeline_dir, broken)
    (broken / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CorruptWeights, match="broken") as caught:
        DiffusersGenerator(str(broken)).render("a fox")
    assert caught.value.__cause__ is not None
