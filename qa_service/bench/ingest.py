"""Ingestion benchmark: news articles into a fresh index folder, end to end, chunks per second.

Ours: ``QAService.ingest`` with the configured encoder, every passage embedded (the embedding
cache is written, never read, so the figure is the model's and the next run can reuse the
vectors). Baseline: the same pipeline with plain ``SentenceTransformer.encode`` in fp32, on
the first ``--baseline-articles`` of the same articles. Timing covers chunking, embedding, the
SQLite/FTS5 writes and publishing the index generation; the articles are read beforehand.
Also reported: the share of time spent in the encoder, the folder's size on disk, and the
process's peak memory.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any, Final

from qa_service.bench import common
from qa_service.embedding.base import Encoder
from qa_service.embedding.sentence_transformer import SentenceTransformerEncoder
from qa_service.settings import Settings

DEFAULT_ARTICLES: Final = 1000
DEFAULT_BASELINE_ARTICLES: Final = 50
PROGRESS_EVERY: Final = 500  # articles


def run(settings: Settings, data: Path, out: Path, articles: int = DEFAULT_ARTICLES,
        baseline_articles: int = DEFAULT_BASELINE_ARTICLES) -> dict[str, Any]:
    from qa_service.embedding.cache import CachedEncoder
    from qa_service.embedding.provision import load_model_encoder, passage_variant, resolve_model_path

    common.log(f"ingest: reading {articles} articles")
    documents = list(common.news_articles(data, articles))
    started = time.perf_counter()
    model = load_model_encoder(settings)
    load_s = time.perf_counter() - started
    cache = settings.model_cache / "embedding-cache.sqlite3" if settings.embedding_cache else None
    ours = CachedEncoder(model, cache, variant=passage_variant(model), read_passages=False)
    result: dict[str, Any] = {"backend": type(model).__name__, "passage_variant": model.passage_variant,
                              "model_load_s": round(load_s, 2),
                              "ours": _ingest(settings, out / f"ingest-{len(documents)}", ours, documents),
                              "memory": common.process_memory_mib()}  # ours only: before the baseline
    if baseline_articles > 0:
        name, model_id = resolve_model_path(settings)
        # The baseline: plain ``SentenceTransformer.encode`` in fp32 with its default batch size.
        plain = SentenceTransformerEncoder(name, model_id=model_id, passage_precision="float32")
        result["baseline"] = _ingest(settings, out / "ingest-baseline", plain,
                                     documents[:baseline_articles])
        result["ratio"] = common.ratio(result["ours"]["chunks_per_s"], result["baseline"]["chunks_per_s"])
    return result


def _ingest(settings: Settings, folder: Path, encoder: Encoder, documents: list[Any]) -> dict[str, Any]:
    from qa_service.service import QAService

    shutil.rmtree(folder, ignore_errors=True)
    timed = common.TimedEncoder(encoder)
    service = QAService(settings.replace(index_dir=folder / "index", embedding_cache=False), timed)
    done = 0
    started = time.perf_counter()

    def progress(n: int) -> None:
        nonlocal done
        before, done = done, done + n
        if done // PROGRESS_EVERY != before // PROGRESS_EVERY:
            common.log(f"ingest {folder.name}: {done}/{len(documents)} articles, "
                       f"{time.perf_counter() - started:.0f}s")

    try:
        report = service.ingest(documents, progress=progress)
        generation = service.index.manifest
    finally:
        service.close()
    seconds = time.perf_counter() - started
    return {
        "articles": len(documents), "chunks": report.chunks, "seconds": round(seconds, 2),
        "chunks_per_s": round(report.chunks / seconds, 2) if seconds else None,
        "encode_s": round(timed.encode_s, 2), "count_tokens_s": round(timed.tokens_s, 2),
        "encoder_share": round(timed.encode_s / seconds, 3) if seconds else None,
        "index_type": generation.index_type, "disk_mib": common.folder_mib(folder),
        "folder": str(folder),
    }


def summary(result: dict[str, Any]) -> str:
    rows = []
    for key in ("baseline", "ours"):
        if key in result:
            r = result[key]
            rows.append((key, r["articles"], r["chunks"], r["seconds"], r["chunks_per_s"],
                         r["encoder_share"], r["disk_mib"]))
    text = [f"Ingestion ({result['backend']}, embedding cache not read)",
            common.table(rows, ["ingest", "articles", "chunks", "s", "chunks/s", "in encoder", "disk MiB"])]
    if result.get("ratio"):
        text.append(f"x{result['ratio']} the baseline's chunks/s; peak memory "
                    f"{result['memory'].get('peak_rss_mib')} MiB")
    return "\n".join(text)
