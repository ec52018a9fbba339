"""Upload amplification: a per-document size limit, bounded working memory, no work on the event
loop, and no work for a client that has left."""

from __future__ import annotations

import asyncio
import json
import platform
import random
import socket
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from litestar.testing import TestClient

import qa_service.api.app as app_module
import qa_service.service as service_module
from qa_service.api.app import create_app
from qa_service.embedding.base import Vectors
from qa_service.models import Document
from qa_service.service import QAService
from qa_service.settings import Settings
from tests.fakes import FakeEncoder
from tests.served import serve_in_thread


def _article(i: int, chars: int) -> dict[str, str]:
    sentence = f"Article {i} reports that the ministry counted {i} cases on the day. "
    return {"id": f"a{i}", "text": (sentence * (chars // len(sentence) + 1))[:chars]}


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:  # type: ignore[type-arg]
    app = create_app(settings.replace(max_document_chars=1000), lambda s: QAService(s, FakeEncoder()),
                     wait_ready=True)
    with TestClient(app=app) as c:
        yield c


def test_a_document_above_the_size_limit_is_413_with_the_limit(client: TestClient) -> None:  # type: ignore[type-arg]
    r = client.post("/v1/documents", json=[_article(0, 1000), _article(1, 1001)])
    assert r.status_code == 413 and r.headers["content-type"].startswith("application/problem+json")
    detail = r.json()["detail"]
    assert "document 1" in detail and "limit is 1000" in detail and "QA_MAX_DOCUMENT_CHARS" in detail
    assert client.get("/v1/documents/a0").status_code == 404  # nothing of the batch is stored


def test_uploads_are_decoded_and_validated_off_the_event_loop(client: TestClient,  # type: ignore[type-arg]
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    on_loop: list[bool] = []
    validate = app_module.document_from_mapping

    def spy(raw: object, *, extra_to_metadata: bool) -> Document:
        try:
            asyncio.get_running_loop()
            on_loop.append(True)
        except RuntimeError:
            on_loop.append(False)
        return validate(raw, extra_to_metadata=extra_to_metadata)  # type: ignore[arg-type]

    monkeypatch.setattr(app_module, "document_from_mapping", spy)
    assert client.post("/v1/documents", json=[_article(i, 500) for i in range(3)]).status_code == 201
    assert on_loop == [False, False, False]


def test_an_ndjson_upload_is_held_compressed_not_decoded() -> None:
    words = ["الحكومة", "العراقية", "قالت", "إن", "القوات", "الأمريكية", "ستغادر", "البلاد", "خلال", "عام"]
    rng = random.Random(5)
    records = [{"id": f"a{i}", "text": " ".join(f"{rng.choice(words)} {rng.randrange(10**6)}"
                                                 for _ in range(12_000))} for i in range(8)]
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    body = "\n".join(lines).encode()  # 1.3 MB; decoded, the Arabic text takes 2 bytes a character
    as_list = f"[{','.join(lines)}]".encode()
    held = {}
    for content_type, data in (("application/x-ndjson", body), ("application/json", as_list)):
        tracemalloc.start()
        upload = app_module.parse_documents(data, content_type, 100, 1_000_000)
        held[content_type] = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        assert upload.ids == [r["id"] for r in records]
        assert [(d.id, d.text) for d in upload.documents] == [(r["id"], r["text"]) for r in records]
    assert held["application/x-ndjson"] < len(body) / 2
    assert held["application/json"] > len(body)  # the contrast: a JSON body is decoded whole


class CountingEncoder(FakeEncoder):
    def __init__(self, delay: float = 0.0) -> None:
        super().__init__()
        self.delay = delay
        self.batches: list[int] = []  # characters of passage text per call

    def encode_passages(self, texts: Sequence[str]) -> Vectors:
        self.batches.append(sum(len(t) for t in texts))
        time.sleep(self.delay)
        return super().encode_passages(texts)


def test_ingestion_works_in_batches_of_bounded_size(settings: Settings,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service_module, "INGEST_BATCH_CHARS", 50_000)
    encoder = CountingEncoder()
    service = QAService(settings.replace(sentence_vectors=False), encoder)
    docs = [Document(id=f"a{i}", text=_article(i, 30_000)["text"]) for i in range(6)]
    report = service.ingest(docs)
    assert report.added == 6 and len(encoder.batches) >= 3
    assert max(encoder.batches) <= 50_000 + 30_000  # one document may overflow a batch
    service.close()


def test_ingestion_stops_between_batches_when_asked_and_publishes_what_it_stored(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service_module, "INGEST_BATCH_DOCUMENTS", 2)
    service = QAService(settings, FakeEncoder())
    docs = [Document(id=f"a{i}", text=_article(i, 300)["text"]) for i in range(6)]
    batches = 0

    def progress(n: int) -> None:
        nonlocal batches
        batches += 1

    report = service.ingest(docs, progress=progress, stop=lambda: batches >= 1)
    assert report.added == 2 and service.store.counts()[0] == 2 and service.index.size > 0
    service.close()


def test_an_upload_whose_client_left_stops_and_frees_the_writer(settings: Settings,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service_module, "INGEST_BATCH_DOCUMENTS", 1)
    encoder = CountingEncoder(delay=0.5)
    app = create_app(settings.replace(sentence_vectors=False, rate_limit_per_s=0),
                     lambda s: QAService(s, encoder), wait_ready=True)
    with serve_in_thread(app) as url:
        body = json.dumps([_article(i, 300) for i in range(8)]).encode()
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"POST /v1/documents HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
                         b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            time.sleep(0.8)  # one or two batches in
        time.sleep(1.5)
        assert len(encoder.batches) <= 4, encoder.batches
        started = time.monotonic()
        r = httpx.post(f"{url}/v1/documents", json=_article(99, 300), timeout=30)
        assert r.status_code == 201 and time.monotonic() - started < 3  # the writer was freed
        documents = httpx.get(f"{url}/readyz", timeout=30).json()["documents"]
        assert 1 < documents < 9


@pytest.mark.parametrize("path", ["/v1/documents", "/v1/ask"])
def test_a_body_above_the_limit_is_413_naming_the_limit(settings: Settings, path: str) -> None:
    app = create_app(settings.replace(max_body_bytes=1000), lambda s: QAService(s, FakeEncoder()),
                     wait_ready=True)
    with TestClient(app=app) as client:
        r = client.post(path, json={"text": "x" * 2000, "question": "x" * 2000})
    assert r.status_code == 413 and r.headers["content-type"].startswith("application/problem+json")
    assert "1000 bytes" in r.json()["detail"] and "QA_MAX_BODY_BYTES" in r.json()["detail"], r.json()


def test_deleting_an_unknown_id_does_not_wait_for_an_upload_in_progress(settings: Settings) -> None:
    encoder = CountingEncoder(delay=3.0)
    app = create_app(settings.replace(sentence_vectors=False, rate_limit_per_s=0),
                     lambda s: QAService(s, encoder), wait_ready=True)
    with serve_in_thread(app) as url, ThreadPoolExecutor(1) as pool:
        upload = pool.submit(httpx.post, f"{url}/v1/documents", json=_article(1, 300), timeout=30)
        while not encoder.batches:  # the upload holds the writer
            time.sleep(0.05)
        started = time.monotonic()
        assert httpx.delete(f"{url}/v1/documents/never-written", timeout=30).status_code == 404
        assert time.monotonic() - started < 1.5
        assert upload.result().status_code == 201


def test_an_upload_whose_body_stalls_is_408_and_frees_the_writer(settings: Settings) -> None:
    app = create_app(settings.replace(body_timeout_s=0.5, rate_limit_per_s=0),
                     lambda s: QAService(s, FakeEncoder()), wait_ready=True)
    with serve_in_thread(app) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"POST /v1/documents HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
                         b"content-length: 1000\r\n\r\n{\"text\": \"slow")
            sock.settimeout(5)
            answer = b""
            while b"}" not in answer and (chunk := sock.recv(65536)):  # headers, then the body
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 408") and b"QA_BODY_TIMEOUT_S" in answer, answer
        assert httpx.post(f"{url}/v1/documents", json=_article(1, 300), timeout=30).status_code == 201


FREED_BLOCKS = """
import sys
from qa_service.api.server import keep_large_blocks_mapped
from qa_service.bench.common import process_memory_mib
def anon():
    return process_memory_mib()["anon_mib"]
if sys.argv[1] == "fixed":
    keep_large_blocks_mapped()
body = bytearray(20 << 20)  # an upload's body, freed once validated
body[:] = b"x" * len(body)
del body
base = anon()
blocks = [b"y" * (1 << 20) for _ in range(16)]  # the next upload's 1 MB blocks
del blocks
print(anon() - base)
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists() or platform.libc_ver()[0] != "glibc",
                    reason="glibc's mmap threshold and /proc memory figures are Linux/glibc only")
def test_the_server_gives_freed_large_blocks_back_to_the_system() -> None:
    def kept_mib(mode: str) -> float:
        out = subprocess.run([sys.executable, "-c", FREED_BLOCKS, mode], check=True,
                             capture_output=True, text=True).stdout
        return float(out.split()[-1])

    assert kept_mib("default") > 12  # glibc keeps them: its threshold rose with the freed body
    assert kept_mib("fixed") < 4
