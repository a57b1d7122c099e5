"""The agent loop: expand -> render -> score -> keep best / stop / refine, written out in one place.

Components are injected (an expander, a generator, a scorer, a refiner); they never call each
other. Every random choice derives from the run's seed, so the same idea, config and seed give the
same run, expansion included.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from imagineer.agent.records import (
    AgentCandidate,
    BestChanged,
    CandidateRendered,
    CandidateScored,
    Event,
    RenderProgress,
    Round,
    RoundStarted,
    Run,
    RunFinished,
    StopReason,
)
from imagineer.errors import InvalidInput
from imagineer.generators import Generator, derive_seeds
from imagineer.prompting.concepts import concepts_for
from imagineer.prompting.expansion import Expander, Provenance
from imagineer.prompting.refiners import Refiner
from imagineer.prompting.spec import PromptSpec, RenderedPrompt, ScoredSpec
from imagineer.prompting.styles import StyleLibrary
from imagineer.scoring import ImageScore, Scorer

logger = logging.getLogger(__name__)


class AgentConfig(BaseModel):
    """Per-run knobs of the agent; recorded with every run.

    Example:
        >>> AgentConfig(images=16, rounds=4, specs_per_round=2, seed=7)
    """

    model_config = ConfigDict(frozen=True)

    images: int = Field(16, ge=1, le=10_000, description="Image budget: total images rendered.")
    rounds: int = Field(4, ge=1, le=100, description="At most this many rounds.")
    seconds: float | None = Field(None, gt=0, description="Start no new round after this long.")
    specs_per_round: int = Field(2, ge=1, description="Distinct specs rendered per round.")
    include_idea: bool = Field(
        True, description="Round 0 renders the bare idea as one of its specs."
    )
    threshold: float | None = Field(None, description="Stop once the best objective reaches it.")
    patience: int = Field(2, ge=1, description="Stop after this many rounds with no gain.")
    min_gain: float = Field(0.0, ge=0.0, description="Smaller objective gains count as none.")
    concept_weight: float = Field(
        0.0,
        ge=0.0,
        description="objective += w * mean concept cosine. Concepts are scored and fed to the "
        "refiner either way; in the objective they cost PocketBench points (docs/agent.md).",
    )
    contrast_weight: float = Field(
        0.5,
        ge=0.0,
        description="objective += w * P(the image prefers the idea to its foils), in [0, 1].",
    )
    seed: int = Field(0, ge=0, description="The run's seed; every other seed derives from it.")
    regions: bool = Field(
        True,
        description="Render the specs' regional prompts (each placed thing from its own prompt "
        "in its own part of the canvas) when the generator supports them.",
    )
    style: str | None = Field(None, description="A style every expanded spec must use.")

    @model_validator(mode="after")
    def _budget_fits(self) -> AgentConfig:
        if self.images < self.rounds:
            raise InvalidInput(f"images ({self.images}) must be >= rounds ({self.rounds})")
        return self

    def images_per_round(self) -> list[int]:
        """The image budget split over the rounds as evenly as possible, earlier rounds first."""
        base, extra = divmod(self.images, self.rounds)
        return [base + (1 if index < extra else 0) for index in range(self.rounds)]


def sub_seed(seed: int, *labels: object) -> int:
    """A seed for one named step of a run (e.g. the refiner in round 2), derived from ``seed``."""
    text = ":".join(map(str, ("imagineer-agent", seed, *labels)))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1


class Agent:
    """Turns an idea into the best image it can within a budget.

    Example:
        >>> agent = Agent.from_defaults()  # the bundled pocket models, offline engines
        >>> run = agent.run("a red star at night")
        >>> run.best.candidate.image.save("best.png")
    """

    def __init__(
        self,
        expander: Expander,
        generator: Generator,
        scorer: Scorer,
        refiner: Refiner,
        config: AgentConfig | None = None,
        *,
        styles: StyleLibrary | None = None,
        on_event: Callable[[Event], None] | None = None,
    ) -> None:
        self.expander = expander
        self.generator = generator
        self.scorer = scorer
        self.refiner = refiner
        self.config = config or AgentConfig()
        self.styles = styles
        self.on_event = on_event

    @classmethod
    def from_defaults(cls, config: AgentConfig | None = None, **kwargs: Any) -> Agent:
        """An agent on the bundled pocket models with the offline expander and search refiner.

        Args:
            config: The run configuration (defaults: 16 images over 4 rounds).
            **kwargs: ``model``, ``scorer``, ``llm``, ``llm_base_url`` go to `pocket_components`;
                the rest to `Agent`.
        """
        from imagineer.agent.defaults import pocket_components

        keys = ("model", "scorer", "llm", "llm_base_url")
        models = {key: kwargs.pop(key) for key in keys if key in kwargs}
        return cls(*pocket_components(**models), config=config, **kwargs)

    def run(self, idea: str, *, constraints: Sequence[str] = ()) -> Run:
        """Run the loop on ``idea`` until the budget is spent or the result is good enough.

        Args:
            idea: The user's words (they are every spec's subject, never rewritten).
            constraints: Extra requirements ("no text", "wide shot"), passed to the expander.

        Returns:
            The run, with every candidate and the best one.

        Raises:
            InvalidInput: A blank idea.
        """
        config, started = self.config, time.perf_counter()
        # 1. Check inputs, plan the budget, the scoring concepts and the idea's foils
        if not isinstance(idea, str) or not idea.strip():
            raise InvalidInput(f"the idea must be non-empty text, got {idea!r}")
        idea = idea.strip()
        plan = config.images_per_round()
        image_seeds = derive_seeds(config.seed, config.images)
        run = Run(
            idea=idea,
            config=config.model_dump(mode="json"),
            generator=_describe(self.generator),
            scorer=_describe(self.scorer),
            concepts=concepts_for(idea),
            foils=self.expander.foils(idea) if config.contrast_weight > 0 else [],
        )
        # 2. Expand the idea into the first round's specs
        specs, parents, notes, provenance = self._expand(idea, plan[0], constraints)
        stale = 0
        for index, images in enumerate(plan):
            # 3. Render this round's specs
            self._emit(RoundStarted(round=index, specs=len(specs), images=images))
            round_started = time.perf_counter()
            seeds = image_seeds[sum(plan[:index]) : sum(plan[:index]) + images]
            rendered = self._render(index, specs, parents, notes, seeds)
            # 4. Score every image of the round in one pass
            entries = self._score(run, rendered)
            # 5. Keep the best, record the round
            previous = run.best.objective if run.best_id else None
            run.candidates.extend(entries)
            round_best = max(entries, key=lambda e: e.objective)
            if previous is None or round_best.objective > previous:
                run.best_id = round_best.id
                self._emit(BestChanged(candidate_id=round_best.id, objective=round_best.objective))
            gained = previous is None or round_best.objective > previous + config.min_gain
            stale = 0 if gained else stale + 1
            run.rounds.append(
                Round(
                    index=index,
                    specs=specs,
                    provenance=provenance,
                    candidate_ids=[e.id for e in entries],
                    best_id=round_best.id,
                    seconds=time.perf_counter() - round_started,
                )
            )
            # 6. Stop, or refine the specs for the next round
            run.stopped = self._stop_reason(run, index, stale, started)
            if run.stopped:
                break
            k = min(config.specs_per_round, plan[index + 1])
            refinement = self.refiner.refine(
                idea, _history(run), k, seed=sub_seed(config.seed, "refine", index + 1)
            )
            specs, parents, notes = refinement.specs, refinement.parents, refinement.notes
            provenance = refinement.provenance
            if not specs:  # the refiner's search space is spent: try the best spec on new seeds
                logger.info("refiner proposed nothing new; re-rendering the best spec")
                specs, parents, notes = [run.best.spec], [run.best.id], ["best spec, new seeds"]
        run.seconds = time.perf_counter() - started
        images_used = len(run.candidates)
        self._emit(
            RunFinished(best_id=run.best.id, stopped=run.stopped or "rounds", images=images_used)
        )
        logger.info(
            "run %r: best %s (%.4f), stopped: %s",
            idea,
            run.best_id,
            run.best.objective,
            run.stopped,
        )
        return run

    def _expand(
        self, idea: str, images: int, constraints: Sequence[str]
    ) -> tuple[list[PromptSpec], list[str | None], list[str], Provenance]:
        """Round 0's specs: the bare idea (if configured) and expanded specs, at most ``images``."""
        config = self.config
        k = min(config.specs_per_round, images)
        wanted = k - 1 if config.include_idea else k
        specs: list[PromptSpec] = [PromptSpec(subject=idea)] if config.include_idea else []
        provenance = Provenance(engine="idea", seed=config.seed)
        if wanted > 0:
            expansion = self.expander.expand(
                idea,
                wanted,
                seed=sub_seed(config.seed, "expand"),
                style=config.style,
                constraints=constraints,
            )
            specs += expansion.specs
            provenance = expansion.provenance
        notes = (
            ["the idea as typed"] + ["expanded"] * (len(specs) - 1)
            if config.include_idea
            else ["expanded"] * len(specs)
        )
        return specs, [None] * len(specs), notes, provenance

    def _render(
        self,
        round_index: int,
        specs: list[PromptSpec],
        parents: list[str | None],
        notes: list[str],
        seeds: list[int],
    ) -> list[dict[str, Any]]:
        """Render ``len(seeds)`` images spread over ``specs``; one generator call per guidance."""
        share = [
            len(seeds) // len(specs) + (1 if i < len(seeds) % len(specs) else 0)
            for i in range(len(specs))
        ]
        slots = [s for s, count in enumerate(share) for _ in range(count)]
        prompts = [self._prompt(spec) for spec in specs]
        regional = self.config.regions and self.generator.supports_regions
        if not regional and any(p.regions for p in prompts):
            why = "turned off" if not self.config.regions else "not supported by the generator"
            logger.info("regional prompts %s; rendering without them", why)
            prompts = [p.model_copy(update={"regions": []}) for p in prompts]
        entries: list[dict[str, Any]] = [{} for _ in slots]
        by_guidance: dict[float | None, list[int]] = {}
        for slot, spec_index in enumerate(slots):
            by_guidance.setdefault(specs[spec_index].guidance, []).append(slot)
        for guidance, group in by_guidance.items():
            candidates = self.generator.render(
                [prompts[slots[i]].positive for i in group],
                [prompts[slots[i]].negative for i in group],
                seeds=[seeds[i] for i in group],
                guidance=guidance,
                regions=[prompts[slots[i]].regions for i in group] if regional else None,
                progress=lambda done, total: self._emit(
                    RenderProgress(round=round_index, done=done, total=total)
                ),
            )
            for slot, candidate in zip(group, candidates, strict=True):
                spec_index = slots[slot]
                entries[slot] = {
                    "id": f"r{round_index}c{slot}",
                    "round": round_index,
                    "parent": parents[spec_index],
                    "note": notes[spec_index],
                    "spec": specs[spec_index],
                    "prompt": prompts[spec_index],
                    "candidate": candidate,
                }
                self._emit(
                    CandidateRendered(candidate_id=entries[slot]["id"], seconds=candidate.seconds)
                )
        return entries

    def _prompt(self, spec: PromptSpec) -> RenderedPrompt:
        """The spec's strings for this generator's text encoder (long prompts kept for chunking)."""
        return spec.render(styles=self.styles, overflow="keep")

    def _score(self, run: Run, entries: list[dict[str, Any]]) -> list[AgentCandidate]:
        """Score all images against the idea and its concepts in one pass; compute objectives."""
        images = [entry["candidate"].image for entry in entries]
        scores = self.scorer.score(images, run.idea, run.concepts, foils=run.foils)
        scored = []
        for entry, score in zip(entries, scores, strict=True):
            agent_candidate = AgentCandidate(**entry, score=score, objective=self._objective(score))
            self._emit(
                CandidateScored(
                    candidate_id=agent_candidate.id, objective=agent_candidate.objective
                )
            )
            scored.append(agent_candidate)
        return scored

    def _objective(self, score: ImageScore) -> float:
        concepts = list(score.concepts.values())
        mean_concept = sum(concepts) / len(concepts) if concepts else 0.0
        contrast = score.contrast if score.contrast is not None else 0.0
        config = self.config
        return (
            score.cosine + config.concept_weight * mean_concept + config.contrast_weight * contrast
        )

    def _stop_reason(self, run: Run, index: int, stale: int, started: float) -> StopReason | None:
        config = self.config
        if len(run.candidates) >= config.images:
            return "budget"
        if index + 1 >= config.rounds:
            return "rounds"
        if config.threshold is not None and run.best.objective >= config.threshold:
            return "threshold"
        if stale >= config.patience:
            return "plateau"
        if config.seconds is not None and time.perf_counter() - started >= config.seconds:
            return "seconds"
        return None

    def _emit(self, event: Event) -> None:
        if self.on_event is not None:
            self.on_event(event)


def _history(run: Run) -> list[ScoredSpec]:
    """One entry per rendered spec per round: mean objective and concepts over its candidates.

    The mean, not the max, is what a spec is worth: the max rewards a lucky seed, which the next
    round cannot reuse with a different prompt.
    """
    groups: dict[tuple[int, str], list[AgentCandidate]] = {}
    for entry in run.candidates:
        groups.setdefault((entry.round, entry.spec.fingerprint()), []).append(entry)
    history = []
    for (round_index, _), entries in groups.items():
        best = max(entries, key=lambda e: e.objective)
        concepts = {
            phrase: sum(e.score.concepts[phrase] for e in entries) / len(entries)
            for phrase in run.concepts
        }
        history.append(
            ScoredSpec(
                spec=entries[0].spec,
                score=sum(e.objective for e in entries) / len(entries),
                concepts=concepts,
                round=round_index,
                candidate_id=best.id,
            )
        )
    return history


def _describe(component: Any) -> dict[str, Any]:
    config = getattr(component, "config", None)
    described: dict[str, Any] = {"name": getattr(component, "name", type(component).__name__)}
    if isinstance(config, BaseModel):
        described["config"] = config.model_dump(mode="json")
    return described
