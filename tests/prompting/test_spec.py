"""PromptSpec: JSON round trips, rendering, emphasis syntaxes, window fitting."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from imagineer.errors import UnknownStyle
from imagineer.prompting import PromptSpec, ScoredSpec, StyleLibrary, StylePreset


def words(text: str) -> int:
    """A stand-in token counter: one token per whitespace-separated word or comma."""
    return len(text.replace(",", " ,").split())


STYLES = StyleLibrary(
    [
        StylePreset(
            name="Ink", prompt="ink drawing of {prompt}, bold strokes", negative_prompt="photo"
        )
    ]
)
SPEC = PromptSpec(
    subject="a fox in the snow",
    style="Ink",
    lighting=["golden hour light"],
    composition=["wide shot"],
    details=["highly detailed", "sharp focus"],
    negative=["blurry"],
    emphasis={"snow": 1.3, "red scarf": 1.6, "sharp focus": 0.7},
)

term = st.text(alphabet="abcdefghij klm(),:", min_size=1, max_size=12).filter(
    lambda t: t.strip(" ,")
)
specs = st.builds(
    PromptSpec,
    subject=term,
    style=st.none() | term,
    lighting=st.lists(term, max_size=3),
    composition=st.lists(term, max_size=3),
    details=st.lists(term, max_size=3),
    negative=st.lists(term, max_size=3),
    emphasis=st.dictionaries(term, st.floats(0.5, 2.0), max_size=3),
    guidance=st.none() | st.floats(0.0, 30.0),
)


@settings(max_examples=60, deadline=None)
@given(specs)
def test_json_round_trip_and_render_never_loses_the_subject(spec: PromptSpec) -> None:
    again = PromptSpec.model_validate_json(spec.model_dump_json())
    assert again == spec and again.fingerprint() == spec.fingerprint()
    rendered = spec.render(count_tokens=words, window=1)
    assert rendered.positive.startswith(spec.subject)


def test_scored_spec_round_trips() -> None:
    scored = ScoredSpec(spec=SPEC, score=0.3, concepts={"fox": 0.2}, round=2, candidate_id="c")
    assert ScoredSpec.model_validate_json(scored.model_dump_json()) == scored


def test_a1111_writes_weights_and_escapes_literal_parentheses() -> None:
    spec = SPEC.model_copy(update={"subject": "a fox (small) in the snow"})
    rendered = spec.render(styles=STYLES, syntax="a1111")
    assert rendered.positive == (
        "ink drawing of a fox \\(small\\) in the (snow:1.3), (red scarf:1.6), golden hour light, "
        "wide shot, highly detailed, (sharp focus:0.7), bold strokes"
    )
    assert rendered.negative == "blurry, photo"


def test_plain_orders_by_weight_and_repeats_strong_terms() -> None:
    rendered = SPEC.render(styles=STYLES, syntax="plain")
    assert "(" not in rendered.positive and ":" not in rendered.positive
    assert rendered.positive == (
        "ink drawing of a fox in the snow, red scarf, snow, golden hour light, wide shot, "
        "highly detailed, sharp focus, red scarf, bold strokes"
    )


def test_emphasis_on_a_negative_term_stays_in_the_negative_prompt() -> None:
    spec = PromptSpec(subject="a fox", negative=["blurry"], emphasis={"blurry": 1.6})
    for syntax in ("plain", "a1111"):
        rendered = spec.render(syntax=syntax)  # type: ignore[arg-type]
        assert rendered.positive == "a fox" and "blurry" in rendered.negative
    assert spec.render(syntax="a1111").negative == "(blurry:1.6)"


def test_tiny_window_drops_modifiers_lowest_first_but_never_the_subject() -> None:
    rendered = SPEC.render(styles=STYLES, count_tokens=words, window=3)
    assert rendered.positive == "a fox in the snow"
    assert rendered.tokens == 5 and rendered.chunks == 2
    assert rendered.dropped[:4] == [
        "sharp focus",
        "red scarf (repeat)",
        "highly detailed",
        "wide shot",
    ]
    assert rendered.dropped[4:] == [
        "style:Ink",
        "golden hour light",
        "snow",
        "red scarf",
    ]
    assert rendered.negative == "blurry, photo"  # three tokens: fits, nothing dropped
    assert SPEC.render(styles=STYLES, count_tokens=words, window=2).negative == "blurry"


def test_a_window_that_fits_drops_only_what_it_must() -> None:
    full = SPEC.render(styles=STYLES, count_tokens=words, window=200)
    assert full.dropped == [] and full.tokens == words(full.positive)
    snug = SPEC.render(styles=STYLES, count_tokens=words, window=full.tokens - 1)
    assert snug.dropped == ["sharp focus"] and snug.tokens <= full.tokens - 1


def test_keep_overflow_keeps_everything_for_chunked_encoders() -> None:
    rendered = SPEC.render(styles=STYLES, count_tokens=words, window=3, overflow="keep")
    assert rendered.dropped == [] and rendered.positive == SPEC.render(styles=STYLES).positive
    assert rendered.tokens > 3


def test_style_without_library_is_a_plain_term_and_unknown_styles_raise() -> None:
    spec = PromptSpec(subject="a red circle", style="pixel art", lighting=["neon glow"])
    assert spec.render().positive == "a red circle, pixel art, neon glow"
    with pytest.raises(UnknownStyle, match="pixel art"):
        spec.render(styles=STYLES)


def test_validation_rejects_out_of_range_emphasis_and_blank_subjects() -> None:
    with pytest.raises(ValidationError):
        PromptSpec(subject="x", emphasis={"x": 3.0})
    with pytest.raises(ValidationError):
        PromptSpec(subject="   ")
    spec = PromptSpec(subject=" a fox ", details=[" sharp  focus ", "Sharp focus", ""])
    assert spec.subject == "a fox" and spec.details == ["sharp focus"]


def test_fingerprint_ignores_order_and_case_but_not_content() -> None:
    a = PromptSpec(subject="a fox", details=["b", "a"], emphasis={"fox": 1.2})
    b = PromptSpec(subject="a fox", details=["A", "b"], emphasis={"fox": 1.21})
    c = PromptSpec(subject="a fox", details=["a", "b"], emphasis={"fox": 1.5})
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()
