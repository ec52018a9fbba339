"""Shared workload of the reliability tests: a deterministic corpus and the ingesting child.

The child runs in a separate process (started by a forkserver, so no import cost per run)
and is killed with SIGKILL by the test; it reports each acknowledged batch over a pipe.
"""

from __future__ import annotations

import contextlib
import multiprocessing
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext
from pathlib import Path

from qa_service.models import Document
from qa_service.service import INGEST_BATCH_DOCUMENTS, QAService
from qa_service.settings import Settings
from tests.conftest import NEVER_ABSTAIN
from tests.fakes import FakeEncoder

CORPUS_SIZE = 1000
# "api" mode: one ingest call (one published generation) per this many documents, as a
# client posting batches to POST /v1/documents does.
API_BATCH = 50
CLI_BATCH = INGEST_BATCH_DOCUMENTS
PLACES = ("بغداد", "القاهرة", "Cairo", "Beirut", "الرياض", "Tunis")


def forkserver() -> ForkServerContext:
    """Children that start in milliseconds with the service already imported."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([__name__])
    return ctx


def corpus(n: int = CORPUS_SIZE, version: int = 0) -> list[Document]:
    """``n`` distinct short articles, alternating Arabic and English; ``version`` changes the text."""
    docs = []
    for i in range(n):
        place = PLACES[i % len(PLACES)]
        count = i * 7 + 3 + version * 100_000
        if i % 2:
            text = (f"سجلت الوزارة {count} حالة في {place} يوم {i}. "
                    f"وقال المتحدث إن التقرير رقم {i} نهائي.")
        else:
            text = f"Officials in {place} counted {count} cases on day {i}. Report number {i} is final."
        docs.append(Document(id=f"doc-{i:04d}", text=text, title=f"Report {i}", source="wire",
                             lang="ar" if i % 2 else "en"))
    return docs


def child_settings(index_dir: Path) -> Settings:
    return Settings(index_dir=index_dir, model_cache=index_dir.parent / "models",
                    min_reader_score=NEVER_ABSTAIN, writer_wait_s=30.0)


def ingest_child(index_dir: str, mode: str, conn: Connection) -> None:
    """Ingest the corpus, sending ("ack", n) once batch n is durable (and, in api mode, published)."""
    service = QAService(child_settings(Path(index_dir)), FakeEncoder())
    conn.send(("ready", 0))
    docs = corpus()
    if mode == "cli":  # one ingest call: each store batch is durable when progress is reported
        acked = 0

        def progress(_count: int) -> None:
            nonlocal acked
            acked += 1
            conn.send(("ack", acked))

        service.ingest(docs, progress=progress)
    else:
        for n, start in enumerate(range(0, len(docs), API_BATCH), start=1):
            service.ingest(docs[start:start + API_BATCH])
            conn.send(("ack", n))
    conn.send(("done", 0))
    service.close()


def change(version: int, size: int) -> tuple[list[Document], str | None]:
    """Round ``version`` of the concurrent writers: 20 documents rewritten, sometimes one deleted."""
    start = (version * 20) % size
    deleted = f"doc-{version:04d}" if version % 4 == 0 else None
    return corpus(size, version=version)[start:start + 20], deleted


def publish_child(index_dir: str, versions: list[int], size: int, conn: Connection) -> None:
    """Another process that writes: each version changes documents and publishes a generation."""
    service = QAService(child_settings(Path(index_dir)), FakeEncoder())
    for version in versions:
        docs, deleted = change(version, size)
        service.ingest(docs)
        if deleted is not None:
            service.delete(deleted)
        conn.send(("published", version))
    conn.send(("done", 0))
    service.close()


def crash_at_child(index_dir: str, operation: int, documents: int, conn: Connection) -> None:
    """Ingest the first ``documents`` of the corpus, SIGKILLed at disk ``operation`` of the publish."""
    import qa_service.store.vector_index as vector_index
    from tests.reliability.faults import FaultyOS

    service = QAService(child_settings(Path(index_dir)), FakeEncoder())
    vector_index.os = FaultyOS(operation)  # type: ignore[assignment]
    conn.send(("ready", 0))
    service.ingest(corpus(documents))
    conn.send(("done", 0))


def hold_writer_child(index_dir: str, conn: Connection) -> None:
    """Another process holding the index writer lock until the parent says (or the pipe closes)."""
    from qa_service.store.vector_index import IndexDirectory

    with IndexDirectory(Path(index_dir)).writer():
        conn.send(("held", 0))
        with contextlib.suppress(EOFError):  # the parent went away: release all the same
            conn.recv()
