"""What the performance benchmarks share: the news articles in pool order, questions, pools,
percentiles, the machine's description and the printed tables.

Articles are taken in one fixed order everywhere: first the retrieval benchmark's random
sample (``qa_service.bench.retrieval``: its passage vectors are often cached already), then
every other article in file order. The ingestion benchmark, the serving pools and the full
collection therefore share their passage vectors through the embedding cache.
"""

from __future__ import annotations

import gzip
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from qa_service.bench.retrieval import (
    DEFAULT_NEWS,
    NEWS_FILE,
    SAMPLE_SEED,
    SHARED_DATA,
    load_questions,
)

__all__ = ["SHARED_DATA", "TimedEncoder", "ensure_pool", "news_articles", "questions"]
from qa_service.embedding.base import Encoder, Vectors
from qa_service.ingest.documents import document_from_mapping
from qa_service.models import Document
from qa_service.settings import Settings

DEFAULT_OUT: Final = Path("artifacts/bench")
POOL_BATCH_DOCUMENTS: Final = 64  # one generation per batch: an interrupted pool build resumes
PERCENTILES: Final = (50, 95, 99)

Log = Callable[[str], None]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- data ----------------------------------------------------------------------------------


def news_path(data: Path) -> Path:
    path = data / NEWS_FILE
    if not path.is_file():
        raise SystemExit(f"error: {path} not found; pass --data with the folder holding {NEWS_FILE}")
    return path


def news_articles(data: Path, limit: int | None = None) -> Iterator[Document]:
    """Articles in pool order (the retrieval benchmark's sample first, then file order)."""
    path = news_path(data)
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        total = sum(1 for _ in fh)
    sample = set(random.Random(SAMPLE_SEED).sample(range(total), min(DEFAULT_NEWS, total)))
    count = 0
    for first_pass in (True, False):
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            for lineno, line in enumerate(fh):
                if (lineno in sample) != first_pass:
                    continue
                if limit is not None and count >= limit:
                    return
                yield document_from_mapping(json.loads(line), extra_to_metadata=True)
                count += 1


def questions(data: Path, n: int, seed: int = SAMPLE_SEED) -> list[str]:
    """``n`` distinct real questions (XQuAD Arabic and English, ARCD), shuffled reproducibly."""
    try:
        texts = list(dict.fromkeys(q.text for q in load_questions(data) if q.text.strip()))
    except FileNotFoundError as exc:
        raise SystemExit(f"error: {exc.filename} not found; pass --data with xquad/ and arcd/") from exc
    random.Random(seed).shuffle(texts)
    if n > len(texts):
        raise SystemExit(f"error: {n} questions asked for; the datasets hold {len(texts)} distinct ones")
    return texts[:n]


# -- pools ---------------------------------------------------------------------------------


def pool_folder(out: Path, chunks: int) -> Path:
    return out / f"news-{chunks}"


def ensure_pool(out: Path, chunks: int, data: Path, settings: Settings, say: Log = log) -> Path:
    """An index folder of real news chunks (at least ``chunks``), built once and reused.

    Built with the configured encoder and the passage cache, so vectors embedded by an
    earlier run (the ingestion benchmark, another pool) are not embedded again.
    """
    from qa_service.embedding import load_encoder
    from qa_service.service import QAService

    folder = pool_folder(out, chunks)
    marker = folder / "pool.json"
    if marker.is_file() and json.loads(marker.read_text()).get("chunks", 0) >= chunks:
        return folder
    service = QAService(settings.replace(index_dir=folder / "index"), load_encoder(settings))
    try:
        started = time.perf_counter()
        articles = news_articles(data)
        while service.store.counts()[1] < chunks:
            batch = [doc for _, doc in zip(range(POOL_BATCH_DOCUMENTS), articles, strict=False)]
            if not batch:
                say(f"pool {folder.name}: the news file ran out at {service.store.counts()[1]} chunks")
                break
            service.ingest(batch)
            documents, have = service.store.counts()
            say(f"pool {folder.name}: {documents} articles, {have}/{chunks} chunks, "
                f"{time.perf_counter() - started:.0f}s")
        documents, have = service.store.counts()
    finally:
        service.close()
    marker.write_text(json.dumps({"chunks": have, "documents": documents, "news_file": NEWS_FILE}))
    return folder


# -- measuring -----------------------------------------------------------------------------


def percentiles(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99 in milliseconds (and the count)."""
    if not seconds:
        return {"n": 0}
    values = np.asarray(seconds, dtype=np.float64) * 1000
    out: dict[str, float] = {f"p{p}_ms": round(float(np.percentile(values, p)), 2) for p in PERCENTILES}
    out["mean_ms"] = round(float(values.mean()), 2)
    out["n"] = len(values)
    return out


def ratio(ours: float | None, baseline: float | None) -> float | None:
    if not ours or not baseline:
        return None
    return round(ours / baseline, 2)


def cosines(vectors: Vectors, reference: Vectors) -> dict[str, float]:
    """Row-wise cosine of ``vectors`` against ``reference`` (both L2-normalised)."""
    rows = np.sum(vectors * reference, axis=1)
    return {"min": round(float(rows.min()), 6), "mean": round(float(rows.mean()), 6)}


def machine() -> dict[str, Any]:
    """Where and when: the figures mean little without the load the machine was under."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": len(os.sched_getaffinity(0)), "load_avg": list(os.getloadavg()),
            "python": platform.python_version(), "libraries": _versions(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("torch", "sentence-transformers", "transformers", "openvino", "faiss-cpu", "numpy"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "absent"
    return out


MEMORY_FIELDS: Final = {"VmRSS": "rss_mib", "VmHWM": "peak_rss_mib", "RssAnon": "anon_mib",
                         "RssFile": "file_mib"}


def process_memory_mib(pid: int | str = "self") -> dict[str, float]:
    """Resident memory now and at its peak, MiB; ``file_mib`` is memory-mapped files (model
    weights paged in as new tokens are seen), which the kernel can drop and re-read."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in MEMORY_FIELDS:
            out[MEMORY_FIELDS[key]] = round(int(value.split()[0]) / 1024, 1)
    return out


def folder_mib(path: Path) -> float:
    return round(sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20, 1)


@dataclass
class TimedEncoder:
    """Wraps an encoder and adds up the time spent in it (the rest of ingestion is overhead)."""

    inner: Encoder
    encode_s: float = 0.0
    tokens_s: float = 0.0

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    @property
    def dim(self) -> int:
        return self.inner.dim

    def encode_queries(self, texts: Sequence[str]) -> Vectors:
        return self.inner.encode_queries(texts)

    def encode_passages(self, texts: Sequence[str]) -> Vectors:
        started = time.perf_counter()
        try:
            return self.inner.encode_passages(texts)
        finally:
            self.encode_s += time.perf_counter() - started

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        started = time.perf_counter()
        try:
            return self.inner.count_tokens(texts)
        finally:
            self.tokens_s += time.perf_counter() - started


# -- printing ------------------------------------------------------------------------------


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    """A plain aligned text table."""
    cells = [[_cell(v) for v in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else 0.0


def write_json(path: Path | None, payload: dict[str, Any]) -> None:
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False))
    log(f"wrote {path}")
