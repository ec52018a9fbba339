"""Per-sentence vectors of each chunk, kept in the store for retrieval and the reader.

With ``QA_SENTENCE_VECTORS`` on, ingestion embeds every sentence of every chunk (split
exactly as answers quote the chunk's text, ``split_sentences``) with the passage prompt,
and stores them beside the chunk in the same transaction: one row per chunk in
``chunk_sentences``, keyed by the chunk's rowid (deleted with it, by cascade). Retrieval
ranks its fused candidates by their best sentence's cosine to the question (``best_cosines``),
and the reader reads the window around the closest sentence of each passage it reads
(answer/reader.py). The FAISS index never sees them.

One compact BLOB per chunk, little-endian::

    uint32 n | n x (uint32 start, uint32 end) | n x float32 scale | n x dim int8

Spans are code-point offsets into the chunk's text. Each vector is int8 with its own
scale (``max |v| / 127``): 388 bytes a sentence for dim 384, half of float16, and the
decoded vector keeps cosine >= 0.99996 with the float one (measured on 1,228 XQuAD
sentences; the question-sentence cosine moves by 0.0002 on average, 0.0008 at most).
A fragment too short to embed (a dateline, a lone number) is stored with its span and a
zero vector (scale 0), so the stored spans always equal the composer's split.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from qa_service.embedding.base import Vectors

log = logging.getLogger(__name__)

Span = tuple[int, int]

# Appended to ``sqlite_store.MIGRATIONS``.
SENTENCE_VECTORS_MIGRATION: Final = """
    CREATE TABLE chunk_sentences(
        chunk_rowid INTEGER PRIMARY KEY REFERENCES chunks(rowid) ON DELETE CASCADE,
        data BLOB NOT NULL
    )
"""

_COUNT: Final = struct.Struct("<I")
_SPAN_BYTES: Final = 8  # two uint32
_SCALE_BYTES: Final = 4  # one float32
INT8_MAX: Final = 127


@dataclass(frozen=True)
class SentenceVectors:
    """The sentences of one chunk: spans into its text and one unit vector each (zero when unembedded)."""

    spans: tuple[Span, ...]
    vectors: Vectors  # (len(spans), dim) float32

    def encode(self) -> bytes:
        """The stored BLOB (see the module docstring)."""
        n = len(self.spans)
        vectors = np.asarray(self.vectors, dtype=np.float32).reshape(n, -1)
        peak = np.abs(vectors).max(axis=1) if vectors.size else np.zeros(n, np.float32)
        scales = (peak / INT8_MAX).astype("<f4")
        safe = np.where(scales > 0, scales, 1.0)[:, None]
        quantised = np.clip(np.rint(vectors / safe), -INT8_MAX, INT8_MAX).astype(np.int8)
        spans = np.asarray(self.spans, dtype="<u4").reshape(n, 2)
        return _COUNT.pack(n) + spans.tobytes() + scales.tobytes() + quantised.tobytes()

    @classmethod
    def decode(cls, blob: bytes) -> SentenceVectors | None:
        """The sentences in ``blob``; None when it is malformed (the composer then falls back)."""
        if len(blob) < _COUNT.size:
            return None
        (n,) = _COUNT.unpack_from(blob)
        body = len(blob) - _COUNT.size - n * (_SPAN_BYTES + _SCALE_BYTES)
        if n == 0 or body <= 0 or body % n:
            return None
        dim = body // n
        offset = _COUNT.size
        spans = np.frombuffer(blob, dtype="<u4", count=2 * n, offset=offset).reshape(n, 2)
        offset += n * _SPAN_BYTES
        scales = np.frombuffer(blob, dtype="<f4", count=n, offset=offset)
        offset += n * _SCALE_BYTES
        quantised = np.frombuffer(blob, dtype=np.int8, count=n * dim, offset=offset).reshape(n, dim)
        vectors = quantised.astype(np.float32) * scales[:, None].astype(np.float32)
        # Quantisation leaves norms a hair off 1; cosines are taken against unit vectors.
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        unit: Vectors = vectors / np.maximum(norms, np.float32(1e-12))
        return cls(tuple((int(s), int(e)) for s, e in spans), unit)

    def cosines(self, query: Vectors, spans: Sequence[Span]) -> dict[Span, float] | None:
        """Cosine of a unit ``query`` vector with each of ``spans`` (the text's split today).

        Normally ``spans`` are the stored spans. When the splitter has changed since ingestion,
        a span takes the best cosine of the stored sentences it overlaps (a merged sentence
        holds both parts; a split one lies in its old sentence), so a store keeps its vectors
        across splitter updates. None when a span overlaps no stored sentence (the vectors
        are not this text's) or the query has another dimension (vectors of another model).
        An unembedded fragment counts 0.
        """
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        if q.shape[0] != self.vectors.shape[1]:
            return None
        values = [float(v) for v in self.vectors @ q]
        if list(self.spans) == list(spans):
            return dict(zip(self.spans, values, strict=True))
        out: dict[Span, float] = {}
        for start, end in spans:
            overlapping = [v for (s, e), v in zip(self.spans, values, strict=True) if s < end and start < e]
            if not overlapping:
                return None
            out[(start, end)] = max(overlapping)
        return out


def decode_rows(rows: Iterable[tuple[str, bytes]]) -> dict[str, SentenceVectors]:
    """Decoded ``(chunk id, blob)`` rows; a malformed blob is left out (and logged)."""
    out: dict[str, SentenceVectors] = {}
    for chunk, blob in rows:
        decoded = SentenceVectors.decode(bytes(blob))
        if decoded is None:
            log.warning("ignoring malformed sentence vectors of chunk %s", chunk)
        else:
            out[chunk] = decoded
    return out


def best_cosines(rows: Iterable[tuple[int, bytes]], query: Vectors) -> dict[int, float]:
    """For each ``(chunk rowid, blob)`` row, the highest cosine of a unit ``query`` with its sentences.

    The per-vector scale cancels in a cosine, so the int8 vectors are compared as stored, all
    in one product; unembedded fragments (zero vectors) and malformed blobs are left out.
    """
    q = np.asarray(query, dtype=np.float32).reshape(-1)
    keys: list[int] = []
    starts: list[int] = []
    parts: list[np.ndarray] = []
    total = 0
    for key, blob in rows:
        data = bytes(blob)
        if len(data) < _COUNT.size:
            continue
        (n,) = _COUNT.unpack_from(data)
        header = _COUNT.size + n * (_SPAN_BYTES + _SCALE_BYTES)
        if n == 0 or len(data) - header != n * q.shape[0]:
            continue  # malformed, or vectors of a model with another dimension
        parts.append(np.frombuffer(data, dtype=np.int8, offset=header).reshape(n, -1))
        keys.append(key)
        starts.append(total)
        total += n
    if not parts:
        return {}
    matrix = np.concatenate(parts).astype(np.float32)
    norms = np.linalg.norm(matrix, axis=1)
    cosines = np.where(norms > 0, (matrix @ q) / np.maximum(norms, 1e-12), -np.inf)
    best = np.maximum.reduceat(cosines, starts).tolist()  # one chunk's sentences are contiguous
    out: dict[int, float] = {}
    for key, cosine in zip(keys, best, strict=True):
        if cosine > out.get(key, -np.inf):  # a chunk given twice keeps its best
            out[key] = cosine
    return out

