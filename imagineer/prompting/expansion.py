"""Typed results of expanders and refiners, and the interface every expander implements."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field, model_validator

from imagineer.errors import InvalidInput
from imagineer.prompting.spec import PromptSpec

_NEGATED = re.compile(r"^\s*(?:no|without|avoid|not|never)\s+(.+)$", re.I)


class Provenance(BaseModel):
    """Where a batch of specs came from, recorded with every run so it can be replayed.

    API keys are never part of it; ``endpoint`` is the base URL without credentials or query.
    """

    model_config = ConfigDict(extra="forbid")

    engine: str = Field(description="Engine that produced the specs: offline, openai, langchain...")
    model: str | None = Field(default=None, description="LLM name, or the vocabulary's name.")
    endpoint: str | None = Field(default=None, description="LLM base URL, no credentials.")
    temperature: float | None = Field(default=None, description="Sampling temperature, if any.")
    seed: int | None = Field(default=None, description="The seed the caller passed.")
    attempts: int = Field(default=1, ge=0, description="LLM requests made (1 for offline).")
    fallback_reason: str | None = Field(
        default=None, description="Why the primary engine was replaced by the fallback, if it was."
    )
    fallback_from: str | None = Field(default=None, description="The engine that failed.")
    raw: list[str] = Field(default_factory=list, description="Raw LLM replies, in order.")


class Expansion(BaseModel):
    """An idea expanded into k distinct specs, with provenance."""

    model_config = ConfigDict(extra="forbid")

    idea: str
    specs: list[PromptSpec]
    provenance: Provenance


class Refinement(BaseModel):
    """New specs proposed from a scored history; ``parents`` and ``notes`` run parallel to specs.

    ``parents[i]`` is the candidate id (or None) of the history entry spec ``i`` was derived from,
    ``notes[i]`` what was changed and why, so the agent can record lineage.
    """

    model_config = ConfigDict(extra="forbid")

    idea: str
    specs: list[PromptSpec]
    parents: list[str | None] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    provenance: Provenance

    @model_validator(mode="after")
    def _parallel(self) -> Refinement:
        n = len(self.specs)
        if not self.parents:
            self.parents = [None] * n
        if not self.notes:
            self.notes = [""] * n
        if len(self.parents) != n or len(self.notes) != n:
            raise ValueError("parents and notes must have one entry per spec")
        return self


class FewShot(BaseModel):
    """A worked example for LLM engines: an idea and a spec written for it."""

    idea: str
    spec: PromptSpec


class Expander(ABC):
    """Turns an idea into k distinct prompt specs."""

    name: str = "expander"

    @abstractmethod
    def expand(
        self,
        idea: str,
        k: int,
        *,
        seed: int,
        style: str | None = None,
        constraints: Sequence[str] = (),
    ) -> Expansion:
        """Expand ``idea`` into ``k`` distinct specs whose subject is the idea itself.

        Args:
            idea: The user's words; they become every spec's subject unchanged.
            k: How many distinct specs to return (at least 1).
            seed: Makes the expansion reproducible (an LLM seed where the endpoint honours one).
            style: A style every spec must use, or None to let the engine choose.
            constraints: User requirements; ``"no X"`` / ``"without X"`` go to the negative.

        Returns:
            The specs and their provenance.
        """

    def foils(self, idea: str) -> list[str]:
        """Captions that differ from ``idea`` in one stated detail, for contrastive scoring.

        The default is none; engines with a vocabulary write them (`foils_for`).
        """
        return []


def split_constraints(constraints: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split user constraints into positive terms and negative ones (``"no X"`` -> ``"X"``)."""
    positive, negative = [], []
    for constraint in constraints:
        match = _NEGATED.match(constraint)
        if match:
            negative.append(match.group(1).strip())
        elif constraint.strip():
            positive.append(constraint.strip())
    return positive, negative


def check_idea(idea: str, k: int) -> str:
    """The idea stripped; raises `InvalidInput` for a blank idea or ``k < 1``."""
    if not isinstance(idea, str) or not idea.strip():
        raise InvalidInput("the idea must be a non-empty string")
    if k < 1:
        raise InvalidInput(f"k must be at least 1, got {k}")
    return idea.strip()
