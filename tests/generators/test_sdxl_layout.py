"""An SDXL-layout pipeline (two text encoders) through the same DiffusersGenerator path.

Real SDXL weights cannot be downloaded here, so a tiny StableDiffusionXLPipeline with random
weights stands in: it checks that AutoPipeline loading, batching, seeds and the long-prompt policy
(SDXL cannot take chunked embeddings here, so cuts are recorded) work for that layout too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from imagineer.generators import DiffusersConfig, DiffusersGenerator
from imagineer.pocket.tokenizer import VOCAB_SIZE, build_clip_tokenizer


@pytest.fixture(scope="module")
def sdxl_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(16, 32),
        layers_per_block=1,
        sample_size=16,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=8 * 6 + 16,  # 6 time ids + pooled text width
        cross_attention_dim=32,  # both encoders' hidden states, concatenated
        norm_num_groups=8,
    )
    vae = AutoencoderKL(
        block_out_channels=(16, 32),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        norm_num_groups=8,
        sample_size=32,
    )
    text: dict[str, Any] = {
        "vocab_size": VOCAB_SIZE, "hidden_size": 16, "intermediate_size": 32,
        "num_hidden_layers": 2, "num_attention_heads": 2, "max_position_embeddings": 77,
        "bos_token_id": 49406, "eos_token_id": 49407, "pad_token_id": 49407, "projection_dim": 16,
    }  # fmt: skip
    directory = tmp_path_factory.mktemp("sdxl") / "pipe"
    tokenizer = build_clip_tokenizer(directory / "tokenizer")
    pipe: Any = StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=CLIPTextModel(CLIPTextConfig(**text)),
        text_encoder_2=CLIPTextModelWithProjection(CLIPTextConfig(**text)),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        unet=unet,
        scheduler=EulerDiscreteScheduler(beta_schedule="scaled_linear", steps_offset=1),
    )
    pipe.save_pretrained(str(directory), safe_serialization=True)
    return directory


def test_sdxl_layout_renders_batches_with_recorded_seeds(sdxl_dir: Path) -> None:
    generator = DiffusersGenerator(DiffusersConfig(model=str(sdxl_dir), steps=2))
    candidates = generator.render(["a fox", "a cat"], "blurry", n=2, seed=3)
    assert [c.params.pipeline for c in candidates] == ["StableDiffusionXLPipeline"] * 4
    assert len({c.params.seed for c in candidates}) == 4
    again = generator.render(["a fox", "a cat"], "blurry", n=2, seed=3)
    assert all(
        np.array_equal(np.asarray(a.image), np.asarray(b.image))
        for a, b in zip(candidates, again, strict=True)
    )


def test_sdxl_long_prompts_are_cut_and_the_cut_is_recorded(sdxl_dir: Path) -> None:
    generator = DiffusersGenerator(DiffusersConfig(model=str(sdxl_dir), steps=2))
    long_prompt = ", ".join(f"item {i}" for i in range(40))
    window = generator.render(long_prompt, seeds=[1])[0].prompt_window
    assert window is not None and window.chunks == 1 and window.tokens > 75
    assert window.truncated.replace(" ", "").endswith("item39")
