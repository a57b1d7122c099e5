"""The agent loop on tiny real models with the offline engines (no fakes of our own logic)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from imagineer.agent.loop import Agent, AgentConfig
from imagineer.agent.records import BestChanged, Event, RoundStarted, RunFinished
from imagineer.agent.store import save_run
from imagineer.errors import InvalidInput
from imagineer.generators import DiffusersConfig, DiffusersGenerator
from imagineer.pocket.paths import WORLD_FILE
from imagineer.prompting.expansion import Refinement
from imagineer.prompting.offline import OfflineExpander
from imagineer.prompting.refiners import Refiner, SearchRefiner
from imagineer.prompting.spec import ScoredSpec
from imagineer.prompting.vocabulary import vocabulary_from_world
from imagineer.scoring import ClipScorer

IDEA = "a red star at night"


class RecordingRefiner(Refiner):
    """The real SearchRefiner, with the histories it was given kept for inspection."""

    name = "search"

    def __init__(self, inner: Refiner) -> None:
        self.inner = inner
        self.histories: list[list[ScoredSpec]] = []

    def refine(self, idea: str, history, k: int, *, seed: int) -> Refinement:  # type: ignore[no-untyped-def]
        self.histories.append(list(history))
        return self.inner.refine(idea, history, k, seed=seed)


@pytest.fixture(scope="module")
def parts(tiny_pipeline_dir: Path, tiny_clip_dir: Path):  # type: ignore[no-untyped-def]
    vocabulary = vocabulary_from_world(WORLD_FILE)
    generator = DiffusersGenerator(DiffusersConfig(model=str(tiny_pipeline_dir), steps=2))
    return OfflineExpander(vocabulary), generator, ClipScorer(str(tiny_clip_dir)), vocabulary


def make_agent(
    parts, events: list[Event] | None = None, **config
) -> tuple[Agent, RecordingRefiner]:  # type: ignore[no-untyped-def]
    expander, generator, scorer, vocabulary = parts
    refiner = RecordingRefiner(SearchRefiner(vocabulary))
    agent = Agent(
        expander, generator, scorer, refiner, AgentConfig(**config),
        on_event=events.append if events is not None else None,
    )  # fmt: skip
    return agent, refiner


def pixels(run, candidate_id: str) -> np.ndarray:  # type: ignore[no-untyped-def]
    return np.asarray(run.candidate(candidate_id).candidate.image)


@pytest.mark.parametrize(("images", "rounds"), [(7, 3), (8, 2), (5, 5)])
def test_image_budget_is_respected_exactly(parts, images: int, rounds: int) -> None:  # type: ignore[no-untyped-def]
    agent, _ = make_agent(parts, images=images, rounds=rounds, patience=rounds, seed=1)
    run = agent.run(IDEA)
    assert len(run.candidates) == images
    assert [len(r.candidate_ids) for r in run.rounds] == AgentConfig(
        images=images, rounds=rounds
    ).images_per_round()
    assert run.stopped == "budget"
    assert len({c.candidate.params.seed for c in run.candidates}) == images


def test_same_idea_config_and_seed_give_the_same_run(parts) -> None:  # type: ignore[no-untyped-def]
    first = make_agent(parts, images=6, rounds=3, patience=3, seed=4)[0].run(IDEA)
    second = make_agent(parts, images=6, rounds=3, patience=3, seed=4)[0].run(IDEA)
    assert [c.spec for c in first.candidates] == [c.spec for c in second.candidates]
    assert [c.candidate.params for c in first.candidates] == [
        c.candidate.params for c in second.candidates
    ]
    assert first.best_id == second.best_id
    assert np.array_equal(pixels(first, first.best_id), pixels(second, second.best_id))
    other = make_agent(parts, images=6, rounds=3, patience=3, seed=5)[0].run(IDEA)
    assert [c.candidate.params.seed for c in other.candidates] != [
        c.candidate.params.seed for c in first.candidates
    ]


def test_best_is_never_worse_than_the_first_rounds_best(parts) -> None:  # type: ignore[no-untyped-def]
    for seed in range(3):
        run = make_agent(parts, images=8, rounds=4, patience=4, seed=seed)[0].run(IDEA)
        first_round = [run.candidate(i).objective for i in run.rounds[0].candidate_ids]
        assert run.best.objective >= max(first_round)
        assert run.best.objective == max(c.objective for c in run.candidates)


def test_early_stop_at_threshold_and_on_plateau(parts) -> None:  # type: ignore[no-untyped-def]
    at_once = make_agent(parts, images=8, rounds=4, threshold=-10.0)[0].run(IDEA)
    assert at_once.stopped == "threshold" and len(at_once.rounds) == 1
    # min_gain too large to ever meet: every later round is stale, so patience 1 stops after two.
    flat = make_agent(parts, images=8, rounds=4, patience=1, min_gain=100.0)[0].run(IDEA)
    assert flat.stopped == "plateau" and len(flat.rounds) == 2 and len(flat.candidates) == 4


def test_per_concept_feedback_reaches_the_refiner(parts) -> None:  # type: ignore[no-untyped-def]
    agent, refiner = make_agent(parts, images=6, rounds=3, patience=3, seed=2)
    run = agent.run(IDEA)
    assert run.concepts == ["red star", "night"]
    assert len(refiner.histories) == 2
    first = refiner.histories[0]
    assert {h.candidate_id for h in first} <= set(run.rounds[0].candidate_ids)
    for entry in first:
        assert set(entry.concepts) == {"red star", "night"}
        members = [c for c in run.candidates if c.round == 0 and c.spec == entry.spec]
        expected = np.mean([c.score.concepts["night"] for c in members])
        assert entry.concepts["night"] == pytest.approx(expected)


def test_round_zero_holds_the_idea_and_refined_candidates_name_parents(parts) -> None:  # type: ignore[no-untyped-def]
    run = make_agent(parts, images=6, rounds=3, patience=3, seed=3)[0].run(IDEA)
    assert run.rounds[0].specs[0].subject == IDEA and run.rounds[0].specs[0].lighting == []
    assert all(spec.subject == IDEA for r in run.rounds for spec in r.specs)
    later = [c for c in run.candidates if c.round > 0]
    assert later and all(
        c.parent in {x.id for x in run.candidates if x.round < c.round} for c in later
    )


def test_events_describe_the_run(parts) -> None:  # type: ignore[no-untyped-def]
    events: list[Event] = []
    run = make_agent(parts, events, images=4, rounds=2, patience=2)[0].run(IDEA)
    kinds = [e.kind for e in events]
    assert kinds.count("round_started") == 2 and kinds.count("candidate_scored") == 4
    assert kinds.count("candidate_rendered") == 4 and "render_progress" in kinds
    assert isinstance(events[0], RoundStarted) and isinstance(events[-1], RunFinished)
    assert [e for e in events if isinstance(e, BestChanged)][-1].candidate_id == run.best_id


def test_saved_run_records_every_candidate(parts, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run = make_agent(parts, images=4, rounds=2, patience=2)[0].run(IDEA)
    folder = save_run(run, tmp_path)
    record = json.loads((folder / "run.json").read_text())
    assert len(record["candidates"]) == 4 and record["best_id"] == run.best_id
    assert (
        record["candidates"][0]["candidate"]["params"]["seed"]
        == run.candidates[0].candidate.params.seed
    )
    assert (folder / "best.png").is_file() and len(record["files"]) == 4


def test_bad_input_raises(parts) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput):
        make_agent(parts)[0].run("   ")
    with pytest.raises(ValidationError, match=r"images \(2\) must be >= rounds \(3\)"):
        AgentConfig(images=2, rounds=3)


class ExhaustedRefiner(Refiner):
    """A refiner whose search space is spent: a legitimate outcome the agent must handle."""

    name = "exhausted"

    def refine(self, idea: str, history, k: int, *, seed: int) -> Refinement:  # type: ignore[no-untyped-def]
        from imagineer.prompting.expansion import Provenance

        return Refinement(idea=idea, specs=[], provenance=Provenance(engine=self.name))


def test_an_exhausted_refiner_means_the_best_spec_on_new_seeds(parts) -> None:  # type: ignore[no-untyped-def]
    expander, generator, scorer, _ = parts
    config = AgentConfig(images=6, rounds=3, patience=3, seed=1)
    run = Agent(expander, generator, scorer, ExhaustedRefiner(), config).run(IDEA)
    assert len(run.candidates) == 6
    second = [c for c in run.candidates if c.round == 1]
    assert all(c.parent == run.rounds[0].best_id for c in second)
    assert all(c.spec == run.candidate(run.rounds[0].best_id).spec for c in second)
    assert len({c.candidate.params.seed for c in run.candidates}) == 6


def test_an_unreachable_llm_falls_back_to_offline_engines_and_the_run_says_so(
    tiny_pipeline_dir: Path, tiny_clip_dir: Path
) -> None:
    from imagineer.agent.defaults import pocket_components

    expander, generator, scorer, refiner = pocket_components(
        model=str(tiny_pipeline_dir), scorer=str(tiny_clip_dir),
        llm="any-model", llm_base_url="http://127.0.0.1:9/v1",  # nothing listens on port 9
    )  # fmt: skip
    config = AgentConfig(images=6, rounds=2, specs_per_round=3, patience=2)
    run = Agent(expander, generator, scorer, refiner, config).run(IDEA)
    assert len(run.candidates) == 6
    for round_ in run.rounds:
        assert round_.provenance.fallback_reason, "the fallback must be recorded"
        assert round_.provenance.fallback_from is not None
    assert {r.provenance.engine for r in run.rounds} == {"offline", "search"}


def test_default_search_moves_guidance_around_the_generators_own_default() -> None:
    from imagineer.agent.defaults import pocket_components
    from imagineer.prompting.refiners import SearchRefiner

    _, generator, _, refiner = pocket_components()
    assert isinstance(refiner, SearchRefiner)
    assert refiner.config.guidance_default == generator.default("guidance") == 4.0


def test_images_are_contrasted_with_the_ideas_foils_and_that_counts_in_the_objective(parts) -> None:  # type: ignore[no-untyped-def]
    expander = parts[0]
    weighted = make_agent(
        parts, images=4, rounds=2, patience=2, seed=3, concept_weight=1.0, contrast_weight=0.5
    )[0]
    run = weighted.run(IDEA)
    assert run.foils == expander.foils(IDEA) and run.foils  # "a red star in daylight", ...
    for entry in run.candidates:
        score = entry.score
        assert score.contrast is not None and 0.0 <= score.contrast <= 1.0
        concept = sum(score.concepts.values()) / len(score.concepts)
        expected = score.cosine + concept + 0.5 * score.contrast
        assert entry.objective == pytest.approx(expected)
    plain = make_agent(parts, images=4, rounds=2, patience=2, seed=3, contrast_weight=0.0)[0]
    unweighted = plain.run(IDEA)
    assert unweighted.foils == [] and all(c.score.contrast is None for c in unweighted.candidates)


class NoRegionsGenerator(DiffusersGenerator):
    """The same pipeline, behaving like a backend without regional prompts (a remote API)."""

    @property
    def supports_regions(self) -> bool:
        return False


def test_expanded_specs_render_with_their_regions_and_record_them(parts) -> None:  # type: ignore[no-untyped-def]
    agent, _ = make_agent(parts, images=4, rounds=1, specs_per_round=2)
    run = agent.run("a red heart beside a yellow square")
    bare = [c for c in run.candidates if c.note == "the idea as typed"]
    expanded = [c for c in run.candidates if c.note == "expanded"]
    assert bare and expanded
    for entry in bare:
        assert entry.candidate.params.regions == ()
    for entry in expanded:
        prompts = [r.prompt for r in entry.candidate.params.regions]
        assert prompts == [r.prompt for r in entry.prompt.regions]
        assert prompts[0].startswith("a red heart on the left")
        assert prompts[1].startswith("a yellow square on the right")
    record = json.loads(run.model_dump_json())
    assert record["candidates"][-1]["candidate"]["params"]["regions"][0]["box"] == [0, 0, 0.5, 1]


@pytest.mark.parametrize("why", ["generator", "config"])
def test_specs_render_without_regions_when_the_generator_or_config_says_so(parts, why: str) -> None:  # type: ignore[no-untyped-def]
    expander, generator, scorer, vocabulary = parts
    plain = NoRegionsGenerator(generator.config) if why == "generator" else generator
    config = AgentConfig(images=2, rounds=1, specs_per_round=2, regions=why != "config")
    agent = Agent(expander, plain, scorer, SearchRefiner(vocabulary), config)
    run = agent.run("a red heart beside a yellow square")
    expanded = [c for c in run.candidates if c.note == "expanded"]
    assert expanded and all(c.spec.regions for c in expanded)
    assert all(c.candidate.params.regions == () and not c.prompt.regions for c in expanded)
    assert run.config["regions"] is (why != "config")
