"""QA_STORE_READ_URLS: searches are served by a streaming replica, writes go to the primary."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import psycopg
import pytest

from qa_service.service import QAService
from qa_service.settings import Settings
from qa_service.store.pg_store import PgStore
from tests.conftest import pg_database
from tests.fakes import FakeEncoder
from tests.pg import PgServer
from tests.unit.test_store_backends import ALL

REPLAY_TIMEOUT_S = 30.0


@pytest.fixture(scope="module")
def replica(pg_server: PgServer | str) -> Iterator[PgServer]:
    if isinstance(pg_server, str):
        pytest.skip(f"PostgreSQL backend: {pg_server}")
    standby = pg_server.replica()
    yield standby
    standby.stop()


def _wait_for(store: PgStore, documents: int) -> None:
    """Until the replica has replayed the primary's writes (counts() reads from the replica)."""
    deadline = time.monotonic() + REPLAY_TIMEOUT_S
    while True:
        with contextlib.suppress(psycopg.errors.UndefinedTable):  # the schema itself not replayed yet
            if store.counts()[0] == documents:
                return
        assert time.monotonic() < deadline, "the replica did not catch up"
        time.sleep(0.05)


def test_searches_read_from_the_replica_and_writes_go_to_the_primary(
        settings: Settings, pg_server: PgServer, replica: PgServer) -> None:
    url = pg_database(pg_server)
    read_url = replica.url(url.rsplit("/", 1)[1])
    deadline = time.monotonic() + REPLAY_TIMEOUT_S
    while True:  # the new database reaches the replica by replay
        try:
            psycopg.connect(read_url).close()
            break
        except psycopg.OperationalError:
            assert time.monotonic() < deadline, "the replica did not catch up"
            time.sleep(0.05)
    service = QAService(settings.replace(store_url=url, store_read_urls=(read_url,)), FakeEncoder())
    try:
        store = service.store
        assert isinstance(store, PgStore)
        assert store.read_connection().execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
        service.ingest(ALL)  # would fail on the replica: it is read-only
        _wait_for(store, len(ALL))
        passages, _ = service.search("How many points did the Panthers defense give up?", 3)
        assert passages[0].document_id == "football"
        service.delete("football")
        _wait_for(store, len(ALL) - 1)
        assert "football" not in [p.document_id for p in service.search("Panthers defense", 5)[0]]
    finally:
        service.close()


def test_writes_sent_to_a_replica_are_a_clear_503(settings: Settings, pg_server: PgServer,
                                                   replica: PgServer) -> None:
    from qa_service.errors import StoreUnavailableError

    url = pg_database(pg_server)
    QAService(settings.replace(store_url=url), FakeEncoder()).close()  # schema on the primary
    read_url = replica.url(url.rsplit("/", 1)[1])
    deadline = time.monotonic() + REPLAY_TIMEOUT_S
    while True:
        try:
            with psycopg.connect(read_url) as conn:
                if conn.execute("SELECT to_regclass('stats')").fetchone() != (None,):
                    break
        except psycopg.OperationalError:
            pass
        assert time.monotonic() < deadline, "the replica did not catch up"
        time.sleep(0.05)
    store = PgStore(read_url, migrate=False)
    try:
        with pytest.raises(StoreUnavailableError, match="read-only"):
            store.set_meta("x", "y")
    finally:
        store.close()
