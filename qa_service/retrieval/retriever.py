"""The Retriever: turns a question (and its vector) into ranked, filtered passages.

Hybrid retrieval that knows the question's language (see README "Retrieval"):

1. Dense: inner product over the live FAISS generation.
2. What carries across languages: the question's numbers and Latin-script names
   (matched to Arabic words by consonant skeleton) raise the dense candidates that hold
   them by a small amount added to the cosine.
3. Lexical, same language: BM25 (SQLite FTS5) over the analysed, light-stemmed chunk
   text, counted only for passages written in the question's language. Lexical matching
   of an English question against Arabic text only promotes noise (Latin words quoted in
   Arabic articles), so it is never used across languages.
4. Sentences: the candidates of those rankings ordered by their best sentence's cosine to
   the question (the sentence vectors stored at ingestion), one more ranking. A news fact is
   one sentence in a chunk about something else; the chunk vector dilutes it, this does not.
5. Reciprocal-rank fusion of the rankings (optionally also: pseudo-relevance
   feedback, the best dense passages' own terms searched with BM25 — measured, off by
   default; and for a follow-up question, the chunks of the documents the previous answer
   cited, by cosine to the question: the conversation's prior), demotion of noisy chunks
   (captions, copied paragraphs, site furniture), and the recency policy: near-ties go to
   the newer article.

Filters are applied inside each ranking, never by shortening the result list.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np

from qa_service.models import Filters, Passage
from qa_service.retrieval.backend import FILTER_OVERSAMPLE, SearchBackend
from qa_service.retrieval.filters import Condition, condition
from qa_service.retrieval.fusion import Ranked, feedback_terms, recency_order, rrf
from qa_service.retrieval.lexical import Column, anchors, question_terms
from qa_service.retrieval.translit import arabic_skeletons, same_name
from qa_service.text import detect_language

Method = Literal["dense", "lexical", "naive", "hybrid"]

# Fused candidates beyond k that are re-ranked by noise and recency (a demoted chunk
# makes room for one below it).
FINAL_HEADROOM: Final = 20


@dataclass(frozen=True)
class RetrievalConfig:
    """How rankings are made and fused. Defaults are the measured best (see README)."""

    method: Method = "hybrid"
    candidates: int = 100  # depth of each ranking that is fused
    column: Column = "stems"  # Light10 / S-stemmed terms; "terms": unstemmed
    dense_weight: float = 1.0
    lexical_weight: float = 1.0  # BM25 with the question's own terms (same language only)
    number_boost: float = 0.02  # added to the cosine per question number found in a passage
    name_boost: float = 0.02  # ... per Latin-script name of the question found (transliterated)
    anchor_depth: int = 30  # how many dense candidates are checked for numbers and names
    prf_weight: float = 0.0  # pseudo-relevance feedback from the top dense passages (measured: off)
    prf_passages: int = 3
    prf_terms: int = 20
    prf_same_language: bool = False  # also use PRF when question and passage share a language
    noise_penalty: float = 0.5  # relevance x (1 - penalty x noise share of the chunk)
    recency_margin: float = 0.02  # relative relevance gap under which newer ranks first
    sentence_weight: float = 0.5  # the candidates ranked by their best sentence (measured: news dev)
    prior_weight: float = 1.0  # a follow-up's ranking of the chunks of documents cited before
    prior_depth: int = 20  # chunks of those documents that count, closest to the question first


class Retriever:
    """Hybrid retrieval over a backend's dense and lexical indexes (embedded or PostgreSQL)."""

    def __init__(self, backend: SearchBackend, config: RetrievalConfig | None = None) -> None:
        self._backend = backend
        self._lexical = backend.lexical
        self.config = config or RetrievalConfig()

    def retrieve(self, question: str, qvec: np.ndarray, k: int,
                 filters: Filters | None = None, config: RetrievalConfig | None = None,
                 prior: Sequence[str] = ()) -> list[Passage]:
        """The ``k`` best passages for ``question`` (``qvec``: its query embedding, shape (1, dim)).

        ``prior``: documents the conversation cited before (a follow-up question); their chunks,
        closest to the question first, are fused as one more ranking.
        """
        cfg = config or self.config
        cond = condition(filters)
        depth = max(cfg.candidates, k)
        dense = self._dense(qvec, depth, cond) if cfg.method != "lexical" else []
        rankings = self._rankings(question, dense, depth, cond, cfg)
        if prior and cfg.prior_weight > 0:
            rankings.append((self._prior(prior, qvec, cond, cfg), cfg.prior_weight))
        if cfg.method == "hybrid" and cfg.sentence_weight > 0:
            rankings.append((self._by_sentence(rankings, qvec), cfg.sentence_weight))
        fused = rrf(rankings)
        if not fused:
            return []
        return self._passages(fused, dict(dense), qvec, k, cfg)

    # -- rankings ----------------------------------------------------------------------

    def _rankings(self, question: str, dense: list[tuple[int, float]], depth: int,
                  cond: Condition, cfg: RetrievalConfig) -> list[tuple[list[int], float]]:
        dense_ids = [rid for rid, _ in dense]
        if cfg.method == "dense":
            return [(dense_ids, 1.0)]
        terms = question_terms(question, cfg.column)
        if cfg.method in ("lexical", "naive"):  # language-blind baselines
            lexical = [h.rowid for h in self._lexical.search(terms, depth, cfg.column, cond)]
            return [(lexical, 1.0)] if cfg.method == "lexical" else [(dense_ids, 1.0), (lexical, 1.0)]
        lang = detect_language(question)
        if cfg.number_boost > 0 or cfg.name_boost > 0:
            dense_ids = self._anchored(question, dense, cfg)
        rankings = [(dense_ids, cfg.dense_weight),
                    (self._same_language(terms, lang, depth, cond, cfg), cfg.lexical_weight)]
        if cfg.prf_weight > 0:
            prf_cond = cond if cfg.prf_same_language else cond.also("d.lang != ?", lang)
            rankings.append((self._feedback(dense_ids, terms, depth, prf_cond, cfg), cfg.prf_weight))
        return rankings

    def _same_language(self, terms: list[str], lang: str, depth: int, cond: Condition,
                       cfg: RetrievalConfig) -> list[int]:
        """BM25 ranking among passages written in the question's language."""
        languages = self._lexical.languages()
        if not languages.get(lang):
            return []  # e.g. an English question over an Arabic-only collection
        if set(languages) != {lang}:  # a mixed collection: keep to the question's language
            cond = cond.also("d.lang = ?", lang)
        return [h.rowid for h in self._lexical.search(terms, depth, cfg.column, cond)]

    def _anchored(self, question: str, dense: list[tuple[int, float]],
                  cfg: RetrievalConfig) -> list[int]:
        """The dense ranking, with candidates that hold the question's numbers or names raised.

        Numbers and Latin-script names are what an English question shares with Arabic text
        ("Denver" / "دنفر" by consonant skeleton). Each one found in a passage adds a small
        boost to its cosine, so it decides between passages the dense model rates about
        equally, never against a clear dense margin. Only the top ``anchor_depth`` dense
        candidates are looked at.
        """
        numbers, names = anchors(question)
        window = dense[:cfg.anchor_depth]
        if not (numbers or names) or not window:
            return [rid for rid, _ in dense]
        terms = self._lexical.chunk_terms([rid for rid, _ in window], "terms")
        scored: list[tuple[float, int]] = []
        for rid, cosine in window:
            present = set(terms.get(rid, ()))
            found_numbers = sum(1 for n in numbers if n in present)
            skeletons = {s for t in present for s in arabic_skeletons(t)} if names else set()
            found_names = sum(1 for name in names if same_name(name, skeletons))
            scored.append((cosine + cfg.number_boost * found_numbers + cfg.name_boost * found_names, rid))
        scored.sort(key=lambda item: item[0], reverse=True)  # stable: ties keep dense order
        return [rid for _, rid in scored] + [rid for rid, _ in dense[cfg.anchor_depth:]]

    def _prior(self, documents: Sequence[str], qvec: np.ndarray, cond: Condition,
               cfg: RetrievalConfig) -> list[int]:
        """The chunks of ``documents`` that ``cond`` allows, closest to the question first."""
        rows = self._backend.document_chunk_rows(documents)
        if not cond.always:
            allowed = self._backend.allowed_among([rid for rid, _ in rows], cond)
            rows = [(rid, v) for rid, v in rows if rid in allowed]
        if not rows:
            return []
        query = np.asarray(qvec, dtype=np.float32).reshape(-1)
        scores = np.stack([v for _, v in rows]) @ query
        order = np.argsort(-scores, kind="stable")[:cfg.prior_depth]
        return [rows[i][0] for i in order]

    def _by_sentence(self, rankings: list[tuple[list[int], float]], qvec: np.ndarray) -> list[int]:
        """The candidates of ``rankings`` (already filtered) by their best sentence's cosine to the
        question; chunks stored without sentence vectors (or another model's) are left out."""
        candidates = sorted({rid for ids, _ in rankings for rid in ids})
        best = self._backend.best_sentence_cosines(candidates, qvec)
        return sorted(best, key=best.__getitem__, reverse=True)

    def _feedback(self, dense_ids: list[int], terms: list[str], depth: int, cond: Condition,
                  cfg: RetrievalConfig) -> list[int]:
        """BM25 ranking for terms taken from the best dense passages that ``cond`` allows."""
        window = dense_ids[:cfg.prf_passages * FILTER_OVERSAMPLE]
        allowed = self._backend.allowed_among(window, cond)
        top = [rid for rid in window if rid in allowed][:cfg.prf_passages]
        if not top:
            return []
        by_id = self._lexical.chunk_terms(top, cfg.column)
        docs = [by_id.get(rid, []) for rid in top]
        vocabulary = sorted({t for d in docs for t in d})
        df = self._lexical.document_frequencies(vocabulary, cfg.column)
        expansion = feedback_terms(docs, df, self._lexical.chunk_count(), cfg.prf_terms,
                                   exclude=frozenset(terms))
        return [h.rowid for h in self._lexical.search(expansion, depth, cfg.column, cond)]

    def _dense(self, qvec: np.ndarray, depth: int, cond: Condition) -> list[tuple[int, float]]:
        """Top ``depth`` (chunk id, cosine) allowed by ``cond``."""
        return self._backend.dense(qvec, depth, cond)

    # -- final list --------------------------------------------------------------------

    def _passages(self, fused: dict[int, float], cosine: dict[int, float], qvec: np.ndarray,
                  k: int, cfg: RetrievalConfig) -> list[Passage]:
        """Demote noise, apply the recency policy, and attach attribution and cosines."""
        head = sorted(fused, key=fused.__getitem__, reverse=True)[:k + FINAL_HEADROOM]
        # The baselines (dense, lexical, naive) are measured as they are: no noise rule.
        hybrid = cfg.method == "hybrid"
        noise = self._lexical.noise_shares(head) if hybrid and cfg.noise_penalty > 0 else {}
        rows = self._backend.chunk_rows(head)  # chunks deleted meanwhile are absent
        query = np.asarray(qvec, dtype=np.float32).reshape(-1)
        for rid, (_, vector) in rows.items():
            if rid not in cosine:  # found only lexically
                cosine[rid] = float(vector @ query)
        live = [rid for rid in head if rid in rows]
        by_chunk = {p.chunk_id: p for p in self._backend.passages(live, [cosine[r] for r in live])}
        by_rowid = {rid: by_chunk[rows[rid][0]] for rid in live if rows[rid][0] in by_chunk}
        ranked = [Ranked(rid, fused[rid] * (1.0 - cfg.noise_penalty * noise.get(rid, 0.0)),
                         by_rowid[rid].published_at) for rid in live if rid in by_rowid]
        if hybrid:
            ranked = recency_order(ranked, cfg.recency_margin)
        else:
            ranked.sort(key=lambda r: r.relevance, reverse=True)
        return [by_rowid[r.rowid] for r in ranked[:k]]
