"""Shared fixtures: settings in a temporary index folder, the fake encoder, shared data paths."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from qa_service.service import QAService
from qa_service.settings import Settings
from tests.fakes import FakeEncoder, FakeReader
from tests.pg import PgServer, running_server

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def shared_data(relative: str) -> Path:
    """A file under ../shared/data, or a visible skip when that folder is absent (users' machines)."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"needs ../shared/data/{relative} (present in CI, absent on user machines)")
    return path


# An abstention threshold no confidence falls below.
NEVER_ABSTAIN = -math.inf


@pytest.fixture(autouse=True)
def fake_reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Services read with ``FakeReader``, except in integration tests (the trained reader)."""
    if request.node.get_closest_marker("integration") is None:
        monkeypatch.setattr("qa_service.answer.pipeline.load_reader", lambda _settings: FakeReader())


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # Abstention is off unless a test sets a threshold.
    return Settings(index_dir=tmp_path / "index", model_cache=tmp_path / "models",
                    min_reader_score=NEVER_ABSTAIN, min_reader_score_cross_lingual=NEVER_ABSTAIN)


@pytest.fixture
def fake_service(settings: Settings) -> Iterator[QAService]:
    service = QAService(settings, FakeEncoder())
    yield service
    service.close()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer | str]:
    """One PostgreSQL + pgvector server for the session, or why none could be started."""
    with running_server() as server:
        yield server


def pg_database(server: PgServer | str) -> str:
    """A fresh database on the session's server, or a visible skip saying why there is none."""
    if isinstance(server, str):
        pytest.skip(f"PostgreSQL backend: {server}")
    return server.new_database()


@pytest.fixture(params=["embedded", "postgres"])
def backend_settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    """The test's settings on each backend: embedded (SQLite + FAISS) and PostgreSQL + pgvector."""
    if request.param == "postgres":
        return settings.replace(store_url=pg_database(request.getfixturevalue("pg_server")))
    return settings
