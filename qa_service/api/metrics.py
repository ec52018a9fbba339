"""Prometheus metrics of one app: requests by route and status, index and model state.

Each app owns its registry (no module-global default registry), so several apps in one
process — tests, or a future multi-tenant server — never mix their figures.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, ReceiveMessage, Scope, Send
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from qa_service.service import QAService

# Litestar appends "; charset=utf-8" to text media types.
CONTENT_TYPE = "text/plain; version=0.0.4"
STATE_KEY = "metrics"
UNMATCHED_ROUTE = "unmatched"
CLIENT_CLOSED = 499
# Seconds: question answering is 10 ms – a few s on CPU; uploads of a batch can take minutes.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0)


class ServiceState(Protocol):
    """What the metrics read from the app's service holder."""

    @property
    def service(self) -> QAService | None: ...

    @property
    def load_seconds(self) -> float | None: ...


class Metrics:
    """The registry and request instruments of one app."""

    def __init__(self, state: ServiceState) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("qa_http_requests", "HTTP requests by method, route and status",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("qa_http_request_duration_seconds",
                                 "HTTP request latency by method, route and status",
                                 ["method", "route", "status"], buckets=LATENCY_BUCKETS,
                                 registry=self.registry)
        self.registry.register(_ServiceCollector(state))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        labels = (method, route, str(status))
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _ServiceCollector(Collector):
    """Index and model gauges, read at scrape time so they are never stale."""

    def __init__(self, state: ServiceState) -> None:
        self._state = state

    def collect(self) -> Iterator[Metric]:
        service = self._state.service
        yield _gauge("qa_ready", "1 when the model and index are loaded", 1.0 if service else 0.0)
        load = self._state.load_seconds
        if load is not None:
            yield _gauge("qa_model_load_seconds",
                         "seconds from start until the model and index were loaded", load)
        if service is None:
            return
        _, vectors, generation = service.index_summary()
        documents, chunks = service.store.counts()
        yield _gauge("qa_index_vectors", "vectors in the live index generation", vectors)
        yield _gauge("qa_index_generation", "store generation of the live index generation", generation)
        yield _gauge("qa_index_open_seconds", "seconds to open (or rebuild) the index at start",
                     service.index_open_seconds)
        yield _gauge("qa_store_documents", "documents in the store", documents)
        yield _gauge("qa_store_chunks", "chunks in the store", chunks)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


class MetricsMiddleware:
    """Counts and times every HTTP request by its route template and status.

    It wraps the whole app, routing included, so requests to unrouted paths count (as
    ``route="unmatched"``). A client that leaves before its response is complete counts as
    499 (nginx's "client closed request"), whatever the app then answered to nobody.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # when the app fails before it answers
        complete = gone = False

        async def receive_and_watch() -> ReceiveMessage:
            nonlocal gone
            message = await receive()
            # After a complete response servers answer "disconnect" to every receive: not a leave.
            gone = gone or (message["type"] == "http.disconnect" and not complete)
            return message

        async def send_and_watch(message: Message) -> None:
            nonlocal status, complete
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                complete = True
            await send(message)

        try:
            await self.app(scope, receive_and_watch, send_and_watch)
        finally:
            route = str(scope.get("path_template") or UNMATCHED_ROUTE)
            self.metrics.observe(str(scope.get("method", "")), route,
                                 CLIENT_CLOSED if gone else status, time.perf_counter() - started)
