"""Tiny pocket-model specs shared by the training and export tests (seconds on a CPU), and a
deadline that stops a training loop after a given number of steps."""

from __future__ import annotations

from imagineer.pocket.checkpoints import Deadline
from imagineer.pocket.models import ClipSpec, UnetSpec, VaeSpec

TINY_CLIP = ClipSpec(
    embed_dim=16,
    vision_width=32,
    vision_layers=1,
    vision_head_width=16,
    text_width=32,
    text_layers=1,
    text_heads=2,
)
TINY_VAE = VaeSpec(block_out_channels=(8, 16), norm_num_groups=4)
TINY_UNET = UnetSpec(
    block_out_channels=(16, 32),
    cross_attention_levels=(False, True),
    attention_head_dim=8,
    norm_num_groups=8,
)


class AfterChecks(Deadline):
    """A deadline that passes once it has been asked ``n`` times (one ask per training step)."""

    def __init__(self, n: int) -> None:
        super().__init__(None)
        self.left = n

    def passed(self) -> bool:
        self.left -= 1
        return self.left < 0
