"""The OpenAI chat-completions backend: OpenAI itself or any compatible server.

Ollama, vLLM, LM Studio and llama.cpp's server all speak this API; point ``base_url`` at them.
Structured output uses ``response_format={"type": "json_schema", ...}`` in strict mode. The
client's own retries are turned off: `structured_call` retries 429s under one bounded policy,
whatever the backend. The API key goes to the client only; it is never logged or recorded.
"""

from __future__ import annotations

import logging
import os
from urllib.parse import urlsplit, urlunsplit

import openai
from pydantic import BaseModel

from imagineer.errors import LLMRateLimited, LLMTimeout, LLMUnavailable
from imagineer.prompting.chat import ChatBackend, ChatMessage, ChatReply, strict_json_schema

logger = logging.getLogger(__name__)


def public_endpoint(url: str) -> str:
    """``url`` without credentials, query or fragment, fit for logs and records."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


class OpenAIChat(ChatBackend):
    """Chat over the ``openai`` client, against any OpenAI-compatible ``base_url``.

    Example:
        >>> chat = OpenAIChat("llama3.1", base_url="http://localhost:11434/v1")
    """

    engine = "openai"

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        client: openai.OpenAI | None = None,
        timeout: float = 60.0,
    ) -> None:
        """Make (or adopt) a client.

        Args:
            model: The model name the endpoint serves.
            base_url: The endpoint, e.g. ``http://localhost:11434/v1``; None is OpenAI's.
            api_key: None reads ``OPENAI_API_KEY``; local servers that need none get a
                placeholder.
            client: An existing client to adopt instead (its retries are turned off).
            timeout: Seconds per request before `LLMTimeout`.
        """
        if client is None:
            key = api_key or os.environ.get("OPENAI_API_KEY") or "not-needed"
            client = openai.OpenAI(base_url=base_url, api_key=key, timeout=timeout, max_retries=0)
        else:
            client = client.with_options(max_retries=0, timeout=timeout)
        self.client = client
        self.model_name = model
        self.model = model
        self.endpoint = public_endpoint(str(client.base_url))

    def complete(
        self,
        messages: list[ChatMessage],
        schema: type[BaseModel],
        *,
        temperature: float,
        seed: int | None,
    ) -> ChatReply:
        """Send one chat-completions request with a strict JSON-schema response format."""
        response_format = {
            "type": "json_schema",
            "json_schema": {
                "name": schema.__name__,
                "schema": strict_json_schema(schema),
                "strict": True,
            },
        }
        try:
            response = self.client.chat.completions.create(  # type: ignore[call-overload]
                model=self.model_name,
                messages=[m.model_dump() for m in messages],
                response_format=response_format,
                temperature=temperature,
                seed=seed,
            )
        except openai.APITimeoutError as error:
            raise LLMTimeout(f"{self.label} at {self.endpoint} timed out") from error
        except openai.RateLimitError as error:
            raise LLMRateLimited(
                f"{self.label} at {self.endpoint} answered 429", _retry_after(error)
            ) from error
        except openai.APIStatusError as error:
            raise LLMUnavailable(
                f"{self.label} at {self.endpoint} answered {error.status_code}: {error.message}"
            ) from error
        except openai.APIConnectionError as error:
            raise LLMUnavailable(f"{self.label} at {self.endpoint} is unreachable") from error
        if not response.choices:
            return ChatReply(text="", temperature=temperature, seed=seed)
        message = response.choices[0].message
        return ChatReply(
            text=message.content or "",
            refusal=getattr(message, "refusal", None),
            temperature=temperature,
            seed=seed,
        )


def _retry_after(error: openai.APIStatusError) -> float | None:
    """The ``Retry-After`` header in seconds, when the endpoint sent a number."""
    try:
        value = error.response.headers.get("retry-after")
        return float(value) if value is not None else None
    except (AttributeError, ValueError):
        return None
