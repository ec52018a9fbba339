"""Retrieval benchmark: dense-only, lexical-only and hybrid on one pool, in the same run.

The pool is the XQuAD Arabic paragraphs and the ARCD paragraphs mixed into a fixed
random sample of ``ant-news-ar`` articles (``--news N``; line numbers drawn with
``SAMPLE_SEED``). Questions: XQuAD in Arabic, the same XQuAD questions in English
(paired by id, gold = the Arabic paragraph), and ARCD. A question is answered at rank r
when the r-th distinct document retrieved is its paragraph: R@1/5/20 and MRR@10.

The pool is built once into ``artifacts/bench/retrieval-pool-N`` (an ordinary index
folder, ingested through ``QAService``) and reused; query vectors are cached beside it.
A second part measures what retrieval costs per question at ~100k chunks: every article
of the news file chunked into a lexical index with random vectors (``--latency``).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import itertools
import json
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Final

import numpy as np

from qa_service.embedding.base import Encoder, Vectors
from qa_service.ingest.documents import document_from_mapping
from qa_service.models import Document
from qa_service.retrieval.retriever import RetrievalConfig, Retriever
from qa_service.settings import Settings

SHARED_DATA: Final = Path(__file__).resolve().parents[2].parent / "shared" / "data"
NEWS_FILE: Final = "ant-news-ar.jsonl.gz"
XQUAD_AR: Final = "xquad/xquad.ar.json"
XQUAD_EN: Final = "xquad/xquad.en.json"
ARCD: Final = "arcd/arcd.json"
SAMPLE_SEED: Final = 20180218  # fixed: the same sample of news articles on every machine
DEFAULT_NEWS: Final = 5000
POOL_BATCH_DOCUMENTS: Final = 250  # one generation per batch, so an interrupted build resumes
DEFAULT_OUT: Final = Path("artifacts/bench")
CUTOFFS: Final = (1, 5, 20)
MRR_CUTOFF: Final = 10
# Passages fetched per question; distinct documents among them are ranked.
FETCH_PASSAGES: Final = 50
LATENCY_CHUNKS: Final = 100_000
LATENCY_QUESTIONS: Final = 200
QUERY_VECTORS: Final = "retrieval-queries.npz"


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    gold: str  # document id of the paragraph that answers it
    set: str  # "xquad ar→ar", "xquad en→ar", "arcd ar→ar"


# -- data ----------------------------------------------------------------------------------


def _paragraph_id(prefix: str, context: str) -> str:
    return f"{prefix}:{hashlib.sha256(context.encode()).hexdigest()[:16]}"


def load_squad(path: Path, prefix: str, source: str) -> tuple[list[Document], dict[str, tuple[str, str]]]:
    """Paragraph documents (deduplicated by text) and question id → (question, document id)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    docs: dict[str, Document] = {}
    questions: dict[str, tuple[str, str]] = {}
    for article in data["data"]:
        for para in article["paragraphs"]:
            context = para["context"].lstrip("\ufeff")
            doc_id = _paragraph_id(prefix, context)
            # No title: XQuAD's are English slugs and would leak English words into the pool.
            docs.setdefault(doc_id, Document(id=doc_id, text=context, source=source, lang="ar"))
            for qa in para["qas"]:
                questions[qa["id"]] = (qa["question"].strip(" -\u200f"), doc_id)
    return list(docs.values()), questions


def wiki_documents(data: Path) -> list[Document]:
    xquad, _ = load_squad(data / XQUAD_AR, "xquad-ar", "xquad")
    arcd, _ = load_squad(data / ARCD, "arcd", "arcd")
    return xquad + arcd


def load_questions(data: Path) -> list[Question]:
    """XQuAD Arabic, XQuAD English (paired by id, gold = the Arabic paragraph), ARCD."""
    _, ar = load_squad(data / XQUAD_AR, "xquad-ar", "xquad")
    _, en = load_squad(data / XQUAD_EN, "xquad-en", "xquad")
    _, arcd = load_squad(data / ARCD, "arcd", "arcd")
    out = [Question(qid, text, gold, "xquad ar→ar") for qid, (text, gold) in ar.items()]
    out += [Question(qid, en[qid][0], gold, "xquad en→ar") for qid, (_, gold) in ar.items() if qid in en]
    out += [Question(qid, text, gold, "arcd ar→ar") for qid, (text, gold) in arcd.items()]
    return out


def sample_news(path: Path, n: int, seed: int = SAMPLE_SEED) -> list[Document]:
    """A fixed random sample of ``n`` articles (line numbers drawn with ``seed``).

    In drawing order, not file order (the file is grouped by outlet), so that every
    prefix of the sample — a pool whose build was interrupted — is a random sample too.
    """
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        total = sum(1 for _ in fh)
    order = random.Random(seed).sample(range(total), min(n, total))
    chosen = set(order)
    picked = {lineno: raw for lineno, raw in enumerate(_news_records(path)) if lineno in chosen}
    return [document_from_mapping(picked[lineno], extra_to_metadata=True) for lineno in order]


def _news_records(path: Path) -> Iterator[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            yield json.loads(line)


# -- pool ----------------------------------------------------------------------------------


def pool_settings(folder: Path) -> Settings:
    """The pool is always an embedded index folder (``--store-url`` measures a copy of it)."""
    return Settings.from_env().replace(index_dir=folder / "index", store_url=None, store_read_urls=())


def build_pool(folder: Path, news: int, encoder: Encoder, data: Path = SHARED_DATA,
               log: Callable[[str], None] = print) -> dict[str, Any]:
    """Ingest the pool into ``folder`` (resumable: unchanged documents are skipped)."""
    from qa_service.service import QAService

    manifest_path = folder / "pool.json"
    if manifest_path.exists():
        manifest: dict[str, Any] = json.loads(manifest_path.read_text())
        return manifest
    service = QAService(pool_settings(folder), encoder)
    try:
        started = time.perf_counter()
        batches = itertools.chain([wiki_documents(data)],
                                  _batched(sample_news(data / NEWS_FILE, news), POOL_BATCH_DOCUMENTS))
        done = 0
        for batch in batches:
            report = service.ingest(batch)
            done += len(batch)
            log(f"pool: {done} documents ({report.added} new, {report.chunks} chunks embedded, "
                f"{time.perf_counter() - started:.0f}s)")
        documents, chunks = service.store.counts()
    finally:
        service.close()
    manifest = {"news_articles": news, "news_file": NEWS_FILE, "sample_seed": SAMPLE_SEED,
                "documents": documents, "chunks": chunks, "model_id": encoder.model_id}
    manifest_path.write_text(json.dumps(manifest, indent=2))
    return manifest


def current_pool(folder: Path, news: int, encoder: Encoder) -> dict[str, Any]:
    """The manifest of a pool as it is now, built or not (to measure an interrupted build)."""
    from qa_service.store.sqlite_store import Store

    manifest_path = folder / "pool.json"
    if manifest_path.exists():
        manifest: dict[str, Any] = json.loads(manifest_path.read_text())
        return manifest
    if not (folder / "index" / "store.sqlite3").exists():
        raise SystemExit(f"error: no pool in {folder}; run without --no-build first")
    store = Store(folder / "index" / "store.sqlite3")
    try:
        documents, chunks = store.counts()
        wiki = store.reader().execute(
            "SELECT count(*) FROM documents WHERE source IN ('xquad', 'arcd')").fetchone()[0]
    finally:
        store.close()
    return {"news_articles": documents - int(wiki), "news_planned": news, "news_file": NEWS_FILE,
            "sample_seed": SAMPLE_SEED, "documents": documents, "chunks": chunks,
            "model_id": encoder.model_id, "complete": False}


def _batched(items: Iterable[Document], size: int) -> Iterator[list[Document]]:
    it = iter(items)
    while batch := list(itertools.islice(it, size)):
        yield batch


def query_vectors(path: Path, questions: Sequence[Question], encoder: Encoder) -> Vectors:
    """Embeddings of the questions, cached in ``path`` by text (shared by every pool)."""
    texts = [q.text for q in questions]
    cached: dict[str, Vectors] = {}
    if path.exists():
        with np.load(path, allow_pickle=False) as saved:
            if str(saved["model"]) == encoder.model_id:
                cached = dict(zip(saved["texts"].tolist(), saved["vectors"], strict=True))
    missing = sorted({t for t in texts if t not in cached})
    if missing:
        for text, vec in zip(missing, encoder.encode_queries(missing), strict=True):
            cached[text] = vec
        keys = sorted(cached)
        np.savez(path, model=np.array(encoder.model_id), texts=np.array(keys),
                 vectors=np.stack([cached[t] for t in keys]))
    return np.stack([cached[t] for t in texts]).astype(np.float32)


# -- metrics -------------------------------------------------------------------------------


def gold_rank(document_ids: Sequence[str], gold: str) -> int | None:
    """1-based rank of ``gold`` among the distinct documents, in retrieval order."""
    seen: list[str] = []
    for doc in document_ids:
        if doc not in seen:
            seen.append(doc)
            if doc == gold:
                return len(seen)
    return None


def summarise(ranks: Sequence[int | None]) -> dict[str, float]:
    """R@1/5/20 and MRR@10 over gold ranks (None: not retrieved)."""
    n = max(1, len(ranks))
    out = {f"R@{c}": sum(1 for r in ranks if r is not None and r <= c) / n for c in CUTOFFS}
    out[f"MRR@{MRR_CUTOFF}"] = sum(1.0 / r for r in ranks if r is not None and r <= MRR_CUTOFF) / n
    return {k: round(v, 3) for k, v in out.items()}


# -- methods -------------------------------------------------------------------------------

HYBRID = RetrievalConfig()
METHODS: Final[dict[str, RetrievalConfig]] = {
    "dense": replace(HYBRID, method="dense"),
    "lexical (BM25)": replace(HYBRID, method="lexical"),
    "naive RRF": replace(HYBRID, method="naive"),
    "hybrid": HYBRID,
}
ABLATIONS: Final[dict[str, RetrievalConfig]] = {
    "lexical, unstemmed": replace(HYBRID, method="lexical", column="terms"),
    "hybrid, unstemmed": replace(HYBRID, column="terms"),
    "hybrid, no number/name boost": replace(HYBRID, number_boost=0.0, name_boost=0.0),
    "hybrid, no name boost": replace(HYBRID, name_boost=0.0),
    "hybrid, boosts 0.01": replace(HYBRID, number_boost=0.01, name_boost=0.01),
    "hybrid, boosts 0.04": replace(HYBRID, number_boost=0.04, name_boost=0.04),
    "hybrid + PRF (cross-language)": replace(HYBRID, prf_weight=0.5),
    "hybrid + PRF (all languages)": replace(HYBRID, prf_weight=0.5, prf_same_language=True),
    "hybrid, lexical weight 0.5": replace(HYBRID, lexical_weight=0.5),
    "hybrid, no noise demotion": replace(HYBRID, noise_penalty=0.0),
    "hybrid, no sentence ranking": replace(HYBRID, sentence_weight=0.0),
}


def evaluate(retriever: Retriever, questions: Sequence[Question], vectors: Vectors,
             methods: dict[str, RetrievalConfig]) -> dict[str, dict[str, dict[str, float]]]:
    """Metrics per method and question set, plus retrieval time per question."""
    results: dict[str, dict[str, dict[str, float]]] = {}
    sets = sorted({q.set for q in questions}, key=lambda s: [q.set for q in questions].index(s))
    for name, cfg in methods.items():
        ranks: dict[str, list[int | None]] = {s: [] for s in sets}
        times: list[float] = []
        for q, vec in zip(questions, vectors, strict=True):
            t0 = time.perf_counter()
            passages = retriever.retrieve(q.text, vec[None, :], FETCH_PASSAGES, config=cfg)
            times.append(time.perf_counter() - t0)
            ranks[q.set].append(gold_rank([p.document_id for p in passages], q.gold))
        results[name] = {s: {**summarise(r), "questions": len(r)} for s, r in ranks.items()}
        results[name]["_time"] = {"p50_ms": round(statistics.median(times) * 1000, 2)}
    return results


# -- latency at scale ----------------------------------------------------------------------


def build_latency_store(folder: Path, data: Path, dim: int,
                        count_tokens: Callable[[Sequence[str]], list[int]],
                        target_chunks: int = LATENCY_CHUNKS,
                        log: Callable[[str], None] = print) -> None:
    """A store of ~``target_chunks`` real news chunks with random unit vectors (lexical cost)."""
    from qa_service.ingest.chunker import ChunkerConfig, chunk_spans
    from qa_service.models import Chunk
    from qa_service.store.sqlite_store import PreparedDocument, Store, chunk_id, content_hash

    marker = folder / "done.json"
    if marker.exists():
        return
    store = Store(folder / "store.sqlite3")
    rng = np.random.default_rng(SAMPLE_SEED)
    config = ChunkerConfig()
    total = 0
    records = (document_from_mapping(r, extra_to_metadata=True) for r in _news_records(data / NEWS_FILE))
    for batch in _batched(records, 500):
        known = store.content_hashes([d.id for d in batch])
        prepared = []
        for doc in batch:
            digest = content_hash(doc)
            spans = chunk_spans(doc.text, count_tokens, config)
            total += len(spans)
            if known.get(doc.id) == digest:
                continue
            chunks = [Chunk(id=chunk_id(digest, s, e), document_id=doc.id, ord=i, start=s, end=e)
                      for i, (s, e) in enumerate(spans)]
            vecs = rng.standard_normal((len(chunks), dim)).astype(np.float32)
            vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
            prepared.append(PreparedDocument(doc, digest, chunks, vecs))
        store.write(prepared)
        log(f"latency store: {total} chunks")
        if total >= target_chunks:
            break
    store.close()
    marker.write_text(json.dumps({"chunks": total}))


def measure_latency(folder: Path, questions: Sequence[Question], vectors: Vectors,
                    dim: int) -> dict[str, Any]:
    """p50/p95 retrieval time per question, dense-only vs hybrid, on the large store."""
    from qa_service.retrieval.backend import EmbeddedSearch
    from qa_service.store.sqlite_store import Store
    from qa_service.store.vector_index import Manifest, VectorIndex, index_from_vectors

    store = Store(folder / "store.sqlite3")
    _, ids, mat = store.all_vectors(dim)
    vindex = VectorIndex(index_from_vectors(dim, ids, mat),
                         Manifest(name="latency", store_generation=0, model_id="random", dim=dim,
                                  count=len(ids), sha256=""))
    retriever = Retriever(EmbeddedSearch(store, lambda: vindex))
    out: dict[str, Any] = {"chunks": len(ids)}
    picked = list(range(0, len(questions), max(1, len(questions) // LATENCY_QUESTIONS)))
    for name in ("dense", "hybrid"):
        cfg = METHODS[name]
        times = []
        for i in picked:
            t0 = time.perf_counter()
            retriever.retrieve(questions[i].text, vectors[i][None, :], 10, config=cfg)
            times.append((time.perf_counter() - t0) * 1000)
        times.sort()
        out[name] = {"p50_ms": round(statistics.median(times), 2),
                     "p95_ms": round(times[int(len(times) * 0.95) - 1], 2)}
    out["added_p50_ms"] = round(out["hybrid"]["p50_ms"] - out["dense"]["p50_ms"], 2)
    store.close()
    return out


# -- report --------------------------------------------------------------------------------


def table(results: dict[str, dict[str, dict[str, float]]]) -> str:
    lines = ["| method | questions | R@1 | R@5 | R@20 | MRR@10 |", "|---|---|---|---|---|---|"]
    for name, per_set in results.items():
        for qset, m in per_set.items():
            if qset.startswith("_"):
                continue
            lines.append(f"| {name} | {qset} ({int(m['questions'])}) | {m['R@1']:.3f} | {m['R@5']:.3f} "
                         f"| {m['R@20']:.3f} | {m['MRR@10']:.3f} |")
    return "\n".join(lines)


def measure_postgres(settings: Settings, url: str, encoder: Encoder,
                     questions: Sequence[Question], vectors: Vectors,
                     methods: dict[str, RetrievalConfig]) -> dict[str, Any]:
    """The pool copied into PostgreSQL (no re-embedding; resumable), measured the same way."""
    from qa_service.service import QAService
    from qa_service.store.copy import copy_collection
    from qa_service.store.pg_store import PgStore
    from qa_service.store.sqlite_store import Store

    source, target = Store(settings.store_path), PgStore(url)
    try:
        copied = copy_collection(source, target)
    finally:
        source.close()
        target.close()
    service = QAService(settings.replace(store_url=url), encoder)
    try:
        return {"_copy": f"{copied.copied} documents copied, {copied.unchanged} already there",
                "results": evaluate(service.retriever, questions, vectors, methods)}
    finally:
        service.close()


def parity_table(embedded: dict[str, dict[str, dict[str, float]]],
                 postgres: dict[str, dict[str, dict[str, float]]]) -> str:
    """PostgreSQL minus embedded, per method and question set (issue 16: within 0.01)."""
    lines = ["| method | questions | ΔR@5 | ΔMRR@10 | p50 ms (embedded / postgres) |",
             "|---|---|---|---|---|"]
    for name, per_set in embedded.items():
        for qset, m in per_set.items():
            if qset.startswith("_"):
                continue
            other = postgres[name][qset]
            lines.append(f"| {name} | {qset} | {other['R@5'] - m['R@5']:+.3f} | "
                         f"{other['MRR@10'] - m['MRR@10']:+.3f} | {per_set['_time']['p50_ms']} / "
                         f"{postgres[name]['_time']['p50_ms']} |")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    import faiss

    from qa_service.embedding import load_encoder
    from qa_service.service import QAService

    # One question is one single-vector search: FAISS's OpenMP threads only add waiting
    # (tens of ms on a busy 2-core machine, for a search that takes well under 1 ms).
    faiss.omp_set_num_threads(1)
    data = Path(args.data)
    if not (data / NEWS_FILE).exists():
        print(f"error: the benchmark needs {data / NEWS_FILE} (and xquad/, arcd/ beside it); "
              "pass --data DIR", file=sys.stderr)
        return 1
    out_dir = Path(args.out)
    folder = out_dir / f"retrieval-pool-{args.news}"
    settings = pool_settings(folder)
    encoder = load_encoder(settings)
    if args.no_build:
        pool = current_pool(folder, args.news, encoder)
    else:
        pool = build_pool(folder, args.news, encoder, data, log=lambda m: print(m, file=sys.stderr))
    if args.build_only:
        print(json.dumps(pool, indent=2))
        return 0
    questions = load_questions(data)
    if args.questions:
        questions = [q for q in questions if args.questions in q.set]
    if args.limit:
        questions = [q for s in dict.fromkeys(q.set for q in questions)
                     for q in [q for q in questions if q.set == s][:args.limit]]
    vectors = query_vectors(out_dir / QUERY_VECTORS, questions, encoder)
    methods = {**METHODS, **(ABLATIONS if args.ablations else {})}
    service = QAService(settings, encoder)
    try:
        results = evaluate(service.retriever, questions, vectors, methods)
    finally:
        service.close()
    report: dict[str, Any] = {"pool": pool, "configs": {k: asdict(v) for k, v in methods.items()},
                              "results": results}
    print(f"pool: {pool['documents']} documents ({pool['news_articles']} news articles sampled with "
          f"seed {pool['sample_seed']} + XQuAD-ar and ARCD paragraphs), {pool['chunks']} chunks\n")
    print(table(results))
    print("\nretrieval p50 per question on this pool (ms): "
          + ", ".join(f"{k} {v['_time']['p50_ms']}" for k, v in results.items()))
    if args.store_url:
        report["postgres"] = pg_results = measure_postgres(settings, args.store_url, encoder,
                                                           questions, vectors, methods)
        print(f"\nthe same pool in PostgreSQL ({pg_results['_copy']}):\n{table(pg_results['results'])}")
        print("\n" + parity_table(results, pg_results["results"]))
    if args.latency:
        big = out_dir / f"latency-{LATENCY_CHUNKS // 1000}k"
        build_latency_store(big, data, encoder.dim, encoder.count_tokens,
                            log=lambda m: print(m, file=sys.stderr))
        latency = measure_latency(big, questions, vectors, encoder.dim)
        report["latency"] = latency
        print(f"\nat {latency['chunks']} chunks: dense p50 {latency['dense']['p50_ms']} ms, "
              f"hybrid p50 {latency['hybrid']['p50_ms']} ms "
              f"(hybrid adds {latency['added_p50_ms']} ms p50)")
    json_path = out_dir / f"retrieval-{args.news}.json"
    json_path.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print(f"\nwrote {json_path}")
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--news", type=int, default=DEFAULT_NEWS,
                   help=f"news articles sampled into the pool (default {DEFAULT_NEWS})")
    p.add_argument("--data", default=str(SHARED_DATA), help="folder with ant-news-ar, xquad/, arcd/")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="pool folders and JSON results")
    p.add_argument("--ablations", action="store_true", help="also run the variants tried")
    p.add_argument("--latency", action="store_true",
                   help=f"also time retrieval on ~{LATENCY_CHUNKS} chunks (builds a lexical store once)")
    p.add_argument("--questions", default=None, help="only question sets containing this text")
    p.add_argument("--limit", type=int, default=None, help="at most N questions per set (quick runs)")
    p.add_argument("--no-build", action="store_true",
                   help="measure the pool as it is now (a build still running or interrupted)")
    p.add_argument("--build-only", action="store_true", help="build the pool, measure nothing")
    p.add_argument("--store-url", default=None,
                   help="also copy the pool into this PostgreSQL database and compare (retrieval parity)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qa_service.bench.retrieval", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["Question", "build_pool", "evaluate", "gold_rank", "load_questions", "summarise"]
