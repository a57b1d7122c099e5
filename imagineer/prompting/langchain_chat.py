"""The langchain backend: any `BaseChatModel` that implements ``with_structured_output``.

The reply's structured part is read back as JSON text (tool-call arguments, or the message
content) and validated by `structured_call`, exactly like the OpenAI backend's, so both repair and
record the same way. Sampling settings belong to the chat model object here; the ones it reports
(``temperature``, ``seed``) are what gets recorded.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, convert_to_messages
from pydantic import BaseModel

from imagineer.errors import LLMRateLimited, LLMTimeout, LLMUnavailable
from imagineer.prompting.chat import ChatBackend, ChatMessage, ChatReply

logger = logging.getLogger(__name__)


class LangChainChat(ChatBackend):
    """Chat over a langchain chat model's structured output.

    Example:
        >>> from langchain_openai import ChatOpenAI
        >>> chat = LangChainChat(ChatOpenAI(model="gpt-4o-mini", temperature=0.7))
    """

    engine = "langchain"

    def __init__(self, chat_model: BaseChatModel) -> None:
        self.chat_model = chat_model
        self.model = str(
            getattr(chat_model, "model_name", None)
            or getattr(chat_model, "model", None)
            or type(chat_model).__name__
        )

    def complete(
        self,
        messages: list[ChatMessage],
        schema: type[BaseModel],
        *,
        temperature: float,
        seed: int | None,
    ) -> ChatReply:
        """Invoke ``with_structured_output(schema, include_raw=True)`` and return the raw JSON."""
        runnable = self.chat_model.with_structured_output(schema, include_raw=True)
        lc_messages: list[BaseMessage] = convert_to_messages([m.model_dump() for m in messages])
        try:
            result = runnable.invoke(lc_messages)
        except Exception as error:  # providers raise their own SDKs' errors
            raise _typed(self.label, error) from error
        raw = result["raw"] if isinstance(result, dict) else result
        return ChatReply(
            text=_structured_text(raw),
            refusal=_refusal(raw),
            temperature=_number(getattr(self.chat_model, "temperature", None)),
            seed=_integer(getattr(self.chat_model, "seed", None)),
        )


def _structured_text(raw: Any) -> str:
    """The structured part of a reply as JSON text: tool-call args, else the content."""
    if isinstance(raw, AIMessage | AIMessageChunk):
        if raw.tool_calls:
            return json.dumps(raw.tool_calls[0]["args"])
        if raw.invalid_tool_calls:
            return str(raw.invalid_tool_calls[0].get("args") or "")
    if isinstance(raw, BaseMessage):
        return raw.content if isinstance(raw.content, str) else json.dumps(raw.content)
    return json.dumps(raw) if isinstance(raw, dict) else str(raw)


def _refusal(raw: Any) -> str | None:
    if isinstance(raw, BaseMessage):
        refusal = raw.additional_kwargs.get("refusal")
        return str(refusal) if refusal else None
    return None


def _typed(label: str, error: Exception) -> LLMUnavailable:
    """Map a provider's exception to imagineer's LLM errors by status code or class name."""
    name = type(error).__name__.lower()
    status = getattr(error, "status_code", None) or getattr(
        getattr(error, "response", None), "status_code", None
    )
    if isinstance(error, TimeoutError) or "timeout" in name:
        return LLMTimeout(f"{label} timed out: {type(error).__name__}")
    if status == 429 or "ratelimit" in name:
        return LLMRateLimited(f"{label} is rate-limited: {type(error).__name__}")
    return LLMUnavailable(f"{label} failed: {type(error).__name__}: {error}")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _integer(value: Any) -> int | None:
    return value if isinstance(value, int) else None
