"""Lexical (BM25) search over the store's FTS5 table, and the query-side term analysis."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from qa_service.retrieval.filters import Condition
from qa_service.retrieval.translit import MIN_SKELETON, latin_skeleton
from qa_service.store.lexical import SITE_BOILERPLATE_MIN_DOCUMENTS
from qa_service.store.sqlite_store import Store
from qa_service.text import light_stem, tokenize, tokenize_with_spans

Column = Literal["terms", "stems"]

# SQLite caps bound parameters; candidate lists are far shorter, but batch to be safe.
SQL_BATCH: Final = 500
# Most matching rows one BM25 query may score (~1 µs each in FTS5; see ``search``).
MATCH_BUDGET: Final = 3000

_LATIN_TERM_RE: Final = re.compile(r"[a-z][a-z0-9.]*")
_NUMBER_TERM_RE: Final = re.compile(r"[0-9][0-9.]*")
_WORD_RE: Final = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class LexicalHit:
    rowid: int
    score: float  # BM25, larger is better


def question_terms(question: str, column: Column) -> list[str]:
    """Distinct lexical terms of a question in the analysis of ``column``, in order."""
    terms = tokenize(question)
    if column == "stems":
        terms = [light_stem(t) for t in terms]
    return list(dict.fromkeys(terms))


def anchors(question: str) -> tuple[list[str], list[str]]:
    """What carries across languages: the question's numbers, and the consonant skeletons
    of its Latin-script names (capitalised words other than the first).

    "How many points did the Panthers give up in 2015?" → (["2015"], ["bntrs"]).
    """
    first_word = _WORD_RE.search(question)
    first = first_word.start() if first_word else 0
    numbers: list[str] = []
    names: list[str] = []
    for term, start, _ in tokenize_with_spans(question):
        if _NUMBER_TERM_RE.fullmatch(term):
            numbers.append(term)
        elif _LATIN_TERM_RE.fullmatch(term) and start > first and question[start].isupper():
            skeleton = latin_skeleton(term)
            if len(skeleton) >= MIN_SKELETON:
                names.append(skeleton)
    return list(dict.fromkeys(numbers)), list(dict.fromkeys(names))


def match_expression(terms: Sequence[str], column: Column) -> str:
    """An FTS5 query matching any of ``terms`` in ``column`` (terms are quoted verbatim)."""
    quoted = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
    return f"{column} : ({quoted})"


def affordable(terms: Sequence[str], df: Mapping[str, int]) -> list[str]:
    """The rarest of ``terms`` (``df``: their document frequencies) whose matches fit the budget."""
    kept: list[str] = []
    spent = 0
    for term in sorted((t for t in terms if df.get(t)), key=lambda t: df[t]):
        spent += df[term]
        if spent > MATCH_BUDGET:
            break
        kept.append(term)
    return kept


class LexicalSearcher:
    """BM25 queries, term statistics and noise shares, over one store."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._languages: tuple[int, dict[str, int]] | None = None

    def search(self, terms: Sequence[str], limit: int, column: Column = "terms",
               cond: Condition | None = None) -> list[LexicalHit]:
        """Top ``limit`` chunks by BM25 for any of ``terms``, among those ``cond`` allows.

        FTS5 scores every matching row (about a microsecond each), so the query keeps the
        rarest terms whose matches add up to at most ``MATCH_BUDGET`` rows. A term in that
        many chunks has a small IDF and changes the top of the ranking little; when every
        term is that common, the lexical ranking is skipped and dense search decides.
        """
        if not terms or limit <= 0:
            return []
        kept = self._affordable(terms, column)
        if not kept:
            return []
        expr = match_expression(kept, column)
        if cond is None or cond.always:
            rows = self._store.reader().execute(
                "SELECT rowid, rank FROM lexical WHERE lexical MATCH ? ORDER BY rank LIMIT ?",
                (expr, limit))
        else:
            rows = self._store.reader().execute(
                "SELECT l.rowid, l.rank FROM lexical l JOIN chunks c ON c.rowid = l.rowid "
                f"JOIN documents d ON d.id = c.document_id WHERE lexical MATCH ? AND {cond.sql} "
                "ORDER BY l.rank LIMIT ?", (expr, *cond.args, limit))
        # FTS5's rank is -BM25 (smaller is better); report BM25 itself.
        return [LexicalHit(int(r[0]), -float(r[1])) for r in rows]

    def _affordable(self, terms: Sequence[str], column: Column) -> list[str]:
        """The rarest of ``terms`` (present in the index) within the match budget."""
        return affordable(terms, self.document_frequencies(terms, column))

    def languages(self) -> dict[str, int]:
        """Number of documents per language (``lang``), cached per store generation."""
        generation = self._store.generation()
        if self._languages is None or self._languages[0] != generation:
            rows = self._store.reader().execute(
                "SELECT lang, count(*) FROM documents GROUP BY lang").fetchall()
            self._languages = (generation, {str(lang): int(n) for lang, n in rows})
        return self._languages[1]

    def chunk_terms(self, rowids: Sequence[int], column: Column = "terms") -> dict[int, list[str]]:
        """The analysed terms of each chunk (for pseudo-relevance feedback)."""
        out: dict[int, list[str]] = {}
        conn = self._store.reader()
        for i in range(0, len(rowids), SQL_BATCH):
            batch = list(rowids[i:i + SQL_BATCH])
            marks = ",".join("?" * len(batch))
            for rid, text in conn.execute(
                    f"SELECT rowid, {column} FROM lexical WHERE rowid IN ({marks})", batch):
                out[int(rid)] = str(text).split()
        return out

    def chunk_count(self) -> int:
        """Number of indexed chunks."""
        return int(self._store.reader().execute("SELECT count(*) FROM chunk_noise").fetchone()[0])

    def document_frequencies(self, terms: Sequence[str], column: Column = "terms") -> dict[str, int]:
        """In how many chunks each term occurs (terms found nowhere are absent)."""
        conn = self._store.reader()
        df: dict[str, int] = {}
        for i in range(0, len(terms), SQL_BATCH):
            batch = list(terms[i:i + SQL_BATCH])
            marks = ",".join("?" * len(batch))
            df.update((str(t), int(n)) for t, n in conn.execute(
                f"SELECT term, doc FROM lexical_vocab WHERE col = ? AND term IN ({marks})",
                [column, *batch]))
        return df

    def noise_shares(self, rowids: Sequence[int]) -> dict[int, float]:
        """Share (0-1) of each chunk's text that is noise.

        Noise is caption/credit/navigation lines, plus paragraphs that also appear in other
        articles where this article is not the first one to carry them (earliest
        ``published_at``, then first ingested), plus paragraphs found in so many articles
        that they are site furniture.
        """
        if not rowids:
            return {}
        conn = self._store.reader()
        shares: dict[int, float] = {}
        for i in range(0, len(rowids), SQL_BATCH):
            batch = list(rowids[i:i + SQL_BATCH])
            marks = ",".join("?" * len(batch))
            chars: dict[int, int] = {}
            noisy: Counter[int] = Counter()
            for rid, n, captions in conn.execute(
                    f"SELECT rowid, chars, caption_chars FROM chunk_noise WHERE rowid IN ({marks})",
                    batch):
                chars[int(rid)] = int(n)
                noisy[int(rid)] += int(captions)
            for rid, n in conn.execute(COPIED_SQL.format(among=f"IN ({marks})", param="?"),
                                       [*batch, SITE_BOILERPLATE_MIN_DOCUMENTS]):
                noisy[int(rid)] += int(n)
            for rid, n in chars.items():
                shares[rid] = min(1.0, noisy[rid] / n)
        return shares


# Paragraph occurrences of the given chunks that are copies: the paragraph is held by
# another document that carried it first, or by so many documents that it is furniture.
# ``{among}``: the dialect's test for "one of the given chunks"; ``{param}``: its placeholder.
COPIED_SQL: Final = """
    SELECT p.chunk_rowid, p.chars FROM paragraphs p
    JOIN documents me ON me.id = p.document_id
    WHERE p.chunk_rowid {among} AND (
        EXISTS (
            SELECT 1 FROM paragraphs q JOIN documents other ON other.id = q.document_id
            WHERE q.hash = p.hash AND q.document_id != p.document_id AND (
                coalesce(other.published_at, '9999') < coalesce(me.published_at, '9999')
                OR (coalesce(other.published_at, '9999') = coalesce(me.published_at, '9999')
                    AND q.chunk_rowid < p.chunk_rowid)))
        OR (SELECT count(DISTINCT q.document_id) FROM paragraphs q WHERE q.hash = p.hash) >= {param}
    )
"""


def document_chunk_rows(store: Store, document_ids: Sequence[str]
                        ) -> list[tuple[int, npt.NDArray[np.float32]]]:
    """(rowid, stored vector) of every chunk of the given documents."""
    out: list[tuple[int, npt.NDArray[np.float32]]] = []
    conn = store.reader()
    for i in range(0, len(document_ids), SQL_BATCH):
        batch = list(document_ids[i:i + SQL_BATCH])
        marks = ",".join("?" * len(batch))
        for rid, blob in conn.execute(
                f"SELECT rowid, vector FROM chunks WHERE document_id IN ({marks}) ORDER BY rowid", batch):
            out.append((int(rid), np.frombuffer(blob, dtype=np.float32)))
    return out


def chunk_rows(store: Store, rowids: Sequence[int]) -> dict[int, tuple[str, npt.NDArray[np.float32]]]:
    """Chunk id and stored vector of each chunk among ``rowids`` that still exists."""
    out: dict[int, tuple[str, npt.NDArray[np.float32]]] = {}
    conn = store.reader()
    for i in range(0, len(rowids), SQL_BATCH):
        batch = list(rowids[i:i + SQL_BATCH])
        marks = ",".join("?" * len(batch))
        for rid, cid, blob in conn.execute(
                f"SELECT rowid, id, vector FROM chunks WHERE rowid IN ({marks})", batch):
            out[int(rid)] = (str(cid), np.frombuffer(blob, dtype=np.float32))
    return out
