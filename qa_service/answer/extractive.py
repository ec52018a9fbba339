"""Extractive composer: answers with verbatim evidence sentences from the retrieved passages.

Deterministic and offline. Each evidence sentence is scored by the retrieval score of
its passage, its word overlap with the question (after Arabic normalisation), and
whether it holds the kind of thing the question asks for (a quantity for "how many").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from qa_service.answer.base import ComposeInput, Composition
from qa_service.models import Citation, Passage
from qa_service.text import extract_numbers, split_sentences, tokenize

# Weights of the sentence score; retrieval cosine is the base (e5 cosines sit in 0.7-0.9).
OVERLAP_WEIGHT = 0.10
TYPE_MATCH_WEIGHT = 0.05
RANK_PENALTY = 0.02
PASSAGES_CONSIDERED = 3
SECOND_CITATION_MARGIN = 0.01
YEAR_RANGE = (1800, 2100)

QUANTITY_QUESTION = re.compile(r"\b(how many|how much|number of)\b|(^|\s)كم(\s|$)|عدد", re.IGNORECASE)

ABSTAIN = {
    "en": "The collection does not contain an answer to this question.",
    "ar": "لا تحتوي المجموعة على إجابة عن هذا السؤال.",
}


@dataclass(frozen=True)
class _Candidate:
    passage: Passage
    start: int  # document offsets
    end: int
    score: float


class ExtractiveComposer:
    name = "extractive"

    def __init__(self, min_score: float) -> None:
        self.min_score = min_score

    def compose(self, request: ComposeInput) -> Composition:
        lang = "ar" if request.question_lang == "ar" else "en"
        passages = list(request.passages)
        if not passages or passages[0].score < self.min_score:
            return Composition(ABSTAIN[lang], None, lang, abstained=True)
        candidates = sorted(self._candidates(request.question, passages),
                            key=lambda c: c.score, reverse=True)
        if not candidates:
            return Composition(ABSTAIN[lang], None, lang, abstained=True)
        chosen = [candidates[0]]
        for c in candidates[1:]:
            if c.score < candidates[0].score - SECOND_CITATION_MARGIN:
                break
            if c.passage.document_id != chosen[0].passage.document_id:
                chosen.append(c)
                break
        short = _short_answer(request.question, chosen[0])
        return _render(lang, short, chosen)

    def _candidates(self, question: str, passages: list[Passage]) -> list[_Candidate]:
        q_terms = set(tokenize(question))
        wants_quantity = bool(QUANTITY_QUESTION.search(question))
        out: list[_Candidate] = []
        for rank, p in enumerate(passages[:PASSAGES_CONSIDERED]):
            for s, e in split_sentences(p.text):
                sentence = p.text[s:e]
                terms = set(tokenize(sentence))
                overlap = len(q_terms & terms) / len(q_terms) if q_terms else 0.0
                type_match = wants_quantity and _quantity(sentence) is not None
                score = (p.score + OVERLAP_WEIGHT * overlap + TYPE_MATCH_WEIGHT * type_match
                         - RANK_PENALTY * rank)
                out.append(_Candidate(p, p.start + s, p.start + e, score))
        return out


def _quantity(sentence: str) -> str | None:
    """First number in the sentence that is not a year, as written."""
    for value, s, e in extract_numbers(sentence):
        if value.is_integer() and YEAR_RANGE[0] <= value <= YEAR_RANGE[1]:
            continue
        return sentence[s:e]
    return None


def _short_answer(question: str, c: _Candidate) -> str | None:
    if not QUANTITY_QUESTION.search(question):
        return None
    sentence = c.passage.text[c.start - c.passage.start:c.end - c.passage.start]
    return _quantity(sentence)


def _attribution(lang: str, p: Passage) -> str:
    date = (p.published_at or "")[:10]
    source = p.source or p.title or ("the collection" if lang == "en" else "المجموعة")
    if lang == "ar":
        return f"بحسب {source}" + (f" ({date})" if date else "")
    return f"According to {source}" + (f" ({date})" if date else "")


def _render(lang: str, short: str | None, chosen: list[_Candidate]) -> Composition:
    parts: list[str] = []
    citations: list[Citation] = []
    length = 0
    if short:
        parts.append(f"{short}.")
        length = len(parts[0]) + 1
    for n, c in enumerate(chosen, start=1):
        p = c.passage
        quote = p.text[c.start - p.start:c.end - p.start]
        open_q, close_q = ("«", "»") if lang == "ar" else ("“", "”")
        claim = f"{_attribution(lang, p)}: {open_q}{quote}{close_q}"
        citations.append(Citation(
            n=n, document_id=p.document_id, chunk_id=p.chunk_id, title=p.title, url=p.url,
            source=p.source, published_at=p.published_at, lang=p.lang, quote=quote,
            start=c.start, end=c.end, answer_start=length, answer_end=length + len(claim),
            score=round(c.score, 4),
        ))
        part = f"{claim} [{n}]"
        parts.append(part)
        length += len(part) + 1
    return Composition(" ".join(parts), short, lang, abstained=False, citations=citations)
