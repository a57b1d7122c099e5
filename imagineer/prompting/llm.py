"""LLMExpander: an idea into k distinct specs through any chat LLM's structured output.

The request is the `ExpandIdea` task (its docstring is the system prompt); the reply must match
`SpecDrafts`. A reply that fails the schema, or gives fewer than k distinct specs, is sent back
once with the error; after that the expander raises `ExpansionFailed`, or, when given a
``fallback`` expander, logs the failure, uses the fallback and records why in
``Expansion.provenance.fallback_reason``. Endpoint failures (timeouts, 5xx, 429 past the bounded
retries) and refusals take the same path.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from imagineer.errors import ExpansionFailed, LLMUnavailable, UnknownStyle
from imagineer.prompting.chat import ChatBackend, ChatMessage, RetryPolicy, structured_call
from imagineer.prompting.expansion import (
    Expander,
    Expansion,
    FewShot,
    Provenance,
    check_idea,
    split_constraints,
)
from imagineer.prompting.spec import PromptSpec
from imagineer.prompting.styles import StyleLibrary
from imagineer.prompting.tasks import (
    ExpandIdea,
    SpecDrafts,
    distinct_specs,
    draft_to_spec,
    spec_to_draft,
    system_prompt,
    user_message,
)

logger = logging.getLogger(__name__)


class LLMExpander(Expander):
    """Expands ideas with an LLM; optionally falls back to another expander, on the record.

    Example:
        >>> expander = LLMExpander.from_openai(
        ...     "llama3.1", base_url="http://localhost:11434/v1", styles=load_styles(),
        ...     fallback=OfflineExpander(load_vocabulary(), load_styles()))
        >>> expansion = expander.expand("a fox in the snow", k=4, seed=0)
        >>> expansion.provenance.fallback_reason  # None unless the LLM failed
    """

    def __init__(
        self,
        chat: ChatBackend,
        *,
        styles: StyleLibrary | None = None,
        temperature: float = 0.7,
        examples: Sequence[FewShot] = (),
        fallback: Expander | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Configure the expander.

        Args:
            chat: The backend (`OpenAIChat`, `LangChainChat`, or your own `ChatBackend`).
            styles: Presets the LLM may name; specs only ever hold names from it.
            temperature: Sampling temperature, in [0, 2], sent with every request.
            examples: Few-shot examples, sent as earlier turns of the conversation.
            fallback: Used, logged and recorded when the LLM fails; None raises instead.
            retry: Backoff for 429 replies.
            sleep: Injected for tests.
        """
        self.chat = chat
        self.styles = styles
        self.temperature = temperature
        self.examples = list(examples)
        self.fallback = fallback
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self.name = chat.engine

    @classmethod
    def from_openai(cls, model: str, *, base_url: str | None = None, **kwargs: Any) -> LLMExpander:
        """An expander over an OpenAI-compatible endpoint.

        ``api_key``, ``client`` and ``timeout`` go to `OpenAIChat`; the rest to the constructor.
        """
        from imagineer.prompting.openai_chat import OpenAIChat

        chat_keys = {"api_key", "client", "timeout"}
        chat_args = {k: kwargs.pop(k) for k in chat_keys & set(kwargs)}
        return cls(OpenAIChat(model, base_url=base_url, **chat_args), **kwargs)

    @classmethod
    def from_langchain(cls, chat_model: Any, **kwargs: Any) -> LLMExpander:
        """An expander over any langchain ``BaseChatModel``."""
        from imagineer.prompting.langchain_chat import LangChainChat

        return cls(LangChainChat(chat_model), **kwargs)

    def foils(self, idea: str) -> list[str]:
        """The fallback engine's foils (none without a fallback): foils come from a
        vocabulary, and the same idea must be scored the same way whether or not the LLM
        answers."""
        return self.fallback.foils(idea) if self.fallback is not None else []

    def expand(
        self,
        idea: str,
        k: int,
        *,
        seed: int,
        style: str | None = None,
        constraints: Sequence[str] = (),
    ) -> Expansion:
        """Expand ``idea`` into ``k`` distinct specs; see `Expander.expand`.

        Raises:
            ExpansionFailed: Unusable replies after one repair, or a refusal (`LLMRefused`),
                when there is no fallback.
            LLMUnavailable: The endpoint failed (timeout, 5xx, 429s), when there is no fallback.
        """
        # 1. Check inputs
        idea = check_idea(idea, k)
        if style is not None and self.styles is not None and style not in self.styles:
            raise UnknownStyle(f"style {style!r} is not in the style library")
        _, negative = split_constraints(constraints)
        # 2. The conversation: instruction, few-shot turns, the request as JSON
        request = ExpandIdea(
            idea=idea,
            k=k,
            style=style,
            constraints=list(constraints),
            styles=self.styles.names() if self.styles is not None else [],
        )
        messages = [ChatMessage(role="system", content=system_prompt(ExpandIdea))]
        messages += self._example_turns()
        messages.append(ChatMessage(role="user", content=user_message(request)))

        # 3. Ask, validate, repair once; the subject is the idea whatever the reply says
        def convert(reply: SpecDrafts) -> list[PromptSpec]:
            specs = [
                draft_to_spec(d, idea, styles=self.styles, style=style, negative=negative)
                for d in reply.specs
            ]
            return distinct_specs(specs, k)

        try:
            result = structured_call(
                self.chat, messages, SpecDrafts, convert, temperature=self.temperature,
                seed=seed, retry=self.retry, sleep=self.sleep,
            )  # fmt: skip
        except (ExpansionFailed, LLMUnavailable) as error:
            # 4. Fall back on the record, or raise
            return self._fall_back(error, idea, k, seed=seed, style=style, constraints=constraints)
        provenance = Provenance(
            engine=self.chat.engine,
            model=self.chat.model,
            endpoint=self.chat.endpoint,
            temperature=result.temperature,
            seed=seed,
            attempts=result.attempts,
            raw=result.raw,
        )
        return Expansion(idea=idea, specs=result.value, provenance=provenance)

    def _example_turns(self) -> list[ChatMessage]:
        turns = []
        for example in self.examples:
            request = ExpandIdea(idea=example.idea, k=1)
            reply = SpecDrafts(specs=[spec_to_draft(example.spec)])
            turns.append(ChatMessage(role="user", content=user_message(request)))
            turns.append(ChatMessage(role="assistant", content=reply.model_dump_json()))
        return turns

    def _fall_back(self, error: Exception, idea: str, k: int, **kwargs: Any) -> Expansion:
        if self.fallback is None:
            raise error
        reason = f"{type(error).__name__}: {error}"
        logger.warning(
            "%s failed, falling back to %s: %s", self.chat.label, self.fallback.name, reason
        )
        expansion = self.fallback.expand(idea, k, **kwargs)
        expansion.provenance = expansion.provenance.model_copy(
            update={
                "fallback_reason": reason,
                "fallback_from": self.chat.label,
                "attempts": getattr(error, "attempts", 1),
                "raw": getattr(error, "raw", []),
            }
        )
        return expansion
