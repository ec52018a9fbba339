"""SQLite store: the source of truth for documents, chunks and their vectors (WAL mode).

The FAISS index is derived from this store. Chunk row ids are the FAISS ids; they are
AUTOINCREMENT so a deleted chunk's id is never reused for other text, which keeps an
older index generation from ever pointing at the wrong passage.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from qa_service.embedding.base import Vectors
from qa_service.errors import IndexCorruptError
from qa_service.models import Chunk, Document, Passage
from qa_service.store import lexical
from qa_service.store.sentence_vectors import (
    SENTENCE_VECTORS_MIGRATION,
    SentenceVectors,
    best_cosines,
    decode_rows,
)

# Numbered migrations: index i upgrades schema version i -> i+1.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE documents(
        id TEXT PRIMARY KEY,
        content_hash TEXT NOT NULL,
        title TEXT, text TEXT NOT NULL, url TEXT, source TEXT, published_at TEXT,
        lang TEXT NOT NULL, metadata TEXT NOT NULL, ingested_at TEXT NOT NULL
    );
    CREATE TABLE chunks(
        rowid INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        document_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
        ord INTEGER NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL,
        vector BLOB NOT NULL
    );
    CREATE INDEX chunks_by_document ON chunks(document_id, ord);
    INSERT INTO meta VALUES ('generation', '0');
    """,
    lexical.LEXICAL_MIGRATION,
    lexical.VOCABULARY_MIGRATION,
    SENTENCE_VECTORS_MIGRATION,
)

_PASSAGE_SQL = """
    SELECT c.rowid, c.id, c.document_id, c.start, c."end",
           substr(d.text, c.start + 1, c."end" - c.start),
           d.title, d.url, d.source, d.published_at, d.lang,
           CASE WHEN json_valid(d.metadata) AND json_type(d.metadata, '$.outlet_en') = 'text'
                THEN json_extract(d.metadata, '$.outlet_en') END
    FROM chunks c JOIN documents d ON d.id = c.document_id
"""
# The metadata key that gives an outlet's name in Latin script (``Passage.source_latin``).
OUTLET_LATIN_KEY = "outlet_en"

# Ids per IN (...) query: far below SQLite's limit on bound variables.
_SQL_BATCH = 500


def _latin_name(value: object) -> str | None:
    """A Latin-script outlet name from metadata: short, printable, no bidi controls; else None."""
    if not isinstance(value, str):
        return None
    name = " ".join(value.split())
    if not name or len(name) > 200 or any(unicodedata.category(ch) in ("Cf", "Cc") for ch in name):
        return None
    return name


def content_hash(doc: Document) -> str:
    """Hash of everything stored for a document: unchanged articles are skipped on re-ingest.

    The id is part of it, so two documents with the same text never share chunk ids.
    """
    payload = json.dumps(
        [doc.id, doc.title, doc.text, doc.url, doc.source, doc.published_at, doc.lang, doc.metadata],
        ensure_ascii=False, sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def chunk_id(doc_hash: str, start: int, end: int) -> str:
    return hashlib.sha256(f"{doc_hash}:{start}:{end}".encode()).hexdigest()[:24]


@dataclass
class PreparedDocument:
    """A validated document with its chunks and their vectors, ready to write."""

    document: Document
    content_hash: str
    chunks: list[Chunk]
    vectors: Vectors
    # One per chunk when QA_SENTENCE_VECTORS is on (store/sentence_vectors.py), else None.
    sentences: Sequence[SentenceVectors] | None = None


@dataclass
class WriteResult:
    added_ids: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    added_vectors: Vectors = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    removed_ids: list[int] = field(default_factory=list)
    generation: int = 0
    documents_written: int = 0


class Store:
    """Thread-safe access to one SQLite database (one connection per thread)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._migrate()
        self._ensure_lexical()

    # -- connections -------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                   timeout=30.0)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")  # an acknowledged write survives power loss
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
        return conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                # SQLite has already rolled back after some errors (disk full, I/O error);
                # a second ROLLBACK would raise and hide the error that matters.
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def _migrate(self) -> None:
        conn = self._conn()
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise IndexCorruptError(f"{self.path} is not a readable SQLite database: {exc}") from exc
        if version > len(MIGRATIONS):
            raise IndexCorruptError(
                f"{self.path} was written by a newer qa-service (schema {version}); upgrade qa-service"
            )
        for target, script in enumerate(MIGRATIONS[version:], start=version + 1):
            with self._transaction() as tx:
                for statement in script.split(";"):
                    if statement.strip():
                        tx.execute(statement)
                tx.execute(f"PRAGMA user_version = {target}")

    def _ensure_lexical(self) -> None:
        """Re-analyse the lexical tables when they were written by another analyzer version."""
        if self.get_meta(lexical.ANALYZER_META_KEY) == lexical.ANALYZER_VERSION:
            return
        with self._transaction() as tx:
            lexical.reanalyse(tx)

    def reader(self) -> sqlite3.Connection:
        """This thread's connection, for read-only queries of the derived (lexical) tables."""
        return self._conn()

    # -- metadata ----------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self._conn().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._transaction() as tx:
            tx.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def generation(self) -> int:
        return int(self.get_meta("generation") or 0)

    def counts(self) -> tuple[int, int]:
        conn = self._conn()
        docs = conn.execute("SELECT count(*) FROM documents").fetchone()[0]
        chunks = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
        return int(docs), int(chunks)

    # -- documents ---------------------------------------------------------------------

    def content_hashes(self, ids: Sequence[str]) -> dict[str, str]:
        """Stored content hash of each known id among ``ids``."""
        out: dict[str, str] = {}
        conn = self._conn()
        for i in range(0, len(ids), 500):
            batch = list(ids[i:i + 500])
            marks = ",".join("?" * len(batch))
            rows = conn.execute(
                f"SELECT id, content_hash FROM documents WHERE id IN ({marks})", batch)
            out.update({str(r[0]): str(r[1]) for r in rows})
        return out

    def get_document(self, doc_id: str) -> Document | None:
        row = self._conn().execute(
            "SELECT id, text, title, url, source, published_at, lang, metadata "
            "FROM documents WHERE id = ?", (doc_id,)).fetchone()
        if row is None:
            return None
        return Document(id=row[0], text=row[1], title=row[2], url=row[3], source=row[4],
                        published_at=row[5], lang=row[6], metadata=json.loads(row[7]))

    def chunks_of(self, doc_id: str) -> list[Chunk]:
        rows = self._conn().execute(
            'SELECT id, document_id, ord, start, "end" FROM chunks WHERE document_id = ? '
            "ORDER BY ord", (doc_id,))
        return [Chunk(id=r[0], document_id=r[1], ord=r[2], start=r[3], end=r[4]) for r in rows]

    def write(self, prepared: Sequence[PreparedDocument]) -> WriteResult:
        """Insert or replace documents with their chunks, atomically, and bump the generation."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        added_ids: list[int] = []
        vectors: list[Vectors] = []
        removed: list[int] = []
        with self._transaction() as tx:
            for item in prepared:
                doc = item.document
                removed += self._delete_chunks(tx, doc.id)
                tx.execute(
                    "INSERT OR REPLACE INTO documents VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (doc.id, item.content_hash, doc.title, doc.text, doc.url, doc.source,
                     doc.published_at, doc.lang, json.dumps(doc.metadata, ensure_ascii=False), now),
                )
                rows: list[lexical.ChunkRow] = []
                for chunk, vec in zip(item.chunks, item.vectors, strict=True):
                    cur = tx.execute(
                        'INSERT INTO chunks(id, document_id, ord, start, "end", vector) '
                        "VALUES (?,?,?,?,?,?)",
                        (chunk.id, doc.id, chunk.ord, chunk.start, chunk.end,
                         np.ascontiguousarray(vec, dtype=np.float32).tobytes()),
                    )
                    added_ids.append(int(cur.lastrowid or 0))
                    rows.append(lexical.ChunkRow(added_ids[-1], chunk.start, chunk.end))
                if item.sentences is not None:
                    tx.executemany("INSERT INTO chunk_sentences VALUES (?, ?)",
                                   [(row.rowid, sentences.encode())
                                    for row, sentences in zip(rows, item.sentences, strict=True)])
                lexical.add_chunks(tx, doc.id, doc.title, doc.text, rows)
                vectors.append(item.vectors)
            generation = self._bump_generation(tx)
        dim = vectors[0].shape[1] if vectors else 0
        return WriteResult(
            added_ids=np.asarray(added_ids, dtype=np.int64),
            added_vectors=np.concatenate(vectors) if vectors else np.zeros((0, dim), np.float32),
            removed_ids=removed, generation=generation, documents_written=len(prepared),
        )

    def delete_document(self, doc_id: str) -> WriteResult | None:
        """Delete a document and its chunks; None when it does not exist."""
        with self._transaction() as tx:
            if tx.execute("SELECT 1 FROM documents WHERE id = ?", (doc_id,)).fetchone() is None:
                return None
            removed = self._delete_chunks(tx, doc_id)
            tx.execute("DELETE FROM documents WHERE id = ?", (doc_id,))
            generation = self._bump_generation(tx)
        return WriteResult(removed_ids=removed, generation=generation)

    def chunks_without_sentences(self, doc_ids: Sequence[str]) -> list[tuple[int, str, int, int]]:
        """(rowid, document id, start, end) of the chunks of ``doc_ids`` that have no sentence vectors."""
        out: list[tuple[int, str, int, int]] = []
        conn = self._conn()
        for i in range(0, len(doc_ids), 500):
            batch = list(doc_ids[i:i + 500])
            marks = ",".join("?" * len(batch))
            rows = conn.execute(
                f'SELECT c.rowid, c.document_id, c.start, c."end" FROM chunks c '
                f"LEFT JOIN chunk_sentences s ON s.chunk_rowid = c.rowid "
                f"WHERE c.document_id IN ({marks}) AND s.chunk_rowid IS NULL ORDER BY c.rowid", batch)
            out += [(int(r[0]), str(r[1]), int(r[2]), int(r[3])) for r in rows]
        return out

    def add_sentences(self, rows: Sequence[tuple[int, SentenceVectors]]) -> None:
        """Store sentence vectors for existing chunks (by rowid); the index is unaffected."""
        with self._transaction() as tx:
            tx.executemany("INSERT OR REPLACE INTO chunk_sentences VALUES (?, ?)",
                           [(rowid, sentences.encode()) for rowid, sentences in rows])

    def sentences(self, chunk_ids: Sequence[str]) -> dict[str, SentenceVectors]:
        """Sentence vectors of the given chunks (by chunk id), in one query; chunks without are absent."""
        if not chunk_ids:
            return {}
        marks = ",".join("?" * len(chunk_ids))
        rows = self._conn().execute(
            f"SELECT c.id, s.data FROM chunks c JOIN chunk_sentences s ON s.chunk_rowid = c.rowid "
            f"WHERE c.id IN ({marks})", list(chunk_ids))
        return decode_rows(rows)

    def best_sentence_cosines(self, rowids: Sequence[int], query: Vectors) -> dict[int, float]:
        """For each chunk (by rowid) stored with sentence vectors, its best sentence's cosine to ``query``."""
        conn = self._conn()
        out: dict[int, float] = {}
        for i in range(0, len(rowids), _SQL_BATCH):
            batch = [int(r) for r in rowids[i:i + _SQL_BATCH]]
            marks = ",".join("?" * len(batch))
            rows = conn.execute(
                f"SELECT chunk_rowid, data FROM chunk_sentences WHERE chunk_rowid IN ({marks})", batch)
            out.update(best_cosines(rows, query))
        return out

    @staticmethod
    def _delete_chunks(tx: sqlite3.Connection, doc_id: str) -> list[int]:
        ids = [int(r[0]) for r in tx.execute("SELECT rowid FROM chunks WHERE document_id = ?",
                                             (doc_id,))]
        tx.execute("DELETE FROM chunks WHERE document_id = ?", (doc_id,))  # cascades to chunk_sentences
        lexical.delete_chunks(tx, ids)
        return ids

    @staticmethod
    def _bump_generation(tx: sqlite3.Connection) -> int:
        tx.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")
        return int(tx.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])

    # -- retrieval support -------------------------------------------------------------

    def passages(self, rowids: Sequence[int], scores: Sequence[float]) -> list[Passage]:
        """Passages for FAISS ids in the given order; ids no longer in the store are dropped."""
        if not rowids:
            return []
        marks = ",".join("?" * len(rowids))
        rows = self._conn().execute(f"{_PASSAGE_SQL} WHERE c.rowid IN ({marks})", list(rowids))
        by_id = {int(r[0]): r for r in rows}
        out: list[Passage] = []
        for rid, score in zip(rowids, scores, strict=True):
            r = by_id.get(int(rid))
            if r is not None:
                out.append(Passage(chunk_id=r[1], document_id=r[2], start=r[3], end=r[4],
                                   text=r[5], title=r[6], url=r[7], source=r[8],
                                   published_at=r[9], lang=r[10], score=float(score),
                                   source_latin=_latin_name(r[11])))
        return out

    def all_vectors(self, dim: int) -> tuple[int, npt.NDArray[np.int64], Vectors]:
        """Generation, every chunk id and vector: one consistent snapshot of the store."""
        conn = self._conn()
        conn.execute("BEGIN")  # a read transaction: WAL gives a stable snapshot
        try:
            generation = self.generation()
            n = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
            ids = np.empty(n, dtype=np.int64)
            mat = np.empty((n, dim), dtype=np.float32)
            for i, (rid, blob) in enumerate(conn.execute("SELECT rowid, vector FROM chunks")):
                ids[i] = rid
                mat[i] = np.frombuffer(blob, dtype=np.float32)
        finally:
            conn.execute("COMMIT")
        return generation, ids, mat

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
