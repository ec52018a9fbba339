"""ANN benchmark: the IVF index ``qa_service.store.ann`` builds, against exact search and HNSW.

On a pool's real passage vectors, with real questions embedded by the service's encoder:
recall@10 and recall@100 against exact inner-product search (the retriever fuses the top 100),
time per question (one at a time, one thread, as ``/v1/ask`` searches), build time, and recall
again after 10% of the chunks are removed (deleted articles must vanish, the rest stay found).
HNSW is measured for comparison only: it cannot remove vectors (see ``qa_service.store.ann``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import faiss
import numpy as np
import numpy.typing as npt

from qa_service.bench import common
from qa_service.embedding.base import Vectors
from qa_service.settings import Settings
from qa_service.store import ann

DEFAULT_QUESTIONS: Final = 300
SEARCH_DEPTH: Final = 100  # RetrievalConfig.candidates: what one question fetches
RECALL_K: Final = (10, 100)
REMOVE_SHARE: Final = 0.10
HNSW_M: Final = 32
HNSW_EF_SEARCH: Final = (64, 128, 256)
SEED: Final = 7


def run(settings: Settings, data: Path, out: Path, size: int, n_questions: int = DEFAULT_QUESTIONS,
        hnsw: bool = True) -> dict[str, Any]:
    from qa_service.embedding.provision import load_model_encoder
    from qa_service.store.sqlite_store import Store

    folder = common.ensure_pool(out, size, data, settings)
    encoder = load_model_encoder(settings)
    queries = encoder.encode_queries(common.questions(data, n_questions))
    store = Store(folder / "index" / "store.sqlite3")
    try:
        _, ids, vectors = store.all_vectors(encoder.dim)
    finally:
        store.close()
    faiss.omp_set_num_threads(1)  # as one request searches; builds below use it too
    common.log(f"ann: {len(ids)} vectors, {len(queries)} questions")
    dim = vectors.shape[1]
    exact = ann.build(dim, ids, vectors, ann.AnnPolicy(min_vectors=0))
    truth = _search(exact, queries)
    rows: dict[str, Any] = {"exact": {"per_query": _latency(exact, queries),
                                      "recall": {str(k): 1.0 for k in RECALL_K}}}

    started = time.perf_counter()
    ivf = ann.build(dim, ids, vectors, ann.AnnPolicy(min_vectors=1))
    inner = faiss.downcast_index(ivf)
    assert isinstance(inner, faiss.IndexIVF)  # min_vectors=1 always trains IVF
    rows["ivf"] = {"build_s": round(time.perf_counter() - started, 2), "nlist": inner.nlist,
                   "nprobe": inner.nprobe, "per_query": _latency(ivf, queries),
                   "recall": _recalls(_search(ivf, queries), truth)}
    rows["ivf"]["after_removal"] = _after_removal(exact, ivf, ids, dim, queries)
    if hnsw:
        rows.update(_hnsw(vectors, ids, queries, truth))
    exact_p50 = rows["exact"]["per_query"]["p50_ms"]
    for row in rows.values():
        row["speedup_p50"] = common.ratio(exact_p50, row["per_query"]["p50_ms"])
    policy = ann.AnnPolicy(min_vectors=settings.ann_min_vectors)
    return {"pool": folder.name, "vectors": len(ids), "questions": len(queries),
            "chosen_at_this_size": ann.IVF if policy.wants_ivf(len(ids)) else ann.EXACT,
            "min_vectors": settings.ann_min_vectors, "indexes": rows}


def _search(index: faiss.Index, queries: Vectors) -> npt.NDArray[np.int64]:
    _, found = index.search(queries, SEARCH_DEPTH)
    return found


def _recalls(found: npt.NDArray[np.int64], truth: npt.NDArray[np.int64]) -> dict[str, float]:
    return {str(k): round(ann.recall_at_k(found, truth, k), 4) for k in RECALL_K}


def _latency(index: faiss.Index, queries: Vectors,
             search: Callable[..., Any] | None = None) -> dict[str, float]:
    run_one = search or index.search
    times = []
    for row in queries:
        started = time.perf_counter()
        run_one(row.reshape(1, -1), SEARCH_DEPTH)
        times.append(time.perf_counter() - started)
    return common.percentiles(times)


def _after_removal(exact: faiss.Index, ivf: faiss.Index, ids: npt.NDArray[np.int64], dim: int,
                   queries: Vectors) -> dict[str, Any]:
    """Remove a random tenth from both; removed chunks must never come back."""
    rng = np.random.default_rng(SEED)
    removed = rng.choice(ids, size=int(len(ids) * REMOVE_SHARE), replace=False)
    no_ids, no_vectors = np.zeros(0, np.int64), np.zeros((0, dim), np.float32)
    policy = ann.AnnPolicy(min_vectors=1)
    exact_left = ann.updated(exact, dim, removed.tolist(), no_ids, no_vectors, ann.AnnPolicy(min_vectors=0))
    ivf_left = ann.updated(ivf, dim, removed.tolist(), no_ids, no_vectors, policy)
    found = _search(ivf_left, queries)
    return {"removed": len(removed), "recall": _recalls(found, _search(exact_left, queries)),
            "removed_ids_returned": int(np.isin(found, removed).sum()), "kind": ann.kind(ivf_left)}


def _hnsw(vectors: Vectors, ids: npt.NDArray[np.int64], queries: Vectors,
          truth: npt.NDArray[np.int64]) -> dict[str, Any]:
    started = time.perf_counter()
    index = faiss.IndexIDMap2(faiss.IndexHNSWFlat(vectors.shape[1], HNSW_M, faiss.METRIC_INNER_PRODUCT))
    index.add_with_ids(vectors, ids)
    build_s = round(time.perf_counter() - started, 2)
    rows: dict[str, Any] = {}
    for ef in HNSW_EF_SEARCH:
        params = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]  # absent from the stubs
        params.efSearch = ef

        def search(q: Vectors, k: int, params: Any = params) -> Any:
            return index.search(q, k, params=params)

        _, found = search(queries, SEARCH_DEPTH)
        rows[f"hnsw M{HNSW_M} ef{ef}"] = {"build_s": build_s, "per_query": _latency(index, queries, search),
                                          "recall": _recalls(found, truth)}
    return rows


def summary(result: dict[str, Any]) -> str:
    rows = []
    for name, row in result["indexes"].items():
        rows.append((name, row["recall"]["10"], row["recall"]["100"], row["per_query"]["p50_ms"],
                     row["per_query"]["p95_ms"], row["speedup_p50"], row.get("build_s")))
    text = [f"Vector index on {result['pool']} ({result['vectors']} real vectors, {result['questions']} "
            f"questions, top {SEARCH_DEPTH}); at this size the service uses {result['chosen_at_this_size']}",
            common.table(rows, ["index", "recall@10", "recall@100", "p50 ms", "p95 ms", "x exact",
                                "build s"])]
    removal = result["indexes"]["ivf"]["after_removal"]
    text.append(f"ivf after removing {removal['removed']} chunks: recall@10 {removal['recall']['10']}, "
                f"removed chunks returned: {removal['removed_ids_returned']}")
    return "\n".join(text)
