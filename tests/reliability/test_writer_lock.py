"""One writer at a time across processes: the API answers 409 and the CLI says why.

Within one server, concurrent uploads wait for each other (up to QA_WRITER_WAIT_S) rather
than fail; while another process holds the lock past that wait, the API answers a 409
problem with Retry-After and the CLI exits 1 with a message naming the folder.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

import qa_service.cli as cli
from qa_service.api.app import create_app
from qa_service.service import QAService
from qa_service.settings import Settings
from tests.fakes import FakeEncoder
from tests.reliability.conftest import serve_in_thread
from tests.reliability.workload import child_settings, corpus, forkserver, hold_writer_child

pytestmark = pytest.mark.reliability


@contextmanager
def lock_held_by_another_process(root: Path) -> Iterator[None]:
    ctx = forkserver()
    parent, child_end = ctx.Pipe()
    child = ctx.Process(target=hold_writer_child, args=(str(root), child_end))
    child.start()
    child_end.close()
    assert parent.poll(30) and parent.recv()[0] == "held"
    try:
        yield
    finally:
        parent.send("release")
        child.join(timeout=30)
        parent.close()


def test_api_answers_409_while_another_process_writes_and_200_after(tmp_path: Path) -> None:
    root = tmp_path / "index"
    settings = child_settings(root).replace(rate_limit_per_s=0, writer_wait_s=0.3)
    services: list[QAService] = []

    def factory(s: Settings) -> QAService:
        services.append(QAService(s, FakeEncoder()))
        return services[0]

    app = create_app(settings, factory)
    docs = [{"id": d.id, "text": d.text} for d in corpus(10)]
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        with lock_held_by_another_process(root):
            busy = client.post("/v1/documents", json=docs[:5])
            assert busy.status_code == 409, busy.text
            assert busy.headers["content-type"].startswith("application/problem+json")
            assert "another process" in busy.json()["detail"] and busy.headers["retry-after"]
            assert client.delete("/v1/documents/doc-0000").status_code == 404  # unknown: no wait
            # Readers are not blocked by a writer.
            assert client.get("/v1/search", params={"q": "cases"}).status_code == 200
        assert client.post("/v1/documents", json=docs[:5]).status_code == 201
        # Two uploads at once in one server: the second waits for the first, both succeed
        # (with a wait long enough for a loaded CI machine, unlike the short one above).
        services[0].settings = settings.replace(writer_wait_s=60)
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(lambda part: client.post("/v1/documents", json=part),
                                    [docs[5:8], docs[8:]]))
        assert [r.status_code for r in results] == [201, 201]
        assert client.get("/readyz").json()["documents"] == 10


def test_cli_ingest_says_another_process_is_writing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "index"
    source = tmp_path / "docs.jsonl"
    source.write_text("\n".join(json.dumps({"id": d.id, "text": d.text}) for d in corpus(3)))
    monkeypatch.setenv("QA_WRITER_WAIT_S", "0.2")
    monkeypatch.setattr(cli, "open_service", lambda s: QAService(s, FakeEncoder()))
    QAService(Settings(index_dir=root), FakeEncoder()).close()  # an existing, empty collection
    with lock_held_by_another_process(root):
        code = cli.main(["ingest", str(source), "--index-dir", str(root)])
    assert code == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert "another process" in err and str(root) in err and "retry" in err
    assert cli.main(["ingest", str(source), "--index-dir", str(root)]) == cli.EXIT_OK


def test_deleting_an_unknown_id_is_404_at_once_while_another_process_writes(tmp_path: Path) -> None:
    root = tmp_path / "index"
    settings = child_settings(root).replace(rate_limit_per_s=0, writer_wait_s=5)
    app = create_app(settings, lambda s: QAService(s, FakeEncoder()))
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        assert client.post("/v1/documents", json={"id": "known", "text": "A note."}).status_code == 201
        with lock_held_by_another_process(root):
            started = time.monotonic()
            r = client.delete("/v1/documents/never-written")
            assert r.status_code == 404 and time.monotonic() - started < 2, r.text
            assert client.delete("/v1/documents/known").status_code == 409  # a real delete waits
