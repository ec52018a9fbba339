"""Disk faults: ENOSPC / EIO at each write of a publish, a full store, a kill at each step,
and damaged generation files found at start-up.

What a user must see: the request fails with a clear error, readers keep getting answers
from the previous generation, no temporary file is left, and the next write (or restart)
brings the index back in line with the store, which is the source of truth.
"""

from __future__ import annotations

import errno
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

import qa_service.store.vector_index as vector_index
from qa_service.api.app import create_app
from qa_service.errors import StorageError, StorageFullError
from qa_service.service import QAService
from qa_service.store.vector_index import INDEX_FILE, MANIFEST_FILE, IndexDirectory
from tests.fakes import FakeEncoder
from tests.reliability.checks import open_and_check, temp_leftovers
from tests.reliability.faults import FaultyOS, count_operations
from tests.reliability.workload import child_settings, corpus, crash_at_child, forkserver

pytestmark = pytest.mark.reliability

BASE = 100  # documents in the folder before the faulty write
EXTRA = 20  # documents the faulty write adds


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("template") / "index"
    service = QAService(child_settings(root), FakeEncoder())
    service.ingest(corpus(BASE))
    service.close()
    return root


@pytest.fixture
def copies(template: Path, tmp_path: Path) -> Iterator[object]:
    def copy(name: str) -> Path:
        target = tmp_path / name / "index"
        shutil.copytree(template, target)
        return target

    yield copy


def _answers_from(service: QAService, doc_index: int) -> bool:
    doc = corpus(BASE + EXTRA)[doc_index]
    passages, _ = service.search(doc.text, 1)
    return bool(passages) and passages[0].document_id == doc.id


@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EIO], ids=["ENOSPC", "EIO"])
def test_a_failed_write_at_any_step_of_a_publish_fails_clearly_and_keeps_serving(
        copies: object, error: int, monkeypatch: pytest.MonkeyPatch) -> None:
    extra = corpus(BASE + EXTRA)[BASE:]
    probe = QAService(child_settings(copies("probe")), FakeEncoder())  # type: ignore[operator]
    steps = count_operations(lambda: probe.ingest(extra))
    probe.close()
    assert steps >= 8  # index + manifest + CURRENT written, fsynced and renamed
    expected = StorageFullError if error == errno.ENOSPC else StorageError
    for step in range(1, steps + 1):
        root = copies(f"step-{step}")  # type: ignore[operator]
        service = QAService(child_settings(root), FakeEncoder())
        serving = service.index
        with monkeypatch.context() as patch:
            patch.setattr(vector_index, "os", FaultyOS(step, error))
            with pytest.raises(expected) as failure:
                service.ingest(extra)
        detail = failure.value.detail
        assert ("no space left" if error == errno.ENOSPC else "disk failed") in detail, detail
        assert "saved in the store" in detail
        assert temp_leftovers(root) == 0, f"step {step} left temporary files"
        assert service.index is serving, f"step {step}: the served generation changed"
        assert _answers_from(service, 3)
        # The documents were committed; the next write publishes them.
        assert service.store.get_document(extra[0].id) is not None
        service.ingest([])
        assert _answers_from(service, BASE + 5)
        service.close()
        open_and_check(root)


def test_a_full_store_fails_clearly_and_changes_nothing(copies: object) -> None:
    root = copies("full")  # type: ignore[operator]
    service = QAService(child_settings(root), FakeEncoder())
    before = service.index.manifest.name
    conn = service.store._conn()  # the connection this thread writes with
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own "disk full"
    with pytest.raises(StorageFullError, match="no space left"):
        service.ingest(corpus(BASE + EXTRA)[BASE:])
    assert service.store.get_document(f"doc-{BASE:04d}") is None  # rolled back whole
    assert service.index.manifest.name == before and _answers_from(service, 3)
    service.close()
    open_and_check(root)


def test_the_api_answers_507_while_the_old_generation_keeps_serving(
        copies: object, monkeypatch: pytest.MonkeyPatch) -> None:
    root = copies("api")  # type: ignore[operator]
    settings = child_settings(root).replace(rate_limit_per_s=0)
    app = create_app(settings, lambda s: QAService(s, FakeEncoder()), wait_ready=True)
    docs = [{"id": d.id, "text": d.text, "title": d.title} for d in corpus(BASE + EXTRA)[BASE:]]
    with TestClient(app=app) as client:
        with monkeypatch.context() as patch:
            patch.setattr(vector_index, "os", FaultyOS(1, errno.ENOSPC))
            r = client.post("/v1/documents", json=docs)
        assert r.status_code == 507, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert "no space left" in r.json()["detail"]
        search = client.get("/v1/search", params={"q": corpus(BASE)[3].text, "k": 1})
        assert search.status_code == 200 and search.json()["passages"][0]["document_id"] == "doc-0003"
        assert temp_leftovers(root) == 0
        # Retrying the same upload succeeds and makes the documents searchable.
        again = client.post("/v1/documents", json=docs)
        assert again.status_code == 201 and again.json()["unchanged"] == EXTRA
        search = client.get("/v1/search", params={"q": docs[5]["text"], "k": 1})
        assert search.json()["passages"][0]["document_id"] == docs[5]["id"]


def test_sigkill_at_every_step_of_a_publish(copies: object) -> None:
    ctx = forkserver()
    step, killed_steps = 1, 0
    while True:
        root = copies(f"kill-{step}")  # type: ignore[operator]
        receive, send = ctx.Pipe(duplex=False)
        child = ctx.Process(target=crash_at_child, args=(str(root), step, BASE + EXTRA, send))
        child.start()
        send.close()
        child.join(timeout=60)
        messages = []
        while receive.poll(0):
            try:
                messages.append(receive.recv()[0])
            except EOFError:
                break
        receive.close()
        state = open_and_check(root)
        # The store batch committed before the publish began, so it is all there.
        assert len(state.documents) == BASE + EXTRA
        with IndexDirectory(root).writer():
            pass
        assert temp_leftovers(root) == 0
        if "done" in messages:
            break
        assert child.exitcode == -9, f"step {step}: child ended with {child.exitcode}"
        killed_steps += 1
        step += 1
    assert killed_steps >= 8


@pytest.mark.parametrize("damage", ["truncate", "zero", "flip", "delete", "manifest", "current"])
def test_a_damaged_generation_is_detected_and_rebuilt_from_the_store(
        copies: object, damage: str, caplog: pytest.LogCaptureFixture) -> None:
    root = copies(damage)  # type: ignore[operator]
    name = (root / "CURRENT").read_text().strip()
    folder = root / "generations" / name
    data = (folder / INDEX_FILE).read_bytes()
    if damage == "truncate":
        (folder / INDEX_FILE).write_bytes(data[: len(data) // 2])
    elif damage == "zero":
        (folder / INDEX_FILE).write_bytes(bytes(len(data)))
    elif damage == "flip":
        flipped = bytearray(data)
        flipped[len(data) - 100] ^= 0x01  # one bit inside the vectors
        (folder / INDEX_FILE).write_bytes(bytes(flipped))
    elif damage == "delete":
        (folder / INDEX_FILE).unlink()
    elif damage == "manifest":
        (folder / MANIFEST_FILE).write_text("{not json")
    else:
        (root / "CURRENT").write_text("g9999999999-missing")
    with caplog.at_level(logging.WARNING, logger="qa_service"):
        state = open_and_check(root, damaged_ok=True)
    assert len(state.documents) == BASE
    assert any("rebuilding" in r.getMessage() for r in caplog.records), caplog.text
    reopened = IndexDirectory(root).load_current()
    assert reopened is not None and reopened.manifest.name != name and reopened.size == BASE
