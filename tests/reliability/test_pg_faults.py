"""PostgreSQL backend faults: SIGKILL during ingestion, and a database that goes away and comes back.

A killed writer's transaction is rolled back by the server: every acknowledged batch is there,
no document is there without all its chunks, postings and statistics. While the database
refuses connections the API answers 503 with Retry-After, and it answers again once the
database is back, without a restart.
"""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path

import psycopg
import pytest
from litestar.testing import TestClient

from qa_service.api.app import create_app
from qa_service.service import QAService
from qa_service.settings import Settings
from tests.conftest import pg_database
from tests.fakes import FakeEncoder
from tests.pg import PgServer
from tests.reliability.workload import child_settings, corpus, forkserver

pytestmark = pytest.mark.reliability

DOCUMENTS = 320  # five store batches of 64
KILLS = 6
SEED = 20240125
MESSAGE_TIMEOUT_S = 60.0


def pg_ingest_child(url: str, conn: Connection) -> None:
    """Ingest the corpus into ``url``, sending ("ack", n) once store batch n has committed."""
    service = QAService(child_settings(Path(tempfile.gettempdir()) / "unused").replace(store_url=url),
                        FakeEncoder())
    conn.send(("ready", 0))
    acked = 0

    def progress(_count: int) -> None:
        nonlocal acked
        acked += 1
        conn.send(("ack", acked))

    service.ingest(corpus(DOCUMENTS), progress=progress)
    conn.send(("done", 0))
    service.close()


def _run_and_kill(url: str, kill_after: int, delay_s: float) -> tuple[int, bool]:
    ctx = forkserver()
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=pg_ingest_child, args=(url, send))
    child.start()
    send.close()
    acked, killed = 0, False
    try:
        while True:
            if not receive.poll(MESSAGE_TIMEOUT_S):
                raise AssertionError(f"child sent nothing for {MESSAGE_TIMEOUT_S}s")
            kind, n = receive.recv()
            acked = max(acked, n) if kind == "ack" else acked
            if kind == "done":
                break
            if n == kill_after and kind in ("ready", "ack"):
                time.sleep(delay_s)
                child.kill()
                killed = True
                break
        child.join(timeout=30)
        while receive.poll(0):
            kind, n = receive.recv()
            acked = max(acked, n) if kind == "ack" else acked
    except EOFError:
        pass
    finally:
        if child.is_alive():
            child.kill()
        child.join(timeout=30)
        receive.close()
    return acked, killed


def _check_whole(url: str, acked_batches: int) -> int:
    """The database holds whole batches only, every acknowledged one among them; returns documents."""
    with psycopg.connect(url) as conn:
        ids = sorted(r[0] for r in conn.execute("SELECT id FROM documents"))
        orphans = conn.execute("SELECT count(*) FROM documents d WHERE NOT EXISTS "
                               "(SELECT 1 FROM chunks c WHERE c.document_id = d.id)").fetchone()
        unindexed = conn.execute("SELECT count(*) FROM chunks c WHERE NOT EXISTS "
                                 "(SELECT 1 FROM postings p WHERE p.chunk_rowid = c.rowid)").fetchone()
        stats = conn.execute("SELECT chunks, tokens FROM stats").fetchone()
        actual = conn.execute("SELECT count(*), coalesce(sum(length), 0) FROM chunks").fetchone()
    assert orphans == (0,) and unindexed == (0,)
    assert stats == actual  # BM25 statistics match the rows: no half-counted write
    expected = [d.id for d in corpus(DOCUMENTS)]
    assert ids == sorted(expected[:len(ids)]) and len(ids) % 64 in (0, DOCUMENTS % 64)
    assert len(ids) >= min(DOCUMENTS, acked_batches * 64)
    return len(ids)


def test_sigkill_during_a_postgres_ingest_loses_no_acknowledged_batch(pg_server: PgServer | str) -> None:
    url = pg_database(pg_server)
    rng = random.Random(SEED)
    kills = 0
    for _ in range(KILLS * 3):
        acked, killed = _run_and_kill(url, kill_after=rng.randint(0, 4), delay_s=rng.uniform(0.0, 0.3))
        stored = _check_whole(url, acked)
        kills += killed
        if kills >= KILLS:
            break
    acked, killed = _run_and_kill(url, kill_after=-1, delay_s=0.0)  # resumed to the end
    assert not killed and _check_whole(url, acked) == DOCUMENTS
    assert kills >= KILLS and stored <= DOCUMENTS


@pytest.fixture
def pg_client(settings: Settings,
              pg_server: PgServer | str) -> Iterator[tuple[TestClient, str]]:  # type: ignore[type-arg]
    url = pg_database(pg_server)
    app = create_app(settings.replace(store_url=url), lambda s: QAService(s, FakeEncoder()), wait_ready=True)
    with TestClient(app=app) as client:
        yield client, url


def _refuse_connections(server_url: str, database: str, refuse: bool) -> None:
    """An outage of one database: no new connections, and the open ones cut."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE {database} ALLOW_CONNECTIONS {'false' if refuse else 'true'}")
        if refuse:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                         (database,))


def test_an_unreachable_database_gives_503_with_retry_after_and_recovers(
        pg_client: tuple[TestClient, str]) -> None:  # type: ignore[type-arg]
    client, url = pg_client
    doc = {"id": "a1", "title": "Rain", "lang": "en",
           "text": "Heavy rain is expected in Denver this weekend."}
    assert client.post("/v1/documents", json=doc).status_code in (200, 201)
    database = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    _refuse_connections(admin, database, refuse=True)
    try:
        for response in (client.get("/v1/search", params={"q": "rain in Denver"}),
                         client.post("/v1/ask", json={"question": "Where will it rain?"}),
                         client.get("/v1/documents/a1"),
                         client.get("/readyz")):
            assert response.status_code == 503, response.text
            assert response.headers["retry-after"] == "5"
            assert "unreachable" in response.json()["detail"]
    finally:
        _refuse_connections(admin, database, refuse=False)
    found = client.get("/v1/search", params={"q": "rain in Denver"})
    assert found.status_code == 200 and found.json()["passages"][0]["document_id"] == "a1"


def test_a_database_unreachable_at_start_gives_503_until_it_comes_back(
        settings: Settings, pg_server: PgServer | str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("qa_service.api.app.STORE_RETRY_S", 0.1)
    url = pg_database(pg_server)
    database, admin = url.rsplit("/", 1)[1], url.rsplit("/", 1)[0] + "/postgres"
    _refuse_connections(admin, database, refuse=True)
    app = create_app(settings.replace(store_url=url), lambda s: QAService(s, FakeEncoder()))
    try:
        with TestClient(app=app) as client:
            deadline = time.monotonic() + MESSAGE_TIMEOUT_S
            while (ready := client.get("/readyz")).status_code == 503 and "unreachable" not in ready.text:
                assert time.monotonic() < deadline  # still loading: the first attempt has not failed yet
                time.sleep(0.05)
            assert ready.status_code == 503 and ready.headers["retry-after"] == "5"
            search = client.get("/v1/search", params={"q": "rain"})
            assert search.status_code == 503 and search.headers["retry-after"] == "5"
            assert "unreachable" in search.json()["detail"]
            _refuse_connections(admin, database, refuse=False)
            while client.get("/readyz").status_code != 200:
                assert time.monotonic() < deadline, "the service did not recover"
                time.sleep(0.05)
            assert client.get("/v1/search", params={"q": "rain"}).status_code == 200
    finally:
        _refuse_connections(admin, database, refuse=False)
