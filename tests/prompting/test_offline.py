"""OfflineExpander: seeded, cross-process deterministic, k distinct specs, idea-aware."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from imagineer.errors import ExpansionFailed, InvalidInput, UnknownStyle
from imagineer.prompting import (
    OfflineExpander,
    Vocabulary,
    load_styles,
    load_vocabulary,
    vocabulary_from_world,
)

WORLD = Path(__file__).parents[2] / "imagineer" / "pocket" / "world.json"
IDEA = "a fox in the snow"


@pytest.fixture(scope="module")
def expander() -> OfflineExpander:
    return OfflineExpander(load_vocabulary(), load_styles())


def test_same_idea_and_seed_same_specs_other_seed_other_specs(expander: OfflineExpander) -> None:
    first = expander.expand(IDEA, 4, seed=7)
    assert first == expander.expand(IDEA, 4, seed=7)
    assert first.specs != expander.expand(IDEA, 4, seed=8).specs
    assert first.specs != expander.expand("a fox in the rain", 4, seed=7).specs
    assert first.provenance.engine == "offline" and first.provenance.seed == 7


def test_determinism_holds_across_processes(expander: OfflineExpander) -> None:
    code = (
        "from imagineer.prompting import *; "
        "e = OfflineExpander(load_vocabulary(), load_styles()); "
        f"print(e.expand({IDEA!r}, 4, seed=7).model_dump_json())"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert json.loads(out.stdout) == expander.expand(IDEA, 4, seed=7).model_dump(mode="json")


def test_k_distinct_specs_whose_subject_is_the_idea(expander: OfflineExpander) -> None:
    specs = expander.expand(IDEA, 8, seed=0).specs
    assert len(specs) == 8 and len({s.fingerprint() for s in specs}) == 8
    assert {s.subject for s in specs} == {IDEA}
    styles = load_styles()
    assert all(s.style is None or s.style in styles for s in specs)
    assert all(s.render(styles=styles).positive for s in specs)


def test_what_the_idea_says_is_not_contradicted() -> None:
    expander = OfflineExpander(vocabulary_from_world(WORLD))
    idea = "a red circle on the left at sunset in pixel art"
    for spec in expander.expand(idea, 6, seed=3).specs:
        assert spec.lighting == [] and spec.style is None  # the idea already has both


def test_constraints_and_forced_style(expander: OfflineExpander) -> None:
    expansion = expander.expand(
        IDEA, 3, seed=1, style="Watercolor", constraints=["no people", "square"]
    )
    for spec in expansion.specs:
        assert spec.style == "Watercolor" and spec.negative[0] == "people"
        assert spec.details[0] == "square"
    with pytest.raises(UnknownStyle):
        expander.expand(IDEA, 3, seed=1, style="Not A Style")


def test_bad_inputs_and_an_exhausted_vocabulary_raise(expander: OfflineExpander) -> None:
    with pytest.raises(InvalidInput):
        expander.expand("  ", 2, seed=0)
    with pytest.raises(InvalidInput):
        expander.expand(IDEA, 0, seed=0)
    with pytest.raises(ExpansionFailed, match="only 1 distinct"):
        OfflineExpander(Vocabulary(name="empty")).expand(IDEA, 2, seed=0)
