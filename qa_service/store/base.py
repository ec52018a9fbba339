"""The store contract the service relies on, met by the SQLite store and the PostgreSQL one.

``Store`` (sqlite_store.py, the embedded default, with FAISS generations beside it) and
``PgStore`` (pg_store.py, ``QA_STORE_URL=postgresql://…``) both hold documents, chunks,
their vectors and sentence vectors, and the analysed lexical index. Chunk row ids are the
ids every ranking speaks in; neither store ever reuses one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from qa_service.embedding.base import Vectors
from qa_service.models import Chunk, Document, Passage
from qa_service.store.sentence_vectors import SentenceVectors
from qa_service.store.sqlite_store import PreparedDocument, WriteResult


class DocumentStore(Protocol):
    """Documents, chunks and vectors of one collection; every write is one transaction."""

    def get_meta(self, key: str) -> str | None: ...

    def set_meta(self, key: str, value: str) -> None: ...

    def generation(self) -> int:
        """Bumped by every committed write: caches keyed by it see other processes' writes."""
        ...

    def counts(self) -> tuple[int, int]:
        """(documents, chunks)."""
        ...

    def content_hashes(self, ids: Sequence[str]) -> dict[str, str]: ...

    def get_document(self, doc_id: str) -> Document | None: ...

    def chunks_of(self, doc_id: str) -> list[Chunk]: ...

    def write(self, prepared: Sequence[PreparedDocument]) -> WriteResult:
        """Insert or replace documents with their chunks, all or nothing."""
        ...

    def delete_document(self, doc_id: str) -> WriteResult | None: ...

    def chunks_without_sentences(self, doc_ids: Sequence[str]) -> list[tuple[int, str, int, int]]: ...

    def add_sentences(self, rows: Sequence[tuple[int, SentenceVectors]]) -> None: ...

    def sentences(self, chunk_ids: Sequence[str]) -> dict[str, SentenceVectors]: ...

    def best_sentence_cosines(self, rowids: Sequence[int], query: Vectors) -> dict[int, float]: ...

    def passages(self, rowids: Sequence[int], scores: Sequence[float]) -> list[Passage]: ...

    def close(self) -> None: ...
