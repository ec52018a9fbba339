"""An embedded collection of N chunks of real news text with synthetic vectors, for ``bench serve``.

    python -m tests.scale_bench 1000000 artifacts/bench/scale-1m      # ~40 min on 2 cores, resumable
    qa-service bench serve --sizes artifacts/bench/scale-1m --no-baseline
    python -m tests.scale_bench 100000 artifacts/bench/scale-100k --postgres  # served from PostgreSQL

The articles of ../shared/data/ant-news-ar.jsonl.gz, then the file again under new ids (as
``tests.pg_bench``), are ingested with the deterministic hashing encoder of the tests under the
configured model's name and dimension, so the served index has real chunk text, real lexical
statistics and the real layout (SQLite + FAISS IVF, sentence vectors) while ingestion skips the
model: the measured server embeds its questions with the real model and answers with the real
reader; only the dense ranking is meaningless. Run again, it continues where it stopped.

``--postgres`` then starts a PostgreSQL + pgvector server as the tests do (tests/pg.py), copies
the collection into it (``qa-service copy``, no re-embedding) and runs ``bench serve``'s
measurement against a server with ``QA_STORE_URL`` pointing there.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

from qa_service.bench import serving
from qa_service.bench.common import SHARED_DATA
from qa_service.embedding import load_encoder
from qa_service.service import QAService
from qa_service.settings import Settings
from tests.fakes import FakeEncoder
from tests.pg import running_server
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
            # Near the end, about as many articles as the chunks still missing need.
            wanted = BATCH if not documents else min(BATCH, int((chunks - have) * documents / have) + 1)
            service.ingest(list(itertools.islice(stream, wanted)))
            documents, have = service.store.counts()
            print(f"{documents} articles, {have}/{chunks} chunks, {time.perf_counter() - started:.0f} s",
                  flush=True)
    finally:
        service.close()


def serve_from_postgres(folder: Path) -> None:
    with running_server() as server:
        if isinstance(server, str):
            raise SystemExit(f"no PostgreSQL: {server}")
        url = server.new_database()
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "qa_service.cli", "copy", "--from", str(folder / "index"),
                        "--to", url], check=True)
        print(f"copied in {time.perf_counter() - started:.0f} s", flush=True)
        result = serving.run(Settings.from_env(), SHARED_DATA, folder, sizes=[str(folder)], baseline=False,
                             server_env={"QA_STORE_URL": url})
        print(serving.summary(result))
        (folder / "serve-postgres.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--postgres"]
    if len(args) != 2 or not args[0].isdigit():
        raise SystemExit("usage: python -m tests.scale_bench CHUNKS FOLDER [--postgres]")
    build(int(args[0]), Path(args[1]))
    if "--postgres" in sys.argv:
        serve_from_postgres(Path(args[1]))
