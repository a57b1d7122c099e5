"""The LLM boundary: a chat backend interface and one structured call with retries and repair.

Backends (`OpenAIChat`, `LangChainChat`, one per file) only send messages and return the reply's
text; everything that must behave the same whatever the backend lives here: bounded backoff on
429, one repair round that sends the validation error back, and typed errors that carry the
attempts and raw replies so a fallback can record them.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from imagineer.errors import ExpansionFailed, LLMRateLimited, LLMRefused, LLMUnavailable

logger = logging.getLogger(__name__)

T = TypeVar("T")

REPAIR = (
    "Your reply could not be used: {problem}\n"
    "Reply again with only a JSON object that matches the schema and fixes this."
)


class ChatMessage(BaseModel):
    """One chat turn."""

    model_config = ConfigDict(frozen=True)

    role: Literal["system", "user", "assistant"]
    content: str


class ChatReply(BaseModel):
    """What a backend got back: the structured reply as text, or a refusal."""

    text: str = ""
    refusal: str | None = None
    temperature: float | None = Field(default=None, description="Temperature actually sent.")
    seed: int | None = Field(default=None, description="Seed actually sent, if the API has one.")


class RetryPolicy(BaseModel):
    """Bounded exponential backoff for 429 replies.

    Delays are ``base_delay * 2**i`` seconds (or the endpoint's ``Retry-After``), capped at
    ``max_delay``; after ``max_retries`` retries the 429 is raised as `LLMRateLimited`.
    """

    max_retries: int = Field(default=3, ge=0, le=10)
    base_delay: float = Field(default=1.0, ge=0.0, description="Seconds.")
    max_delay: float = Field(default=20.0, ge=0.0, description="Seconds.")

    def delay(self, retry: int, retry_after: float | None) -> float:
        wanted = retry_after if retry_after is not None else self.base_delay * 2**retry
        return max(0.0, min(self.max_delay, wanted))


class ChatBackend(ABC):
    """Sends chat messages asking for JSON that matches a pydantic schema."""

    engine: str = "chat"
    model: str | None = None
    endpoint: str | None = None

    @property
    def label(self) -> str:
        """``engine:model``, for errors and provenance."""
        return f"{self.engine}:{self.model}" if self.model else self.engine

    @abstractmethod
    def complete(
        self,
        messages: list[ChatMessage],
        schema: type[BaseModel],
        *,
        temperature: float,
        seed: int | None,
    ) -> ChatReply:
        """Send ``messages``; return the reply's JSON text or its refusal.

        Raises:
            LLMRateLimited: A 429 (retried by `structured_call`).
            LLMTimeout: No answer in time.
            LLMUnavailable: Any other endpoint failure.
        """


@dataclass
class CallResult(Generic[T]):
    """A validated value with how it was obtained."""

    value: T
    attempts: int
    raw: list[str] = field(default_factory=list)
    temperature: float | None = None
    seed: int | None = None


def _send(
    chat: ChatBackend,
    messages: list[ChatMessage],
    schema: type[BaseModel],
    options: dict[str, Any],
    retry: RetryPolicy,
    sleep: Callable[[float], None],
) -> tuple[ChatReply, int]:
    """One logical request, retried on 429 within ``retry``; returns the reply and requests made."""
    for attempt in range(retry.max_retries + 1):
        try:
            return chat.complete(messages, schema, **options), attempt + 1
        except LLMRateLimited as error:
            if attempt == retry.max_retries:
                error.attempts = attempt + 1
                raise
            delay = retry.delay(attempt, error.retry_after)
            logger.warning(
                "%s rate-limited (429); retry %d in %.1fs", chat.label, attempt + 1, delay
            )
            sleep(delay)
        except LLMUnavailable as error:
            error.attempts = attempt + 1
            raise
    raise AssertionError("unreachable")  # pragma: no cover


def _problem(error: Exception) -> str:
    text = str(error).replace("\n", " ")
    return text if len(text) <= 1500 else text[:1500] + " ..."


def structured_call(
    chat: ChatBackend,
    messages: list[ChatMessage],
    schema: type[BaseModel],
    convert: Callable[[Any], T],
    *,
    temperature: float,
    seed: int | None,
    retry: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> CallResult[T]:
    """Ask for ``schema``-shaped JSON, validate it, and convert it, with one repair round.

    Args:
        chat: The backend.
        messages: The conversation so far (system prompt, few-shot turns, the request).
        schema: The pydantic model the reply must match.
        convert: Turns the validated reply into the caller's value; a ``ValueError`` it raises
            (e.g. "only 2 distinct specs") is treated like a schema failure and repaired.
        temperature: Sampling temperature.
        seed: Sampling seed, passed where the API has one.
        retry: 429 backoff policy.
        sleep: Injected for tests.

    Raises:
        LLMRefused: The model refused.
        ExpansionFailed: The reply was still unusable after the repair round.
        LLMUnavailable: The endpoint failed (including `LLMTimeout`, `LLMRateLimited`).
    """
    retry = retry or RetryPolicy()
    options = {"temperature": temperature, "seed": seed}
    raws: list[str] = []
    attempts = 0
    problem = ""
    for round_index in range(2):
        try:
            reply, requests = _send(chat, messages, schema, options, retry, sleep)
        except LLMUnavailable as error:
            error.attempts += attempts
            error.raw = list(raws)
            raise
        attempts += requests
        raws.append(reply.refusal or reply.text)
        if reply.refusal:
            raise LLMRefused(chat.label, f"refused: {reply.refusal}", attempts, raws)
        try:
            value = convert(schema.model_validate_json(reply.text))
            return CallResult(value, attempts, raws, reply.temperature, reply.seed)
        except (ValidationError, ValueError) as error:
            problem = _problem(error)
        logger.warning("%s reply unusable (round %d): %s", chat.label, round_index + 1, problem)
        messages = [
            *messages,
            ChatMessage(role="assistant", content=reply.text[:4000]),
            ChatMessage(role="user", content=REPAIR.format(problem=problem)),
        ]
    raise ExpansionFailed(chat.label, problem, attempts, raws)


def strict_json_schema(schema: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema in the form OpenAI's ``strict`` structured output accepts.

    Strict mode wants every object closed (``additionalProperties: false``), every property
    required (optional ones are nullable instead) and no ``default`` keywords.
    """

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            node = {k: walk(v) for k, v in node.items() if k != "default"}
            if node.get("type") == "object" and "properties" in node:
                node["additionalProperties"] = False
                node["required"] = list(node["properties"])
            return node
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema.model_json_schema())
