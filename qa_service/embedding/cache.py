"""Embedding caches: passages by content hash on disk, questions in memory.

Passage vectors are keyed by (model id, precision, sha256 of the exact text embedded), in
one SQLite file beside the built models, so the same article ingested into another index
folder (a benchmark pool, an evaluation run, a rebuilt collection) is never embedded twice.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from qa_service.embedding.base import Encoder, Vectors

log = logging.getLogger(__name__)

QUERY_CACHE_SIZE = 2048
SQLITE_BATCH = 500


class CachedEncoder:
    """Wraps an Encoder; same protocol, fewer model calls."""

    def __init__(self, inner: Encoder, path: Path | None, *, variant: str = "",
                 read_passages: bool = True) -> None:
        """``read_passages=False``: embed every passage but still store it (benchmarks measure
        the model, and leave the vectors for the next run to reuse)."""
        self._inner = inner
        self._read_passages = read_passages
        self._key = f"{inner.model_id}|{variant}"
        self._queries: OrderedDict[str, Vectors] = OrderedDict()
        self._lock = threading.Lock()
        self._db: _VectorDB | None = _VectorDB(path, inner.dim) if path is not None else None

    @property
    def model_id(self) -> str:
        return self._inner.model_id

    @property
    def dim(self) -> int:
        return self._inner.dim

    @property
    def inner(self) -> Encoder:
        return self._inner

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self._inner.count_tokens(texts)

    def encode_queries(self, texts: Sequence[str]) -> Vectors:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        missing: list[int] = []
        with self._lock:
            for i, text in enumerate(texts):
                hit = self._queries.get(text)
                if hit is None:
                    missing.append(i)
                else:
                    self._queries.move_to_end(text)
                    out[i] = hit
        if missing:
            fresh = self._inner.encode_queries([texts[i] for i in missing])
            with self._lock:
                for i, vec in zip(missing, fresh, strict=True):
                    out[i] = vec
                    self._queries[texts[i]] = vec.copy()
                while len(self._queries) > QUERY_CACHE_SIZE:
                    self._queries.popitem(last=False)
        return out

    def encode_passages(self, texts: Sequence[str]) -> Vectors:
        if self._db is None or not texts:
            return self._inner.encode_passages(texts)
        digests = [hashlib.sha256(t.encode()).digest() for t in texts]
        found = self._db.get(self._key, digests) if self._read_passages else {}
        missing = [i for i, d in enumerate(digests) if d not in found]
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if missing:
            # Encode each distinct missing text once, even when repeated in the batch.
            unique = list(dict.fromkeys(digests[i] for i in missing))
            first = {d: next(i for i in missing if digests[i] == d) for d in unique}
            fresh = self._inner.encode_passages([texts[first[d]] for d in unique])
            found.update(zip(unique, fresh, strict=True))
            self._db.put(self._key, list(zip(unique, fresh, strict=True)))
        for i, d in enumerate(digests):
            out[i] = found[d]
        return out


class _VectorDB:
    def __init__(self, path: Path, dim: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._dim = dim
        self._local = threading.local()
        self._conn().execute(
            "CREATE TABLE IF NOT EXISTS passage_vectors("
            "model TEXT NOT NULL, digest BLOB NOT NULL, vector BLOB NOT NULL, "
            "PRIMARY KEY(model, digest)) WITHOUT ROWID")

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._path, timeout=30.0, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            self._local.conn = conn
        return conn

    def get(self, model: str, digests: Sequence[bytes]) -> dict[bytes, Vectors]:
        out: dict[bytes, Vectors] = {}
        conn = self._conn()
        for i in range(0, len(digests), SQLITE_BATCH):
            batch = list(digests[i:i + SQLITE_BATCH])
            marks = ",".join("?" * len(batch))
            rows = conn.execute(
                f"SELECT digest, vector FROM passage_vectors WHERE model = ? AND digest IN ({marks})",
                [model, *batch])
            for digest, blob in rows:
                vec = np.frombuffer(blob, dtype=np.float32)
                if vec.shape == (self._dim,):
                    out[bytes(digest)] = vec
        return out

    def put(self, model: str, items: Sequence[tuple[bytes, Vectors]]) -> None:
        """Best effort: a cache that cannot be written (disk full, read-only) only costs speed."""
        try:
            with self._conn() as conn:
                conn.executemany(
                    "INSERT OR REPLACE INTO passage_vectors VALUES (?, ?, ?)",
                    [(model, d, np.ascontiguousarray(v, dtype=np.float32).tobytes()) for d, v in items])
        except sqlite3.Error as exc:
            log.warning("embedding cache %s not updated: %s", self._path, exc)
