"""Style presets and vocabularies as data: loading, validation, A1111 and Fooocus round trips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imagineer.errors import InvalidInput, InvalidPreset
from imagineer.prompting import (
    StyleLibrary,
    StylePreset,
    export_a1111_csv,
    export_fooocus_json,
    import_a1111_csv,
    import_fooocus_json,
    load_styles,
    load_vocabulary,
    vocabulary_from_world,
)

WORLD = Path(__file__).parents[2] / "imagineer" / "pocket" / "world.json"


def test_bundled_styles_load_and_cover_the_main_families() -> None:
    library = load_styles()
    assert len(library) >= 60
    names = {n.lower() for n in library.names()}
    for family in ("photo", "film still", "oil painting", "illustration", "3d render",
                   "pixel art", "line art", "watercolor", "anime"):  # fmt: skip
        assert family in names
    assert all(p.prompt.count("{prompt}") == 1 for p in library)
    assert library["WATERCOLOR"].apply("a fox").startswith("watercolor painting of a fox")


def test_fooocus_json_and_a1111_csv_round_trip(tmp_path: Path) -> None:
    library = load_styles()
    again = import_fooocus_json(export_fooocus_json(library, tmp_path / "styles.json"))
    assert list(again) == list(library)
    again = import_a1111_csv(export_a1111_csv(library, tmp_path / "styles.csv"))
    assert list(again) == list(library)


def test_a1111_rows_without_placeholder_append_and_empty_names_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "styles.csv"
    path.write_text(
        'name,prompt,negative_prompt\nMoody,"dark, moody",bright\n,ignored,\nBare,,\n',
        encoding="utf-8",
    )
    library = import_a1111_csv(path)
    assert library.names() == ["Moody", "Bare"]
    assert library["Moody"].apply("a fox") == "a fox, dark, moody"
    assert library["Bare"].apply("a fox") == "a fox"


@pytest.mark.parametrize(
    ("rows", "reason"),
    [
        ([{"name": "Twice", "prompt": "{prompt} and {prompt}"}], "exactly once, found 2"),
        ([{"name": "None", "prompt": "no placeholder"}], "exactly once, found 0"),
        ([{"name": "Dup", "prompt": "{prompt}"}, {"name": "dup", "prompt": "{prompt}"}], "twice"),
        ([{"name": "Odd", "prompt": "{prompt}", "colour": "red"}], "Extra inputs"),
    ],
)
def test_a_bad_preset_raises_naming_it(tmp_path: Path, rows: list, reason: str) -> None:  # type: ignore[type-arg]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    with pytest.raises(InvalidPreset, match=reason) as caught:
        load_styles(path)
    assert caught.value.preset.lower() == rows[-1]["name"].lower()
    assert caught.value.preset in str(caught.value)


def test_style_library_rejects_duplicates_in_memory() -> None:
    with pytest.raises(InvalidPreset, match="'b'"):
        StyleLibrary([StylePreset(name="B"), StylePreset(name="b")])


def test_bundled_vocabulary_has_the_spec_groups() -> None:
    vocab = load_vocabulary()
    for group in ("lighting", "composition", "details", "negative", "style"):
        assert len(vocab.group(group).options) >= 8
    assert vocab.group("lighting").exclusive
    assert [o.name for o in vocab.group("lighting").find("a fox at sunset")] == ["golden hour"]


def test_the_pocket_world_is_a_vocabulary_too() -> None:
    vocab = vocabulary_from_world(WORLD)
    assert load_vocabulary(WORLD) == vocab
    assert {o.name for o in vocab.group("lighting").options} == {
        "daylight", "sunset", "night", "studio", "neon",
    }  # fmt: skip
    assert "pixel art" in vocab.group("style").phrases()
    assert {"blurry", "grainy"} <= set(vocab.group("negative").phrases())
    assert "sharp, high detail" in vocab.group("details").phrases()
    assert vocab.group("composition").options == []


def test_malformed_vocabulary_is_a_typed_error(tmp_path: Path) -> None:
    path = tmp_path / "v.json"
    path.write_text(json.dumps({"name": "v", "groups": {"x": {"min_picks": 3, "max_picks": 1}}}))
    with pytest.raises(InvalidInput, match="min_picks"):
        load_vocabulary(path)
