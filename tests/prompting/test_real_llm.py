"""Opt-in: LLMExpander and LLMRefiner against a real OpenAI-compatible endpoint.

Run with, e.g. for Ollama:
    IMAGINEER_TEST_LLM_BASE_URL=http://localhost:11434/v1 IMAGINEER_TEST_LLM_MODEL=llama3.1 \\
    .venv/bin/python -m pytest -m slow tests/prompting/test_real_llm.py
"""

from __future__ import annotations

import os

import pytest

from imagineer.prompting import (
    LLMExpander,
    LLMRefiner,
    OpenAIChat,
    ScoredSpec,
    load_styles,
)

BASE_URL = os.environ.get("IMAGINEER_TEST_LLM_BASE_URL")
MODEL = os.environ.get("IMAGINEER_TEST_LLM_MODEL", "gpt-4o-mini")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not BASE_URL, reason="set IMAGINEER_TEST_LLM_BASE_URL to run"),
]


def test_a_real_llm_expands_and_refines() -> None:
    chat = OpenAIChat(MODEL, base_url=BASE_URL, timeout=120.0)
    styles = load_styles()
    idea = "a fox in the snow"
    expansion = LLMExpander(chat, styles=styles).expand(idea, 3, seed=0)
    assert len(expansion.specs) == 3 and {s.subject for s in expansion.specs} == {idea}
    history = [
        ScoredSpec(spec=s, score=0.3 - i / 10, concepts={"fox": 0.3, "snow": 0.1 + i / 10})
        for i, s in enumerate(expansion.specs)
    ]
    refinement = LLMRefiner(chat, styles=styles).refine(idea, history, 2, seed=1)
    assert len(refinement.specs) == 2
