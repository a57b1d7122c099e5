"""LLMExpander and LLMRefiner over a scripted langchain chat model (real with_structured_output)."""

from __future__ import annotations

import json

import pytest
from llm_fakes import ScriptedChatModel, drafts

from imagineer.errors import ExpansionFailed, LLMRateLimited, LLMTimeout, LLMUnavailable
from imagineer.prompting import (
    LLMExpander,
    LLMRefiner,
    PromptSpec,
    RetryPolicy,
    ScoredSpec,
    SearchRefiner,
    load_vocabulary,
)
from imagineer.prompting.langchain_chat import LangChainChat

IDEA = "a fox in the snow"


class RateLimitError(Exception):
    """Named like a provider SDK's 429 error."""


def expander(model: ScriptedChatModel, **kwargs) -> LLMExpander:  # type: ignore[no-untyped-def]
    return LLMExpander.from_langchain(model, sleep=lambda _: None, **kwargs)


def test_structured_output_through_langchain() -> None:
    model = ScriptedChatModel(script=[drafts(3)])
    expansion = expander(model, temperature=0.1).expand(IDEA, 3, seed=5)
    assert [s.subject for s in expansion.specs] == [IDEA] * 3
    assert model.bound == ["SpecDrafts"]  # the schema was bound as a tool by langchain-core
    record = expansion.provenance
    assert (record.engine, record.model, record.seed) == ("langchain", "ScriptedChatModel", 5)
    assert record.temperature == 0.3  # what the model object reports, not a guess
    system, user = model.received[0]
    assert system.type == "system" and json.loads(str(user.content))["idea"] == IDEA


def test_malformed_tool_arguments_are_repaired() -> None:
    model = ScriptedChatModel(script=['{"specs": [', drafts(2)])
    expansion = expander(model).expand(IDEA, 2, seed=0)
    assert len(expansion.specs) == 2 and expansion.provenance.attempts == 2
    repair = model.received[1][-1]
    assert repair.type == "human" and "could not be used" in str(repair.content)


def test_schema_violation_twice_is_a_typed_error() -> None:
    model = ScriptedChatModel(script=[{"specs": [{"style": 3}]}, {"nothing": True}])
    with pytest.raises(ExpansionFailed) as caught:
        expander(model).expand(IDEA, 2, seed=0)
    assert caught.value.attempts == 2 and caught.value.engine == "langchain:ScriptedChatModel"


def test_provider_errors_become_typed_errors() -> None:
    model = ScriptedChatModel(script=[TimeoutError("slow")])
    with pytest.raises(LLMTimeout):
        expander(model).expand(IDEA, 2, seed=0)
    model = ScriptedChatModel(script=[ConnectionError("down")])
    with pytest.raises(LLMUnavailable, match="ConnectionError"):
        expander(model).expand(IDEA, 2, seed=0)


def test_rate_limits_are_retried_for_langchain_too() -> None:
    model = ScriptedChatModel(script=[RateLimitError("429"), drafts(2)])
    assert len(expander(model).expand(IDEA, 2, seed=0).specs) == 2
    model = ScriptedChatModel(script=[RateLimitError("429")] * 3)
    with pytest.raises(LLMRateLimited):
        expander(model, retry=RetryPolicy(max_retries=1)).expand(IDEA, 2, seed=0)
    assert len(model.received) == 2


def history() -> list[ScoredSpec]:
    """Four scored specs, deliberately out of score order; 'snow' is the weak concept."""
    scores = [0.21, 0.34, 0.28, 0.30]
    return [
        ScoredSpec(
            spec=PromptSpec(subject=IDEA, lighting=[f"light {i}"], details=[f"detail {i}"]),
            score=score,
            concepts={"fox": 0.30 + i / 100, "snow": 0.12 + i / 100},
            round=i // 2,
            candidate_id=f"c{i}",
        )
        for i, score in enumerate(scores)
    ]


def test_llm_refiner_meta_prompt_has_sorted_top_k_weak_concepts_and_critique() -> None:
    model = ScriptedChatModel(script=[drafts(2, tag="new")])
    refiner = LLMRefiner(LangChainChat(model), top_k=3)
    refinement = refiner.refine(IDEA, history(), 2, seed=4)
    assert [s.subject for s in refinement.specs] == [IDEA] * 2
    system, user = model.received[0]
    assert "weakest" in str(system.content).lower()
    request = json.loads(str(user.content))
    assert [h["score"] for h in request["history"]] == [0.34, 0.30, 0.28]  # top 3, best first
    assert request["history"][0]["spec"]["lighting"] == ["light 1"]
    assert request["history"][0]["concepts"] == {"fox": 0.31, "snow": 0.13}
    assert request["weakest_concepts"][0]["concept"] == "snow"
    assert "'snow'" in request["critique"] and "0.340" in request["critique"]
    assert refinement.provenance.engine == "llm-refiner:langchain"


def test_llm_refiner_sends_repeats_back_and_falls_back_on_the_record() -> None:
    past = history()
    repeat = {"specs": [{**drafts(1)["specs"][0], "lighting": ["light 0"], "details": ["detail 0"],
                         "negative": [], "emphasis": [], "composition": []}]}  # fmt: skip
    model = ScriptedChatModel(script=[repeat, drafts(1, tag="fresh")])
    refinement = LLMRefiner(LangChainChat(model)).refine(IDEA, past, 1, seed=0)
    assert refinement.specs[0].details[0] == "detail fresh0"
    assert "already tried" in str(model.received[1][-1].content)

    model = ScriptedChatModel(script=[repeat, repeat])
    fallback = SearchRefiner(load_vocabulary())
    refinement = LLMRefiner(LangChainChat(model), fallback=fallback).refine(IDEA, past, 2, seed=0)
    assert refinement.provenance.engine == "search"
    assert refinement.provenance.fallback_from == "langchain:ScriptedChatModel"
    assert "ExpansionFailed" in (refinement.provenance.fallback_reason or "")
    assert refinement.specs == fallback.refine(IDEA, past, 2, seed=0).specs
