"""The LLM boundary's test doubles, imported by the tests as ``llm_fakes``.

`FakeOpenAIServer` is a stdlib HTTP server on 127.0.0.1 (ephemeral port) that speaks the
chat-completions API well enough for the real ``openai`` client: it checks that structured output
was requested, records every request body, and answers from a script (a reply, a refusal, an
HTTP error, or a hang longer than the client's timeout). It answers at most ``len(script)``
requests (500 after that) and shuts itself down after a deadline, so no test can loop on it.

`ScriptedChatModel` is a real langchain ``BaseChatModel``: langchain-core's own
``with_structured_output`` binds the schema as a tool and parses the scripted tool calls.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import Field

from imagineer.prompting.tasks import EmphasisDraft, SpecDraft, SpecDrafts


def drafts(n: int, tag: str = "") -> dict[str, Any]:
    """A valid `SpecDrafts` reply with ``n`` distinct specs."""
    lightings = ["golden hour light", "soft overcast light", "neon glow", "cool moonlight"]
    specs = [
        SpecDraft(
            style=None,
            lighting=[lightings[i % len(lightings)]],
            composition=["wide shot"] if i % 2 else ["close-up"],
            details=[f"detail {tag}{i}", "sharp focus"],
            negative=["blurry"],
            emphasis=[EmphasisDraft(term="snow", weight=1.2 + 0.1 * i)],
            guidance=None,
        )
        for i in range(n)
    ]
    return SpecDrafts(specs=specs).model_dump()


@dataclass
class Step:
    """One scripted answer: HTTP status, JSON body, headers, and seconds to hang first."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    hang: float = 0.0


def completion(content: str | None, refusal: str | None = None) -> Step:
    """A chat.completion body holding ``content`` (or a refusal)."""
    message = {"role": "assistant", "content": content, "refusal": refusal}
    body = {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": "fake-model",
        "choices": [{"index": 0, "finish_reason": "stop", "message": message, "logprobs": None}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
    return Step(body=body)


def error(status: int, headers: dict[str, str] | None = None) -> Step:
    body = {"error": {"message": f"scripted {status}", "type": "test", "code": None}}
    return Step(status=status, body=body, headers=headers or {})


class FakeOpenAIServer:
    """A scripted OpenAI chat-completions endpoint on 127.0.0.1 (see the module docstring)."""

    def __init__(self, script: list[Step], deadline: float = 20.0) -> None:
        self.script = list(script)
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                step = server._next(body, dict(self.headers))
                if step.hang:
                    time.sleep(step.hang)
                payload = json.dumps(step.body).encode()
                try:
                    self.send_response(step.status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    for key, value in step.headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and went away, as scripted

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._stopper = threading.Timer(deadline, self.stop)
        self._stopper.daemon = True

    def _next(self, body: dict[str, Any], headers: dict[str, str]) -> Step:
        with self._lock:
            self.requests.append(body)
            self.headers.append({k.lower(): v for k, v in headers.items()})
            fmt = body.get("response_format") or {}
            if fmt.get("type") != "json_schema" or not fmt["json_schema"].get("schema"):
                return error(400)
            return self.script.pop(0) if self.script else error(500)

    def start(self) -> FakeOpenAIServer:
        self._thread.start()
        self._stopper.start()
        return self

    def stop(self) -> None:
        self._stopper.cancel()
        self.httpd.shutdown()
        self.httpd.server_close()


class ScriptedChatModel(BaseChatModel):
    """A langchain chat model that answers from a script and records what it received.

    Script items: a dict (the structured reply, sent as a tool call), a str (malformed tool-call
    arguments), or an exception instance (raised).
    """

    script: list[Any] = Field(default_factory=list)
    received: list[list[BaseMessage]] = Field(default_factory=list)
    bound: list[str] = Field(default_factory=list)
    temperature: float = 0.3

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Any, *, tool_choice: str | None = None, **kwargs: Any) -> Any:
        formatted = [convert_to_openai_tool(t) for t in tools]
        self.bound.extend(t["function"]["name"] for t in formatted)
        return self.bind(tools=formatted, **kwargs)

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        self.received.append(list(messages))
        if not self.script:
            raise RuntimeError("the script is exhausted")
        item = self.script.pop(0)
        if isinstance(item, Exception):
            raise item
        name = self.bound[-1] if self.bound else "SpecDrafts"
        if isinstance(item, str):
            bad = {"name": name, "args": item, "id": "call_0", "error": "bad json"}
            message = AIMessage(content="", invalid_tool_calls=[bad])
        else:
            message = AIMessage(content="", tool_calls=[{"name": name, "args": item, "id": "c0"}])
        return ChatResult(generations=[ChatGeneration(message=message)])
