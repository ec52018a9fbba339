"""Litestar app factory: routes, dependencies, lifespan and error mapping wired in one place."""

from __future__ import annotations

import functools
import logging
import threading
import time
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Annotated, Any
from urllib.parse import unquote_to_bytes

import anyio.to_thread
import msgspec
from litestar import Litestar, Request, Response, delete, get, post
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.spec import Components, SecurityScheme
from litestar.params import FromPath, JSONBody, Parameter
from litestar.response import ServerSentEvent
from litestar.response.sse import ServerSentEventMessage

from qa_service.api import access, limits, metrics
from qa_service.api.openapi import ASK_RESPONSES, RENDER_PLUGINS, DocumentsUpload, SSEAnswer
from qa_service.api.problems import EXCEPTION_HANDLERS, problem_responses
from qa_service.api.web import WEB_ROUTES
from qa_service.errors import (
    BadInputError,
    NotFoundError,
    NotReadyError,
    PayloadTooLargeError,
    RequestTimeoutError,
    StoreUnavailableError,
)
from qa_service.ingest.documents import document_from_mapping, parse_datetime
from qa_service.models import Answer, AskRequest, Document, Filters, Passage
from qa_service.service import QAService
from qa_service.settings import Settings

log = logging.getLogger(__name__)

ServiceFactory = Callable[[Settings], QAService]
SSE_DELTA_CHARS = 24
BEARER = "bearerAuth"
LOADING_RETRY_AFTER_S = 2  # the model and index load in a few seconds
STORE_RETRY_S = 5.0  # a database unreachable at start is tried again this often
# The schema is the same for every configuration: a bearer key, or none when the server has
# no QA_API_KEYS (writes) or does not set QA_READ_REQUIRES_KEY (reads).
KEY_WHEN_CONFIGURED: list[dict[str, list[str]]] = [{}, {BEARER: []}]
# Problem responses every /v1 operation can give: rate limited, and not loaded yet.
V1_PROBLEMS = (429, 503)


class SearchResponse(msgspec.Struct, kw_only=True):
    passages: list[Passage]
    timings_ms: dict[str, float]


class IngestResponse(msgspec.Struct, kw_only=True):
    added: int
    updated: int
    unchanged: int
    chunks: int
    ids: list[str]


class Health(msgspec.Struct, kw_only=True):
    status: str
    documents: int | None = None
    chunks: int | None = None
    generation: str | None = None
    model: str | None = None
    detail: str | None = None


class _Holder:
    """Loads the service in the background so /healthz answers while the model loads."""

    def __init__(self, settings: Settings, factory: ServiceFactory) -> None:
        self.settings = settings
        self._factory = factory
        self.service: NamedDependency[QAService] | None = None
        self.error: str | None = None
        self.unavailable: StoreUnavailableError | None = None  # the database, for now
        self.load_seconds: float | None = None
        self._thread = threading.Thread(target=self._load, name="qa-load", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _load(self, retry: bool = True) -> None:
        started = time.perf_counter()
        while True:
            try:
                self.service = self._factory(self.settings)
                self.load_seconds = time.perf_counter() - started
                self.unavailable = None
                return
            except StoreUnavailableError as exc:  # the database may come back: keep trying
                self.unavailable = exc
                log.warning("%s; trying again in %.0fs", exc.detail, STORE_RETRY_S)
                if not retry:
                    self.error = exc.detail
                    return
                time.sleep(STORE_RETRY_S)
            except Exception as exc:  # reported by /readyz and every request, never swallowed
                self.error = getattr(exc, "detail", None) or repr(exc)
                log.error("service failed to load: %s", self.error)
                return

    def get(self) -> QAService:
        if self.service is None:
            if self.unavailable is not None and self.error is None:
                raise self.unavailable  # 503 with Retry-After: the load is retried
            if self.error is not None:  # a failed load does not heal by waiting: no Retry-After
                raise NotReadyError(self.error)
            raise NotReadyError("the model and index are still loading; retry after the Retry-After "
                                "delay", retry_after_s=LOADING_RETRY_AFTER_S)
        return self.service


def default_factory(settings: Settings) -> QAService:
    from qa_service.embedding import load_encoder

    service = QAService(settings, load_encoder(settings))
    service.answers.warm_up()
    return service


def create_app(settings: Settings | None = None, factory: ServiceFactory = default_factory,
               *, wait_ready: bool = False) -> Litestar:
    """Build the ASGI app. ``wait_ready`` loads the service before serving (tests, CLI)."""
    settings = settings or Settings.from_env()
    holder = _Holder(settings, factory)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        if wait_ready:
            holder._load(retry=False)
        else:
            holder.start()
        yield
        if holder.service is not None:
            holder.service.close()

    def provide_service() -> QAService:
        return holder.get()

    def provide_holder() -> _Holder:
        return holder

    # Retry-After is exposed so the widget on another origin can say how long to wait on a 429.
    cors = CORSConfig(allow_origins=list(settings.cors_origins),
                      allow_headers=["Authorization", "Content-Type", "Accept"],
                      expose_headers=["Retry-After"]) if settings.cors_origins else None
    app_metrics = metrics.Metrics(holder)
    app = Litestar(
        route_handlers=[ask, search, add_documents, get_document, delete_document, healthz, readyz,
                        prometheus_metrics, *WEB_ROUTES],
        dependencies={"service": Provide(provide_service, sync_to_thread=False),
                      "holder": Provide(provide_holder, sync_to_thread=False)},
        exception_handlers=EXCEPTION_HANDLERS,
        request_class=limits.QARequest,
        lifespan=[lifespan],
        cors_config=cors,
        guards=[access.access_guard, limits.body_type_guard],
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="qa-service", version="0.1.0", render_plugins=RENDER_PLUGINS,
            description="Cited answers from news articles (Arabic/English). Errors are RFC 9457 "
                        "problem+json. Writes need `Authorization: Bearer <key>` when the server "
                        "has API keys; reads too when it sets QA_READ_REQUIRES_KEY.",
            components=Components(security_schemes={
                BEARER: SecurityScheme(type="http", scheme="bearer",
                                       description="one of the keys in QA_API_KEYS")}),
        ),
        state=State({"settings": settings, access.STATE_KEY: access.AccessControl(settings),
                     limits.STATE_KEY: limits.Gates(settings),
                     metrics.STATE_KEY: app_metrics}),
    )
    # Outside routing and error handling, so that every request is counted.
    app.asgi_handler = metrics.MetricsMiddleware(app.asgi_handler, app_metrics)
    return app


# -- questions --------------------------------------------------------------------------


ASK_SUMMARY = "Answer a question with citations (JSON, or SSE with Accept: text/event-stream)"


@post("/v1/ask", status_code=200, summary=ASK_SUMMARY,
      opt={access.ACCESS_OPT: access.READ, limits.BODY_OPT: limits.JSON},
      security=KEY_WHEN_CONFIGURED, responses=ASK_RESPONSES,
      operation_class=SSEAnswer)
async def ask(data: JSONBody[AskRequest], service: NamedDependency[QAService],
              request: Request[Any, Any, Any]) -> Response[Any]:
    check_ask(data, request.app.state.settings)
    answer = await limits.run_admitted(request, service.ask, data)
    if "text/event-stream" in request.headers.get("accept", ""):
        return ServerSentEvent(_sse_events(answer))
    return Response(answer)


def _sse_events(answer: Answer) -> Iterator[ServerSentEventMessage]:
    """passages → delta* → citation* → done (the complete response, as in JSON mode)."""
    encode = msgspec.json.encode
    yield ServerSentEventMessage(event="passages", data=encode(answer.passages).decode())
    text = answer.answer
    for i in range(0, len(text), SSE_DELTA_CHARS):
        yield ServerSentEventMessage(event="delta",
                                     data=encode({"text": text[i:i + SSE_DELTA_CHARS]}).decode())
    for citation in answer.citations:
        yield ServerSentEventMessage(event="citation", data=encode(citation).decode())
    yield ServerSentEventMessage(event="done", data=encode(answer).decode())


def check_ask(data: AskRequest, settings: Settings) -> None:
    """Limits the service itself does not know about: history size and filter dates."""
    if len(data.history) > settings.max_history_turns:
        raise BadInputError(f"history has {len(data.history)} turns; the limit is "
                            f"{settings.max_history_turns}")
    history_chars = sum(len(turn.content) for turn in data.history)
    if history_chars > settings.max_history_chars:
        raise BadInputError(f"history has {history_chars} characters; the limit is "
                            f"{settings.max_history_chars}")
    if data.filters is not None:
        check_dates(data.filters.published_after, data.filters.published_before, "filters.")


def check_dates(after: str | None, before: str | None, prefix: str = "") -> None:
    """Filter dates must be ISO 8601; a typo would otherwise silently filter everything out."""
    parse_datetime(after, f"{prefix}published_after")
    parse_datetime(before, f"{prefix}published_before")


@get("/v1/search", summary="Ranked passages without composing an answer",
     opt={access.ACCESS_OPT: access.READ}, security=KEY_WHEN_CONFIGURED,
     responses=problem_responses(400, 401, *V1_PROBLEMS))
async def search(
    request: Request[Any, Any, Any],
    service: NamedDependency[QAService],
    q: Annotated[str, Parameter(description="the question or query", min_length=1)],
    k: Annotated[int, Parameter(ge=1, description="number of passages")] = 10,
    source: Annotated[list[str] | None, Parameter(description="only these sources")] = None,
    lang: Annotated[str | None, Parameter(description="only passages in this language")] = None,
    published_after: Annotated[str | None, Parameter(description="ISO date, inclusive")] = None,
    published_before: Annotated[str | None, Parameter(description="ISO date, inclusive")] = None,
) -> SearchResponse:
    filters = None
    check_dates(published_after, published_before)
    if source or lang or published_after or published_before:
        filters = Filters(source=source, lang=lang, published_after=published_after,
                          published_before=published_before)
    passages, timings = await limits.run_admitted(request, service.search, q, k, filters)
    return SearchResponse(passages=passages, timings_ms=msgspec.structs.asdict(timings))


# -- documents --------------------------------------------------------------------------


@post("/v1/documents", status_code=201,
      summary="Add or replace documents: one object, a list, or application/x-ndjson",
      opt={access.ACCESS_OPT: access.WRITE, limits.BODY_OPT: limits.JSON_OR_NDJSON},
      security=KEY_WHEN_CONFIGURED, operation_class=DocumentsUpload,
      responses=problem_responses(400, 401, 408, 409, 413, 415, *V1_PROBLEMS, 507))
async def add_documents(service: NamedDependency[QAService],
                        request: Request[Any, Any, Any]) -> IngestResponse:
    settings: Settings = request.app.state.settings
    gates: limits.Gates = request.app.state[limits.STATE_KEY]
    # The body is read in turn, so uploads waiting for the writer hold no memory; it is read
    # as a stream (not kept by the request) so it is freed once ingested.
    async with gates.writes.slot(service.settings.writer_wait_s, gates.refuse_write):
        body = bytearray()
        try:
            with anyio.fail_after(settings.body_timeout_s):  # a stalled sender holds the writer
                async for chunk in request.stream():
                    body += chunk
        except TimeoutError:
            raise RequestTimeoutError(f"the body did not arrive within {settings.body_timeout_s:g} s "
                                      "(QA_BODY_TIMEOUT_S); send it faster or in smaller requests") from None
        upload = await anyio.to_thread.run_sync(
            parse_documents, body, request.headers.get("content-type", ""),
            settings.max_batch_documents, settings.max_document_chars)
        del body
        stop = threading.Event()
        ingest = functools.partial(service.ingest, upload.documents, stop=stop.is_set)
        report = await limits.run_until_client_leaves(request, ingest, stop=stop)
    return IngestResponse(added=report.added, updated=report.updated, unchanged=report.unchanged,
                          chunks=report.chunks, ids=upload.ids)


def _consume(docs: list[Document]) -> Iterator[Document]:
    """Each document once, forgotten as it is handed out: a batch's text is freed once stored."""
    docs.reverse()
    while docs:
        yield docs.pop()


@get("/v1/documents/{doc_id:path}", sync_to_thread=True, summary="A stored document",
     opt={access.ACCESS_OPT: access.READ}, security=KEY_WHEN_CONFIGURED,
     responses=problem_responses(400, 401, 404, *V1_PROBLEMS))
def get_document(service: NamedDependency[QAService], doc_id: FromPath[str],
                 request: Request[Any, Any, Any]) -> Document:
    doc_id = _document_id(request, doc_id)
    doc = service.store.get_document(doc_id)
    if doc is None:
        raise NotFoundError(f"no document with id {doc_id!r}")
    return doc


@delete("/v1/documents/{doc_id:path}", status_code=204,
        summary="Delete a document and its chunks", opt={access.ACCESS_OPT: access.WRITE},
        security=KEY_WHEN_CONFIGURED, responses=problem_responses(400, 401, 404, 409, *V1_PROBLEMS, 507))
async def delete_document(service: NamedDependency[QAService], doc_id: FromPath[str],
                          request: Request[Any, Any, Any]) -> None:
    doc_id = _document_id(request, doc_id)
    if not await anyio.to_thread.run_sync(service.has_document, doc_id):  # no wait for the writer
        raise NotFoundError(f"no document with id {doc_id!r}")
    gates: limits.Gates = request.app.state[limits.STATE_KEY]
    async with gates.writes.slot(service.settings.writer_wait_s, gates.refuse_write):
        deleted = await anyio.to_thread.run_sync(service.delete, doc_id)
    if not deleted:
        raise NotFoundError(f"no document with id {doc_id!r}")


DOCUMENTS_PREFIX = b"/v1/documents/"


def _document_id(request: Request[Any, Any, Any], routed: str) -> str:
    """The id in the rest of the path, e.g. ``xquad-ar/Super_Bowl_50/0``, decoded once.

    Read from the raw path because routing drops leading, trailing and repeated slashes and
    decodes twice: ids such as ``https://example.org/a`` or ``a%41`` would be unreachable.
    """
    raw: bytes = request.scope.get("raw_path") or b""
    _, found, rest = raw.partition(DOCUMENTS_PREFIX)
    if not found:  # a server that gives no raw path
        return routed.removeprefix("/")
    try:
        return unquote_to_bytes(rest).decode("utf-8")
    except UnicodeDecodeError:
        raise BadInputError("the document id in the path is not UTF-8 once percent-decoded") from None


# -- health -----------------------------------------------------------------------------


@get("/healthz", summary="Liveness")
async def healthz() -> Health:
    return Health(status="ok")


@get("/readyz", sync_to_thread=True, summary="Readiness: model and index loaded",
     responses={503: ResponseSpec(data_container=Health, description="still loading, or failed")})
def readyz(holder: NamedDependency[_Holder]) -> Response[Health]:
    service = holder.service
    if service is None:
        if holder.error is not None:
            return Response(Health(status="failed", detail=holder.error), status_code=503)
        if holder.unavailable is not None:
            return Response(Health(status="waiting for the store", detail=holder.unavailable.detail),
                            status_code=503, headers={"Retry-After": str(holder.unavailable.retry_after_s)})
        return Response(Health(status="loading"), status_code=503,
                        headers={"Retry-After": str(LOADING_RETRY_AFTER_S)})
    docs, chunks = service.store.counts()
    return Response(Health(status="ready", documents=docs, chunks=chunks,
                           generation=service.index_summary()[0], model=service.encoder.model_id))


@get("/metrics", sync_to_thread=True, media_type=metrics.CONTENT_TYPE,
     summary="Prometheus metrics: requests by route and status, index and model state")
def prometheus_metrics(request: Request[Any, Any, Any]) -> bytes:
    app_metrics: metrics.Metrics = request.app.state[metrics.STATE_KEY]
    return app_metrics.render()


class Upload(msgspec.Struct, frozen=True):
    """A validated upload: its ids in order, and its documents as ingestion takes them."""

    ids: list[str]
    documents: Iterator[Document]


def parse_documents(body: bytes | bytearray, content_type: str, limit: int,
                    max_chars: int) -> Upload:
    """One JSON object, a JSON list, or NDJSON lines → validated documents (in a worker thread).

    NDJSON lines are validated here and kept compressed until ingestion reaches them, so once
    the body is freed an upload holds about a third of it and one batch, not every document
    decoded (2 bytes a character for Arabic); a JSON body is decoded whole.
    """
    if not body or body.isspace():
        raise BadInputError("the body is empty; send a JSON document, a list, or NDJSON")
    if limits.is_ndjson(content_type):
        lines: list[tuple[int, bytes]] = []
        ids = []
        for number, line in _lines(body):
            if len(lines) >= limit:
                raise PayloadTooLargeError(f"more than {limit} documents in one request; the limit "
                                           f"is {limit} (QA_MAX_BATCH_DOCUMENTS)")
            ids.append(_document(_decode_json(line, f"line {number}"), len(lines), max_chars).id)
            lines.append((number, zlib.compress(line, 1)))  # ~0.2 s for 20 MB
        _check_count(len(lines), limit)
        return Upload(ids, (_document(_decode_json(zlib.decompress(data), f"line {number}"), i, max_chars)
                            for i, (number, data) in enumerate(lines)))
    decoded = _decode_json(body, "the body")
    raw = decoded if isinstance(decoded, list) else [decoded]
    _check_count(len(raw), limit)
    docs = [_document(item, i, max_chars) for i, item in enumerate(raw)]
    return Upload([d.id for d in docs], _consume(docs))


def _check_count(count: int, limit: int) -> None:
    if not count:
        raise BadInputError("no documents in the body; send at least one")
    if count > limit:
        raise PayloadTooLargeError(f"{count} documents in one request; the limit is {limit} "
                                   "(QA_MAX_BATCH_DOCUMENTS)")


def _document(item: Any, i: int, max_chars: int) -> Document:
    """Document ``i`` of an upload, validated; its text within QA_MAX_DOCUMENT_CHARS."""
    text = item.get("text") if isinstance(item, dict) else None
    if isinstance(text, str) and len(text) > max_chars:
        raise PayloadTooLargeError(f"document {i} has {len(text)} characters of text; the limit is "
                                   f"{max_chars} (QA_MAX_DOCUMENT_CHARS): split it into articles")
    try:
        return document_from_mapping(item, extra_to_metadata=False)
    except BadInputError as exc:
        raise BadInputError(f"document {i}: {exc.detail}") from None


def _lines(body: bytes | bytearray) -> Iterator[tuple[int, memoryview]]:
    """(line number, line) for the lines of ``body`` that are not blank, as views (no copies)."""
    view = memoryview(body)
    start = number = 0
    while start < len(body):
        end = body.find(b"\n", start)
        end = len(body) if end < 0 else end
        number += 1
        if not body[start:end].isspace() and end > start:
            yield number, view[start:end]
        start = end + 1


def _decode_json(data: bytes | bytearray | memoryview, where: str) -> Any:
    try:
        return msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        raise BadInputError(f"{where} is not valid JSON: {exc}") from None
    except RecursionError:
        raise BadInputError(f"{where} {limits.TOO_DEEP}") from None
