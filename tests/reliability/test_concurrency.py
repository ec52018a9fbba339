"""Questions keep being answered, correctly, while new generations are published.

A server (fake encoder, real HTTP on loopback) answers questions from 16 concurrent clients
while two writers publish generations into the same index folder: the server itself
(POST / DELETE /v1/documents) and another process. Every answer must be a 200, and every
cited or returned chunk id must name exactly the text it is shown with.
"""

from __future__ import annotations

import gc
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

import qa_service.service as service_module
from qa_service.api.app import create_app
from qa_service.ingest.chunker import ChunkerConfig, chunk_spans
from qa_service.ingest.documents import document_from_mapping
from qa_service.models import Document
from qa_service.service import QAService
from qa_service.store.sqlite_store import chunk_id, content_hash
from qa_service.store.vector_index import VectorIndex
from tests.fakes import FakeEncoder
from tests.reliability.conftest import serve_in_thread
from tests.reliability.workload import change, child_settings, corpus, forkserver, publish_child

pytestmark = pytest.mark.reliability

SIZE = 200  # documents in the collection
ROUNDS = 20  # generations published: half by the server, half by another process
QUESTIONS = 200  # at least; clients keep asking until the writers are done
CLIENTS = 16
MAX_QUESTIONS = 5000


def _as_posted(doc: Document) -> dict[str, Any]:
    return {"id": doc.id, "text": doc.text, "title": doc.title, "source": doc.source, "lang": doc.lang}


def _known_chunks(settings_chunk_tokens: int) -> dict[str, tuple[str, str, int, int]]:
    """chunk id → (document id, document text, start, end) for every version either writer makes."""
    encoder = FakeEncoder()
    config = ChunkerConfig(max_tokens=settings_chunk_tokens)
    known: dict[str, tuple[str, str, int, int]] = {}
    for version in range(ROUNDS + 1):
        for doc in corpus(SIZE, version=version):
            for form in (doc, document_from_mapping(_as_posted(doc), extra_to_metadata=False)):
                digest = content_hash(form)
                for start, end in chunk_spans(form.text, encoder.count_tokens, config):
                    known[chunk_id(digest, start, end)] = (form.id, form.text, start, end)
    return known


def _check_answer(body: dict[str, Any], known: dict[str, tuple[str, str, int, int]]) -> None:
    for p in body["passages"]:
        doc_id, text, start, end = known[p["chunk_id"]]
        assert (p["document_id"], p["start"], p["end"]) == (doc_id, start, end)
        assert p["text"] == text[start:end]
    for c in body["citations"]:
        doc_id, text, start, end = known[c["chunk_id"]]
        assert c["document_id"] == doc_id and start <= c["start"] <= c["end"] <= end
        assert text[c["start"]:c["end"]] == c["quote"]


def test_200_questions_while_20_generations_are_published(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # Pick up the other process's generations quickly, so they really change under readers.
    monkeypatch.setattr(service_module, "RELOAD_CHECK_INTERVAL_S", 0.01)
    root = tmp_path / "index"
    settings = child_settings(root).replace(rate_limit_per_s=0, max_in_flight=0)  # correctness, not shedding
    services: list[QAService] = []

    def factory(s: Any) -> QAService:
        service = QAService(s, FakeEncoder())
        service.ingest(corpus(SIZE))
        services.append(service)
        return service

    known = _known_chunks(settings.chunk_max_tokens)
    statuses: dict[int, int] = {}
    seen: list[weakref.ref[VectorIndex]] = []
    done = threading.Event()
    with serve_in_thread(create_app(settings, factory)) as url:
        service = services[0]

        def sample_generations() -> None:
            while not done.is_set():
                current = service.index
                if not seen or seen[-1]() is not current:
                    seen.append(weakref.ref(current))
                time.sleep(0.002)

        def write_over_http() -> None:
            with httpx.Client(base_url=url, timeout=60) as client:
                for version in range(1, ROUNDS + 1, 2):
                    docs, deleted = change(version, SIZE)
                    r = client.post("/v1/documents", json=[_as_posted(d) for d in docs])
                    assert r.status_code == 201, r.text
                    if deleted is not None:
                        assert client.delete(f"/v1/documents/{deleted}").status_code in (204, 404)

        def ask(n: int, client: httpx.Client) -> None:
            i = (n * 37) % SIZE
            question = (f"How many cases were counted on day {i}?" if n % 2 else
                        f"كم حالة سجلت الوزارة يوم {i}؟")
            r = client.post("/v1/ask", json={"question": question, "top_k": 5})
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            if r.status_code == 200:
                _check_answer(r.json(), known)

        def ask_until_writers_finish(worker: int) -> int:
            asked = 0
            with httpx.Client(base_url=url, timeout=60) as client:
                n = worker
                while n < MAX_QUESTIONS and (n < QUESTIONS or not done.is_set()):
                    ask(n, client)
                    asked += 1
                    n += CLIENTS
            return asked

        ctx = forkserver()
        receive, send = ctx.Pipe(duplex=False)
        other = ctx.Process(target=publish_child,
                            args=(str(root), list(range(2, ROUNDS + 1, 2)), SIZE, send))
        sampler = threading.Thread(target=sample_generations)
        sampler.start()
        with ThreadPoolExecutor(CLIENTS + 1) as pool:
            askers = [pool.submit(ask_until_writers_finish, w) for w in range(CLIENTS)]
            other.start()
            send.close()
            writer = pool.submit(write_over_http)
            writer.result(timeout=300)
            other.join(timeout=300)
            done.set()
            asked = sum(f.result(timeout=300) for f in askers)
        sampler.join()
        assert other.exitcode == 0
        published = []
        while (message := receive.recv())[0] != "done":
            published.append(message[1])
        assert published == list(range(2, ROUNDS + 1, 2))
        assert asked >= QUESTIONS
        assert statuses == {200: asked}, statuses
        # Readers saw the generations change under them, and released the old ones.
        assert len(seen) >= 5, f"only {len(seen)} generations observed"
        final = service.index
        gc.collect()
        alive = [ref() for ref in seen if ref() is not None]
        assert all(index is final for index in alive), f"{len(alive)} generations still held"
    print(f"\n{asked} questions, {len(seen)} generations served, statuses {statuses}")
