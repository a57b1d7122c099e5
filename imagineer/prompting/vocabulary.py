"""Vocabularies as data: the lighting, composition, quality, negative and style terms engines use.

A vocabulary is named groups of options; an option has a name and the phrases that say it (the
first is the one engines write, all of them count when spotting it in an idea). Groups matching a
`PromptSpec` field (``lighting``, ``composition``, ``details``, ``negative``, ``style``) feed that
field. The bundled general vocabulary and the pocket world's small one are both `Vocabulary`
values, so every engine runs unchanged on either.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from imagineer.errors import InvalidInput

DATA_DIR = Path(__file__).parent / "data"

SPEC_GROUPS = ("style", "lighting", "composition", "details", "negative")
"""Groups that map onto `PromptSpec` fields of the same name."""
LAYOUT_GROUPS = ("placement", "relation", "number")
"""Groups that layout hints are written from (see `imagineer.prompting.layout`)."""
FOIL_GROUPS = ("relation", "number", "object", "colour", "lighting", "style")
"""Groups that foils are written from (see `imagineer.prompting.foils`)."""


class TermOption(BaseModel):
    """One choice in a group, e.g. sunset: ["sunset lighting", "golden hour", "at sunset"]."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    phrases: list[str] = Field(min_length=1, description="The first is written; all are spotted.")

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        """Let data files write a one-phrase option as a bare string."""
        return {"name": value, "phrases": [value]} if isinstance(value, str) else value

    @property
    def phrase(self) -> str:
        """The phrase engines write."""
        return self.phrases[0]

    def mentioned_in(self, text: str) -> bool:
        """Whether any of the option's phrases (or its name) occurs in ``text`` as whole words."""
        return any(
            re.search(rf"(?<!\w){re.escape(p)}(?!\w)", text, flags=re.IGNORECASE)
            for p in {self.name, *self.phrases}
        )


class TermGroup(BaseModel):
    """A group of options and how many of them a spec takes.

    ``max_picks == 1`` makes the group exclusive: a scene has one lighting, so when an idea
    already names one, engines add none.
    """

    model_config = ConfigDict(extra="forbid")

    options: list[TermOption] = Field(default_factory=list)
    min_picks: int = Field(default=0, ge=0, description="Fewest options an engine adds.")
    max_picks: int = Field(default=2, ge=1, description="Most options an engine adds.")

    @model_validator(mode="after")
    def _picks_ordered(self) -> TermGroup:
        if self.min_picks > self.max_picks:
            raise ValueError(f"min_picks {self.min_picks} > max_picks {self.max_picks}")
        return self

    @property
    def exclusive(self) -> bool:
        return self.max_picks == 1

    def phrases(self) -> list[str]:
        """Every option's written phrase, in order."""
        return [o.phrase for o in self.options]

    def find(self, text: str) -> list[TermOption]:
        """Options mentioned in ``text``."""
        return [o for o in self.options if o.mentioned_in(text)]

    def owner(self, phrase: str) -> TermOption | None:
        """The option one of whose phrases is ``phrase`` (any case), if any."""
        lowered = phrase.lower()
        for option in self.options:
            if lowered == option.name.lower() or lowered in (p.lower() for p in option.phrases):
                return option
        return None


class Vocabulary(BaseModel):
    """Named term groups: what offline engines and refiners may write.

    Example:
        >>> vocab = load_vocabulary()
        >>> vocab.group("lighting").phrases()[:2]
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    groups: dict[str, TermGroup] = Field(default_factory=dict)

    def group(self, name: str) -> TermGroup:
        """The group called ``name``; an empty group when the vocabulary has none by that name."""
        return self.groups.get(name, TermGroup())

    def find(self, text: str) -> dict[str, list[TermOption]]:
        """Every group's options mentioned in ``text`` (groups with no mention are left out)."""
        found = {name: group.find(text) for name, group in self.groups.items()}
        return {name: options for name, options in found.items() if options}


def load_vocabulary(path: str | Path | None = None) -> Vocabulary:
    """Read and validate a vocabulary JSON file.

    Args:
        path: A file shaped like ``{"name", "groups": {group: {"options": [...], "min_picks",
            "max_picks"}}}``, options being strings or ``{"name", "phrases"}``. None reads the
            bundled ``prompting/data/vocabulary.json``. A pocket ``world.json`` is recognised and
            converted with `vocabulary_from_world`.

    Raises:
        InvalidInput: The file is not valid JSON or not a vocabulary; the message names the field.
    """
    path = Path(path) if path is not None else DATA_DIR / "vocabulary.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise InvalidInput(f"cannot read vocabulary {path}: {error}") from error
    if isinstance(data, dict) and "lightings" in data and "groups" not in data:
        return vocabulary_from_world(data)
    try:
        return Vocabulary.model_validate(data)
    except ValidationError as error:
        raise InvalidInput(f"vocabulary {path} is malformed: {error}") from error


def vocabulary_from_world(world: dict[str, Any] | str | Path) -> Vocabulary:
    """The pocket world's vocabulary, read from its ``world.json`` (plain JSON, no pocket import).

    Lightings and styles become exclusive groups (a picture has one of each), defects the negative
    terms, and the world's quality phrases the detail terms. Shapes and colours (the subject's
    business, never added to a spec) become the ``object`` and ``colour`` groups foils are
    written from; positions, relations and count words the ``placement``, ``relation`` and
    ``number`` groups of layout hints.

    Args:
        world: The parsed world JSON, or a path to it.
    """
    data: dict[str, Any] = (
        world if isinstance(world, dict) else json.loads(Path(world).read_text(encoding="utf-8"))
    )

    def options(entries: list[dict[str, Any]], *keys: str) -> list[dict[str, Any]]:
        return [
            {"name": e["name"], "phrases": [p for key in keys for p in e.get(key, [])]}
            for e in entries
        ]

    try:
        groups = {
            "lighting": {
                "options": options(data["lightings"], "phrases", "adverbials"),
                "max_picks": 1,
            },
            "style": {"options": options(data["styles"], "phrases"), "max_picks": 1},
            "negative": {"options": options(data["defects"], "phrases"), "max_picks": 3},
            "details": {"options": list(data["quality_phrases"]), "max_picks": 1},
            "placement": {"options": options(data["positions"], "phrases")},
            "object": {"options": options(data["shapes"], "synonyms")},
            "colour": {"options": options(data["colours"], "synonyms")},
            "relation": {
                "options": [
                    {"name": name, "phrases": phrases}
                    for name, phrases in data.get("relation_phrases", {}).items()
                ]
            },
            "number": {
                "options": [
                    {"name": count, "phrases": words}
                    for count, words in data.get("count_words", {}).items()
                ]
            },
        }
        return Vocabulary.model_validate({"name": data.get("name", "world"), "groups": groups})
    except (KeyError, TypeError, ValidationError) as error:
        raise InvalidInput(f"world JSON cannot be read as a vocabulary: {error}") from error
