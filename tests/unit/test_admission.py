"""Load shedding: a bounded number of expensive requests in flight, a bounded queue, 503 beyond."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import httpx

from qa_service.api.app import create_app
from qa_service.embedding.base import Vectors
from qa_service.errors import QAError
from qa_service.service import QAService
from qa_service.settings import Settings
from tests.fakes import FakeEncoder
from tests.served import serve_in_thread


class SlowEncoder(FakeEncoder):
    """Questions take ``delay`` seconds to embed; counts them."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.questions = 0

    def encode_queries(self, texts: Sequence[str]) -> Vectors:
        self.questions += len(texts)
        time.sleep(self.delay)
        return super().encode_queries(texts)


class Busy(QAError):
    status_code = 503


def test_admission_runs_a_bounded_number_and_queues_a_bounded_number() -> None:
    from qa_service.api.limits import Admission

    async def scenario() -> list[str]:
        gate = Admission(limit=1, queue=1)
        events: list[str] = []

        async def request(name: str, hold_s: float, wait_s: float) -> None:
            try:
                async with gate.slot(wait_s, lambda why: Busy(why)):
                    events.append(f"{name} runs")
                    await asyncio.sleep(hold_s)
            except Busy as exc:
                events.append(f"{name} refused: {exc.detail}")

        first = asyncio.create_task(request("a", 0.3, 1.0))
        await asyncio.sleep(0.01)
        queued = asyncio.create_task(request("b", 0.0, 1.0))
        await asyncio.sleep(0.01)
        await request("c", 0.0, 1.0)  # the queue is full: refused at once
        await asyncio.gather(first, queued)
        await request("d", 0.0, 0.0)  # free again
        # A waiter that gives up (timeout) or is cancelled leaves no slot behind.
        holder = asyncio.create_task(request("e", 0.2, 1.0))
        await asyncio.sleep(0.01)
        await request("f", 0.0, 0.05)
        cancelled = asyncio.create_task(request("g", 0.0, 1.0))
        await asyncio.sleep(0.01)
        cancelled.cancel()
        await holder
        assert (gate.running, gate.waiting) == (0, 0)
        return events

    assert asyncio.run(scenario()) == [
        "a runs", "c refused: full", "b runs", "d runs", "e runs", "f refused: timeout"]


def test_a_waiter_cancelled_as_the_slot_is_released_is_no_error() -> None:
    # Under 512 clients: a queued request's client left (its task cancelled) in the same loop turn
    # as the holder released; the release had already dropped the cancelled waiter (was a 500).
    from qa_service.api.limits import Admission

    async def scenario() -> tuple[int, int]:
        gate = Admission(limit=1, queue=4)
        await gate._acquire(1.0, Busy)
        waiter = asyncio.create_task(gate._acquire(1.0, Busy))
        await asyncio.sleep(0)  # queued
        waiter.cancel()
        gate._release()
        with contextlib.suppress(asyncio.CancelledError):
            await waiter
        return gate.running, gate.waiting

    assert asyncio.run(scenario()) == (0, 0)


def _serve_slow(settings: Settings, encoder: SlowEncoder) -> object:
    app = create_app(settings.replace(rate_limit_per_s=0), lambda s: QAService(s, encoder), wait_ready=True)
    return serve_in_thread(app)


def test_beyond_the_queue_requests_get_503_with_retry_after(settings: Settings) -> None:
    encoder = SlowEncoder(delay=1.5)
    limited = settings.replace(max_in_flight=1, max_queue=1, queue_wait_s=0.5)
    with _serve_slow(limited, encoder) as url, ThreadPoolExecutor(4) as pool:  # type: ignore[attr-defined]
        started = time.monotonic()
        responses = list(pool.map(lambda i: httpx.get(f"{url}/v1/search", params={"q": f"troops {i}"},
                                                      timeout=30), range(4)))
        elapsed = time.monotonic() - started
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 503, 503, 503], statuses
    for r in responses:
        if r.status_code == 503:
            assert r.headers["content-type"].startswith("application/problem+json")
            assert int(r.headers["retry-after"]) >= 1 and "busy" in r.json()["detail"]
    assert encoder.questions == 1 and elapsed < 10


def test_work_for_a_client_that_left_while_queued_is_dropped(settings: Settings) -> None:
    encoder = SlowEncoder(delay=1.0)
    limited = settings.replace(max_in_flight=1, max_queue=4, queue_wait_s=10)
    with _serve_slow(limited, encoder) as url:  # type: ignore[attr-defined]
        port = int(url.rsplit(":", 1)[1])
        first = threading.Thread(target=httpx.get, args=(f"{url}/v1/search",),
                                 kwargs={"params": {"q": "troops"}, "timeout": 30})
        first.start()
        time.sleep(0.3)
        with socket.create_connection(("127.0.0.1", port)) as sock:  # queued behind the first
            sock.sendall(b"GET /v1/search?q=left HTTP/1.1\r\nHost: x\r\n\r\n")
            time.sleep(0.2)
        first.join()
        time.sleep(0.5)
        metrics = httpx.get(f"{url}/metrics", timeout=30).text
    assert encoder.questions == 1
    assert 'qa_http_requests_total{method="GET",route="/v1/search",status="499"} 1.0' in metrics
