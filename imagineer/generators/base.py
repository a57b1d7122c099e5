"""What every image generator promises: the `Generator` interface and the `Candidate` record."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from imagineer.errors import InvalidInput
from imagineer.region import Region

MAX_SEED = 2**63 - 1

StepCallback = Callable[[int, int], None]


class RenderParams(BaseModel):
    """Everything needed to render one candidate again, pixel for pixel on the same hardware.

    Recorded beside every image, so a candidate can be reproduced from its record alone.
    """

    model_config = ConfigDict(frozen=True, protected_namespaces=())

    generator: str = Field(description="Backend name, e.g. 'diffusers'.")
    model: str = Field(description="Model id or local path as the user gave it.")
    model_revision: str | None = Field(None, description="Hub commit or content fingerprint.")
    pipeline: str = Field(description="Pipeline class that rendered the image.")
    scheduler: str = Field(description="Scheduler name as imagineer knows it.")
    steps: int = Field(ge=1)
    guidance: float = Field(ge=0.0, description="Classifier-free guidance scale (1 = off).")
    width: int = Field(ge=8, description="Pixels.")
    height: int = Field(ge=8, description="Pixels.")
    seed: int = Field(ge=0, le=MAX_SEED)
    prompt: str = Field(description="Positive prompt exactly as sent to the pipeline.")
    negative_prompt: str = Field("", description="Negative prompt exactly as sent.")
    regions: tuple[Region, ...] = Field((), description="Regional prompts, in the order sent.")
    region_base: float | None = Field(
        None, description="Weight the whole prompt keeps inside regions (None: no regions)."
    )
    device: str
    dtype: str


class PromptWindow(BaseModel):
    """How a prompt fitted the text encoder's token window."""

    model_config = ConfigDict(frozen=True)

    tokens: int = Field(ge=0, description="Tokens in the prompt, without start/end markers.")
    window: int = Field(ge=1, description="Tokens the encoder reads in one pass.")
    chunks: int = Field(1, ge=1, description="Windows the prompt was encoded in.")
    truncated: str = Field("", description="Text that was cut off and never reached the model.")


class Candidate(BaseModel):
    """One rendered image with everything needed to reproduce it.

    Example:
        >>> cands = generator.render("a red circle", n=2, seed=7)
        >>> cands[0].params.seed != cands[1].params.seed
        True
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    image: Image.Image = Field(exclude=True)
    params: RenderParams
    prompt_window: PromptWindow | None = None
    negative_window: PromptWindow | None = None
    seconds: float = Field(0.0, ge=0.0, description="Share of the batch's wall time.")

    def record(self) -> dict[str, Any]:
        """The JSON-ready record of this candidate, without pixels."""
        return self.model_dump(mode="json")


def derive_seeds(seed: int, n: int) -> list[int]:
    """Derive ``n`` distinct, well-mixed per-candidate seeds from one base seed.

    Hashing, rather than ``seed + i``, keeps candidates of neighbouring base seeds apart, so
    runs with seeds 1 and 2 do not share all but one image.

    Args:
        seed: The run's base seed (any non-negative int).
        n: How many seeds to derive.

    Returns:
        ``n`` distinct seeds in ``[0, 2**63)``; the same inputs always give the same list.
    """
    if seed < 0:
        raise InvalidInput(f"seed must be >= 0, got {seed}")
    seeds: list[int] = []
    index = 0
    while len(seeds) < n:
        digest = hashlib.sha256(f"imagineer:{seed}:{index}".encode()).digest()
        value = int.from_bytes(digest[:8], "big") & MAX_SEED
        if value not in seeds:
            seeds.append(value)
        index += 1
    return seeds


class Generator(ABC):
    """Turns prompts into candidates. One subclass per backend (diffusers, a remote API, ...)."""

    name: str = "generator"

    @property
    def supports_regions(self) -> bool:
        """Whether `render` accepts ``regions`` (regional prompts) for this model."""
        return False

    @abstractmethod
    def render(
        self,
        prompt: str | Sequence[str],
        negative_prompt: str | Sequence[str] = "",
        *,
        n: int | None = None,
        seed: int = 0,
        seeds: Sequence[int] | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        width: int | None = None,
        height: int | None = None,
        scheduler: str | None = None,
        progress: StepCallback | None = None,
        regions: Sequence[Sequence[Region]] | None = None,
    ) -> list[Candidate]:
        """Render ``n`` candidates for each prompt in one batch.

        Args:
            prompt: One prompt, or one per group of ``n`` candidates.
            negative_prompt: One negative prompt for all, or one per prompt.
            n: Candidates per prompt (>= 1); 1 if None, or ``len(seeds) / len(prompts)``.
            seed: Base seed; per-candidate seeds are derived from it with `derive_seeds`.
            seeds: Explicit per-candidate seeds (length ``n * len(prompts)``); overrides ``seed``.
            steps: Denoising steps; the generator's default when None.
            guidance: Classifier-free guidance scale; the generator's default when None.
            width: Image width in pixels, a multiple of 8; the model's default when None.
            height: Image height in pixels, a multiple of 8; the model's default when None.
            scheduler: Scheduler name (see the backend's list); the model's own when None.
            progress: Called as ``progress(done, total)`` after each denoising step, for
                progress bars; ``total`` counts the steps of every pipeline call of this render.
            regions: Regional prompts, one list per prompt (an empty list: none); only for a
                generator whose `supports_regions` is true.

        Returns:
            Candidates in prompt-major order: all of prompt 0's, then prompt 1's.
        """
