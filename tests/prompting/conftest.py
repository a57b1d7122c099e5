"""Fixtures for the prompting tests; the test doubles themselves live in ``llm_fakes.py``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from llm_fakes import FakeOpenAIServer, Step


@pytest.fixture
def openai_server() -> Iterator[Any]:
    """Start servers with ``openai_server(script)``; all are stopped after the test."""
    started: list[FakeOpenAIServer] = []

    def start(script: list[Step]) -> FakeOpenAIServer:
        server = FakeOpenAIServer(script).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
