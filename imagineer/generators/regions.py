"""Regional prompts for diffusers UNets: each region's prompt steers its own part of the canvas.

The UNet reads the text through cross-attention: every latent pixel attends to the prompt's
token embeddings. Here the prompt embeddings of one image are a sequence of *segments*: the
whole prompt first, then one segment per region. At every cross-attention layer the image's
pixels attend to each segment on its own (with the layer's own attention processor, so any
processor keeps working), and the results are blended pixel by pixel with weights from the
regions' boxes, resized to the layer's resolution:

- outside every box, the whole prompt alone;
- inside a box, the whole prompt keeps ``base`` of the weight and the regions covering the
  pixel share the rest.

This is the attention-blending form of regional prompting (A1111's Regional Prompter, the
"attention couple" of ComfyUI; LLM-grounded diffusion's layout stage). Self-attention is left
alone, so the picture stays one picture. The negative prompt's rows hold copies of the
negative prompt in every segment, so they attend exactly as without regions.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch

from imagineer.errors import InvalidInput
from imagineer.generators.base import Region

DEFAULT_BASE = 0.3
"""Weight the whole prompt keeps inside regions: enough for one lighting and style throughout."""


def region_weights(regions: Sequence[Region], base: float, height: int, width: int) -> torch.Tensor:
    """Per-pixel blend weights, shape ``(1 + len(regions), height, width)``, summing to 1.

    Segment 0 is the whole prompt; segment ``i`` is region ``i - 1``. A pixel in no box is the
    whole prompt's alone; in boxes, the whole prompt keeps ``base`` and the boxes split the rest.

    Raises:
        InvalidInput: ``base`` is outside [0, 1].
    """
    if not 0.0 <= base <= 1.0:
        raise InvalidInput(f"the regions' base weight must be in [0, 1], got {base}")
    rows = (torch.arange(height, dtype=torch.float32) + 0.5) / height
    cols = (torch.arange(width, dtype=torch.float32) + 0.5) / width
    boxes = []
    for region in regions:
        left, top, right, bottom = region.box
        inside_rows = (rows >= top) & (rows < bottom)
        inside_cols = (cols >= left) & (cols < right)
        boxes.append((inside_rows[:, None] & inside_cols[None, :]).float())
    if not boxes:
        return torch.ones(1, height, width)
    covered = torch.stack(boxes)
    count = covered.sum(0)
    share = torch.where(count > 0, (1.0 - base) / count.clamp(min=1.0), torch.zeros_like(count))
    whole = torch.where(count > 0, torch.full_like(count, base), torch.ones_like(count))
    return torch.cat([whole[None], covered * share[None]])


class RegionalAttention:
    """A cross-attention processor that blends per-segment attention by region weights.

    Args:
        inner: The processor the layer had (it computes each segment's attention).
        weights: ``(batch, segments, H, W)`` blend weights at the latent's resolution, one row
            per prompt of the pipeline call (the classifier-free-guidance copy is handled).
        segments: Token length of each segment, in order; they sum to the embedding length.
    """

    def __init__(self, inner: Any, weights: torch.Tensor, segments: Sequence[int]) -> None:
        self.inner = inner
        self.weights = weights
        self.segments = list(segments)
        self._resized: dict[tuple[int, int], torch.Tensor] = {}

    def __call__(
        self,
        attn: Any,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> torch.Tensor:
        total = sum(self.segments)
        if encoder_hidden_states is None or encoder_hidden_states.shape[1] != total:
            return self.inner(  # type: ignore[no-any-return]
                attn, hidden_states, encoder_hidden_states, attention_mask, temb, **kwargs
            )
        if hidden_states.ndim != 3:
            raise InvalidInput("regional prompts need (batch, pixels, channels) hidden states")
        weights = self._at(hidden_states.shape[1], hidden_states.shape[0])
        weights = weights.to(hidden_states.device, hidden_states.dtype)
        out: torch.Tensor | None = None
        start = 0
        for index, length in enumerate(self.segments):
            part = encoder_hidden_states[:, start : start + length]
            start += length
            result = self.inner(attn, hidden_states, part, attention_mask, temb, **kwargs)
            blended = weights[:, index, :, None] * result
            out = blended if out is None else out + blended
        assert out is not None
        return out

    def _at(self, pixels: int, batch: int) -> torch.Tensor:
        """The weights at a layer with ``pixels`` positions, as ``(batch, segments, pixels)``."""
        full_h, full_w = self.weights.shape[-2:]
        scale = math.sqrt(full_h * full_w / pixels)
        height, width = round(full_h / scale), round(full_w / scale)
        if height * width != pixels:
            raise InvalidInput(f"cannot place {pixels} attention positions on the latent grid")
        key = (height, width)
        if key not in self._resized:
            pooled = torch.nn.functional.adaptive_avg_pool2d(self.weights, (height, width))
            pooled = pooled / pooled.sum(1, keepdim=True).clamp(min=1e-8)
            self._resized[key] = pooled.flatten(2)
        weights = self._resized[key]
        if batch == 2 * weights.shape[0]:  # classifier-free guidance: [negative, positive]
            weights = torch.cat([weights, weights])
        if batch != weights.shape[0]:
            raise InvalidInput(f"regional weights for {weights.shape[0]} prompts, batch {batch}")
        return weights


@contextmanager
def regional_attention(unet: Any, weights: torch.Tensor, segments: Sequence[int]) -> Iterator[None]:
    """Route the UNet's cross-attention through `RegionalAttention` inside the block.

    The layers' own processors are restored on exit, even after an error.
    """
    original = dict(unet.attn_processors)
    routed = {
        name: RegionalAttention(processor, weights, segments)
        if name.endswith("attn2.processor")
        else processor
        for name, processor in original.items()
    }
    unet.set_attn_processor(routed)
    try:
        yield
    finally:
        unet.set_attn_processor(original)
