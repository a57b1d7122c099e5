"""Layout hints: places for things named together, relations respected, counts in words."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagineer.prompting import OfflineExpander, Vocabulary, load_vocabulary, vocabulary_from_world
from imagineer.prompting.layout import layout_terms

WORLD = Path(__file__).parents[2] / "imagineer" / "pocket" / "world.json"


@pytest.fixture(scope="module")
def pocket() -> Vocabulary:
    return vocabulary_from_world(WORLD)


@pytest.mark.parametrize(
    ("idea", "terms"),
    [
        (
            "a red heart beside a yellow square",
            ["a red heart on the left", "a yellow square on the right"],
        ),
        ("a star and a cross together", ["a star on the left", "a cross on the right"]),
        ("a square above a star", ["a square at the top", "a star at the bottom"]),
        ("a square under a star", ["a square at the bottom", "a star at the top"]),
        ("a star to the right of a circle", ["a star on the right", "a circle on the left"]),
        ("a pair of stars", ["two stars"]),
        ("3 crosses", ["three crosses"]),
    ],
)
def test_pocket_ideas_get_places_and_written_counts(
    pocket: Vocabulary, idea: str, terms: list[str]
) -> None:
    assert layout_terms(idea, pocket) == terms


@pytest.mark.parametrize(
    "idea",
    [
        "a star",  # one thing
        "a heart at the top",  # the idea places it already
        "three circles",  # the count is written already
        "a cross under a night sky",  # a lighting, not a second thing
        "a cross, sharp, high detail",  # quality words, not things
        "a heart, 8-bit pixel art",  # a style
    ],
)
def test_no_hint_where_there_is_nothing_to_arrange(pocket: Vocabulary, idea: str) -> None:
    assert layout_terms(idea, pocket) == []


def test_general_vocabulary_arranges_things_but_not_settings() -> None:
    general = load_vocabulary()
    assert layout_terms("a cat next to a dog", general) == [
        "a cat on the left",
        "a dog on the right",
    ]
    assert layout_terms("a dog, a cat and a bird, oil painting", general) == [
        "a dog on the left",
        "a cat in the center",
        "a bird on the right",
    ]
    assert layout_terms("a castle above the clouds", general)[1] == "the clouds at the bottom"
    assert layout_terms("a fox in the snow", general) == []  # a setting, not a second thing
    assert layout_terms("3 apples on a table", general) == ["three apples on a table"]
    assert layout_terms("a cat next to a dog", Vocabulary(name="bare")) == []


def test_expanded_specs_carry_the_hints_and_keep_the_idea(pocket: Vocabulary) -> None:
    idea = "a cyan square next to a green circle"
    for spec in OfflineExpander(pocket).expand(idea, 4, seed=0).specs:
        assert spec.subject == idea
        assert spec.composition[:2] == ["a cyan square on the left", "a green circle on the right"]
    plain = OfflineExpander(pocket, layout=False).expand(idea, 4, seed=0).specs
    assert all(not spec.composition for spec in plain)
