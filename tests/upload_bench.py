"""Memory of uploads at the body limit: a script with printed figures (issue 15).

    python -m tests.upload_bench           # three uploads, 90 s each
    python -m tests.upload_bench --window 150

Starts ``qa-service serve --sample`` on a free loopback port over a fresh index (embedding cache off, so the
sample's chunks warm the encoder at start), then posts three ``application/x-ndjson`` bodies of
57 documents x 199,000 characters of ``ant-news-ar`` text (20.6 MB, under the 20 MB-of-text
body limit): A and B from different articles, C with A's text under new ids. Each client gives
up after 40 s (the server finishes the batch in progress); the server's RSS (anonymous and
file-backed) is sampled every 0.5 s for the window. Prints growth per upload and its ratio to
the body size (the target is 2x).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from qa_service.bench.common import process_memory_mib
from qa_service.bench.server import served
from tests.conftest import SHARED_DATA

DOCUMENTS = 57
CHARS = 199_000
MEMORY = ("anon_mib", "file_mib")


def bodies() -> list[tuple[str, bytes]]:
    """The three bodies, from the first articles of the file (read only as far as they need)."""
    texts: list[str] = []
    needed = 2 * DOCUMENTS * CHARS
    with gzip.open(SHARED_DATA / "ant-news-ar.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            texts.append(json.loads(line)["text"])
            needed -= len(texts[-1]) + 2
            if needed <= 0:
                break
    joined = "\n\n".join(texts)

    def text(n: int) -> str:
        return joined[n * CHARS:(n + 1) * CHARS]

    a = [{"id": f"a-{i}", "title": "upload", "text": text(i)} for i in range(DOCUMENTS)]
    b = [{"id": f"b-{i}", "title": "upload", "text": text(DOCUMENTS + i)} for i in range(DOCUMENTS)]
    c = [{**doc, "id": doc["id"].replace("a-", "c-")} for doc in a]
    return [(name, "\n".join(json.dumps(d, ensure_ascii=False) for d in docs).encode())
            for name, docs in (("A: first", a), ("B: other text", b), ("C: A's text, new ids", c))]


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=float, default=90.0, help="seconds sampled per upload")
    args = parser.parse_args(argv)
    if not (SHARED_DATA / "ant-news-ar.jsonl.gz").exists():
        sys.exit(f"needs {SHARED_DATA}/ant-news-ar.jsonl.gz")
    uploads = bodies()
    folder = Path(tempfile.mkdtemp(prefix="upload-bench-"))
    no_cache = {"QA_EMBEDDING_CACHE": "false"}
    with served(folder / "index", folder / "server.log", no_cache, sample=True) as server:
        time.sleep(3)
        print(f"ready in {server.cold_start_s:.1f} s")
        print("| upload | body MB | RSS before MB | growth MB (anon / file) | x body |")
        print("|---|---|---|---|---|")
        for name, body in uploads:
            before = {k: process_memory_mib(server.pid)[k] for k in MEMORY}
            peak = dict(before)

            def send(data: bytes = body) -> None:
                # The client gives up after 40 s; the server finishes the batch in progress.
                with contextlib.suppress(httpx.HTTPError):
                    httpx.post(f"{server.url}/v1/documents", content=data, timeout=40,
                               headers={"content-type": "application/x-ndjson"})

            threading.Thread(target=send, daemon=True).start()
            end = time.monotonic() + args.window
            while time.monotonic() < end:
                now = process_memory_mib(server.pid)
                peak = {k: max(v, now[k]) for k, v in peak.items()}
                time.sleep(0.5)
            growth = {k: peak[k] - before[k] for k in MEMORY}
            total = sum(growth.values())
            mb = len(body) / 1e6
            print(f"| {name} | {mb:.1f} | {sum(before.values()):,.0f} | +{total:.0f} "
                  f"(+{growth['anon_mib']:.0f} / +{growth['file_mib']:.0f}) | {total / mb:.1f} |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
