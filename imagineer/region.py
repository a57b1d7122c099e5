"""`Region`: a part of the picture with its own prompt (shared by prompting and generators)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["Region"]


class Region(BaseModel):
    """A part of the picture with its own prompt: "a red heart" in the left half.

    Text encoders blur who is what when one prompt names several things (the red of a red heart
    beside a yellow square leaks into the square). A region gives one thing its own prompt and
    its own part of the canvas, the way layout-grounded pipelines (GLIGEN, LLM-grounded diffusion,
    A1111's Regional Prompter) do; the generator decides how the prompts are combined.

    Example:
        >>> Region(prompt="a red heart on the left", box=(0.0, 0.0, 0.5, 1.0))
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    prompt: str = Field(min_length=1, description="What this part of the picture shows.")
    box: tuple[float, float, float, float] = Field(
        description="(left, top, right, bottom) as fractions of the width and height, in [0, 1]."
    )

    @field_validator("prompt")
    @classmethod
    def _prompt_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a region's prompt must not be blank")
        return " ".join(value.split())

    @model_validator(mode="after")
    def _box_inside(self) -> Region:
        left, top, right, bottom = self.box
        if not (0.0 <= left < right <= 1.0 and 0.0 <= top < bottom <= 1.0):
            raise ValueError(
                f"a region's box must be (left, top, right, bottom) with 0 <= left < right <= 1 "
                f"and 0 <= top < bottom <= 1, got {self.box}"
            )
        return self
