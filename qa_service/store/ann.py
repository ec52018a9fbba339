"""Which FAISS index serves a collection: exact search while small, IVF beyond a size.

Exact inner-product search costs a full scan per question: about 1 ms at 10k chunks and
6-35 ms at 100k on one core (a quiet Zen 4 to a busy Sapphire Rapids), a large share of the
25 ms answer budget. An IVF index (``IndexIVFFlat``, inner product) scans only the ``nprobe``
clusters nearest the question (2.2 ms at 100k with recall@10 0.99 on real questions).

Why IVF and not HNSW (both measured by ``qa-service bench ann``):

- IVF holds the chunk ids itself (``add_with_ids``) and supports ``remove_ids``, so a
  replaced or deleted article leaves the index exactly as with the exact index. HNSW cannot
  remove (``IndexIDMap2`` over HNSW raises), so every delete would mean a rebuild. Wrapping
  IVF in ``IndexIDMap2`` is *wrong*: its ``remove_ids`` compacts the id map while IVF keeps
  its internal ids, and later results carry the neighbour's id. IVF is therefore used bare.
- IVF search with an id selector scanning every list is exact, which filtered search needs.
- Its vectors stay uncompressed (``Flat`` codes): scores equal the exact index's.

``nprobe`` is calibrated when the index is trained, on question-like probes: stored passages
moved by random noise to cosine :data:`QUESTION_COSINE` of where they were. Passages
themselves would be too easy: their neighbours share their cluster, while a question falls
between clusters (measured: the same nprobe gives recall 0.95 for passages, 0.83 for
questions). ``nprobe`` grows until the probes' recall@10 against exact search reaches
:data:`CALIBRATION_RECALL`; ``qa-service bench ann`` checks real questions against the 0.98
promised. The probe distance was fitted on 100k real news vectors and 600 real XQuAD/ARCD
questions: probes at 0.86 (the median cosine of a question to its best passage) reach 0.995
at nprobe 163 of 949 lists, where real questions get only 0.945; probes at 0.70 keep tracking
real recall (0.996 at nprobe ~400, where real questions get 0.990; 0.98 needs ~320). The
value travels inside the serialised index. The index is retrained (new clusters, new
``nprobe``) when the collection has grown or shrunk :data:`RETRAIN_FACTOR`
times past what its cluster count was sized for, and dropped back to exact search below
the threshold, so the choice always follows the collection's size.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final

import faiss
import numpy as np
import numpy.typing as npt

from qa_service.embedding.base import Vectors

EXACT: Final = "flat-ip"
IVF: Final = "ivf-flat-ip"
# Collections from this many vectors get an IVF index (QA_ANN_MIN_VECTORS; 0 = always exact).
DEFAULT_MIN_VECTORS: Final = 50_000
# Clusters = NLIST_PER_SQRT x sqrt(n): ~75 vectors a list at 50k, ~150 at 200k (more, smaller
# lists scanned more of them reached the same recall reading fewer vectors: measured).
NLIST_PER_SQRT: Final = 3.0
MIN_NLIST: Final = 16
# k-means samples this many points per cluster (FAISS warns below 39): bounds training time.
TRAIN_POINTS_PER_LIST: Final = 64
TRAIN_ITERATIONS: Final = 12
RETRAIN_FACTOR: Final = 4.0
CALIBRATION_QUERIES: Final = 256
CALIBRATION_K: Final = 10
CALIBRATION_RECALL: Final = 0.996
# Calibration probes are noised to this cosine (fitted against real questions: see above).
QUESTION_COSINE: Final = 0.70
SEED: Final = 1234  # training sample and calibration queries: same data, same index
# A question is one vector: FAISS's OpenMP threads only wake, spin and wait for each other.
# Measured on this 2-core machine: exact search at 100k chunks 15 ms with 1 thread, 41 ms with 2.
SEARCH_THREADS: Final = 1


@dataclass(frozen=True)
class AnnPolicy:
    """When to leave exact search; ``min_vectors`` 0 keeps every collection exact."""

    min_vectors: int = DEFAULT_MIN_VECTORS
    recall: float = CALIBRATION_RECALL

    def __post_init__(self) -> None:
        if self.min_vectors < 0:
            raise ValueError("min_vectors must not be negative")
        if not 0.0 < self.recall <= 1.0:
            raise ValueError("recall must lie in (0, 1]")

    def wants_ivf(self, n: int) -> bool:
        return self.min_vectors > 0 and n >= self.min_vectors


def use_search_threads() -> None:
    """Serve searches on one FAISS thread (process-wide; training borrows every core)."""
    faiss.omp_set_num_threads(SEARCH_THREADS)


@contextmanager
def _all_cores() -> Iterator[None]:
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(len(os.sched_getaffinity(0)) or 1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def kind(index: faiss.Index) -> str:
    """:data:`EXACT` or :data:`IVF` (recorded in the generation's manifest)."""
    return IVF if isinstance(faiss.downcast_index(index), faiss.IndexIVF) else EXACT


def empty_exact(dim: int) -> faiss.Index:
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))


def build(dim: int, ids: npt.NDArray[np.int64], vectors: Vectors,
          policy: AnnPolicy | None = None) -> faiss.Index:
    """The index the policy picks for these vectors (L2-normalised rows, ids = chunk rowids)."""
    policy = policy or AnnPolicy()
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if not policy.wants_ivf(len(ids)):
        index = empty_exact(dim)
        if len(ids):
            index.add_with_ids(vectors, np.asarray(ids, dtype=np.int64))
        return index
    return _train_ivf(dim, np.asarray(ids, dtype=np.int64), vectors, policy)


def updated(index: faiss.Index | None, dim: int, removed: Sequence[int],
            added_ids: npt.NDArray[np.int64], added: Vectors,
            policy: AnnPolicy | None = None) -> faiss.Index:
    """A copy of ``index`` with chunks removed and added (``index`` is left untouched).

    Rebuilt as another kind, or retrained, when the new size calls for it.
    """
    policy = policy or AnnPolicy()
    new = faiss.clone_index(index) if index is not None else empty_exact(dim)
    if removed:
        new.remove_ids(np.asarray(removed, dtype=np.int64))  # type: ignore[arg-type]
    if len(added_ids):
        new.add_with_ids(np.ascontiguousarray(added, dtype=np.float32),
                         np.asarray(added_ids, dtype=np.int64))
    if _fits(new, policy):
        return new
    ids, vectors = contents(new)
    return build(dim, ids, vectors, policy)


def _fits(index: faiss.Index, policy: AnnPolicy) -> bool:
    n = int(index.ntotal)
    ivf = faiss.downcast_index(index)
    if not isinstance(ivf, faiss.IndexIVF):
        return not policy.wants_ivf(n)
    if not policy.wants_ivf(n):
        return False
    sized_for = (ivf.nlist / NLIST_PER_SQRT) ** 2
    return sized_for / RETRAIN_FACTOR <= n <= sized_for * RETRAIN_FACTOR


def index_ids(index: faiss.Index) -> npt.NDArray[np.int64]:
    """Every chunk id held (insertion order for exact indexes, list order for IVF)."""
    inner = faiss.downcast_index(index)
    if isinstance(inner, faiss.IndexIVF):
        return _ivf_lists(inner)[0]
    return _exact_parts(inner)[0]


def contents(index: faiss.Index) -> tuple[npt.NDArray[np.int64], Vectors]:
    """Every (chunk id, vector) held, for rebuilding as another kind."""
    inner = faiss.downcast_index(index)
    if isinstance(inner, faiss.IndexIVF):
        return _ivf_lists(inner)
    ids, flat = _exact_parts(inner)
    vectors = faiss.rev_swig_ptr(flat.get_xb(), len(ids) * flat.d).reshape(len(ids), flat.d)
    return ids, np.array(vectors, dtype=np.float32)


def _exact_parts(index: faiss.Index) -> tuple[npt.NDArray[np.int64], faiss.IndexFlat]:
    """Chunk ids and the flat storage of an exact index (``IndexIDMap2`` over ``IndexFlatIP``)."""
    if not isinstance(index, faiss.IndexIDMap2):
        raise TypeError(f"unexpected FAISS index {type(index).__name__}")
    flat = faiss.downcast_index(index.index)
    if not isinstance(flat, faiss.IndexFlat):
        raise TypeError(f"unexpected FAISS index {type(flat).__name__} inside the id map")
    return np.asarray(faiss.vector_to_array(index.id_map), dtype=np.int64), flat


def exact_search_parameters(index: faiss.Index, selector: faiss.IDSelector) -> faiss.SearchParameters:
    """Parameters for an exact search among the chunks ``selector`` admits, for any kind."""
    inner = faiss.downcast_index(index)
    params: faiss.SearchParameters
    if isinstance(inner, faiss.IndexIVF):
        ivf = faiss.SearchParametersIVF()
        ivf.nprobe = inner.nlist  # every list: exact
        ivf.max_codes = 0
        params = ivf
    else:
        params = faiss.SearchParameters()
    params.sel = selector
    return params


def recall_at_k(found: npt.NDArray[np.int64], truth: npt.NDArray[np.int64], k: int) -> float:
    """Mean share of each row's true top-``k`` ids that ``found`` (top-``k`` rows) contains."""
    hits = total = 0
    for got, want in zip(found[:, :k], truth[:, :k], strict=True):
        want_set = {int(i) for i in want if i >= 0}
        hits += len(want_set & {int(i) for i in got if i >= 0})
        total += len(want_set)
    return hits / total if total else 1.0


# -- IVF ---------------------------------------------------------------------------------


def nlist_for(n: int) -> int:
    return max(MIN_NLIST, round(NLIST_PER_SQRT * math.sqrt(n)))


def _train_ivf(dim: int, ids: npt.NDArray[np.int64], vectors: Vectors, policy: AnnPolicy) -> faiss.Index:
    nlist = nlist_for(len(ids))
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.niter = TRAIN_ITERATIONS
    index.cp.seed = SEED
    index.cp.max_points_per_centroid = TRAIN_POINTS_PER_LIST
    with _all_cores():  # k-means and calibration are batch work
        index.train(vectors)  # FAISS samples max_points_per_centroid x nlist points itself
        index.add_with_ids(vectors, ids)
        index.nprobe = _calibrated_nprobe(index, ids, vectors, policy.recall)
    return index  # FAISS's wrapper keeps the quantizer alive as long as the index


def _calibrated_nprobe(index: faiss.IndexIVF, ids: npt.NDArray[np.int64], vectors: Vectors,
                       target: float) -> int:
    """Smallest nprobe (doubling, then bisecting) reaching ``target`` recall@10 on question-like probes."""
    queries = question_like_probes(vectors, min(CALIBRATION_QUERIES, len(vectors)))
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    _, truth_rows = exact.search(queries, CALIBRATION_K)
    truth = ids[truth_rows]

    def recall(nprobe: int) -> float:
        params = faiss.SearchParametersIVF()
        params.nprobe = nprobe
        _, found = index.search(queries, CALIBRATION_K, params=params)
        return recall_at_k(found, truth, CALIBRATION_K)

    low, high = 0, 1
    while high < index.nlist and recall(high) < target:
        low, high = high, min(high * 2, index.nlist)
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if recall(mid) >= target else (mid, high)
    return high


def question_like_probes(vectors: Vectors, n: int, cosine: float = QUESTION_COSINE) -> Vectors:
    """``n`` stored vectors moved by isotropic noise to ``cosine`` of where they were."""
    rng = np.random.default_rng(SEED)
    rows = rng.choice(len(vectors), size=n, replace=False)
    dim = vectors.shape[1]
    # |noise| = tan(angle) for unit vectors: cos(x, x + noise) = 1 / sqrt(1 + |noise|^2).
    scale = math.sqrt(1.0 / cosine**2 - 1.0)
    noise = rng.standard_normal((n, dim)).astype(np.float32) * np.float32(scale / math.sqrt(dim))
    probes = vectors[rows] + noise
    probes /= np.linalg.norm(probes, axis=1, keepdims=True)
    return np.ascontiguousarray(probes, dtype=np.float32)


def _ivf_lists(index: faiss.IndexIVF) -> tuple[npt.NDArray[np.int64], Vectors]:
    lists = index.invlists
    assert lists is not None  # every trained IVF index has its lists
    ids: list[npt.NDArray[np.int64]] = []
    codes: list[npt.NDArray[np.float32]] = []
    for no in range(index.nlist):
        size = lists.list_size(no)
        if not size:
            continue
        ids.append(np.array(faiss.rev_swig_ptr(lists.get_ids(no), size), dtype=np.int64))
        raw = faiss.rev_swig_ptr(lists.get_codes(no), size * lists.code_size)
        codes.append(np.frombuffer(bytes(raw), dtype=np.float32).reshape(size, index.d))
    if not ids:
        return np.zeros(0, np.int64), np.zeros((0, index.d), np.float32)
    return np.concatenate(ids), np.concatenate(codes)
