"""Regional prompts: the blend weights, the attention processor, and rendering with regions."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers.models.attention_processor import Attention, AttnProcessor2_0
from pydantic import ValidationError

from imagineer.errors import InvalidInput
from imagineer.generators import DiffusersConfig, DiffusersGenerator, Region
from imagineer.generators.diffusers_generator import _check_regions
from imagineer.generators.regions import RegionalAttention, region_weights, regional_attention

LEFT = Region(prompt="a red circle on the left", box=(0.0, 0.0, 0.5, 1.0))
RIGHT = Region(prompt="a blue star on the right", box=(0.5, 0.0, 1.0, 1.0))
MIDDLE = Region(prompt="a green square", box=(0.25, 0.0, 0.75, 1.0))


def test_weights_sum_to_one_and_follow_the_boxes() -> None:
    weights = region_weights([LEFT, MIDDLE], base=0.3, height=4, width=8)
    assert weights.shape == (3, 4, 8)
    assert torch.allclose(weights.sum(0), torch.ones(4, 8))
    # columns 0-1: LEFT only; 2-3: LEFT and MIDDLE share; 4-5: MIDDLE only; 6-7: no region
    assert torch.allclose(weights[:, 0, 0], torch.tensor([0.3, 0.7, 0.0]))
    assert torch.allclose(weights[:, 0, 3], torch.tensor([0.3, 0.35, 0.35]))
    assert torch.allclose(weights[:, 0, 5], torch.tensor([0.3, 0.0, 0.7]))
    assert torch.allclose(weights[:, 0, 7], torch.tensor([1.0, 0.0, 0.0]))


def test_no_regions_is_the_whole_prompt_everywhere() -> None:
    assert torch.equal(region_weights([], 0.3, 2, 2), torch.ones(1, 2, 2))


@pytest.mark.parametrize("base", [-0.1, 1.5])
def test_base_weight_out_of_range_is_refused(base: float) -> None:
    with pytest.raises(InvalidInput, match="base weight"):
        region_weights([LEFT], base, 2, 2)


@pytest.mark.parametrize(
    "box", [(0.5, 0.0, 0.5, 1.0), (0.0, 0.0, 1.2, 1.0), (0.6, 0.0, 0.2, 1.0), (0, -0.1, 1, 1)]
)
def test_a_box_outside_the_canvas_or_empty_is_refused(box: tuple[float, ...]) -> None:
    with pytest.raises(ValidationError, match="box"):
        Region(prompt="a star", box=box)


def test_a_blank_region_prompt_is_refused() -> None:
    with pytest.raises(ValidationError, match="blank"):
        Region(prompt="   ", box=(0, 0, 1, 1))


def _layer() -> Attention:
    torch.manual_seed(0)
    attn = Attention(query_dim=8, cross_attention_dim=6, heads=2, dim_head=4)
    attn.set_processor(AttnProcessor2_0())
    return attn.eval()


def test_identical_segments_attend_exactly_like_one_prompt() -> None:
    attn, inner = _layer(), AttnProcessor2_0()
    hidden = torch.randn(2, 16, 8)  # 4x4 pixels
    text = torch.randn(2, 5, 6)
    weights = region_weights([LEFT, RIGHT], 0.3, 4, 4)[None].repeat(2, 1, 1, 1)
    regional = RegionalAttention(inner, weights, [5, 5, 5])
    with torch.no_grad():
        plain = inner(attn, hidden, text)
        blended = regional(attn, hidden, text.repeat(1, 3, 1))
    assert torch.allclose(plain, blended, atol=1e-6)


def test_each_pixel_reads_its_own_region_prompt() -> None:
    attn, inner = _layer(), AttnProcessor2_0()
    hidden = torch.randn(1, 16, 8)
    whole, left, right = torch.randn(3, 1, 5, 6)
    weights = region_weights([LEFT, RIGHT], 0.0, 4, 4)[None]  # base 0: regions alone
    regional = RegionalAttention(inner, weights, [5, 5, 5])
    with torch.no_grad():
        out = regional(attn, hidden, torch.cat([whole, left, right], 1)).reshape(1, 4, 4, -1)
        only_left = inner(attn, hidden, left).reshape(1, 4, 4, -1)
        only_right = inner(attn, hidden, right).reshape(1, 4, 4, -1)
    assert torch.allclose(out[:, :, :2], only_left[:, :, :2], atol=1e-6)
    assert torch.allclose(out[:, :, 2:], only_right[:, :, 2:], atol=1e-6)
    assert not torch.allclose(out[:, :, :2], only_right[:, :, :2], atol=1e-3)


def test_guidance_batches_reuse_the_weights_and_coarser_layers_pool_them() -> None:
    attn, inner = _layer(), AttnProcessor2_0()
    weights = region_weights([LEFT, RIGHT], 0.3, 8, 8)[None]
    regional = RegionalAttention(inner, weights, [5, 5, 5])
    text = torch.randn(2, 15, 6)
    with torch.no_grad():
        out = regional(attn, torch.randn(2, 4, 8), text)  # 2x2 layer, [negative, positive]
    assert out.shape == (2, 4, 8)
    with pytest.raises(InvalidInput, match="batch"):
        regional(attn, torch.randn(3, 4, 8), torch.randn(3, 15, 6))


def test_other_sequence_lengths_go_straight_to_the_layer_processor() -> None:
    attn, inner = _layer(), AttnProcessor2_0()
    regional = RegionalAttention(inner, region_weights([LEFT], 0.3, 4, 4)[None], [5, 5])
    hidden, text = torch.randn(1, 16, 8), torch.randn(1, 7, 6)
    with torch.no_grad():
        assert torch.equal(regional(attn, hidden, text), inner(attn, hidden, text))


@pytest.fixture(scope="module")
def generator(tiny_pipeline_dir: Path) -> DiffusersGenerator:
    return DiffusersGenerator(DiffusersConfig(model=str(tiny_pipeline_dir), steps=3))


def test_processors_are_restored_after_an_error(generator: DiffusersGenerator) -> None:
    unet = generator.pipeline.unet
    before = {name: type(p) for name, p in unet.attn_processors.items()}
    weights = region_weights([LEFT], 0.3, 4, 4)[None]
    with pytest.raises(RuntimeError, match="boom"), regional_attention(unet, weights, [77, 77]):
        assert any(isinstance(p, RegionalAttention) for p in unet.attn_processors.values())
        raise RuntimeError("boom")
    assert {name: type(p) for name, p in unet.attn_processors.items()} == before


def test_regions_change_the_image_are_recorded_and_reproduce_alone(
    generator: DiffusersGenerator,
) -> None:
    prompt = "a red circle and a blue star"
    seeds = [11, 12]
    batch = generator.render([prompt, prompt], seeds=seeds * 2, regions=[[], [LEFT, RIGHT]])
    plain, regional = batch[:2], batch[2:]
    for a, b in zip(plain, regional, strict=True):
        assert not np.array_equal(np.asarray(a.image), np.asarray(b.image))
    assert regional[0].params.regions == (LEFT, RIGHT)
    assert regional[0].params.region_base == generator.config.region_base
    assert plain[0].params.regions == () and plain[0].params.region_base is None
    again = generator.render(prompt, seeds=[regional[1].params.seed], regions=[[LEFT, RIGHT]])
    assert np.array_equal(np.asarray(again[0].image), np.asarray(regional[1].image))
    # the same regions with another base weight give another image
    other = DiffusersGenerator(generator.config.model_copy(update={"region_base": 0.9}))
    moved = other.render(prompt, seeds=[regional[1].params.seed], regions=[[LEFT, RIGHT]])
    assert not np.array_equal(np.asarray(moved[0].image), np.asarray(regional[1].image))


def test_bad_region_lists_raise_typed_errors(generator: DiffusersGenerator) -> None:
    assert generator.supports_regions
    with pytest.raises(InvalidInput, match="one list per prompt"):
        generator.render(["a", "b"], regions=[[LEFT]])
    with pytest.raises(InvalidInput, match="Region"):
        generator.render("a", regions=[["a red circle"]])  # type: ignore[list-item]
    with pytest.raises(InvalidInput, match="single text encoder"):
        _check_regions([[LEFT]], 1, supported=False)
    assert _check_regions(None, 2, supported=False) == [[], []]


def test_long_region_prompts_are_chunked_or_their_cut_is_logged(
    tiny_pipeline_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    long_region = Region(
        prompt=", ".join(f"a red circle with detail number {i}" for i in range(20)),
        box=(0.0, 0.0, 0.5, 1.0),
    )
    chunked = DiffusersGenerator(DiffusersConfig(model=str(tiny_pipeline_dir), steps=2))
    cut = DiffusersGenerator(
        DiffusersConfig(model=str(tiny_pipeline_dir), steps=2, long_prompts="truncate")
    )
    with caplog.at_level(logging.WARNING):
        chunked.render("a circle", seeds=[3], regions=[[long_region]])
        assert not caplog.records  # chunked: nothing cut, nothing logged
        cut.render("a circle", seeds=[3], regions=[[long_region]])
    assert "number19" in caplog.text.replace(" ", "")  # the cut tail of the region's prompt
