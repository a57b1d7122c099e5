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
