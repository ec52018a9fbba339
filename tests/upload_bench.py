"""Memory of uploads at the body limit: a script with printed figures (issue 15).

    python -m tests.upload_bench           # three uploads, 90 s each
    python -m tests.upload_bench --window 150

Starts ``qa-service serve --sample`` on loopback over a fresh index (embedding cache off, so the
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
import os
import subprocess
import sys
import tempfile
import threading
import time

import httpx

from tests.conftest import SHARED_DATA

PORT = 8765
DOCUMENTS = 57
CHARS = 199_000


def bodies() -> list[tuple[str, bytes]]:
    texts: list[str] = []
    with gzip.open(SHARED_DATA / "ant-news-ar.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            texts.append(json.loads(line)["text"])
    joined = "\n\n".join(texts)
    def text(n: int) -> str:
        return joined[n * CHARS:(n + 1) * CHARS]

    a = [{"id": f"a-{i}", "title": "upload", "text": text(i)} for i in range(DOCUMENTS)]
    b = [{"id": f"b-{i}", "title": "upload", "text": text(DOCUMENTS + i)} for i in range(DOCUMENTS)]
    c = [{**doc, "id": doc["id"].replace("a-", "c-")} for doc in a]
    return [(name, "\n".join(json.dumps(d, ensure_ascii=False) for d in docs).encode())
            for name, docs in (("A: first", a), ("B: other text", b), ("C: A's text, new ids", c))]


def rss(pid: int) -> dict[str, float]:
    with open(f"/proc/{pid}/status") as f:
        return {line.split(":")[0]: int(line.split()[1]) / 1024 for line in f
                if line.startswith(("RssAnon", "RssFile"))}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=float, default=90.0, help="seconds sampled per upload")
    args = parser.parse_args(argv)
    if not (SHARED_DATA / "ant-news-ar.jsonl.gz").exists():
        sys.exit(f"needs {SHARED_DATA}/ant-news-ar.jsonl.gz")
    uploads = bodies()
    env = {**os.environ, "QA_EMBEDDING_CACHE": "false"}
    index = tempfile.mkdtemp(prefix="upload-bench-")
    command = [sys.executable, "-m", "qa_service.cli", "serve", "--sample",
               "--port", str(PORT), "--index-dir", index]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        started = time.perf_counter()
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{PORT}/readyz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None:
                sys.exit("the server exited before it was ready")
            time.sleep(0.2)
        time.sleep(3)
        print(f"ready in {time.perf_counter() - started:.1f} s")
        print("| upload | body MB | RSS before MB | growth MB (anon / file) | x body |")
        print("|---|---|---|---|---|")
        for name, body in uploads:
            before = rss(server.pid)
            peak = dict(before)

            def send(data: bytes = body) -> None:
                # The client gives up after 40 s; the server finishes the batch in progress.
                with contextlib.suppress(httpx.HTTPError):
                    httpx.post(f"http://127.0.0.1:{PORT}/v1/documents", content=data, timeout=40,
                               headers={"content-type": "application/x-ndjson"})

            threading.Thread(target=send, daemon=True).start()
            end = time.monotonic() + args.window
            while time.monotonic() < end:
                peak = {k: max(v, rss(server.pid)[k]) for k, v in peak.items()}
                time.sleep(0.5)
            growth = {k: peak[k] - before[k] for k in before}
            total = sum(growth.values())
            mb = len(body) / 1e6
            print(f"| {name} | {mb:.1f} | {sum(before.values()):,.0f} | +{total:.0f} "
                  f"(+{growth['RssAnon']:.0f} / +{growth['RssFile']:.0f}) | {total / mb:.1f} |", flush=True)
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main(sys.argv[1:])
