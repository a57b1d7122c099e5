"""Refiners: new specs from a scored history, by an LLM or by an offline search.

Both read the same history (`ScoredSpec`: spec, overall score, per-concept scores) and both are
driven by the weakest concepts, the per-concept feedback that tells them what the pictures lack.
Neither ever proposes a spec already in the history (compared by `PromptSpec.fingerprint`).
"""

from __future__ import annotations

import logging
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from imagineer.errors import ExpansionFailed, InvalidInput, LLMUnavailable
from imagineer.prompting.chat import ChatBackend, ChatMessage, RetryPolicy, structured_call
from imagineer.prompting.concepts import weakest_concepts
from imagineer.prompting.expansion import Provenance, Refinement, check_idea
from imagineer.prompting.layout import layout_regions, layout_terms
from imagineer.prompting.spec import EMPHASIS_MAX, PromptSpec, ScoredSpec
from imagineer.prompting.styles import StyleLibrary
from imagineer.prompting.tasks import (
    ConceptScore,
    RefineSpecs,
    ScoredDraft,
    SpecDrafts,
    distinct_specs,
    draft_to_spec,
    spec_to_draft,
    system_prompt,
    user_message,
)
from imagineer.prompting.vocabulary import Vocabulary, load_vocabulary

logger = logging.getLogger(__name__)


class Refiner(ABC):
    """Proposes k new specs for an idea from the specs tried so far and their scores."""

    name: str = "refiner"

    @abstractmethod
    def refine(self, idea: str, history: Sequence[ScoredSpec], k: int, *, seed: int) -> Refinement:
        """Propose ``k`` specs of ``idea`` that are not in ``history``.

        Args:
            idea: The user's words, every spec's subject.
            history: Every scored candidate so far (any order; several may share a spec).
            k: How many specs to propose.
            seed: Makes the proposal reproducible.

        Returns:
            The specs, each with its parent candidate and a note on what changed.
        """


def _check(idea: str, history: Sequence[ScoredSpec], k: int) -> str:
    idea = check_idea(idea, k)
    if not history:
        raise InvalidInput("refining needs at least one scored spec; expand and score first")
    return idea


def ranked(history: Sequence[ScoredSpec]) -> list[ScoredSpec]:
    """History entries best first, one per distinct spec (its best-scoring render)."""
    seen: set[str] = set()
    out = []
    for entry in sorted(history, key=lambda h: (-h.score, h.round)):
        key = entry.spec.fingerprint()
        if key not in seen:
            seen.add(key)
            out.append(entry)
    return out


def critique(history: Sequence[ScoredSpec], weak: Sequence[tuple[str, float]]) -> str:
    """A short critique from the scores alone: best so far, weakest concepts, and the trend."""
    best = ranked(history)[0]
    rounds = sorted({h.round for h in history})
    lines = [
        f"{len(history)} candidate(s) over {len(rounds)} round(s); the best scores "
        f"{best.score:.3f} (round {best.round})."
    ]
    if weak:
        listed = ", ".join(f"'{c}' ({s:.3f})" for c, s in weak)
        lines.append(f"The best pictures show these concepts least: {listed}.")
    if len(rounds) > 1:
        last = max(h.score for h in history if h.round == rounds[-1])
        before = max(h.score for h in history if h.round != rounds[-1])
        trend = "improved on" if last > before else "did not improve on"
        lines.append(f"The last round {trend} the earlier best ({last:.3f} vs {before:.3f}).")
    return " ".join(lines)


class SearchRefinerConfig(BaseModel):
    """Knobs of the offline search; recorded with the run."""

    model_config = ConfigDict(extra="forbid")

    beam: int = Field(default=3, ge=1, description="Parents come from the best `beam` specs.")
    weak_concepts: int = Field(default=2, ge=1, description="How many weak concepts to target.")
    emphasis_step: float = Field(default=0.25, gt=0.0, le=1.0, description="Weight added.")
    guidance_step: float | None = Field(
        default=1.5, description="Guidance change per mutation; None never changes guidance."
    )
    guidance_default: float = Field(default=7.5, ge=0.0, le=30.0)
    guidance_range: tuple[float, float] = Field(default=(1.0, 12.0))
    p_second_mutation: float = Field(default=0.4, ge=0.0, le=1.0)
    tries_per_spec: int = Field(default=60, ge=1, description="Bound on attempts per spec.")


Mutation = Callable[[random.Random, PromptSpec, list[str]], tuple[PromptSpec, str] | None]


class SearchRefiner(Refiner):
    """A seeded local search over spec edits, aimed at the weakest concepts.

    Each proposal takes a parent from the best specs (the best first) and applies one or two
    edits. Edits that target the weakest concepts are drawn most often: raise a weak concept's
    emphasis, when a weak concept names a lighting or style in the vocabulary switch to it, or
    add the idea's layout hints (`layout_terms`) or regions (`layout_regions`) the parent lacks.
    The others explore: another lighting or style, trimming modifiers that compete for
    attention, adding detail or negative terms, moving guidance. Same inputs and seed, same
    proposals; a spec already in the history is never proposed.

    Example:
        >>> refiner = SearchRefiner(load_vocabulary(), load_styles())
        >>> refinement = refiner.refine("a fox in the snow", history, k=4, seed=1)
    """

    name = "search"

    def __init__(
        self,
        vocabulary: Vocabulary | None = None,
        styles: StyleLibrary | None = None,
        config: SearchRefinerConfig | None = None,
    ) -> None:
        self.vocabulary = vocabulary if vocabulary is not None else load_vocabulary()
        self.styles = styles
        self.config = config or SearchRefinerConfig()

    def refine(self, idea: str, history: Sequence[ScoredSpec], k: int, *, seed: int) -> Refinement:
        """Propose ``k`` new specs; see `Refiner.refine`.

        Returns fewer than ``k`` (logged as a warning) only when the edits reachable from the best
        specs are used up, e.g. an empty vocabulary and fully emphasised weak concepts.
        """
        # 1. Check inputs; rank the history and find the weakest concepts
        idea = _check(idea, history, k)
        parents = ranked(history)[: self.config.beam]
        weak = [c for c, _ in weakest_concepts(history, self.config.weak_concepts)]
        seen = {h.spec.fingerprint() for h in history}
        rng = random.Random(f"search:{seed}:{idea}:{len(history)}")
        # 2. Mutate parents until k new specs, within a bounded number of tries
        specs: list[PromptSpec] = []
        parent_ids: list[str | None] = []
        notes: list[str] = []
        for attempt in range(k * self.config.tries_per_spec):
            parent = parents[attempt % len(parents)] if attempt < k else rng.choice(parents)
            # Past half the budget, every proposal stacks one more edit to escape a small space
            extra = int(attempt >= k * self.config.tries_per_spec // 2)
            base = parent.spec.model_copy(update={"subject": idea})
            spec, note = self._propose(rng, base, weak, extra)
            if spec.fingerprint() in seen:
                continue
            seen.add(spec.fingerprint())
            specs.append(spec)
            parent_ids.append(parent.candidate_id)
            notes.append(note)
            if len(specs) == k:
                break
        if len(specs) < k:
            logger.warning("Search found only %d new spec(s) of %d for %r", len(specs), k, idea)
        provenance = Provenance(engine=self.name, model=self.vocabulary.name, seed=seed)
        return Refinement(
            idea=idea, specs=specs, parents=parent_ids, notes=notes, provenance=provenance
        )

    def _propose(
        self, rng: random.Random, spec: PromptSpec, weak: list[str], extra: int = 0
    ) -> tuple[PromptSpec, str]:
        """One or two edits of ``spec``; weak-concept edits are three times as likely."""
        targeted: list[Mutation] = [self._emphasise_weak, self._switch_to_weak]
        if self._arrange(rng, spec, weak) is not None:  # (draws nothing from rng)
            targeted.append(self._arrange)
        exploring: list[Mutation] = [
            self._relight, self._restyle, self._trim, self._add_detail, self._add_negative,
            self._guidance,
        ]  # fmt: skip
        choices = targeted * 3 + exploring if weak else exploring
        count = (2 if rng.random() < self.config.p_second_mutation else 1) + extra
        notes = []
        for _ in range(count * 4):
            result = rng.choice(choices)(rng, spec, weak)
            if result is not None:
                spec, note = result
                notes.append(note)
                if len(notes) == count:
                    break
        return spec, "; ".join(notes) or "unchanged"

    def _emphasise_weak(
        self, rng: random.Random, spec: PromptSpec, weak: list[str]
    ) -> tuple[PromptSpec, str] | None:
        concept = weak[0] if rng.random() < 0.6 else rng.choice(weak)
        old = spec.weight(concept)
        new = round(min(EMPHASIS_MAX, old + self.config.emphasis_step), 2)
        if new == old:
            return None
        emphasis = {t: w for t, w in spec.emphasis.items() if t.lower() != concept.lower()}
        emphasis[concept] = new
        update = {"emphasis": emphasis}
        return spec.model_copy(update=update), f"emphasis on weak concept {concept!r} -> {new}"

    def _switch_to_weak(
        self, rng: random.Random, spec: PromptSpec, weak: list[str]
    ) -> tuple[PromptSpec, str] | None:
        """When a weak concept is a lighting or style the vocabulary knows, state it plainly."""
        for concept in weak:
            lighting = self.vocabulary.group("lighting").find(concept)
            if lighting and lighting[0].phrase not in spec.lighting:
                return spec.model_copy(update={"lighting": [lighting[0].phrase]}), (
                    f"lighting set to {lighting[0].phrase!r} for weak concept {concept!r}"
                )
            style = self._style_for(concept)
            if style is not None and style != spec.style:
                return spec.model_copy(update={"style": style}), (
                    f"style set to {style!r} for weak concept {concept!r}"
                )
        return None

    def _style_for(self, concept: str) -> str | None:
        if self.styles is not None:
            for name in self.styles.names():
                if name.lower() in concept.lower() or concept.lower() in name.lower():
                    return name
            return None
        options = self.vocabulary.group("style").find(concept)
        return options[0].phrase if options else None

    def _arrange(
        self, rng: random.Random, spec: PromptSpec, weak: list[str]
    ) -> tuple[PromptSpec, str] | None:
        """Add the idea's layout hints the spec lacks (a place for each thing, counts in words),
        and its regions when the spec has none."""
        missing = [
            term
            for term in layout_terms(spec.subject, self.vocabulary)
            if term.lower() not in {c.lower() for c in spec.composition}
        ]
        regions = [] if spec.regions else layout_regions(spec.subject, self.vocabulary)
        if not missing and not regions:
            return None
        update: dict[str, Any] = {"composition": [*missing, *spec.composition]}
        notes = [f"layout hints {missing!r}"] if missing else []
        if regions:
            update["regions"] = regions
            notes.append(f"regions {[r.prompt for r in regions]!r}")
        return spec.model_copy(update=update), "; ".join(notes)

    def _relight(
        self, rng: random.Random, spec: PromptSpec, weak: list[str]
    ) -> tuple[PromptSpec, str] | None:
        options = [p for p in self.vocabulary.group("lighting").phrases() if p not in spec.lighting]
        if not options:
            return None
        phrase = rng.choice(options)
        return spec.model_copy(update={"lighting": [phrase]}), f"lighting -> {phrase!r}"

    def _restyle(
        self, rng: random.Random, spec: PromptSpec, weak: list[str]
    ) -> tuple[PromptSpec, str] | None:
        if self.styles is not None:
            names = self.styles.names()
        else:
            names = self.vocabulary.group("style").phrases()
        options = [n for n in [*names, None] if n != spec.style]
        if not options:
            return None
        style = rng.choice(options)
        return spec.model_copy(update={"style": style}), f"style -> {style!r}"

    def _trim(
        self, rng: random.Random, spec: PromptSpec, weak: list[str]
    ) -> tuple[PromptSpec, str] | None:
        """Drop one modifier, so the subject's concepts get a larger share of attention."""
        fields = [f for f in ("details", "composition") if getattr(spec, f)]
        if not fields:
            return None
        field = rng.choice(fields)
        terms = list(getattr(spec, field))
        term = terms.pop(rng.randrange(len(terms)))
        return spec.model_copy(update={field: terms}), f"dropped {field} term {term!r}"

    def _add_from(
        self, rng: random.Random, spec: PromptSpec, group: str, field: str
    ) -> tuple[PromptSpec, str] | None:
        present = {t.lower() for t in getattr(spec, field)}
        options = [p for p in self.vocabulary.group(group).phrases() if p.lower() not in present]
        if not options:
            return None
        term = rng.choice(options)
        return spec.model_copy(update={field: [*getattr(spec, field), term]}), (
            f"added {field} term {term!r}"
        )

    def _add_detail(
        self, rng: random.Random, spec: PromptSpec, weak: list[str]
    ) -> tuple[PromptSpec, str] | None:
        return self._add_from(rng, spec, "details", "details")

    def _add_negative(
        self, rng: random.Random, spec: PromptSpec, weak: list[str]
    ) -> tuple[PromptSpec, str] | None:
        return self._add_from(rng, spec, "negative", "negative")

    def _guidance(
        self, rng: random.Random, spec: PromptSpec, weak: list[str]
    ) -> tuple[PromptSpec, str] | None:
        step = self.config.guidance_step
        if step is None:
            return None
        low, high = self.config.guidance_range
        base = spec.guidance if spec.guidance is not None else self.config.guidance_default
        new = round(min(high, max(low, base + rng.choice((-step, step)))), 2)
        if new == spec.guidance:
            return None
        return spec.model_copy(update={"guidance": new}), f"guidance -> {new}"


class LLMRefiner(Refiner):
    """Refines with an LLM from a meta-prompt, in the manner of OPT2I and Idea2Img.

    The meta-prompt (`RefineSpecs`) holds the top ``top_k`` attempts sorted by score with their
    per-concept scores, the weakest concepts, and a short critique computed from the scores.
    Replies go through the same validation, single repair round and recorded fallback as
    `LLMExpander`; repeats of the history count as invalid and are sent back.

    Example:
        >>> refiner = LLMRefiner(OpenAIChat("llama3.1", base_url=...), fallback=SearchRefiner())
    """

    def __init__(
        self,
        chat: ChatBackend,
        *,
        styles: StyleLibrary | None = None,
        temperature: float = 0.9,
        top_k: int = 5,
        weak_concepts: int = 3,
        fallback: Refiner | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.chat = chat
        self.styles = styles
        self.temperature = temperature
        self.top_k = top_k
        self.weak_concepts = weak_concepts
        self.fallback = fallback
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self.name = f"llm-refiner:{chat.engine}"

    def meta_prompt(self, idea: str, history: Sequence[ScoredSpec], k: int) -> RefineSpecs:
        """The refinement request: top-k attempts best first, weakest concepts, critique."""
        weak = weakest_concepts(history, self.weak_concepts)
        top = ranked(history)[: self.top_k]
        return RefineSpecs(
            idea=idea,
            k=k,
            history=[
                ScoredDraft(
                    rank=i + 1, score=h.score, concepts=h.concepts, spec=spec_to_draft(h.spec)
                )
                for i, h in enumerate(top)
            ],
            weakest_concepts=[ConceptScore(concept=c, score=s) for c, s in weak],
            critique=critique(history, weak),
            styles=self.styles.names() if self.styles is not None else [],
        )

    def refine(self, idea: str, history: Sequence[ScoredSpec], k: int, *, seed: int) -> Refinement:
        """Propose ``k`` new specs; see `Refiner.refine`.

        Raises:
            ExpansionFailed: Unusable replies after one repair (no fallback configured).
            LLMUnavailable: The endpoint failed (no fallback configured).
        """
        idea = _check(idea, history, k)
        request = self.meta_prompt(idea, history, k)
        messages = [
            ChatMessage(role="system", content=system_prompt(RefineSpecs)),
            ChatMessage(role="user", content=user_message(request)),
        ]
        seen = [h.spec.fingerprint() for h in history]

        def convert(reply: SpecDrafts) -> list[PromptSpec]:
            specs = [draft_to_spec(d, idea, styles=self.styles) for d in reply.specs]
            return distinct_specs(specs, k, seen=seen)

        try:
            result = structured_call(
                self.chat, messages, SpecDrafts, convert, temperature=self.temperature,
                seed=seed, retry=self.retry, sleep=self.sleep,
            )  # fmt: skip
        except (ExpansionFailed, LLMUnavailable) as error:
            return self._fall_back(error, idea, history, k, seed)
        provenance = Provenance(
            engine=self.name,
            model=self.chat.model,
            endpoint=self.chat.endpoint,
            temperature=result.temperature,
            seed=seed,
            attempts=result.attempts,
            raw=result.raw,
        )
        notes = ["proposed by the LLM from the meta-prompt"] * len(result.value)
        return Refinement(idea=idea, specs=result.value, notes=notes, provenance=provenance)

    def _fall_back(
        self, error: Exception, idea: str, history: Sequence[ScoredSpec], k: int, seed: int
    ) -> Refinement:
        if self.fallback is None:
            raise error
        reason = f"{type(error).__name__}: {error}"
        logger.warning(
            "%s failed, falling back to %s: %s", self.chat.label, self.fallback.name, reason
        )
        refinement = self.fallback.refine(idea, history, k, seed=seed)
        update: dict[str, Any] = {
            "fallback_reason": reason,
            "fallback_from": self.chat.label,
            "attempts": getattr(error, "attempts", 1),
            "raw": getattr(error, "raw", []),
        }
        refinement.provenance = refinement.provenance.model_copy(update=update)
        return refinement
