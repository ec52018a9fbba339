"""What the Retriever asks of a backend, and the embedded one (SQLite store + FAISS generation).

The Retriever ranks, fuses and re-ranks; a backend answers the lookups beneath it in chunk row
ids: dense top-k under a filter, BM25 over the analysed terms, rows and sentence vectors of
given chunks. ``EmbeddedSearch`` serves them from SQLite and the live FAISS generation;
``PgSearch`` (retrieval/pg.py) from PostgreSQL + pgvector.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final, Protocol

import faiss
import numpy as np
import numpy.typing as npt

from qa_service.models import Passage
from qa_service.retrieval.filters import Condition, all_allowed, allowed_among
from qa_service.retrieval.lexical import Column, LexicalHit, LexicalSearcher, chunk_rows, document_chunk_rows
from qa_service.store import ann
from qa_service.store.sqlite_store import Store
from qa_service.store.vector_index import VectorIndex

# With filters, first look this many times deeper in the dense ranking; when too few of
# those pass, the filter is selective and only the chunks it allows are searched.
FILTER_OVERSAMPLE: Final = 4

ChunkVectors = dict[int, tuple[str, npt.NDArray[np.float32]]]


class LexicalIndex(Protocol):
    """BM25 and term statistics over the analysed chunk text (``store/lexical.py``)."""

    def search(self, terms: Sequence[str], limit: int, column: Column = "terms",
               cond: Condition | None = None) -> list[LexicalHit]: ...

    def languages(self) -> dict[str, int]: ...

    def chunk_terms(self, rowids: Sequence[int], column: Column = "terms") -> dict[int, list[str]]: ...

    def chunk_count(self) -> int: ...

    def document_frequencies(self, terms: Sequence[str], column: Column = "terms") -> dict[str, int]: ...

    def noise_shares(self, rowids: Sequence[int]) -> dict[int, float]: ...


class SearchBackend(Protocol):
    """The lookups the Retriever needs, in chunk row ids."""

    lexical: LexicalIndex

    def dense(self, qvec: np.ndarray, depth: int, cond: Condition) -> list[tuple[int, float]]:
        """Top ``depth`` (chunk row id, cosine) among the chunks ``cond`` allows."""
        ...

    def allowed_among(self, rowids: Sequence[int], cond: Condition) -> set[int]: ...

    def chunk_rows(self, rowids: Sequence[int]) -> ChunkVectors:
        """Chunk id and vector of each of ``rowids`` that still exists."""
        ...

    def document_chunk_rows(self, document_ids: Sequence[str]
                            ) -> list[tuple[int, npt.NDArray[np.float32]]]: ...

    def best_sentence_cosines(self, rowids: Sequence[int], query: np.ndarray) -> dict[int, float]:
        """Best sentence cosine to ``query`` of each of ``rowids`` stored with sentence vectors."""
        ...

    def passages(self, rowids: Sequence[int], scores: Sequence[float]) -> list[Passage]: ...


class EmbeddedSearch:
    """SQLite store (FTS5, rows) plus the live FAISS generation (dense)."""

    def __init__(self, store: Store, index: Callable[[], VectorIndex]) -> None:
        self._store = store
        self._index = index
        self.lexical: LexicalIndex = LexicalSearcher(store)

    def dense(self, qvec: np.ndarray, depth: int, cond: Condition) -> list[tuple[int, float]]:
        vindex = self._index()
        if vindex.size == 0:
            return []
        query = np.ascontiguousarray(qvec, dtype=np.float32).reshape(1, -1)
        if cond.always:
            scores, ids = vindex.search(query, depth)
            return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]
        fetch = min(depth * FILTER_OVERSAMPLE, vindex.size)
        scores, ids = vindex.search(query, fetch)
        pairs = [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]
        keep = allowed_among(self._store, [rid for rid, _ in pairs], cond)
        hits = [(rid, s) for rid, s in pairs if rid in keep]
        if len(hits) >= depth or fetch >= vindex.size:
            return hits[:depth]
        # Selective filter: search exactly the chunks it allows.
        allowed = all_allowed(self._store, cond)
        if not len(allowed):
            return []
        # Exact among the allowed chunks whatever the index kind (IVF needs its own parameters).
        params = ann.exact_search_parameters(vindex.index, faiss.IDSelectorBatch(allowed))
        k = int(min(depth, len(allowed)))
        scores, ids = vindex.index.search(query, k, params=params)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def allowed_among(self, rowids: Sequence[int], cond: Condition) -> set[int]:
        return allowed_among(self._store, rowids, cond)

    def chunk_rows(self, rowids: Sequence[int]) -> ChunkVectors:
        return chunk_rows(self._store, rowids)

    def document_chunk_rows(self, document_ids: Sequence[str]) -> list[tuple[int, npt.NDArray[np.float32]]]:
        return document_chunk_rows(self._store, document_ids)

    def best_sentence_cosines(self, rowids: Sequence[int], query: np.ndarray) -> dict[int, float]:
        return self._store.best_sentence_cosines(rowids, query)

    def passages(self, rowids: Sequence[int], scores: Sequence[float]) -> list[Passage]:
        return self._store.passages(rowids, scores)
