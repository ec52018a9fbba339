"""Serving benchmark: ``/v1/ask`` over real HTTP on loopback, at several collection sizes.

For each size a pool of real news chunks (``artifacts/bench/news-<size>``, built once, see
``common.ensure_pool``) is served by a fresh ``qa-service serve`` process, and measured:

- cold start: process start until ``/readyz`` answers 200 (files already in the OS cache);
- memory: resident and peak resident memory of the server after the runs;
- one client: latency p50/p95/p99 of extractive answers, one question after another, with the
  server's own breakdown (embed, retrieve, compose);
- 8 concurrent clients: answers per second, and their latency.

Every question is distinct (real XQuAD/ARCD questions), so the query cache never answers.
The baseline is the same server with the PyTorch encoder (``QA_ENCODER_BACKEND=torch``), or with
the environment ``baseline_env`` names (``--baseline-env``, e.g. another reader precision), on the
same pool; the index kind is whatever the pool's size gives (``bench ann`` compares kinds).
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final

import httpx

from qa_service.bench import common
from qa_service.bench.server import served
from qa_service.settings import Settings

DEFAULT_SIZES: Final = (10_000, 100_000)
DEFAULT_SEQUENTIAL: Final = 200
DEFAULT_CLIENTS: Final = 8
DEFAULT_CONCURRENT: Final = 400
WARM_UP_QUESTIONS: Final = 5
REQUEST_TIMEOUT_S: Final = 60.0
BASELINE_ENV: Final = {"QA_ENCODER_BACKEND": "torch"}
# Benchmarks measure the service, not the per-client rate limiter.
SERVER_ENV: Final = {"QA_RATE_LIMIT_PER_S": "0", "HF_HUB_OFFLINE": "1"}


def run(settings: Settings, data: Path, out: Path, sizes: Sequence[str] = tuple(map(str, DEFAULT_SIZES)),
        sequential: int = DEFAULT_SEQUENTIAL, clients: int = DEFAULT_CLIENTS,
        concurrent: int = DEFAULT_CONCURRENT, baseline: bool = True,
        server_env: Mapping[str, str] | None = None,
        baseline_env: Mapping[str, str] | None = None) -> dict[str, Any]:
    asked = common.questions(data, WARM_UP_QUESTIONS + sequential + concurrent)
    warm, one, many = (asked[:WARM_UP_QUESTIONS], asked[WARM_UP_QUESTIONS:WARM_UP_QUESTIONS + sequential],
                       asked[WARM_UP_QUESTIONS + sequential:])
    variants = {"ours": dict(server_env or {})}
    if baseline:
        variants["baseline"] = {**(server_env or {}), **(baseline_env or BASELINE_ENV)}
    results: dict[str, Any] = {}
    for size in sizes:
        folder = _folder(size, out, data, settings)
        row: dict[str, Any] = {"folder": str(folder)}
        for name, env in variants.items():
            common.log(f"serve {folder.name} ({name}): starting")
            row[name] = measure(folder / "index", warm, one, many, clients, env)
        if "baseline" in row:
            ours, base = row["ours"], row["baseline"]
            row["ratios"] = {
                "p50": common.ratio(base["one_client"].get("p50_ms"), ours["one_client"].get("p50_ms")),
                "answers_per_s": common.ratio(ours["concurrent"].get("answers_per_s"),
                                              base["concurrent"].get("answers_per_s")),
                "cold_start": common.ratio(base["cold_start_s"], ours["cold_start_s"]),
                "rss": common.ratio(base["memory"].get("rss_mib"), ours["memory"].get("rss_mib")),
            }
        results[folder.name] = row
    return {"sizes": results, "clients": clients}


def _folder(size: str, out: Path, data: Path, settings: Settings) -> Path:
    """A pool of ``size`` chunks, or an existing index folder's parent (e.g. an ingest run)."""
    if size.isdigit():
        return common.ensure_pool(out, int(size), data, settings)
    folder = Path(size)
    if not (folder / "index").is_dir():
        raise SystemExit(f"error: --sizes entry {size!r} is neither a chunk count nor a folder "
                         "holding index/ (e.g. artifacts/bench/ingest-31508)")
    return folder


def measure(index_dir: Path, warm: Sequence[str], one: Sequence[str], many: Sequence[str],
            clients: int, env: Mapping[str, str]) -> dict[str, Any]:
    """Start a server on ``index_dir``, measure it, stop it."""
    log_path = index_dir.parent / f"server-{os.getpid()}.log"
    with served(index_dir, log_path, {**SERVER_ENV, **env}) as server:
        memory_ready = common.process_memory_mib(server.pid)
        with httpx.Client(base_url=server.url, timeout=REQUEST_TIMEOUT_S) as client:
            ready = client.get("/readyz").json()
            for question in warm:
                _ask(client, question)
            single = _one_client(client, one)
        concurrent = _concurrent(server.url, many, clients)
        memory = common.process_memory_mib(server.pid)
    log_path.unlink(missing_ok=True)
    return {"chunks": ready.get("chunks"), "documents": ready.get("documents"),
            "cold_start_s": round(server.cold_start_s, 2), "memory_at_ready": memory_ready, "memory": memory,
            "one_client": single, "concurrent": concurrent, "env": dict(env)}


def _ask(client: httpx.Client, question: str) -> tuple[float, int, dict[str, float]]:
    started = time.perf_counter()
    response = client.post("/v1/ask", json={"question": question, "mode": "extractive"})
    elapsed = time.perf_counter() - started
    timings = response.json().get("timings_ms", {}) if response.status_code == 200 else {}
    return elapsed, response.status_code, timings


def _one_client(client: httpx.Client, questions: Sequence[str]) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    parts: dict[str, list[float]] = {}
    for question in questions:
        elapsed, status, timings = _ask(client, question)
        statuses[status] += 1
        if status == 200:
            latencies.append(elapsed)
            for key, value in timings.items():
                parts.setdefault(key, []).append(value / 1000)
    out: dict[str, Any] = common.percentiles(latencies)
    out["server_p50_ms"] = {key: round(common.median(v) * 1000, 2) for key, v in parts.items()}
    out["statuses"] = {str(k): v for k, v in sorted(statuses.items())}
    return out


def _concurrent(url: str, questions: Sequence[str], clients: int) -> dict[str, Any]:
    """``clients`` threads, each with its own connection, share the questions."""
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    shares = [questions[i::clients] for i in range(clients)]

    def client_run(share: Sequence[str]) -> None:
        with httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT_S) as client:
            for question in share:
                elapsed, status, _ = _ask(client, question)
                with lock:
                    statuses[status] += 1
                    if status == 200:
                        latencies.append(elapsed)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(client_run, shares))
    wall = time.perf_counter() - started
    out: dict[str, Any] = common.percentiles(latencies)
    out["answers_per_s"] = round(len(latencies) / wall, 2) if wall else None
    out["seconds"] = round(wall, 2)
    out["statuses"] = {str(k): v for k, v in sorted(statuses.items())}
    return out


def summary(result: dict[str, Any]) -> str:
    rows = []
    for name, row in result["sizes"].items():
        for variant in ("baseline", "ours"):
            if variant in row:
                r = row[variant]
                rows.append((name, variant, r["chunks"], r["one_client"].get("p50_ms"),
                             r["one_client"].get("p95_ms"), r["one_client"].get("p99_ms"),
                             r["concurrent"].get("answers_per_s"), r["cold_start_s"],
                             r["memory"].get("rss_mib"), r["memory"].get("anon_mib")))
    text = [f"/v1/ask over HTTP (extractive; {result['clients']} concurrent clients for answers/s)",
            common.table(rows, ["pool", "server", "chunks", "p50 ms", "p95 ms", "p99 ms", "answers/s",
                                "cold start s", "RSS MiB", "anon MiB"])]
    for name, row in result["sizes"].items():
        if "ratios" in row:
            r = row["ratios"]
            text.append(f"{name}: p50 x{r['p50']} faster, answers/s x{r['answers_per_s']}, "
                        f"cold start x{r['cold_start']} faster, RSS x{r['rss']} smaller than the baseline")
        for variant in ("baseline", "ours"):
            parts = row.get(variant, {}).get("one_client", {}).get("server_p50_ms")
            if parts:
                text.append(f"{name} {variant} server-side p50 ms: "
                            + ", ".join(f"{k} {v}" for k, v in parts.items()))
    return "\n".join(text)
