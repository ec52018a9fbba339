"""The Retriever: turns a question (and its vector) into ranked, filtered passages."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from qa_service.models import Filters, Passage
from qa_service.store.sqlite_store import Store
from qa_service.store.vector_index import VectorIndex

# With filters, fetch this many times k from FAISS before filtering in the store.
FILTER_OVERSAMPLE = 8


class Retriever:
    """Dense retrieval over the current generation; filters applied to the stored attribution."""

    def __init__(self, store: Store, index: Callable[[], VectorIndex]) -> None:
        self._store = store
        self._index = index

    def retrieve(self, question: str, qvec: np.ndarray, k: int,
                 filters: Filters | None = None) -> list[Passage]:
        fetch = k * FILTER_OVERSAMPLE if filters else k
        scores, ids = self._index().search(qvec, fetch)
        keep = ids[0] >= 0
        passages = self._store.passages(ids[0][keep].tolist(), scores[0][keep].tolist())
        if filters:
            passages = [p for p in passages if matches(p, filters)]
        return passages[:k]


def matches(p: Passage, f: Filters) -> bool:
    """Whether a passage passes the source / lang / date filters (dates compared by day)."""
    if f.source and p.source not in f.source:
        return False
    if f.lang and p.lang != f.lang:
        return False
    date = (p.published_at or "")[:10]
    if f.published_after and (not date or date < f.published_after[:10]):
        return False
    return not (f.published_before and (not date or date > f.published_before[:10]))
