"""Embedded vs PostgreSQL backend on a slice of the news collection: a script with printed figures.

    python -m tests.pg_bench 1000      # first 1000 articles of ../shared/data/ant-news-ar.jsonl.gz
    python -m tests.pg_bench 42000     # past the file's 31,508 articles it starts again (ids "~2")

Both backends ingest the same articles with the deterministic fake encoder (384 dimensions, so
the figures measure the stores, not a model), then answer 100 searches (titles of sampled
articles) with and without a date filter, and 50 questions through ``ask`` with the trained
reader (from the default model cache; `make install` builds it) answering over the retrieved
passages. Printed: ingestion chunks/s, search and ask p50/p95 (ms), how often the top 5 are
identical, and the dense recall of HNSW (halfvec) against FAISS's exact search, counting equal
cosines as found. Starts its own PostgreSQL like the tests (tests/pg.py).
"""

from __future__ import annotations

import gzip
import itertools
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from msgspec.structs import replace

from qa_service.errors import BadInputError
from qa_service.ingest.documents import document_from_mapping
from qa_service.models import AskRequest, Document, Filters
from qa_service.retrieval.filters import condition
from qa_service.service import QAService
from qa_service.settings import Settings
from tests.conftest import SHARED_DATA
from tests.fakes import FakeEncoder
from tests.pg import running_server

QUESTIONS = 100
ASKED = 50
DIM = 384
TIE = 2e-3  # halfvec moves a cosine by about 1e-3


def articles() -> Iterator[Document]:
    """The news file's articles, then the file again under ids suffixed "~2", "~3" …, for ever."""
    round_ = 1
    while True:
        with gzip.open(SHARED_DATA / "ant-news-ar.jsonl.gz", "rt") as fh:
            for line in fh:
                try:
                    doc = document_from_mapping(json.loads(line), extra_to_metadata=True)
                except BadInputError:
                    continue
                yield doc if round_ == 1 else replace(doc, id=f"{doc.id}~{round_}")
        round_ += 1


def _articles(n: int) -> list[Document]:
    return list(itertools.islice(articles(), n))


def _measure(settings: Settings, docs: list[Document], questions: list[str]) -> dict[str, object]:
    service = QAService(settings, FakeEncoder(dim=DIM))
    try:
        started = time.perf_counter()
        report = service.ingest(docs)
        ingest_s = time.perf_counter() - started
        for q in questions[:5]:  # warm caches and connections
            service.search(q, 5)
        latency, top5 = [], []
        for q in questions:
            t = time.perf_counter()
            passages, _ = service.search(q, 5)
            latency.append((time.perf_counter() - t) * 1000)
            top5.append([p.chunk_id for p in passages])
        for q in questions[-3:]:  # the reader loads on first use
            service.ask(AskRequest(question=q))
        asked = []
        for q in questions[:ASKED]:
            t = time.perf_counter()
            service.ask(AskRequest(question=q))
            asked.append((time.perf_counter() - t) * 1000)
        filtered = []
        for q in questions[:50]:
            t = time.perf_counter()
            service.search(q, 5, Filters(published_after="2023-06-01"))
            filtered.append((time.perf_counter() - t) * 1000)
        vectors = service.encoder.encode_queries(questions)
        dense = []
        for i in range(len(questions)):
            hits = service.retriever._backend.dense(vectors[i:i + 1], 100, condition(None))
            scores = [s for _, s in hits]
            chunk_ids = [p.chunk_id for p in service.store.passages([r for r, _ in hits], scores)]
            dense.append(list(zip(chunk_ids, scores, strict=True)))
        return {"chunks": service.store.counts()[1], "chunks_per_s": round(report.chunks / ingest_s, 1),
                "p50_ms": round(statistics.median(latency), 1),
                "p95_ms": round(float(np.percentile(latency, 95)), 1),
                "filtered_p50_ms": round(statistics.median(filtered), 1),
                "ask_p50_ms": round(statistics.median(asked), 1),
                "ask_p95_ms": round(float(np.percentile(asked, 95)), 1), "top5": top5, "dense": dense}
    finally:
        service.close()


def _recall(exact: list[list[tuple[str, float]]], found: list[list[tuple[str, float]]], k: int) -> float:
    """Share of the exact top k found, an equal cosine counting as found."""
    shares = []
    for want, got in zip(exact, found, strict=True):
        if want[:k]:
            kth = want[:k][-1][1]
            shares.append(sum(1 for _, s in got[:k] if s >= kth - TIE) / len(want[:k]))
    return round(statistics.mean(shares), 4)


def main(n: int) -> None:
    docs = _articles(n)
    questions = [d.title or d.text[:80] for d in random.Random(1).sample(docs, min(QUESTIONS, len(docs)))]
    folder = Path(tempfile.mkdtemp(prefix="qa-pg-bench-"))
    base = Settings(index_dir=folder / "index")  # the default model cache: the reader answers
    try:
        with running_server() as server:
            if isinstance(server, str):
                raise SystemExit(f"no PostgreSQL: {server}")
            results = {"embedded": _measure(base, docs, questions),
                       "postgres": _measure(base.replace(store_url=server.new_database()), docs, questions)}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    embedded, pg = results["embedded"], results["postgres"]
    pairs = zip(embedded.pop("top5"), pg.pop("top5"), strict=True)  # type: ignore[call-overload]
    same = sum(a == b for a, b in pairs) / len(questions)
    exact, found = embedded.pop("dense"), pg.pop("dense")
    print(json.dumps(results, indent=1))
    print(f"{len(docs)} articles: top 5 identical for {same:.2f} of searches; dense recall of HNSW vs exact: "
          f"@10 {_recall(exact, found, 10)}, @100 {_recall(exact, found, 100)}")  # type: ignore[arg-type]


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
