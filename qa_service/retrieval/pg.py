"""The Retriever's lookups in PostgreSQL + pgvector: HNSW kNN and BM25, filters in SQL.

* Dense: exact while the collection is smaller than ``QA_ANN_MIN_VECTORS`` (as the embedded
  backend's FAISS index), then HNSW over ``chunks.embedding`` (halfvec, inner product) with
  ``hnsw.iterative_scan``, so a filtered query keeps scanning the graph until ``depth`` chunks
  pass the filter. When a filter is so selective that the scan gives up first, the allowed
  chunks are ranked exactly.
* Lexical: BM25 over the postings of the service's own analysed terms, with FTS5's formula
  (k1 1.2, b 0.75, FTS5's IDF) and its match budget, so both backends rank alike.

Filter conditions (``retrieval/filters.py``) are written with ``?`` placeholders on ``d``
(documents); they become psycopg's ``%s`` here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from qa_service.models import Passage
from qa_service.retrieval.backend import ChunkVectors, LexicalIndex
from qa_service.retrieval.filters import Condition
from qa_service.retrieval.lexical import COPIED_SQL, MATCH_BUDGET, Column, LexicalHit, affordable
from qa_service.store.ann import DEFAULT_MIN_VECTORS
from qa_service.store.lexical import SITE_BOILERPLATE_MIN_DOCUMENTS
from qa_service.store.pg_store import (
    COLUMNS,
    DEFAULT_EF_SEARCH,
    PgStore,
    bm25_idf,
    vector_text,
)

# FTS5's bm25() constants.
BM25_K1: Final = 1.2
BM25_B: Final = 0.75
MAX_EF_SEARCH: Final = 1000  # pgvector's ceiling


# A chunk vector as float4[]: read in binary, psycopg parses it in C (text parsing cost ~5 ms a search).
_FLOATS: Final = "embedding::vector::real[]"


def _sql(cond: Condition) -> tuple[str, tuple[object, ...]]:
    return cond.sql.replace("?", "%s"), cond.args


class PgLexical:
    """BM25, term statistics and noise shares over one PgStore."""

    def __init__(self, store: PgStore) -> None:
        self._store = store
        self._languages: tuple[int, dict[str, int]] | None = None

    def _rows(self, sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        return self._store.read_rows(sql, args)

    def search(self, terms: Sequence[str], limit: int, column: Column = "terms",
               cond: Condition | None = None) -> list[LexicalHit]:
        """Top ``limit`` chunks by BM25 for any of ``terms`` (rarest first, within the match budget)."""
        if not terms or limit <= 0:
            return []
        df = self._capped_frequencies(terms, column)
        kept = affordable(terms, df)
        if not kept:
            return []
        _, chunks, tokens = self._store.stats()
        avgdl = max(tokens / max(chunks, 1), 1e-9)
        idf = [bm25_idf(chunks, df[t]) for t in kept]
        where, args = ("", ()) if cond is None or cond.always else _sql(cond)
        join = ("JOIN chunks c ON c.rowid = p.chunk_rowid JOIN documents d ON d.id = c.document_id"
                if where else "")
        rows = self._rows(
            f"""SELECT p.chunk_rowid,
                       sum(q.idf * p.tf * %s / (p.tf + %s * (1 - %s + %s * p.dl / %s))) AS score
                FROM unnest(%s::text[], %s::float8[]) AS q(term, idf)
                JOIN postings p ON p.col = %s AND p.term = q.term {join}
                {"WHERE " + where if where else ""}
                GROUP BY p.chunk_rowid ORDER BY score DESC, p.chunk_rowid LIMIT %s""",
            (BM25_K1 + 1, BM25_K1, BM25_B, BM25_B, avgdl, kept, idf, COLUMNS[column], *args, limit))
        return [LexicalHit(int(r[0]), float(r[1])) for r in rows]

    def _capped_frequencies(self, terms: Sequence[str], column: Column) -> dict[str, int]:
        """Document frequencies, exact up to the match budget (a term above it is never kept)."""
        rows = self._rows(
            """SELECT t.term, (SELECT count(*) FROM (SELECT 1 FROM postings p
                                  WHERE p.col = %s AND p.term = t.term LIMIT %s) x)
               FROM unnest(%s::text[]) AS t(term)""",
            (COLUMNS[column], MATCH_BUDGET + 1, list(dict.fromkeys(terms))))
        return {str(t): int(n) for t, n in rows if n}

    def languages(self) -> dict[str, int]:
        generation = self._store.generation()
        if self._languages is None or self._languages[0] != generation:
            rows = self._rows("SELECT lang, count(*) FROM documents GROUP BY lang", ())
            self._languages = (generation, {str(lang): int(n) for lang, n in rows})
        return self._languages[1]

    def chunk_terms(self, rowids: Sequence[int], column: Column = "terms") -> dict[int, list[str]]:
        name = "stems" if column == "stems" else "terms"  # a column name, never user input
        rows = self._rows(f"SELECT rowid, {name} FROM chunks WHERE rowid = ANY(%s)",
                          ([int(r) for r in rowids],))
        return {int(rid): str(text).split() for rid, text in rows}

    def chunk_count(self) -> int:
        return self._store.stats()[1]

    def document_frequencies(self, terms: Sequence[str], column: Column = "terms") -> dict[str, int]:
        rows = self._rows("SELECT term, count(*) FROM postings WHERE col = %s AND term = ANY(%s) "
                          "GROUP BY term", (COLUMNS[column], list(terms)))
        return {str(t): int(n) for t, n in rows}

    def noise_shares(self, rowids: Sequence[int]) -> dict[int, float]:
        if not rowids:
            return {}
        ids = [int(r) for r in rowids]
        chars: dict[int, int] = {}
        noisy: Counter[int] = Counter()
        for rid, n, captions in self._rows(
                "SELECT rowid, chars, caption_chars FROM chunks WHERE rowid = ANY(%s)", (ids,)):
            chars[int(rid)] = int(n)
            noisy[int(rid)] += int(captions)
        for rid, n in self._rows(_COPIED_SQL, (ids, SITE_BOILERPLATE_MIN_DOCUMENTS)):
            noisy[int(rid)] += int(n)
        return {rid: min(1.0, noisy[rid] / n) for rid, n in chars.items()}


_COPIED_SQL: Final = COPIED_SQL.format(among="= ANY(%s)", param="%s")  # the SQLite store's rule


class PgSearch:
    """The SearchBackend over a PgStore."""

    def __init__(self, store: PgStore, ef_search: int = DEFAULT_EF_SEARCH,
                 exact_below: int = DEFAULT_MIN_VECTORS) -> None:
        self._store = store
        self.lexical: LexicalIndex = PgLexical(store)
        self.ef_search = ef_search
        self.exact_below = exact_below

    def dense(self, qvec: np.ndarray, depth: int, cond: Condition) -> list[tuple[int, float]]:
        query = vector_text(np.asarray(qvec, dtype=np.float32).reshape(-1))
        ef = str(min(MAX_EF_SEARCH, max(self.ef_search, depth)))
        where, args = ("", ()) if cond.always else _sql(cond)
        source = "chunks c JOIN documents d ON d.id = c.document_id" if where else "chunks c"
        if self.exact_below == 0 or self._store.stats()[1] < self.exact_below:  # as FAISS: exact while small
            return self._exact(query, source, where, args, depth)
        rows = self._store.read_rows(
            f"""SELECT c.rowid, -(c.embedding <#> %s::halfvec) AS score FROM {source}
                {"WHERE " + where if where else ""}
                ORDER BY c.embedding <#> %s::halfvec LIMIT %s""",
            (query, *args, query, depth),
            settings={"hnsw.iterative_scan": "relaxed_order", "hnsw.ef_search": ef})
        # Relaxed order: re-sort; equal cosines go to the newer chunk, as in FAISS's exact search.
        hits = sorted(((int(r[0]), float(r[1])) for r in rows), key=lambda h: (-h[1], -h[0]))
        if len(hits) >= depth or not where:
            return hits
        # The graph scan stopped before ``depth`` chunks passed a selective filter.
        return self._exact(query, source, where, args, depth)

    def _exact(self, query: str, source: str, where: str, args: tuple[object, ...],
               depth: int) -> list[tuple[int, float]]:
        """The exact top ``depth``: the sort key is not the indexed expression, so no index is used."""
        rows = self._store.read_rows(
            f"""SELECT c.rowid, -(c.embedding <#> %s::halfvec) AS score FROM {source}
                {"WHERE " + where if where else ""}
                ORDER BY (c.embedding <#> %s::halfvec) + 0, c.rowid DESC LIMIT %s""",
            (query, *args, query, depth))
        return [(int(r[0]), float(r[1])) for r in rows]

    def allowed_among(self, rowids: Sequence[int], cond: Condition) -> set[int]:
        if cond.always:
            return set(rowids)
        where, args = _sql(cond)
        rows = self._store.read_rows(
            f"SELECT c.rowid FROM chunks c JOIN documents d ON d.id = c.document_id "
            f"WHERE c.rowid = ANY(%s) AND {where}", ([int(r) for r in rowids], *args))
        return {int(r[0]) for r in rows}

    def chunk_rows(self, rowids: Sequence[int]) -> ChunkVectors:
        rows = self._store.read_rows(f"SELECT rowid, id, {_FLOATS} FROM chunks WHERE rowid = ANY(%s)",
                                     ([int(r) for r in rowids],), binary=True)
        return {int(rid): (str(cid), np.asarray(vec, dtype=np.float32)) for rid, cid, vec in rows}

    def document_chunk_rows(self, document_ids: Sequence[str]) -> list[tuple[int, npt.NDArray[np.float32]]]:
        rows = self._store.read_rows(
            f"SELECT rowid, {_FLOATS} FROM chunks WHERE document_id = ANY(%s) ORDER BY rowid",
            (list(document_ids),), binary=True)
        return [(int(rid), np.asarray(vec, dtype=np.float32)) for rid, vec in rows]

    def best_sentence_cosines(self, rowids: Sequence[int], query: np.ndarray) -> dict[int, float]:
        return self._store.best_sentence_cosines(rowids, query)

    def passages(self, rowids: Sequence[int], scores: Sequence[float]) -> list[Passage]:
        return self._store.passages(rowids, scores)
