"""Lexical index and news-noise bookkeeping, kept in the store's SQLite database.

Three tables, written in the same transaction as the chunks they describe (``Store.write``
calls ``add_chunks``; ``Store._delete_chunks`` calls ``delete_chunks``):

* ``lexical`` — an FTS5 table (``lexical_vocab``: its term statistics) whose rowid is
  the chunk rowid (= the FAISS id). It holds the chunk's *analysed* text, not the stored
  text: ``tokenize`` terms (normalised, stopwords dropped, numbers canonical) in column
  ``terms`` and their light stems in column ``stems``. Caption/credit lines are left out.
* ``chunk_noise`` — per chunk, how many of its characters are caption, credit or
  navigation lines ("… / رويترز", "للمزيد: …", "*نقلاً عن …", separator rules).
* ``paragraphs`` — a hash of every long-enough line (paragraph) of each chunk, so that a
  paragraph pasted verbatim into many articles can be recognised at query time and
  credited to its first article only (see ``LexicalSearcher.noise_shares``).

The analysed text is derived data: ``ANALYZER_VERSION`` is recorded in ``meta`` and a
store written by another version is re-analysed from its chunks on open
(``Store._ensure_lexical`` calls ``reanalyse``).
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from qa_service.text import light_stem, normalize, tokenize

# Schema migration (appended to ``sqlite_store.MIGRATIONS``). ``tokenchars '.'`` keeps
# decimal numbers ("2.5") whole; terms are already normalised, so no further folding.
LEXICAL_MIGRATION: Final = """
    CREATE VIRTUAL TABLE lexical USING fts5(
        terms, stems, tokenize = "unicode61 remove_diacritics 0 tokenchars '.'"
    );
    CREATE TABLE chunk_noise(
        rowid INTEGER PRIMARY KEY, chars INTEGER NOT NULL, caption_chars INTEGER NOT NULL
    );
    CREATE TABLE paragraphs(
        hash TEXT NOT NULL, document_id TEXT NOT NULL, chunk_rowid INTEGER NOT NULL,
        chars INTEGER NOT NULL
    );
    CREATE INDEX paragraphs_by_hash ON paragraphs(hash, document_id);
    CREATE INDEX paragraphs_by_chunk ON paragraphs(chunk_rowid);
    CREATE INDEX documents_by_source ON documents(source, published_at);
    CREATE INDEX documents_by_published ON documents(published_at)
"""

# Document frequency of each term per column, read straight from the FTS5 index
# (pseudo-relevance feedback weighs expansion terms by their rarity).
# Covering indexes: filters and the language split read these columns without touching the
# document rows (whose long ``text`` would be read through on every lookup).
VOCABULARY_MIGRATION: Final = """
    CREATE VIRTUAL TABLE lexical_vocab USING fts5vocab(lexical, 'col');
    CREATE INDEX documents_attributes ON documents(id, lang, source, published_at);
    CREATE INDEX documents_by_lang ON documents(lang)
"""

# Bump when the analysis (terms, stems, caption rules, paragraph keys) changes.
ANALYZER_VERSION: Final = "2"
ANALYZER_META_KEY: Final = "lexical_analyzer"

# A line shorter than this (after normalisation) is never treated as a shared paragraph:
# short lines ("اقرأ أيضاً:", list items) repeat by chance.
MIN_PARAGRAPH_CHARS: Final = 40
# A paragraph found in at least this many articles is site furniture (app promotions,
# disclaimers) and is noise even in the article that carried it first.
SITE_BOILERPLATE_MIN_DOCUMENTS: Final = 20
# Caption/credit/navigation lines are short.
CAPTION_MAX_WORDS: Final = 15

# Markers of a caption, photo credit or navigation line, matched on normalised text.
_CAPTION_PREFIX_RE: Final = re.compile(
    r"^[\W_]*(للمزيد|اقرا ايضا|اقرا المزيد|قد يهمك|نقلا عن|مصدر الصوره|تعليق علي الصوره|"
    r"الصوره|صوره ارشيفيه|صوره من|شاهد ايضا|شاهد|تم التحديث|تم النشر|اخر تحديث|تاريخ النشر|"
    r"read more|related|photo|image|file photo|updated|published|last updated)\b"
)
_CAPTION_SUFFIX_RE: Final = re.compile(
    r"(/|\(|-|–|:)\s*(رويترز|ا ف ب|افب|اب|ا ب|afp|reuters|ap|epa|getty images|getty|"
    r"الاناضول|وكالات|ارشيفيه)\s*\)?\.?$"
)
_CREDIT_RE: Final = re.compile(r"(getty images|مصدر الصوره|تعليق علي الصوره)")
_HAS_WORD_RE: Final = re.compile(r"[^\W_]")
_LINE_RE: Final = re.compile(r"[^\n]+")


def analyse(text: str) -> tuple[str, str]:
    """The ``terms`` and ``stems`` columns for a piece of text."""
    terms = tokenize(text)
    return " ".join(terms), " ".join(light_stem(t) for t in terms)


def is_caption(line: str) -> bool:
    """Whether one line is a caption, photo credit, dateline, navigation hint or a separator rule."""
    key = normalize(line)
    if not key:
        return False
    if not _HAS_WORD_RE.search(key):
        return True  # "-----", "×××": rules between article parts
    if len(key.split()) > CAPTION_MAX_WORDS:
        return False
    return bool(_CAPTION_PREFIX_RE.search(key) or _CAPTION_SUFFIX_RE.search(key)
                or _CREDIT_RE.search(key))


def paragraph_key(line: str) -> str | None:
    """Hash of a line's matching key, or None when it is too short to count as a paragraph."""
    key = normalize(line)
    if len(key) < MIN_PARAGRAPH_CHARS:
        return None
    return hashlib.blake2b(key.encode(), digest_size=12).hexdigest()


@dataclass(frozen=True)
class ChunkRow:
    """What ``add_chunks`` needs of a chunk just inserted into the store."""

    rowid: int
    start: int
    end: int


@dataclass(frozen=True)
class ChunkAnalysis:
    """The lexical rows of one chunk: analysed text, caption share and paragraph keys."""

    rowid: int
    terms: str
    stems: str
    chars: int
    caption_chars: int
    paragraphs: tuple[tuple[str, int], ...]  # (paragraph key, characters of it in this chunk)


def analyse_chunks(title: str | None, text: str, chunks: Sequence[ChunkRow]) -> list[ChunkAnalysis]:
    """Analyse the chunks of one document (both stores index exactly this)."""
    lines = [(m.start(), m.end()) for m in _LINE_RE.finditer(text)]
    captions = {span for span in lines if is_caption(text[span[0]:span[1]])}
    keys = {span: paragraph_key(text[span[0]:span[1]]) for span in lines if span not in captions}
    out: list[ChunkAnalysis] = []
    for chunk in chunks:
        body: list[str] = [title] if title else []
        caption_chars = 0
        paragraphs: list[tuple[str, int]] = []
        for s, e in lines:
            lo, hi = max(s, chunk.start), min(e, chunk.end)
            if lo >= hi:
                continue
            if (s, e) in captions:
                caption_chars += hi - lo
                continue
            body.append(text[lo:hi])
            key = keys.get((s, e))
            if key is not None:
                paragraphs.append((key, hi - lo))
        terms, stems = analyse("\n".join(body))
        out.append(ChunkAnalysis(chunk.rowid, terms, stems, max(1, chunk.end - chunk.start),
                                 caption_chars, tuple(paragraphs)))
    return out


def add_chunks(tx: sqlite3.Connection, document_id: str, title: str | None, text: str,
               chunks: Sequence[ChunkRow]) -> None:
    """Index chunks of one document (call inside the transaction that inserted them)."""
    for row in analyse_chunks(title, text, chunks):
        tx.executemany("INSERT INTO paragraphs VALUES (?,?,?,?)",
                       [(key, document_id, row.rowid, chars) for key, chars in row.paragraphs])
        tx.execute("INSERT INTO lexical(rowid, terms, stems) VALUES (?,?,?)",
                   (row.rowid, row.terms, row.stems))
        tx.execute("INSERT INTO chunk_noise VALUES (?,?,?)", (row.rowid, row.chars, row.caption_chars))


def delete_chunks(tx: sqlite3.Connection, rowids: Sequence[int]) -> None:
    """Remove chunks from the lexical tables (same transaction as the chunk delete)."""
    for i in range(0, len(rowids), 500):
        batch = list(rowids[i:i + 500])
        marks = ",".join("?" * len(batch))
        tx.execute(f"DELETE FROM lexical WHERE rowid IN ({marks})", batch)
        tx.execute(f"DELETE FROM chunk_noise WHERE rowid IN ({marks})", batch)
        tx.execute(f"DELETE FROM paragraphs WHERE chunk_rowid IN ({marks})", batch)


def reanalyse(tx: sqlite3.Connection) -> int:
    """Rebuild all three tables from the stored chunks; returns the number of chunks."""
    tx.execute("DELETE FROM lexical")
    tx.execute("DELETE FROM chunk_noise")
    tx.execute("DELETE FROM paragraphs")
    count = 0
    docs = tx.execute("SELECT id, title, text FROM documents").fetchall()
    for doc_id, title, text in docs:
        rows = [ChunkRow(int(r[0]), int(r[1]), int(r[2])) for r in tx.execute(
            'SELECT rowid, start, "end" FROM chunks WHERE document_id = ? ORDER BY ord', (doc_id,))]
        add_chunks(tx, doc_id, title, text, rows)
        count += len(rows)
    tx.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (ANALYZER_META_KEY, ANALYZER_VERSION))
    return count
