"""Typed errors shared by every part of imagineer.

Every error names the bad value and, where there is one, the fix. Errors that stand for bad input
also subclass ``ValueError`` so generic callers can catch them the usual way.
"""

from __future__ import annotations


class ImagineerError(Exception):
    """Base class of every error imagineer raises on purpose."""


class InvalidInput(ImagineerError, ValueError):
    """An argument or a configuration value is out of range or malformed."""


class ModelNotAvailable(ImagineerError):
    """A model's weights could not be found locally and could not be downloaded.

    Args:
        model: The model id, name or path the caller asked for.
        looked_in: Where imagineer looked for it (paths, caches).
        fix: What the user can do about it.
    """

    def __init__(self, model: str, looked_in: list[str], fix: str) -> None:
        self.model = model
        self.looked_in = looked_in
        self.fix = fix
        places = "; ".join(looked_in) if looked_in else "nowhere"
        super().__init__(f"{model!r} is not available: looked in {places}. {fix}")


class CorruptWeights(ImagineerError):
    """A weight or config file exists but cannot be read."""


class UnknownScheduler(InvalidInput):
    """A scheduler name imagineer does not know."""


class UnknownAttribute(InvalidInput):
    """A scene or idea uses a value outside the pocket world's vocabulary."""


class InvalidPreset(InvalidInput):
    """A style preset (or a vocabulary entry) in a data file is malformed.

    Args:
        preset: The preset's name (or its position when it has no usable name).
        source: The file or source it came from.
        reason: What is wrong and how to fix it.
    """

    def __init__(self, preset: str, source: str, reason: str) -> None:
        self.preset = preset
        self.source = source
        self.reason = reason
        super().__init__(f"style preset {preset!r} in {source}: {reason}")


class UnknownStyle(InvalidInput):
    """A spec or a caller names a style preset the style library does not hold."""


class ExpansionFailed(ImagineerError):
    """An expander or refiner could not turn the LLM's reply into valid prompt specs.

    Args:
        engine: The engine that failed, e.g. ``"openai:gpt-4o-mini"``.
        reason: What went wrong on the last attempt.
        attempts: How many requests were made.
        raw: The raw replies received, for the run record.
    """

    def __init__(
        self, engine: str, reason: str, attempts: int, raw: list[str] | None = None
    ) -> None:
        self.engine = engine
        self.reason = reason
        self.attempts = attempts
        self.raw = list(raw or [])
        super().__init__(
            f"{engine} gave no usable prompt specs after {attempts} attempt(s): {reason}. "
            "Configure a fallback (e.g. fallback=OfflineExpander(...)) to keep going offline."
        )


class LLMRefused(ExpansionFailed):
    """The LLM refused the request (an OpenAI ``refusal`` or an empty structured reply)."""


class LLMUnavailable(ImagineerError):
    """The LLM endpoint failed: unreachable, a server error, or rate limits past the retries.

    ``attempts`` (requests made) and ``raw`` (replies received before the failure) are filled in
    by the call that gave up, for the run record.
    """

    attempts: int = 0
    raw: list[str] = []  # noqa: RUF012 - replaced per instance, never mutated


class LLMTimeout(LLMUnavailable):
    """The LLM endpoint did not answer within the client's timeout."""


class LLMRateLimited(LLMUnavailable):
    """The LLM endpoint answered 429 (too many requests).

    Args:
        message: What the endpoint said.
        retry_after: Seconds the endpoint asked to wait, if it said.
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)
