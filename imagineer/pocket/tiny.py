"""Tiny, untrained models in the real formats, built locally in seconds.

Tests (and the main job, until trained pocket models are bundled) need a diffusers pipeline
directory and an open_clip model that load through exactly the code path real weights take. These
builders make them from scratch after ``torch.manual_seed(seed)``: real architectures, random
weights, saved as safetensors with their configs.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch

from imagineer.pocket.tokenizer import VOCAB_SIZE, build_clip_tokenizer

logger = logging.getLogger(__name__)

TINY_CLIP_NAME = "imagineer-tiny-clip"


def build_tiny_pipeline(directory: Path, seed: int = 0, image_size: int = 32) -> Path:
    """Save a tiny random ``StableDiffusionPipeline`` to ``directory``.

    Args:
        directory: Target directory (created; existing files are overwritten).
        seed: Seed for the random weights; the same seed gives the same files.
        image_size: Native image size in pixels (a multiple of 16).

    Returns:
        ``directory``, loadable with ``AutoPipelineForText2Image.from_pretrained``.
    """
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=image_size // 2,
        block_out_channels=(16, 32),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=16,
        attention_head_dim=4,
        norm_num_groups=8,
    )
    vae = AutoencoderKL(
        block_out_channels=(16, 32),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=image_size,
        mid_block_add_attention=False,  # full-resolution attention would dominate a tiny render
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=VOCAB_SIZE,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            max_position_embeddings=77,
            bos_token_id=49406,
            eos_token_id=49407,
            pad_token_id=49407,
        )
    )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1
    )
    directory = Path(directory)
    tokenizer = build_clip_tokenizer(directory / "tokenizer")
    pipe: Any = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(str(directory), safe_serialization=True)
    logger.info("saved a tiny random pipeline to %s", directory)
    return directory


def tiny_clip_config(embed_dim: int = 16) -> dict[str, Any]:
    """An open_clip model config (the ``model_configs/*.json`` shape) small enough for tests."""
    return {
        "embed_dim": embed_dim,
        "vision_cfg": {
            "image_size": 32,
            "layers": 1,
            "width": 32,
            "head_width": 16,
            "patch_size": 8,
        },
        "text_cfg": {
            "context_length": 77,
            "vocab_size": VOCAB_SIZE,
            "width": 32,
            "heads": 2,
            "layers": 1,
        },
    }


def build_tiny_clip(directory: Path, seed: int = 0, name: str = TINY_CLIP_NAME) -> Path:
    """Save a tiny random open_clip model to ``directory`` in open_clip's hub layout.

    The directory holds ``open_clip_config.json`` (``model_cfg`` and ``preprocess_cfg``) and
    ``open_clip_model.safetensors``, the layout ``create_model_and_transforms('local-dir:...')``
    reads, plus ``{name}.json``, the bare model config for ``open_clip.add_model_config``.

    Returns:
        ``directory``.
    """
    import open_clip
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model_cfg = tiny_clip_config()
    (directory / f"{name}.json").write_text(json.dumps(model_cfg, indent=2))
    hub_config = {"model_cfg": model_cfg, "preprocess_cfg": {}}  # open_clip's default preprocessing
    (directory / "open_clip_config.json").write_text(json.dumps(hub_config, indent=2))
    torch.manual_seed(seed)
    model = open_clip.CLIP(**model_cfg)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(directory / "open_clip_model.safetensors"))
    logger.info("saved a tiny random open_clip model to %s", directory)
    return directory
