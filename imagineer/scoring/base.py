"""What every scorer promises: the `Scorer` interface and the `ImageScore` record."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field


class ImageScore(BaseModel):
    """How well one image matches its text, overall and concept by concept.

    Example:
        >>> score = scorer.score([image], "a fox in the snow", concepts=["fox", "snow"])[0]
        >>> score.clip_score, score.concepts["snow"]
    """

    model_config = ConfigDict(frozen=True)

    cosine: float = Field(ge=-1.0001, le=1.0001, description="Raw image-text cosine, [-1, 1].")
    clip_score: float = Field(
        ge=0.0, le=2.5001, description="CLIPScore, 2.5 * max(cosine, 0) (Hessel et al. 2021)."
    )
    concepts: dict[str, float] = Field(
        default_factory=dict, description="Cosine of the image with each concept phrase."
    )
    contrast: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Probability in [0, 1] that the image is described by its text rather than "
        "by one of the foils (None when scored without foils).",
    )


class Scorer(ABC):
    """Scores images against text. One subclass per backend (open_clip, an aesthetic head, ...)."""

    name: str = "scorer"

    @abstractmethod
    def score(
        self,
        images: Sequence[Image.Image],
        text: str | Sequence[str],
        concepts: Sequence[str] = (),
        foils: Sequence[str] = (),
    ) -> list[ImageScore]:
        """Score every image against its text and every concept, in one batched pass.

        Args:
            images: The images to score (any size and mode; the scorer preprocesses them).
            text: One text for all images, or one per image.
            concepts: Phrases (e.g. "snow", "golden hour") scored against every image; they are
                the decomposed feedback a refiner uses to see what is missing.
            foils: Texts that differ from ``text`` in one detail ("a yellow heart beside a red
                square" for "a red heart beside a yellow square"); each image's ``contrast`` is
                how strongly it prefers its text to all of them.

        Returns:
            One `ImageScore` per image, in order.
        """
