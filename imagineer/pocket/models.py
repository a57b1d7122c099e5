"""Architectures of the pocket models, as typed specs that build real library components.

The pocket models are ordinary open_clip and diffusers models, only small: a CLIP (ViT image
tower on 64x64 renders, causal text tower over CLIP's 49,408-token vocabulary), an
``AutoencoderKL`` and a ``UNet2DConditionModel``. Each spec is the component's constructor
arguments in one place, so a spec, a checkpoint and the saved config always agree.

Example:
    >>> clip = build_clip(ClipSpec())
    >>> vae = build_vae(VaeSpec())
    >>> unet = build_unet(UnetSpec(), cross_attention_dim=ClipSpec().text_width)
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import BaseModel, Field, model_validator

from imagineer.pocket.tokenizer import VOCAB_SIZE

POCKET_CLIP_NAME = "imagineer-pocket-clip"
CONTEXT_LENGTH = 77


class ClipSpec(BaseModel):
    """A small open_clip CLIP for 64x64 pocket renders.

    The text tower is the generator's text encoder too (converted to a ``CLIPTextModel``), so its
    width is also the UNet's cross-attention width; it is kept small because its 49,408-row token
    embedding ships twice (scorer and generator).
    """

    embed_dim: int = Field(128, ge=8, description="Joint image-text embedding width.")
    image_size: int = Field(64, ge=16, description="Input side in pixels.")
    patch_size: int = Field(8, ge=2, description="ViT patch side in pixels.")
    vision_width: int = Field(128, ge=16, description="ViT width, or the ResNet stem's width.")
    vision_layers: int = Field(4, ge=1, description="ViT blocks (unused by a ResNet tower).")
    vision_head_width: int = Field(32, ge=8)
    resnet_layers: tuple[int, int, int, int] | None = Field(
        None,
        description="Blocks per stage of open_clip's ModifiedResNet image tower instead of a "
        "ViT (convolutions, for shapes and counts); the side must be a multiple of 32.",
    )
    text_width: int = Field(64, ge=16)
    text_layers: int = Field(4, ge=1)
    text_heads: int = Field(4, ge=1)

    def model_cfg(self) -> dict[str, Any]:
        """The open_clip model config (the shape of open_clip's ``model_configs/*.json``)."""
        return {
            "embed_dim": self.embed_dim,
            "vision_cfg": self._vision_cfg(),
            "text_cfg": {
                "context_length": CONTEXT_LENGTH,
                "vocab_size": VOCAB_SIZE,
                "width": self.text_width,
                "heads": self.text_heads,
                "layers": self.text_layers,
            },
        }

    def _vision_cfg(self) -> dict[str, Any]:
        if self.resnet_layers is not None:
            return {
                "image_size": self.image_size,
                "layers": list(self.resnet_layers),
                "width": self.vision_width,
            }
        return {
            "image_size": self.image_size,
            "layers": self.vision_layers,
            "width": self.vision_width,
            "head_width": self.vision_head_width,
            "patch_size": self.patch_size,
        }

    @model_validator(mode="after")
    def _resnet_side(self) -> ClipSpec:
        if self.resnet_layers is not None and self.image_size % 32:
            raise ValueError(
                f"a ResNet tower needs a side that is a multiple of 32, got {self.image_size}"
            )
        return self


class VaeSpec(BaseModel):
    """A small ``AutoencoderKL``; each block after the first halves the side (f = 2^(blocks-1))."""

    block_out_channels: tuple[int, ...] = (32, 64, 64)
    layers_per_block: int = Field(1, ge=1)
    latent_channels: int = Field(4, ge=1)
    norm_num_groups: int = Field(16, ge=1)
    image_size: int = Field(64, ge=16)

    @property
    def factor(self) -> int:
        """Pixels per latent cell along each side."""
        return 2 ** (len(self.block_out_channels) - 1)


class UnetSpec(BaseModel):
    """A small ``UNet2DConditionModel``; cross-attention at every level reads the caption."""

    block_out_channels: tuple[int, ...] = (64, 96, 128)
    layers_per_block: int = Field(1, ge=1)
    attention_head_dim: int = Field(32, ge=4)
    cross_attention_levels: tuple[bool, ...] = (False, True, True)
    norm_num_groups: int = Field(16, ge=1)


def build_clip(spec: ClipSpec) -> Any:
    """A randomly initialised open_clip ``CLIP`` for ``spec`` (seed torch first)."""
    import open_clip

    return open_clip.CLIP(**spec.model_cfg())


def encode_text_prefix(model: Any, tokens: torch.Tensor) -> torch.Tensor:
    """``model.encode_text`` on the shortest token prefix that holds every caption's end marker.

    The text tower is causal, so the features at and before each end marker do not depend on the
    tokens after it; cutting the 77-token window to the batch's longest caption gives the same
    pooled features (a test checks it) for a fraction of the cost. Unnormalised, like open_clip.
    """
    length = int((tokens.argmax(dim=-1) + 1).max())
    text = tokens[:, :length]
    x = model.token_embedding(text) + model.positional_embedding[:length]
    x = model.transformer(x, attn_mask=model.attn_mask[:length, :length])
    x = model.ln_final(x)
    pooled = x[torch.arange(x.shape[0]), text.argmax(dim=-1)]
    return pooled @ model.text_projection


def build_vae(spec: VaeSpec) -> Any:
    """A randomly initialised ``AutoencoderKL`` for ``spec``."""
    from diffusers import AutoencoderKL

    depth = len(spec.block_out_channels)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * depth,
        up_block_types=("UpDecoderBlock2D",) * depth,
        block_out_channels=spec.block_out_channels,
        layers_per_block=spec.layers_per_block,
        latent_channels=spec.latent_channels,
        norm_num_groups=spec.norm_num_groups,
        sample_size=spec.image_size,
    )


def build_unet(
    spec: UnetSpec, cross_attention_dim: int, latent_channels: int = 4, sample_size: int = 16
) -> Any:
    """A randomly initialised ``UNet2DConditionModel`` for ``spec``, a text width and a VAE."""
    from diffusers import UNet2DConditionModel

    down = tuple(
        "CrossAttnDownBlock2D" if cross else "DownBlock2D" for cross in spec.cross_attention_levels
    )
    up = tuple(
        "CrossAttnUpBlock2D" if cross else "UpBlock2D"
        for cross in reversed(spec.cross_attention_levels)
    )
    return UNet2DConditionModel(
        sample_size=sample_size,
        in_channels=latent_channels,
        out_channels=latent_channels,
        down_block_types=down,
        up_block_types=up,
        block_out_channels=spec.block_out_channels,
        layers_per_block=spec.layers_per_block,
        cross_attention_dim=cross_attention_dim,
        attention_head_dim=spec.attention_head_dim,
        norm_num_groups=spec.norm_num_groups,
    )
