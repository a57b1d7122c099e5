"""Foils: the idea with one stated detail changed, written from its own words and a vocabulary."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagineer.prompting import OfflineExpander, Vocabulary, load_vocabulary, vocabulary_from_world
from imagineer.prompting.foils import foils_for

WORLD = Path(__file__).parents[2] / "imagineer" / "pocket" / "world.json"


@pytest.fixture(scope="module")
def pocket() -> Vocabulary:
    return vocabulary_from_world(WORLD)


def test_two_things_get_their_attributes_swapped_and_each_doubled(pocket: Vocabulary) -> None:
    foils = foils_for("a red heart beside a hot pink square", pocket)
    assert foils[:3] == ["a hot pink heart beside a red square", "two hearts", "two squares"]
    # then each named object and colour replaced by the others
    assert "a red circle beside a hot pink square" in foils
    assert "a red heart beside a hot pink star" in foils
    assert len(foils) == 24  # the default limit
    # "an" and "a" follow the new words
    assert (
        foils_for("an orange cross and a pink star", pocket)[0] == "a pink cross and an orange star"
    )
    assert foils_for("a star and a cross together", pocket)[:2] == ["two stars", "two crosses"]


def test_a_relation_is_reversed(pocket: Vocabulary) -> None:
    assert (
        foils_for("a heart to the left of a square", pocket)[0] == "a square to the left of a heart"
    )
    assert foils_for("a star above a cross", pocket)[0] == "a cross above a star"


def test_counts_become_their_neighbours_and_a_single_thing(pocket: Vocabulary) -> None:
    assert foils_for("3 crosses", pocket)[:2] == ["two crosses", "a cross"]
    assert "3 stars" in foils_for("3 crosses", pocket)  # plurals stay plural
    assert foils_for("a pair of stars", pocket)[:2] == ["three stars", "a star"]
    general = load_vocabulary()
    assert foils_for("5 apples on a table", general) == [
        "four apples on a table",
        "six apples on a table",
        "an apple on a table",
    ]


def test_lighting_and_style_are_replaced_in_the_same_grammatical_form(pocket: Vocabulary) -> None:
    lit = foils_for("a star at night", pocket)
    assert "a star in daylight" in lit and "a star at sunset" in lit
    assert "a circle at night" in lit and len(lit) == 5 + 4  # other shapes, other lightings
    assert "pixel art of a blue star" not in foils_for("pixel art of a blue star", pocket)
    assert "line art of a blue star" in foils_for("pixel art of a blue star", pocket)


def test_nothing_to_contrast_means_no_foils(pocket: Vocabulary) -> None:
    for idea in ("a picture", "draw something nice", "a fox in the snow"):
        assert foils_for(idea, pocket) == []
    assert foils_for("a fox in the snow", load_vocabulary()) == []
    # a single shape names its object and colour: those are what it can be contrasted on
    assert set(foils_for("a cyan circle", pocket)) >= {"a cyan star", "a red circle"}
    assert foils_for("a star at night", Vocabulary(name="bare")) == []


def test_the_offline_expander_offers_its_vocabularys_foils(pocket: Vocabulary) -> None:
    expander = OfflineExpander(pocket)
    assert expander.foils("3 crosses") == foils_for("3 crosses", pocket)
