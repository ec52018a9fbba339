"""A real local HTTP server speaking the OpenAI chat-completions protocol, with scripted replies.

Tests start it on 127.0.0.1 (a free port), queue the replies they want (a good answer,
invented citations, malformed JSON, a slow reply, a 500, a 429 with Retry-After), point
the LLM composer (or a live ``qa-service serve``) at ``server.base_url`` and read back
every request the server received.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Messages = list[dict[str, Any]]


@dataclass
class Reply:
    """One scripted response. ``content`` is the assistant message (a string, or a function of
    the request's messages); ``raw`` replaces the whole HTTP body; ``delay_s`` waits first."""

    content: str | Callable[[Messages], str] | None = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    delay_s: float = 0.0


def answer(text: str, short: str | None = None, abstain: bool = False) -> Reply:
    """A well-formed reply in the JSON shape the answer prompt asks for."""
    return Reply(json.dumps({"answer": text, "short_answer": short, "abstain": abstain},
                            ensure_ascii=False))


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float


class FakeOpenAI:
    """The server; replies are served in order, then ``default`` (a 500 when unset)."""

    def __init__(self) -> None:
        self.script: deque[Reply] = deque()
        self.default: Reply | None = None
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def queue(self, *replies: Reply) -> None:
        with self._lock:
            self.script.extend(replies)

    def start(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next(self, received: Received) -> Reply:
        with self._lock:
            self.requests.append(received)
            if self.script:
                return self.script.popleft()
        return self.default or Reply(status=500, raw=b'{"error": {"message": "no scripted reply"}}')

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except json.JSONDecodeError:
                    body = {}
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send(404, b'{"error": {"message": "unknown path"}}', {})
                    return
                reply = fake._next(Received(self.path, dict(self.headers), body, time.monotonic()))
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                if reply.raw is not None:
                    self._send(reply.status, reply.raw, reply.headers)
                    return
                content = reply.content(body.get("messages", [])) if callable(reply.content) \
                    else reply.content
                envelope = {
                    "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
                    "model": body.get("model", "fake"),
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": content}}],
                    "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
                }
                self._send(reply.status, json.dumps(envelope, ensure_ascii=False).encode(), reply.headers)

            def _send(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (its deadline passed): nothing to deliver

        return Handler


@contextmanager
def fake_openai() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI().start()
    try:
        yield server
    finally:
        server.stop()
