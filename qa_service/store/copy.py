"""Copy an embedded collection (SQLite store) into PostgreSQL without embedding anything again.

Documents travel with their content hashes, chunk ids and offsets, chunk vectors and sentence
vectors, in batches of one transaction each; the target analyses the text itself (the same
analysis as the source's). A document the target already holds with the same content hash is
skipped, so an interrupted copy is resumed by running it again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final

import numpy as np

from qa_service.errors import BadInputError
from qa_service.models import Chunk, Document
from qa_service.store.pg_store import PgStore
from qa_service.store.sentence_vectors import SentenceVectors
from qa_service.store.sqlite_store import PreparedDocument, Store

COPY_BATCH_DOCUMENTS: Final = 64
MODEL_KEYS: Final = ("model_id", "dim")


@dataclass
class CopyReport:
    copied: int = 0
    unchanged: int = 0
    chunks: int = 0


def copy_collection(source: Store, target: PgStore, batch: int = COPY_BATCH_DOCUMENTS,
                    progress: Callable[[int], None] | None = None) -> CopyReport:
    """Copy every document of ``source`` missing from (or different in) ``target``."""
    model = {key: source.get_meta(key) for key in MODEL_KEYS}
    held = {key: target.get_meta(key) for key in MODEL_KEYS}
    if held["model_id"] is not None and held != model:
        raise BadInputError(f"the target holds vectors of model {held['model_id']!r} (dim {held['dim']}), "
                            f"the source of {model['model_id']!r} (dim {model['dim']}); copy into an "
                            "empty database")
    report = CopyReport()
    if model["model_id"] is None:
        return report  # an empty source: nothing to copy, and no model to record
    for key, value in model.items():
        if value is not None and held[key] is None:
            target.set_meta(key, value)
    for prepared in _batches(source, batch):
        known = target.content_hashes([p.document.id for p in prepared])
        todo = [p for p in prepared if known.get(p.document.id) != p.content_hash]
        report.unchanged += len(prepared) - len(todo)
        if todo:
            target.write(todo)
        report.copied += len(todo)
        report.chunks += sum(len(p.chunks) for p in todo)
        if progress is not None:
            progress(len(prepared))
    return report


def _batches(source: Store, size: int) -> Iterator[list[PreparedDocument]]:
    """Documents in the order they were ingested (by their first chunk), which the target keeps:
    "first ingested" decides which copy of a shared paragraph counts, and equal scores."""
    conn = source.reader()
    last = 0
    while True:
        firsts = conn.execute("SELECT rowid, document_id FROM chunks WHERE ord = 0 AND rowid > ? "
                              "ORDER BY rowid LIMIT ?", (last, size)).fetchall()
        if not firsts:
            return
        last = int(firsts[-1][0])
        marks = ",".join("?" * len(firsts))
        rows = {r[0]: r for r in conn.execute(
            "SELECT id, content_hash, text, title, url, source, published_at, lang, metadata FROM documents "
            f"WHERE id IN ({marks})", [doc_id for _, doc_id in firsts])}
        docs = [rows[doc_id] for _, doc_id in firsts if doc_id in rows]
        chunks: dict[str, list[tuple[Chunk, bytes, bytes | None]]] = {}
        for doc_id, cid, ord_, start, end, vector, sentences in conn.execute(
                f'SELECT c.document_id, c.id, c.ord, c.start, c."end", c.vector, s.data FROM chunks c '
                f"LEFT JOIN chunk_sentences s ON s.chunk_rowid = c.rowid "
                f"WHERE c.document_id IN ({marks}) ORDER BY c.document_id, c.ord", [d[0] for d in docs]):
            chunks.setdefault(doc_id, []).append(
                (Chunk(id=cid, document_id=doc_id, ord=ord_, start=start, end=end), vector, sentences))
        yield [_prepared(row, chunks.get(row[0], [])) for row in docs if chunks.get(row[0])]


def _prepared(row: tuple[str, ...], chunks: list[tuple[Chunk, bytes, bytes | None]]) -> PreparedDocument:
    doc_id, digest, text, title, url, source, published_at, lang, metadata = row
    document = Document(id=doc_id, text=text, title=title, url=url, source=source,
                        published_at=published_at, lang=lang, metadata=json.loads(metadata))
    vectors = np.stack([np.frombuffer(vector, dtype=np.float32) for _, vector, _ in chunks])
    decoded = [None if blob is None else SentenceVectors.decode(bytes(blob)) for _, _, blob in chunks]
    # Sentence vectors go all or none per document (the target stores them per chunk either way).
    sentences = None if any(s is None for s in decoded) else [s for s in decoded if s is not None]
    return PreparedDocument(document, digest, [c for c, _, _ in chunks], vectors, sentences)
