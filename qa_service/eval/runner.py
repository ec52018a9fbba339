"""Run an evaluation: load the dataset, optionally ingest it, ask every question, grade, report.

Two targets with the same grading:

* in-process: a ``QAService`` over ``QA_INDEX_DIR`` / ``--index-dir`` (questions one at a
  time; citations checked against the store);
* HTTP (``--url``): a running ``qa-service serve``, with bounded concurrency, per-request
  timeouts and retries with backoff; citations checked with ``GET /v1/documents/{id}``.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast
from urllib.parse import quote

import httpx
import msgspec

from qa_service.errors import BadInputError, LLMError, NotReadyError
from qa_service.models import Answer, AskRequest, Document, Mode, Turn
from qa_service.settings import Settings

from .conversations import (
    Conversation,
    TurnRecord,
    is_conversation_file,
    load_conversations,
    print_conversation_summary,
    run_async,
    run_in_process,
    write_conversation_results,
)
from .datasets import Dataset, EvalItem, load_dataset, load_distractors, subset
from .metrics import QUESTION_TYPES, QuestionRecord, breakdown, grade, new_record, summarize
from .options import EvalOptions, Threshold, options_from_args
from .report import (
    REPORT_FILE,
    compare,
    fmt,
    fmt_delta,
    headline_keys,
    headline_table,
    label,
    load_previous,
    render_markdown,
    write_plots,
    write_results,
)

if TYPE_CHECKING:
    from tqdm import tqdm

    from qa_service.service import QAService

EXIT_OK: Final = 0
EXIT_PARTIAL: Final = 2  # some questions failed with an error
EXIT_THRESHOLD: Final = 3  # a --min-/--max- threshold was missed

DEFAULT_OUT_ROOT: Final = Path("artifacts") / "eval"
RETRY_STATUSES: Final = frozenset({429, 502, 503, 504})
RATE_LIMITED_RETRIES: Final = 100  # 429s waited out per request before giving up
BACKOFF_S: Final = 0.5
MAX_BACKOFF_S: Final = 10.0
READY_WAIT_S: Final = 120.0  # a server that is still loading its model gets this long
READY_POLL_S: Final = 1.0
HTTP_INGEST_BATCH: Final = 100
RATE_METRICS_MAX: Final = 1.0

ServiceFactory = Callable[[Settings], "QAService"]


@dataclass
class EvalRun:
    """What a run produced: the results document, the graded questions, where they were written."""

    result: dict[str, Any]
    records: list[QuestionRecord]
    out: Path
    exit_code: int


def run_from_args(args: argparse.Namespace, settings: Settings) -> int:
    """``qa-service eval``: run, print the headline table and where the report is."""
    run = evaluate(options_from_args(args), settings)
    if "summary" in run.result:  # a conversation file
        print_conversation_summary(run.result, run.out)
    else:
        print_summary(run)
    return run.exit_code


# -- orchestration ----------------------------------------------------------------------------


def evaluate(options: EvalOptions, settings: Settings, *, service_factory: ServiceFactory | None = None,
             transport: httpx.AsyncBaseTransport | None = None) -> EvalRun:
    """The whole run; ``service_factory`` and ``transport`` are seams for tests."""
    _validate(options)
    if is_conversation_file(options.dataset):
        out = options.out or _new_out_dir(options.name or options.dataset.stem)
        result, code = evaluate_conversations(options, settings, out, service_factory=service_factory,
                                              transport=transport)
        return EvalRun(result, [], out, code)
    dataset = load_dataset(options.dataset, questions_from=options.questions_from,
                           doc_prefix=options.doc_prefix, name=options.name)
    dataset = subset(dataset, options.limit, options.seed)
    previous = load_previous(options.compare) if options.compare else None
    out = options.out or _new_out_dir(dataset.name)
    to_ingest, ingested = _documents_to_ingest(options, dataset)
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    started = time.perf_counter()
    if options.url:
        out.mkdir(parents=True, exist_ok=True)
        target_meta, records = asyncio.run(_run_http(options, dataset, to_ingest, transport))
    else:
        settings = _in_process_settings(options, settings, out)
        out.mkdir(parents=True, exist_ok=True)
        factory = service_factory or _open_service
        target_meta, records = _run_in_process(options, settings, dataset, to_ingest, factory)
    meta = {
        "name": dataset.name, "dataset": str(options.dataset),
        "questions_from": str(options.questions_from) if options.questions_from else None,
        "url": options.url, "mode": options.mode, "top_k": options.top_k,
        "questions": len(records), "limit": options.limit, "seed": options.seed,
        "started_at": started_at, "seconds": round(time.perf_counter() - started, 2),
        "ingested": ingested, **target_meta,
    }
    result = build_result(meta, records, options.top_k)
    result["thresholds"] = check_thresholds(result["overall"], options.thresholds)
    if previous is not None:
        keys = headline_keys(options.top_k)
        result["comparison"] = {"previous": str(options.compare),
                                "rows": compare(result, previous, keys)}
    write_results(out, result, records)
    write_plots(out, result, records)
    (out / REPORT_FILE).write_text(render_markdown(result, records), encoding="utf-8")
    if any(not t["passed"] for t in result["thresholds"]):
        code = EXIT_THRESHOLD
    elif result["overall"]["errors"]:
        code = EXIT_PARTIAL
    else:
        code = EXIT_OK
    return EvalRun(result, records, out, code)


def build_result(meta: dict[str, Any], records: Sequence[QuestionRecord], top_k: int) -> dict[str, Any]:
    """Metrics overall and broken down by question language and question type."""
    ks = list(range(1, top_k + 1))
    return {
        "meta": meta,
        "overall": summarize(records, ks),
        "by_language": breakdown(records, lambda r: r.language, ks, order=("ar", "en")),
        "by_type": breakdown(records, lambda r: r.question_type, ks, order=QUESTION_TYPES),
    }


def check_thresholds(overall: Mapping[str, Any], thresholds: Iterable[Threshold]) -> list[dict[str, Any]]:
    """A verdict per threshold; a metric the dataset cannot measure fails its threshold."""
    verdicts = []
    for t in thresholds:
        value = overall.get(t.metric)
        passed = value is not None and (value >= t.limit if t.kind == "min" else value <= t.limit)
        verdicts.append({"metric": t.metric, "kind": t.kind, "limit": t.limit, "value": value,
                         "passed": passed})
    return verdicts


def _validate(options: EvalOptions) -> None:
    if options.url is not None and not re.match(r"https?://[^/\s]+", options.url):
        raise BadInputError(f"--url must look like http://host:port, got {options.url!r}")
    if options.url and options.index_dir:
        raise BadInputError("--index-dir is for in-process runs; with --url the server's index is used")
    if options.concurrency < 1 or options.retries < 0 or options.timeout_s <= 0:
        raise BadInputError("--concurrency must be ≥ 1, --retries ≥ 0 and --timeout > 0")
    if options.top_k < 1:
        raise BadInputError(f"--top-k must be at least 1, got {options.top_k}")
    if options.distractors and not options.ingest:
        raise BadInputError("--distractors needs --ingest (distractors are ingested with the paragraphs)")
    if options.distractor_limit is not None and (options.distractors is None or options.distractor_limit < 1):
        raise BadInputError("--distractor-limit needs --distractors and must be at least 1")
    if options.seed is not None and options.limit is None:
        raise BadInputError("--seed draws a random subset for --limit; give --limit N too")
    for t in options.thresholds:
        k = t.metric.removeprefix("recall@")
        if k.isdigit() and int(k) > options.top_k:
            raise BadInputError(f"--min-{t.metric} needs at least {k} passages per question; "
                                f"raise --top-k (now {options.top_k})")
        if t.kind == "min" and not 0 <= t.limit <= RATE_METRICS_MAX:
            raise BadInputError(f"--min-{t.metric.replace('_', '-')} takes a fraction between 0 and 1 "
                                f"(e.g. 0.4 for 40%), got {t.limit}")


def _slug(name: str) -> str:
    return re.sub(r"[^\w.-]+", "-", name, flags=re.ASCII).strip("-") or "eval"


def _new_out_dir(name: str) -> Path:
    base = DEFAULT_OUT_ROOT / f"{_slug(name)}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    out, n = base, 1
    while out.exists():
        n += 1
        out = base.with_name(f"{base.name}-{n}")
    return out


def _documents_to_ingest(options: EvalOptions,
                         dataset: Dataset) -> tuple[list[Document], dict[str, int] | None]:
    if not options.ingest:
        return [], None
    distractors: list[Document] = []
    if options.distractors:
        distractors, skipped = load_distractors(options.distractors, options.distractor_limit)
        for line in skipped:
            print(f"skipped distractor {line}", file=sys.stderr)
    documents = [*dataset.documents, *distractors]
    if not documents:
        raise BadInputError(f"--ingest: {options.dataset} has no paragraphs (question lines only); "
                            "ingest your articles with `qa-service ingest`, or pass --distractors")
    return documents, {"paragraphs": len(dataset.documents), "distractors": len(distractors)}


def _progress(total: int, desc: str, unit: str) -> tqdm[Any]:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=not sys.stderr.isatty())


# -- in-process -------------------------------------------------------------------------------


def _open_service(settings: Settings) -> QAService:
    from qa_service.embedding import load_encoder
    from qa_service.service import QAService

    return QAService(settings, load_encoder(settings))


def _in_process_settings(options: EvalOptions, settings: Settings, out: Path) -> Settings:
    if options.mode == "llm" and not settings.llm_configured:
        raise BadInputError("--mode llm needs an LLM: set QA_LLM_BASE_URL and QA_LLM_MODEL")
    if options.top_k > settings.max_top_k:
        raise BadInputError(f"--top-k {options.top_k} is above QA_MAX_TOP_K ({settings.max_top_k})")
    if not options.ingest:
        return settings
    index_dir = options.index_dir or out / "index"
    if index_dir.exists() and any(index_dir.iterdir()):
        fix = ("name a new --index-dir, or omit it (a new folder is made in the output folder)"
               if options.index_dir else "an earlier run used this --out; choose a new one")
        raise BadInputError(f"--ingest builds a fresh index, but {index_dir} is not empty: {fix}")
    return settings.replace(index_dir=index_dir)


def _run_in_process(options: EvalOptions, settings: Settings, dataset: Dataset,
                    documents: list[Document],
                    factory: ServiceFactory) -> tuple[dict[str, Any], list[QuestionRecord]]:
    service = factory(settings)
    try:
        if documents:
            with _progress(len(documents), "ingest", "doc") as bar:
                service.ingest(documents, progress=bar.update)
        doc_count, chunk_count = service.store.counts()
        if doc_count == 0:
            raise BadInputError(f"the index at {settings.index_dir} holds no documents; add --ingest "
                                "to ingest the dataset's paragraphs, or point --index-dir / "
                                "QA_INDEX_DIR at your collection")
        _warn_missing_gold(service, dataset)
        records: list[QuestionRecord] = []
        with _progress(len(dataset.items), "eval", "q") as bar:
            for item in dataset.items:
                records.append(_ask_in_process(service, item, options))
                bar.update()
        meta = {"index_dir": str(settings.index_dir), "model": service.encoder.model_id,
                "documents_in_index": doc_count, "chunks_in_index": chunk_count}
        return meta, records
    finally:
        service.close()


def _ask_in_process(service: QAService, item: EvalItem, options: EvalOptions) -> QuestionRecord:
    request = AskRequest(question=item.question, top_k=options.top_k, mode=cast(Mode, options.mode))
    started = time.perf_counter()
    try:
        answer = service.ask(request)
    except (BadInputError, LLMError) as exc:  # this question fails; the others still count
        record = new_record(item)
        record.error = exc.detail
        return record
    latency_ms = 1000 * (time.perf_counter() - started)
    texts: dict[str, str] = {}
    for doc_id in {c.document_id for c in answer.citations}:
        doc = service.store.get_document(doc_id)
        if doc is not None:  # a missing document makes its citations invalid
            texts[doc_id] = doc.text
    return grade(item, answer, latency_ms, texts)


def _warn_missing_gold(service: QAService, dataset: Dataset) -> None:
    gold = sorted({d for item in dataset.items for d in item.gold_document_ids})
    if gold and not service.store.content_hashes(gold):
        print(f"warning: none of the {len(gold)} gold paragraphs (ids like {gold[0]!r}) is in the "
              "index, so recall will be 0; use --ingest, or --doc-prefix to match the ids the "
              "collection was ingested with", file=sys.stderr)


# -- HTTP -------------------------------------------------------------------------------------


class HttpTarget:
    """A running qa-service: readiness, ingestion, questions and document reads, with retries."""

    def __init__(self, client: httpx.AsyncClient, *, concurrency: int, retries: int) -> None:
        self.client = client
        self.retries = retries
        self._slots = asyncio.Semaphore(concurrency)
        self._documents: dict[str, asyncio.Task[tuple[str | None, str | None]]] = {}
        self._not_before = 0.0  # monotonic time before which no request is sent (after a 429)

    async def send(self, method: str, path: str, **kwargs: Any) -> tuple[httpx.Response, float]:
        """The response and its latency in ms.

        Connection errors, timeouts and 502/503/504 are retried up to ``retries`` times with
        backoff. A 429 is waited out (its Retry-After pauses every request of this run, so the
        evaluator settles at the server's rate) and does not use up the retries.
        """
        failures = throttled = 0
        while True:
            try:
                async with self._slots:
                    await self._wait_turn()
                    started = time.perf_counter()
                    response = await self.client.request(method, path, **kwargs)
                latency_ms = 1000 * (time.perf_counter() - started)
            except httpx.TransportError as exc:
                failures += 1
                if failures > self.retries:
                    raise NotReadyError(
                        f"{method} {self.client.base_url}{path} failed after {self.retries} "
                        f"retries: {exc!r}; is `qa-service serve` running there?") from None
                await asyncio.sleep(_backoff(failures))
                continue
            status = response.status_code
            if status == httpx.codes.TOO_MANY_REQUESTS and throttled < RATE_LIMITED_RETRIES:
                throttled += 1
                self._pause(_retry_after(response) or _backoff(throttled))
            elif status in RETRY_STATUSES and status != httpx.codes.TOO_MANY_REQUESTS \
                    and failures < self.retries:
                failures += 1
                await asyncio.sleep(_retry_after(response) or _backoff(failures))
            else:
                return response, latency_ms

    def _pause(self, seconds: float) -> None:
        self._not_before = max(self._not_before, time.monotonic() + seconds)

    async def _wait_turn(self) -> None:
        while (wait := self._not_before - time.monotonic()) > 0:
            await asyncio.sleep(wait)

    async def wait_ready(self) -> dict[str, Any]:
        """The /readyz body once the server is ready (it may still be loading its model)."""
        deadline = time.monotonic() + READY_WAIT_S
        while True:
            response, _ = await self.send("GET", "/readyz")
            body = _json(response)
            if response.status_code == 200:
                return body
            if body.get("status") == "failed" or time.monotonic() > deadline:
                raise NotReadyError(f"{self.client.base_url} is not ready: "
                                    f"{body.get('detail') or response.text[:300]}")
            await asyncio.sleep(READY_POLL_S)

    async def ingest(self, documents: Sequence[Document]) -> None:
        """POST the documents in batches; a rejected batch stops the run with the server's detail."""
        with _progress(len(documents), "ingest", "doc") as bar:
            for i in range(0, len(documents), HTTP_INGEST_BATCH):
                batch = documents[i:i + HTTP_INGEST_BATCH]
                response, _ = await self.send("POST", "/v1/documents",
                                              content=msgspec.json.encode(batch),
                                              headers={"content-type": "application/json"})
                if response.status_code != httpx.codes.CREATED:
                    error = BadInputError if response.status_code < httpx.codes.INTERNAL_SERVER_ERROR \
                        else NotReadyError
                    raise error(f"ingesting documents {i}-{i + len(batch) - 1} over HTTP failed: "
                                f"{_problem(response)}")
                bar.update(len(batch))

    async def ask(self, item: EvalItem, top_k: int, mode: str) -> QuestionRecord:
        record, _ = await self.ask_answer(item, {"question": item.question, "top_k": top_k, "mode": mode})
        return record

    async def ask_answer(self, item: EvalItem, body: dict[str, Any]) -> tuple[QuestionRecord, Answer | None]:
        """POST ``body`` to /v1/ask and grade the answer against ``item`` (with the answer itself)."""
        response, latency_ms = await self.send("POST", "/v1/ask", json=body)
        if response.status_code != httpx.codes.OK:
            record = new_record(item)
            record.error = f"HTTP {response.status_code}: {_problem(response)}"
            return record, None
        try:
            answer = msgspec.json.decode(response.content, type=Answer)
        except msgspec.DecodeError as exc:
            record = new_record(item)
            record.error = f"the response is not a qa-service answer: {exc}"
            return record, None
        texts: dict[str, str] = {}
        unreadable: dict[str, str] = {}
        for doc_id in {c.document_id for c in answer.citations}:
            text, problem = await self.document_text(doc_id)
            if text is not None:
                texts[doc_id] = text
            else:
                unreadable[doc_id] = problem or "unreadable"
        return grade(item, answer, latency_ms, texts, unreadable), answer

    async def document_text(self, doc_id: str) -> tuple[str | None, str | None]:
        """(text, None), or (None, why it could not be read); one request per document."""
        task = self._documents.get(doc_id)
        if task is None:
            task = asyncio.ensure_future(self._fetch_document(doc_id))
            self._documents[doc_id] = task
        return await task

    async def _fetch_document(self, doc_id: str) -> tuple[str | None, str | None]:
        path = f"/v1/documents/{quote(doc_id, safe='')}"
        response, _ = await self.send("GET", path)
        shown = f"GET /v1/documents/{doc_id}"
        if response.status_code != httpx.codes.OK:
            return None, f"{shown} returned {response.status_code}: {_problem(response)}"
        text = _json(response).get("text")
        return (text, None) if isinstance(text, str) else (None, f"{shown} returned no text")


@asynccontextmanager
async def _http_target(options: EvalOptions, transport: httpx.AsyncBaseTransport | None
                       ) -> AsyncIterator[HttpTarget]:
    """The service at ``options.url``, with the eval's key, timeout, concurrency and retries."""
    assert options.url is not None
    headers = {"authorization": f"Bearer {options.api_key}"} if options.api_key else {}
    async with httpx.AsyncClient(base_url=options.url.rstrip("/"), timeout=options.timeout_s,
                                 headers=headers, transport=transport) as client:
        yield HttpTarget(client, concurrency=options.concurrency, retries=options.retries)


async def _run_http(
    options: EvalOptions, dataset: Dataset, documents: Sequence[Document],
    transport: httpx.AsyncBaseTransport | None,
) -> tuple[dict[str, Any], list[QuestionRecord]]:
    async with _http_target(options, transport) as target:
        await target.wait_ready()
        if documents:
            await target.ingest(documents)
        ready = await target.wait_ready()
        records: list[QuestionRecord] = []
        with _progress(len(dataset.items), "eval", "q") as bar:
            async def one(item: EvalItem) -> QuestionRecord:
                record = await target.ask(item, options.top_k, options.mode)
                bar.update()
                return record
            records = list(await asyncio.gather(*(one(item) for item in dataset.items)))
    meta = {"index_dir": None, "model": ready.get("model"),
            "documents_in_index": ready.get("documents"), "chunks_in_index": ready.get("chunks")}
    return meta, records


# -- conversations ----------------------------------------------------------------------------


def evaluate_conversations(options: EvalOptions, settings: Settings, out: Path, *,
                           service_factory: ServiceFactory | None = None,
                           transport: httpx.AsyncBaseTransport | None = None) -> tuple[dict[str, Any], int]:
    """A conversation file: each turn with its history and each later turn alone (conversations.py)."""
    if options.questions_from or options.ingest:
        raise BadInputError("conversation files are asked over an existing collection: --questions-from "
                            "and --ingest do not apply (see tests/data/conversations/README.md)")
    conversations = load_conversations(options.dataset)
    if options.limit is not None:
        conversations = conversations[:options.limit]
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    started = time.perf_counter()
    if options.url:
        target_meta, records = asyncio.run(_conversations_http(options, conversations, transport))
    else:
        settings = _in_process_settings(options, settings, out)
        service = (service_factory or _open_service)(settings)
        try:
            docs, chunks = service.store.counts()
            if docs == 0:
                raise BadInputError(f"the index at {settings.index_dir} holds no documents; ingest the "
                                    "collection first (see tests/data/conversations/README.md)")
            records = run_in_process(service, conversations, options)
            target_meta = {"index_dir": str(settings.index_dir), "model": service.encoder.model_id,
                           "documents_in_index": docs, "chunks_in_index": chunks}
        finally:
            service.close()
    meta = {"name": options.name or options.dataset.stem, "dataset": str(options.dataset),
            "url": options.url, "mode": options.mode, "top_k": options.top_k,
            "conversations": len(conversations), "turns": sum(len(c.turns) for c in conversations),
            "started_at": started_at, "seconds": round(time.perf_counter() - started, 2), **target_meta}
    result = write_conversation_results(out, meta, records, options.thresholds)
    if any(not t["passed"] for t in result["thresholds"]):
        return result, EXIT_THRESHOLD
    return result, EXIT_PARTIAL if any(r.record.error for r in records) else EXIT_OK


async def _conversations_http(options: EvalOptions, conversations: Sequence[Conversation],
                              transport: httpx.AsyncBaseTransport | None
                              ) -> tuple[dict[str, Any], list[TurnRecord]]:
    async with _http_target(options, transport) as target:
        ready = await target.wait_ready()

        async def ask(item: EvalItem, history: list[Turn]) -> tuple[QuestionRecord, Answer | None]:
            body = {"question": item.question, "top_k": options.top_k, "mode": options.mode,
                    "history": [msgspec.to_builtins(t) for t in history]}
            return await target.ask_answer(item, body)

        records = await run_async(conversations, ask)
    meta = {"index_dir": None, "model": ready.get("model"),
            "documents_in_index": ready.get("documents"), "chunks_in_index": ready.get("chunks")}
    return meta, records


def _backoff(attempt: int) -> float:
    """Seconds to wait before retry number ``attempt`` (1, 2, …): doubling, capped."""
    return float(min(MAX_BACKOFF_S, BACKOFF_S * 2 ** (attempt - 1)))


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    return min(MAX_BACKOFF_S, float(value)) if value.replace(".", "", 1).isdigit() else None


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _problem(response: httpx.Response) -> str:
    """The problem+json ``detail`` of an error response, or the start of its body."""
    return str(_json(response).get("detail") or response.text[:300] or response.reason_phrase)


# -- console ----------------------------------------------------------------------------------


def print_summary(run: EvalRun) -> None:
    result = run.result
    print("\n".join(headline_table(result)))
    comparison = result.get("comparison")
    if comparison:
        print(f"\nchanges against {comparison['previous']}:")
        for row in comparison["rows"]:
            print(f"  {label(row['metric']):<24} {fmt(row['metric'], row['previous']):>10} → "
                  f"{fmt(row['metric'], row['current']):>10}  ({fmt_delta(row['metric'], row['delta'])})")
    for t in result["thresholds"]:
        verdict = "pass" if t["passed"] else "FAIL"
        print(f"threshold {t['metric']} {t['kind']} {fmt(t['metric'], t['limit'])}: "
              f"{fmt(t['metric'], t['value'])} {verdict}")
    overall = result["overall"]
    if overall["citations_unchecked"]:
        print(f"note: {overall['citations_unchecked']} of {overall['citations']} citations could not "
              "be read back to check them (see the report); citation validity covers the others",
              file=sys.stderr)
    errors = overall["errors"]
    if errors:
        print(f"{errors} question(s) failed with an error (see records.jsonl)", file=sys.stderr)
    retrieval = result["overall"].get("recall@1")
    if result["overall"]["with_gold_document"] and retrieval == 0 and result["overall"].get("mrr") == 0:
        print("note: no gold paragraph was ever retrieved: were the paragraphs ingested with the "
              "same ids (see --doc-prefix, --ingest)?", file=sys.stderr)
    print(f"\nreport: {run.out / REPORT_FILE}")


__all__ = ["EXIT_PARTIAL", "EXIT_THRESHOLD", "EvalRun", "HttpTarget", "build_result",
           "check_thresholds", "evaluate", "run_from_args"]
