"""Layout hints: places for things named together, relations respected, counts in words."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagineer.prompting import OfflineExpander, Vocabulary, load_vocabulary, vocabulary_from_world
from imagineer.prompting.layout import layout_regions, layout_terms, split_modifiers
from imagineer.prompting.spec import PromptSpec
from imagineer.region import Region

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
        "a cat on the right",
        "a bird at the bottom",
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


HALVES = {"left": (0.0, 0.0, 0.5, 1.0), "right": (0.5, 0.0, 1.0, 1.0)}


@pytest.mark.parametrize(
    ("idea", "regions"),
    [
        (
            "a red heart beside a yellow square",
            [
                ("a red heart on the left", HALVES["left"]),
                ("a yellow square on the right", HALVES["right"]),
            ],
        ),
        (
            "a square above a star",
            [
                ("a square at the top", (0.0, 0.0, 1.0, 0.5)),
                ("a star at the bottom", (0.0, 0.5, 1.0, 1.0)),
            ],
        ),
        (
            "a pair of crosses",
            [("a cross on the left", HALVES["left"]), ("a cross on the right", HALVES["right"])],
        ),
        (
            "3 stars",
            [
                ("a star on the left", (0.0, 0.0, 0.4, 0.6)),
                ("a star on the right", (0.6, 0.0, 1.0, 0.6)),
                ("a star at the bottom", (0.25, 0.6, 0.75, 1.0)),
            ],
        ),
        (
            "exactly two butterflies",
            [
                ("a butterfly on the left", HALVES["left"]),
                ("a butterfly on the right", HALVES["right"]),
            ],
        ),
    ],
)
def test_each_placed_or_counted_thing_gets_its_own_region(
    pocket: Vocabulary, idea: str, regions: list[tuple[str, tuple[float, ...]]]
) -> None:
    found = layout_regions(idea, pocket)
    assert [r.prompt for r in found] == [prompt for prompt, _ in regions]
    for region, (_, box) in zip(found, regions, strict=True):
        assert region.box == pytest.approx(box)


@pytest.mark.parametrize(
    "idea", ["a star", "a heart at the top", "two sheep", "a cross under a night sky", "2 neon"]
)
def test_no_regions_where_there_is_nothing_to_place(pocket: Vocabulary, idea: str) -> None:
    assert layout_regions(idea, pocket) == []


def test_region_prompts_share_the_specs_style_and_lighting() -> None:
    left = Region(prompt="a red heart on the left", box=(0.0, 0.0, 0.5, 1.0))
    spec = PromptSpec(
        subject="a red heart", style="pixel art", lighting=["at night"], regions=[left]
    )
    rendered = spec.render()
    assert [r.prompt for r in rendered.regions] == ["a red heart on the left, pixel art, at night"]
    assert rendered.regions[0].box == left.box
    assert PromptSpec.model_validate_json(spec.model_dump_json()) == spec
    bare = spec.model_copy(update={"regions": []})
    assert bare.fingerprint() != spec.fingerprint()


def test_expanded_specs_carry_regions_unless_turned_off(pocket: Vocabulary) -> None:
    idea = "a cyan square next to a green circle"
    for spec in OfflineExpander(pocket).expand(idea, 3, seed=0).specs:
        assert [r.prompt for r in spec.regions] == [
            "a cyan square on the left",
            "a green circle on the right",
        ]
    plain = OfflineExpander(pocket, regions=False).expand(idea, 3, seed=0).specs
    assert all(not spec.regions for spec in plain)


@pytest.mark.parametrize(
    ("part", "split"),
    [
        ("a yellow square at sunset", ("a yellow square", "at sunset")),
        ("a heart in pixel art", ("a heart", "in pixel art")),
        ("oil painting", ("", "oil painting")),
        ("a red star", ("a red star", "")),
    ],
)
def test_a_part_splits_into_its_thing_and_its_modifiers(
    pocket: Vocabulary, part: str, split: tuple[str, str]
) -> None:
    vocabulary = pocket if "oil" not in part else load_vocabulary()
    assert split_modifiers(part, vocabulary) == split


def test_what_the_idea_says_of_the_whole_picture_holds_in_every_region(pocket: Vocabulary) -> None:
    idea = "a green cross and a yellow square at sunset"
    assert layout_terms(idea, pocket) == [
        "a green cross on the left",
        "a yellow square on the right",
    ]
    assert [r.prompt for r in layout_regions(idea, pocket)] == [
        "a green cross on the left, at sunset",
        "a yellow square on the right, at sunset",
    ]
