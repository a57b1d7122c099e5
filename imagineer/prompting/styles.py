"""Style presets as data: load, validate, and trade them with A1111 and Fooocus.

A preset is the Fooocus shape, ``{"name", "prompt": "... {prompt} ...", "negative_prompt"}``: the
template wraps the rendered subject and modifiers, and its negative prompt joins the spec's own.
Nothing is read at import time; `load_styles` reads and validates a file when asked.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from imagineer.errors import InvalidPreset

logger = logging.getLogger(__name__)

DATA_DIR = Path(__file__).parent / "data"
PLACEHOLDER = "{prompt}"


class StylePreset(BaseModel):
    """One style: a positive template holding ``{prompt}`` once, and a negative prompt.

    Example:
        >>> StylePreset(name="ink", prompt="ink drawing of {prompt}, bold strokes").apply("a fox")
        'ink drawing of a fox, bold strokes'
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="Unique name, matched case-insensitively.")
    prompt: str = Field(default=PLACEHOLDER, description="Template with `{prompt}` exactly once.")
    negative_prompt: str = Field(default="", description="Appended to the negative prompt.")

    def apply(self, core: str) -> str:
        """Put ``core`` (subject and modifiers) into the template, tidying empty joins."""
        text = self.prompt.replace(PLACEHOLDER, core)
        parts = [p.strip() for p in text.split(",")]
        return ", ".join(p for p in parts if p)


class StyleLibrary:
    """An ordered, validated set of presets with case-insensitive lookup.

    Example:
        >>> library = load_styles()
        >>> library["Watercolor"].apply("a fox in the snow")
    """

    def __init__(self, presets: Iterable[StylePreset], source: str = "<memory>") -> None:
        self.source = source
        self._presets: dict[str, StylePreset] = {}
        for preset in presets:
            _check_preset(preset, source)
            key = preset.name.lower()
            if key in self._presets:
                raise InvalidPreset(preset.name, source, "the name is used twice; names are unique")
            self._presets[key] = preset

    def get(self, name: str) -> StylePreset | None:
        """The preset called ``name`` (any case), or None."""
        return self._presets.get(name.strip().lower())

    def __getitem__(self, name: str) -> StylePreset:
        preset = self.get(name)
        if preset is None:
            raise KeyError(name)
        return preset

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[StylePreset]:
        return iter(self._presets.values())

    def __len__(self) -> int:
        return len(self._presets)

    def names(self) -> list[str]:
        """Preset names in file order."""
        return [p.name for p in self._presets.values()]

    def to_json(self) -> str:
        """The library in the Fooocus JSON shape (a list of presets)."""
        return json.dumps([p.model_dump() for p in self], indent=2, ensure_ascii=False)


def _check_preset(preset: StylePreset, source: str) -> None:
    count = preset.prompt.count(PLACEHOLDER)
    if count != 1:
        raise InvalidPreset(
            preset.name,
            source,
            f"the template must contain {PLACEHOLDER} exactly once, found {count}: "
            f"{preset.prompt!r}",
        )


def _parse_presets(rows: list[dict[str, object]], source: str) -> list[StylePreset]:
    presets = []
    for index, row in enumerate(rows):
        name = str(row.get("name") or f"#{index}")
        try:
            presets.append(StylePreset.model_validate(row))
        except ValidationError as error:
            raise InvalidPreset(name, source, str(error).replace("\n", " ")) from error
    return presets


def load_styles(path: str | Path | None = None) -> StyleLibrary:
    """Read and validate a style file in the Fooocus JSON shape.

    Args:
        path: A JSON file holding a list of presets; None reads imagineer's bundled
            ``prompting/data/styles.json``.

    Returns:
        The validated library.

    Raises:
        InvalidPreset: A preset is malformed, its template lacks ``{prompt}`` or has it twice,
            or a name repeats; the error names the preset.
    """
    path = Path(path) if path is not None else DATA_DIR / "styles.json"
    return import_fooocus_json(path)


def import_fooocus_json(path: str | Path) -> StyleLibrary:
    """Read a Fooocus ``sdxl_styles/*.json`` file (a list of name/prompt/negative_prompt).

    Fooocus presets may leave out ``prompt`` (meaning the bare ``{prompt}``) or the negative.
    """
    path = Path(path)
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise InvalidPreset("<file>", str(path), f"not valid JSON: {error}") from error
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise InvalidPreset("<file>", str(path), "expected a JSON list of preset objects")
    return StyleLibrary(_parse_presets(rows, str(path)), source=str(path))


def export_fooocus_json(library: Iterable[StylePreset], path: str | Path) -> Path:
    """Write presets as a Fooocus JSON list; returns the path written."""
    path = Path(path)
    path.write_text(StyleLibrary(library).to_json() + "\n", encoding="utf-8")
    return path


def import_a1111_csv(path: str | Path) -> StyleLibrary:
    """Read an A1111 ``styles.csv`` (columns ``name,prompt,negative_prompt``).

    A1111 templates may hold ``{prompt}``; one without it is appended to the prompt, which is the
    template ``"{prompt}, <text>"`` here. Rows with an empty name are skipped, as A1111 does.
    """
    path = Path(path)
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = {"name", "prompt"} - set(reader.fieldnames or [])
        if missing:
            raise InvalidPreset("<file>", str(path), f"missing column(s) {sorted(missing)}")
        rows = []
        for row in reader:
            if not (row.get("name") or "").strip():
                continue
            prompt = (row.get("prompt") or "").strip()
            if PLACEHOLDER not in prompt:
                prompt = f"{PLACEHOLDER}, {prompt}" if prompt else PLACEHOLDER
            negative = (row.get("negative_prompt") or "").strip()
            rows.append(
                {"name": row["name"].strip(), "prompt": prompt, "negative_prompt": negative}
            )
    return StyleLibrary(_parse_presets(rows, str(path)), source=str(path))


def export_a1111_csv(library: Iterable[StylePreset], path: str | Path) -> Path:
    """Write presets as an A1111 ``styles.csv``; returns the path written."""
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "prompt", "negative_prompt"])
        for preset in StyleLibrary(library):
            writer.writerow([preset.name, preset.prompt, preset.negative_prompt])
    return path
