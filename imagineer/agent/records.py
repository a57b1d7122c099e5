"""Typed records of an agent run (`Run`, `Round`, `AgentCandidate`) and the events it emits.

A run's record holds every candidate with its spec, the prompt strings as sent, the render
parameters (seed included), all scores, its round and its parent, so the run can be replayed and
audited. Pixels are saved beside the record, never inside it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from imagineer import __version__
from imagineer.generators import Candidate
from imagineer.prompting.expansion import Provenance
from imagineer.prompting.spec import PromptSpec, RenderedPrompt
from imagineer.scoring import ImageScore

StopReason = Literal["budget", "rounds", "seconds", "threshold", "plateau"]


class AgentCandidate(BaseModel):
    """One rendered and scored candidate of an agent run."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(description="'r{round}c{index}', unique within the run.")
    round: int = Field(ge=0)
    parent: str | None = Field(
        None, description="Candidate whose spec this one's was refined from."
    )
    note: str = Field("", description="What the refiner changed and why.")
    spec: PromptSpec
    prompt: RenderedPrompt
    candidate: Candidate
    score: ImageScore
    objective: float = Field(description="The number the agent maximises (see AgentConfig).")


class Round(BaseModel):
    """One expand-or-refine step and the candidates it rendered."""

    index: int = Field(ge=0)
    specs: list[PromptSpec]
    provenance: Provenance
    candidate_ids: list[str]
    best_id: str = Field(description="Best candidate of this round.")
    seconds: float = Field(ge=0.0)


class Run(BaseModel):
    """A whole agent run: the idea, the configuration, every round and candidate, the best."""

    idea: str
    config: dict[str, Any] = Field(description="AgentConfig, as recorded.")
    generator: dict[str, Any] = Field(description="The generator's name and config.")
    scorer: dict[str, Any] = Field(description="The scorer's name and config.")
    concepts: list[str] = Field(description="Concept phrases every image was scored on.")
    foils: list[str] = Field(
        default_factory=list, description="Foils of the idea every image was contrasted with."
    )
    rounds: list[Round] = Field(default_factory=list)
    candidates: list[AgentCandidate] = Field(default_factory=list)
    best_id: str | None = None
    stopped: StopReason | None = None
    seconds: float = 0.0

    @property
    def best(self) -> AgentCandidate:
        """The best candidate of the run."""
        return self.candidate(self.best_id or "")

    def candidate(self, candidate_id: str) -> AgentCandidate:
        """The candidate with this id."""
        for entry in self.candidates:
            if entry.id == candidate_id:
                return entry
        raise KeyError(candidate_id)

    def record(self) -> dict[str, Any]:
        """JSON-ready record of the run (no pixels)."""
        return {"imagineer": __version__, **self.model_dump(mode="json")}


class Event(BaseModel):
    """Base of everything the agent reports while it runs (for progress bars and UIs)."""

    model_config = ConfigDict(frozen=True)

    kind: str


class RoundStarted(Event):
    kind: Literal["round_started"] = "round_started"
    round: int
    specs: int
    images: int


class RenderProgress(Event):
    kind: Literal["render_progress"] = "render_progress"
    round: int
    done: int
    total: int


class CandidateRendered(Event):
    kind: Literal["candidate_rendered"] = "candidate_rendered"
    candidate_id: str
    seconds: float


class CandidateScored(Event):
    kind: Literal["candidate_scored"] = "candidate_scored"
    candidate_id: str
    objective: float


class BestChanged(Event):
    kind: Literal["best_changed"] = "best_changed"
    candidate_id: str
    objective: float


class RunFinished(Event):
    kind: Literal["run_finished"] = "run_finished"
    best_id: str
    stopped: StopReason
    images: int
