"""Request limits that are not about who the client is: body types and depth, load shedding.

Each route handler with a body declares it in ``opt={"body": JSON}`` or ``JSON_OR_NDJSON``.
Anything else gets 415 before the body is read: a page on another origin can send
``text/plain``, form or multipart bodies without a CORS preflight, so accepting them would
let any web page write to a server that has no API keys.

Expensive work (answers, searches, writes) is admitted through an ``Admission``: a bounded
number run at once, a bounded queue waits a bounded time, the rest get 503 with Retry-After
at once, so an overloaded server answers the requests it accepts instead of timing out all
of them. Work whose client left while it queued is dropped before it starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from litestar.connection import ASGIConnection, Request
from litestar.handlers.base import BaseRouteHandler

from qa_service.errors import (
    BadInputError,
    ClientClosedError,
    OverloadedError,
    QAError,
    UnsupportedMediaTypeError,
    WriterBusyError,
)
from qa_service.settings import Settings

STATE_KEY = "admission"
_T = TypeVar("_T")

BODY_OPT = "body"
JSON = "json"
JSON_OR_NDJSON = "json-or-ndjson"
TOO_DEEP = ("is nested too deeply (arrays and objects about 1,000 levels deep); "
            "send flat JSON: filters and fields are at most a few levels deep")
NDJSON_TYPES = frozenset({"application/x-ndjson", "application/ndjson", "application/jsonl",
                          "application/x-jsonlines", "application/jsonlines"})


def media_type(content_type: str | None) -> str:
    """``application/json; charset=utf-8`` → ``application/json``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_json(content_type: str | None) -> bool:
    kind = media_type(content_type)
    return kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json"))


def is_ndjson(content_type: str | None) -> bool:
    return media_type(content_type) in NDJSON_TYPES


def body_type_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Litestar guard applied app-wide: 415 unless the body's type is one the handler declares."""
    accepts = handler.opt.get(BODY_OPT)
    if accepts is None:
        return
    content_type = connection.headers.get("content-type")
    if is_json(content_type) or (accepts == JSON_OR_NDJSON and is_ndjson(content_type)):
        return
    wanted = ("'application/json' or 'application/x-ndjson'" if accepts == JSON_OR_NDJSON
              else "'application/json'")
    sent = f"'{media_type(content_type)}'" if content_type else "no Content-Type"
    raise UnsupportedMediaTypeError(f"the body must be sent with Content-Type {wanted}; got {sent}")


class QARequest(Request[Any, Any, Any]):
    """Litestar's request, with JSON too deeply nested to decode answered as 400, not 500."""

    async def json(self) -> Any:
        try:
            return await super().json()
        except RecursionError:  # msgspec recurses once per level: the stack ran out
            raise BadInputError(f"the body {TOO_DEEP}") from None


class Admission:
    """At most ``limit`` holders at once (0: no limit); ``queue`` more wait, first come first served."""

    def __init__(self, limit: int, queue: int) -> None:
        self.limit = limit
        self.queue = queue
        self.running = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        return sum(not f.done() for f in self._waiters)

    @asynccontextmanager
    async def slot(self, wait_s: float, refuse: Callable[[str], QAError]) -> AsyncIterator[None]:
        """Hold a slot for the block; ``refuse("full" | "timeout")`` is raised when none comes."""
        await self._acquire(wait_s, refuse)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, wait_s: float, refuse: Callable[[str], QAError]) -> None:
        if self.limit == 0 or (self.running < self.limit and not self.waiting):
            self.running += 1
            return
        if self.waiting >= self.queue:
            raise refuse("full")
        turn = asyncio.get_running_loop().create_future()
        self._waiters.append(turn)
        try:
            async with asyncio.timeout(wait_s):
                await turn
        except BaseException as exc:  # timed out or cancelled
            if turn.done() and not turn.cancelled():
                self._release()  # the slot came just as we gave up: pass it on
            else:
                turn.cancel()
                with contextlib.suppress(ValueError):  # a release may have dropped it already
                    self._waiters.remove(turn)
            if isinstance(exc, TimeoutError):
                raise refuse("timeout") from None
            raise

    def _release(self) -> None:
        while self._waiters:
            turn = self._waiters.popleft()
            if not turn.done():
                turn.set_result(None)  # the slot passes to the next waiter
                return
        self.running -= 1


class Gates:
    """The admissions of one app: questions and searches, and writes (one at a time: one writer)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.reads = Admission(settings.max_in_flight, settings.max_queue)
        self.writes = Admission(1, settings.max_queue)

    def refuse_read(self, why: str) -> QAError:
        s = self.settings
        retry = max(1, math.ceil(s.queue_wait_s))
        if why == "full":
            return OverloadedError(
                f"the server is busy: {s.max_in_flight} requests are being answered and "
                f"{s.max_queue} are waiting (QA_MAX_IN_FLIGHT, QA_MAX_QUEUE); retry after the "
                "Retry-After delay", retry)
        return OverloadedError(
            f"the server is busy: no turn came within {s.queue_wait_s:g} s (QA_QUEUE_WAIT_S); "
            "retry after the Retry-After delay", retry)

    def refuse_write(self, why: str) -> QAError:
        if why == "full":
            return OverloadedError(f"the server is busy: {self.settings.max_queue} writes are waiting "
                                   "for the one in progress (QA_MAX_QUEUE); retry later", 5)
        return WriterBusyError("another request is writing to the index; retry when it finishes")


async def client_left(request: Request[Any, Any, Any]) -> bool:
    """Whether the client has disconnected (looks without waiting; the body must have been read)."""
    with anyio.CancelScope() as scope:
        scope.cancel()
        message = await request.receive()
        return bool(message["type"] == "http.disconnect")
    return False


async def run_admitted(request: Request[Any, Any, Any], fn: Callable[..., _T], *args: Any) -> _T:
    """``fn(*args)`` in a worker thread once a read slot is free, unless the client left meanwhile."""
    gates: Gates = request.app.state[STATE_KEY]
    async with gates.reads.slot(gates.settings.queue_wait_s, gates.refuse_read):
        if await client_left(request):
            raise ClientClosedError("the client left before its turn; the request was dropped")
        return await anyio.to_thread.run_sync(fn, *args)


async def run_until_client_leaves(request: Request[Any, Any, Any], fn: Callable[..., _T], *args: Any,
                                  stop: threading.Event) -> _T:
    """``fn(*args)`` in a worker thread; ``stop`` is set if the client disconnects meanwhile."""

    async def watch() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass
        stop.set()

    watcher = asyncio.ensure_future(watch())
    try:
        return await anyio.to_thread.run_sync(fn, *args)
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):  # how the watcher ended is moot
            await watcher
