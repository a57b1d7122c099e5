"""SearchRefiner and concepts: feedback-driven, deterministic, never repeating."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagineer.errors import InvalidInput
from imagineer.prompting import (
    OfflineExpander,
    PromptSpec,
    ScoredSpec,
    SearchRefiner,
    SearchRefinerConfig,
    Vocabulary,
    concepts_for,
    critique,
    vocabulary_from_world,
    weakest_concepts,
)

WORLD = Path(__file__).parents[2] / "imagineer" / "pocket" / "world.json"
IDEA = "a red circle on the left and a blue star in pixel art"


@pytest.fixture(scope="module")
def refiner() -> SearchRefiner:
    return SearchRefiner(vocabulary_from_world(WORLD))


def history(weak: str) -> list[ScoredSpec]:
    """Round-0 history of the idea where ``weak`` is the concept the pictures lack."""
    specs = OfflineExpander(vocabulary_from_world(WORLD)).expand(IDEA, 4, seed=0).specs
    entries = []
    for i, spec in enumerate(specs):
        concepts = {c: 0.30 for c in concepts_for(IDEA)}
        concepts[weak] = 0.10 + i / 100
        entries.append(
            ScoredSpec(spec=spec, score=0.3 - i / 100, concepts=concepts, candidate_id=f"c{i}")
        )
    return entries


def emphasised(specs: list[PromptSpec]) -> set[str]:
    return {t for s in specs for t, w in s.emphasis.items() if w > 1}


def test_concepts_split_the_idea_and_keep_positions_attached() -> None:
    assert concepts_for(IDEA) == ["red circle on the left", "blue star", "pixel art"]
    assert concepts_for("a fox in the snow, wearing a red scarf") == ["fox", "snow", "red scarf"]
    assert concepts_for(PromptSpec(subject="sunset")) == ["sunset"]
    assert concepts_for("a red circle next to a blue star") == ["red circle", "blue star"]
    assert concepts_for("a circle and a star together") == ["circle", "star"]
    spec = PromptSpec(subject="a fox", style="Watercolor", lighting=["golden hour"])
    assert concepts_for(spec, include_modifiers=True) == ["fox", "Watercolor", "golden hour"]


def test_weakest_concepts_and_critique_read_the_best_entries() -> None:
    past = history("blue star")
    assert weakest_concepts(past, 1) == [("blue star", pytest.approx(0.11))]
    text = critique(past, weakest_concepts(past, 1))
    assert "'blue star'" in text and "0.300" in text


def test_per_concept_feedback_steers_the_search(refiner: SearchRefiner) -> None:
    star = refiner.refine(IDEA, history("blue star"), 6, seed=1)
    art = refiner.refine(IDEA, history("pixel art"), 6, seed=1)
    assert "blue star" in emphasised(star.specs) and "blue star" not in emphasised(art.specs)
    assert "pixel art" in emphasised(art.specs) and "pixel art" not in emphasised(star.specs)
    assert [s.fingerprint() for s in star.specs] != [s.fingerprint() for s in art.specs]
    assert any("weak concept 'blue star'" in note for note in star.notes)


def test_proposals_are_new_deterministic_and_name_their_parents(refiner: SearchRefiner) -> None:
    past = history("blue star")
    refinement = refiner.refine(IDEA, past, 8, seed=2)
    assert refinement == refiner.refine(IDEA, past, 8, seed=2)
    assert refinement.specs != refiner.refine(IDEA, past, 8, seed=3).specs
    tried = {h.spec.fingerprint() for h in past}
    proposed = [s.fingerprint() for s in refinement.specs]
    assert len(proposed) == 8 and len(set(proposed)) == 8 and not tried & set(proposed)
    assert set(refinement.parents) <= {"c0", "c1", "c2"}  # the beam: the best three
    assert refinement.parents[0] == "c0" and {s.subject for s in refinement.specs} == {IDEA}


def test_rounds_of_search_never_repeat(refiner: SearchRefiner) -> None:
    past = history("pixel art")
    for round_index in range(1, 4):
        refinement = refiner.refine(IDEA, past, 4, seed=0)
        assert not {s.fingerprint() for s in refinement.specs} & {
            h.spec.fingerprint() for h in past
        }
        past += [
            ScoredSpec(spec=s, score=0.2, concepts=past[0].concepts, round=round_index)
            for s in refinement.specs
        ]


def test_a_weak_lighting_concept_switches_the_lighting() -> None:
    idea = "a green square at sunset"
    spec = PromptSpec(subject=idea, lighting=["neon lighting"])
    past = [ScoredSpec(spec=spec, score=0.3, concepts={"green square": 0.3, "sunset": 0.05})]
    refinement = SearchRefiner(vocabulary_from_world(WORLD)).refine(idea, past, 6, seed=0)
    assert any(s.lighting == ["sunset lighting"] for s in refinement.specs)


def test_refining_needs_a_history(refiner: SearchRefiner) -> None:
    with pytest.raises(InvalidInput, match="at least one scored spec"):
        refiner.refine(IDEA, [], 2, seed=0)


def test_an_exhausted_search_space_returns_fewer_specs_but_never_a_repeat() -> None:
    refiner = SearchRefiner(
        Vocabulary(name="empty"), config=SearchRefinerConfig(guidance_step=None)
    )
    past = [ScoredSpec(spec=PromptSpec(subject="a fox"), score=0.3, concepts={"fox": 0.1})]
    refinement = refiner.refine("a fox", past, 10, seed=0)
    weights = sorted(s.emphasis["fox"] for s in refinement.specs)
    assert weights == [1.25, 1.5, 1.75]  # one to three stacked edits of the only parent, once


def test_a_spec_without_the_ideas_layout_is_offered_it(refiner: SearchRefiner) -> None:
    idea = "a red heart beside a yellow square"
    bare = PromptSpec(subject=idea)
    concepts = {"red heart": 0.2, "yellow square": 0.25}
    past = [ScoredSpec(spec=bare, score=0.3, concepts=concepts, candidate_id="c0")]
    refinement = refiner.refine(idea, past, 6, seed=0)
    arranged = [
        spec
        for spec, note in zip(refinement.specs, refinement.notes, strict=True)
        if "layout hints" in note
    ]
    assert arranged, refinement.notes
    for spec in arranged:
        assert spec.composition[:2] == ["a red heart on the left", "a yellow square on the right"]
        assert [r.prompt for r in spec.regions] == spec.composition[:2]
