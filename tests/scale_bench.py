"""An embedded collection of N chunks of real news text with synthetic vectors, for ``bench serve``.

    python -m tests.scale_bench 1000000 artifacts/bench/scale-1m      # ~40 min on 2 cores, resumable
    qa-service bench serve --sizes artifacts/bench/scale-1m --no-baseline

The articles of ../shared/data/ant-news-ar.jsonl.gz, then the file again under new ids (as
``tests.pg_bench``), are ingested with the deterministic hashing encoder of the tests under the
configured model's name and dimension, so the served index has real chunk text, real lexical
statistics and the real layout (SQLite + FAISS IVF, sentence vectors) while ingestion skips the
model: the measured server embeds its questions with the real model and answers with the real
reader; only the dense ranking is meaningless. Run again, it continues where it stopped.
"""

from __future__ import annotations

import itertools
import sys
import time
from pathlib import Path

from qa_service.embedding import load_encoder
from qa_service.service import QAService
from qa_service.settings import Settings
from tests.fakes import FakeEncoder
from tests.pg_bench import articles

BATCH = 20_000  # articles per ingest call (each publishes a generation)


def build(chunks: int, folder: Path) -> None:
    settings = Settings.from_env().replace(index_dir=folder / "index")
    model = load_encoder(settings)
    service = QAService(settings, FakeEncoder(dim=model.dim, model_id=model.model_id))
    try:
        started = time.perf_counter()
        documents, have = service.store.counts()
        stream = itertools.islice(articles(), documents, None)  # ingested ones are skipped
        while have < chunks:
            service.ingest(list(itertools.islice(stream, BATCH)))
            documents, have = service.store.counts()
            print(f"{documents} articles, {have}/{chunks} chunks, {time.perf_counter() - started:.0f} s",
                  flush=True)
    finally:
        service.close()


if __name__ == "__main__":
    if len(sys.argv) != 3 or not sys.argv[1].isdigit():
        raise SystemExit("usage: python -m tests.scale_bench CHUNKS FOLDER")
    build(int(sys.argv[1]), Path(sys.argv[2]))
