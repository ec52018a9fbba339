"""Extractive composer: answers with verbatim evidence sentences from the retrieved passages.

Deterministic and offline. Every sentence of the top passages is an evidence candidate,
scored by

* its passage's retrieval score, less a small penalty per rank;
* how much of the question it holds: the question's light-stemmed terms, each weighted
  by how rare it is among the candidate sentences (a term every sentence shares says
  little about which one answers);
* whether it holds the kind of thing asked for (a count for "how many" / "كم", a date
  for "when" / "متى", a name next to the question's words for "who" / "where");
* for a question that names a year, whether the sentence or its article is from then;
* with ``QA_SENTENCE_VECTORS`` (the default), the cosine of the question's query vector
  (the one retrieval used) with the sentence's own vector, embedded at ingestion and read
  for the top passages in one query. It decides which sentence of a passage answers far
  better than words or token vectors (XQuAD test, English questions over Arabic text:
  0.51 → 0.61 of first citations hold the answer; Arabic questions 0.72 → 0.75). When
  any of the top passages has no sentence vectors (ingested with the setting off), none
  of them count. It only chooses the sentence: abstention and citation scores use the
  score without it, so the thresholds hold for collections with and without vectors.

The best sentence is quoted verbatim with its attribution; its short answer (a span of
that sentence) leads the answer. News changes: when the top evidence gives different
figures on different dates, the newest leads "as of" its date and the older one follows
with its own citation. Below ``min_score`` the composer abstains instead of guessing.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Final

from qa_service.answer.base import ComposeInput, Composition, SentenceLookup
from qa_service.answer.crosslingual import SentenceSimilarity
from qa_service.answer.forms import english_form
from qa_service.answer.injection import addresses_a_model
from qa_service.answer.layout import PARAGRAPH_BREAK
from qa_service.answer.question import Kind, Question, analyse, stemmed_terms, years_in
from qa_service.answer.short import figure_value, may_answer, short_answer
from qa_service.embedding.base import Vectors
from qa_service.models import Citation, Passage
from qa_service.text import script_ratio, split_sentences, tokenize

# Sentence score = retrieval score - RANK_PENALTY * rank + the weights below times their
# feature in [0, 1]. Retrieval cosines of the default model sit in 0.7-0.9, so these are
# tie-breakers among good passages more than overrides of retrieval. Tuned on the XQuAD
# dev split (`python -m qa_service.bench.answers`).
OVERLAP_WEIGHT: Final = 0.2
# Token-vector match of question and sentence, for sentences in another language than the
# question (see answer/crosslingual.py); its values spread over about 0.1-0.35.
MATCH_WEIGHT: Final = 0.6
TYPE_MATCH_WEIGHT: Final = 0.03
# A sentence without a figure cannot answer "how many" or "when": a larger weight there
# (XQuAD dev: within 0.5 point of the best; real news needs it, see test_end_to_end).
FIGURE_MATCH_WEIGHT: Final = 0.08
TIME_MATCH_WEIGHT: Final = 0.05
# Cosine of the question's query vector with the sentence's own vector (stored at ingestion,
# QA_SENTENCE_VECTORS). Cosines of the default model sit in 0.7-0.9 and differ by a few
# hundredths between sentences of one passage, so a large weight is needed for them to
# decide. Tuned on the XQuAD dev split: with the gold paragraph given, 2.0 was best of 0-5;
# end to end (`qa-service bench answers`, top 5 passages, never abstaining) 2.0 was best of
# 0.5-6 for both directions together (dev EN→AR 0.494 → 0.588, AR→AR 0.722 → 0.730;
# 1.5 and 2.5-3 within 0.005).
SENTENCE_VECTOR_WEIGHT: Final = 2.0
# Answerability counts the cosine too (it separates answerable from unanswerable better:
# balanced accuracy of the abstention decision on the XQuAD test half 0.78 -> 0.80 AR→AR,
# 0.62 -> 0.67 EN→AR), relative to the cosine typical of evidence at the threshold, so one
# pair of thresholds (QA_MIN_ANSWER_SCORE*) serves stores with and without sentence vectors.
# Fitted on the dev split (`qa-service bench answers`): with these centres the thresholds
# calibrate to 0.94 / 0.95 with vectors, as they do without.
COSINE_CENTRE: Final = 0.83
# An English question over Arabic evidence: its plain score (passage cosine across languages,
# static token match) tells little, the sentence cosine much more, so abstention weighs the
# cosine 8x the plain score there (a logistic fit on the dev split gave 8.0 for same-language
# 1.8, kept at 2). XQuAD test half, EN→AR: the answer-or-abstain decision is right for 0.707
# of the questions instead of 0.672, and answerable ones get a correct citation instead of a
# refusal or a wrong one 0.49 of the time instead of 0.43. Centred so the threshold stays 0.95.
CONFIDENCE_COSINE_WEIGHT_CROSS_LINGUAL: Final = 8.0
COSINE_CENTRE_CROSS_LINGUAL: Final = 0.785
RANK_PENALTY: Final = 0.005
# Passages whose sentences are considered (the rest are too far down to lead an answer).
PASSAGES_CONSIDERED: Final = 5
# Candidates, best first, whose short answer is worked out (the lead and its contenders).
SHORT_ANSWER_CANDIDATES: Final = 6
# A second citation from another article is added when it scores this close to the best
# and carries the same short answer (corroboration).
SECOND_CITATION_MARGIN: Final = 0.02
# Evidence scoring this close to the best counts as "the top evidence" when deciding
# whether articles of different dates disagree on a figure.
DISAGREEMENT_MARGIN: Final = 0.06

ABSTAIN: Final = {
    "en": "The collection does not contain an answer to this question.",
    "ar": "لا تحتوي المجموعة على إجابة عن هذا السؤال.",
}
_MONTHS: Final = {
    "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December"),
    "ar": ("يناير", "فبراير", "مارس", "أبريل", "مايو", "يونيو", "يوليو", "أغسطس", "سبتمبر", "أكتوبر",
           "نوفمبر", "ديسمبر"),
}
_QUOTES: Final = {"ar": ("«", "»"), "en": ("“", "”")}
# Share of Arabic letters above which a quote is set in Arabic quotation marks.
ARABIC_QUOTE_MIN_RATIO: Final = 0.5


@dataclass(frozen=True)
class Evidence:
    """One candidate sentence: ``passage.text[start:end]``, scored, with its short answer."""

    passage: Passage
    rank: int
    start: int
    end: int
    score: float
    short: str | None = None
    value: float | None = None  # the short answer's number, when it is a figure in digits
    cosine: float | None = None  # question-sentence cosine, when sentence vectors scored it
    span: tuple[int, int] | None = None  # the short answer in ``passage.text``, when a reader found it

    @property
    def plain_score(self) -> float:
        """The score without the sentence-vector term (what citations carry)."""
        if self.cosine is None:
            return self.score
        return round(self.score - SENTENCE_VECTOR_WEIGHT * self.cosine, 6)

    def confidence(self, cross_lingual: bool) -> float:
        """What abstention is decided on: the plain score, moved by how far the question-sentence
        cosine lies above or below the cosine typical at the threshold (see COSINE_CENTRE)."""
        if self.cosine is None:
            return self.score
        weight, centre = ((CONFIDENCE_COSINE_WEIGHT_CROSS_LINGUAL, COSINE_CENTRE_CROSS_LINGUAL)
                          if cross_lingual else (SENTENCE_VECTOR_WEIGHT, COSINE_CENTRE))
        return round(self.plain_score + weight * (self.cosine - centre), 6)

    @property
    def sentence(self) -> str:
        return self.passage.text[self.start:self.end]

    @property
    def day(self) -> str:
        return (self.passage.published_at or "")[:10]


class ExtractiveComposer:
    """The default composer (see the module docstring)."""

    name = "extractive"

    def __init__(self, min_score: float, similarity: SentenceSimilarity | None = None, *,
                 min_score_cross_lingual: float | None = None) -> None:
        self.min_score = min_score
        self.min_score_cross_lingual = min_score if min_score_cross_lingual is None \
            else min_score_cross_lingual
        self.similarity = similarity

    def compose(self, request: ComposeInput) -> Composition:
        question = analyse(request.reading_question, request.question_lang)
        ranked = rank_evidence(question, request.passages, self.similarity,
                               request.query_vector, request.sentence_vectors)
        if not ranked:
            return abstention(question.lang, confidence=None)
        best = ranked[0]
        # Cross-lingual evidence scores on another scale (token-vector match instead of
        # word overlap), so it has its own calibrated threshold.
        cross_lingual = best.passage.lang != question.lang
        threshold = self.min_score_cross_lingual if cross_lingual else self.min_score
        confidence = best.confidence(cross_lingual)
        if confidence < threshold:
            return abstention(question.lang, confidence=confidence)
        newer, older = disagreement(question, ranked)
        if newer is not None and older is not None:
            composition = render_as_of(question.lang, newer, older)
        else:
            composition = render(question.lang, [best, *corroboration(ranked)])
        composition.confidence = confidence
        return composition


def abstention(lang: str, confidence: float | None) -> Composition:
    """The localised "not in the collection" answer, with no citation."""
    lang = "ar" if lang == "ar" else "en"
    return Composition(ABSTAIN[lang], None, lang, abstained=True, confidence=confidence)


def rank_evidence(question: Question, passages: Sequence[Passage],
                  similarity: SentenceSimilarity | None = None, query_vector: Vectors | None = None,
                  sentence_vectors: SentenceLookup | None = None) -> list[Evidence]:
    """Every sentence of the top passages as scored evidence, best first."""
    considered = passages[:PASSAGES_CONSIDERED]
    splits = [split_sentences(p.text) for p in considered]
    cosines = _sentence_cosines(considered, splits, query_vector, sentence_vectors)
    sentences: list[tuple[int, Passage, int, int, set[str]]] = []
    for rank, (p, spans) in enumerate(zip(considered, splits, strict=True)):
        for s, e in spans:
            if not addresses_a_model(p.text[s:e]):  # instructions to an AI are never evidence
                sentences.append((rank, p, s, e, set(stemmed_terms(p.text[s:e]))))
    weights = _term_weights(question.terms, [terms for *_, terms in sentences])
    total = sum(weights.values())
    matched = _cross_lingual_match(question, [(p, s, e) for _, p, s, e, _ in sentences], similarity)
    scored: list[tuple[float, int, Passage, int, int, float | None]] = []
    type_weight = FIGURE_MATCH_WEIGHT if question.kind in (Kind.QUANTITY, Kind.DATE) else TYPE_MATCH_WEIGHT
    for (rank, p, s, e, terms), match in zip(sentences, matched, strict=True):
        sentence = p.text[s:e]
        overlap = sum(weights[t] for t in question.terms & terms) / total if total else 0.0
        typed = may_answer(question, sentence, anchored=overlap > 0)
        time_match = bool(question.years) and bool(
            question.years & (years_in(sentence) | years_in((p.published_at or "")[:4])))
        score = (p.score - RANK_PENALTY * rank + OVERLAP_WEIGHT * overlap + MATCH_WEIGHT * match
                 + type_weight * typed + TIME_MATCH_WEIGHT * time_match)
        cosine = None if cosines is None else cosines[rank][(s, e)]
        if cosine is not None:
            score += SENTENCE_VECTOR_WEIGHT * cosine
        scored.append((round(score, 6), rank, p, s, e, cosine))
    scored.sort(key=lambda c: (-c[0], c[1], c[3]))
    # Short answers (the costly part) only for the candidates that can lead or contend.
    out: list[Evidence] = []
    for i, (score, rank, p, s, e, cosine) in enumerate(scored):
        found = short_answer(question, p.text[s:e]) if i < SHORT_ANSWER_CANDIDATES else None
        short = found[0] if found else None
        value = figure_value(short) if short and question.kind is Kind.QUANTITY else None
        out.append(Evidence(p, rank, s, e, score, short, value, cosine))
    return out


def _sentence_cosines(passages: Sequence[Passage], splits: list[list[tuple[int, int]]],
                      query_vector: Vectors | None, lookup: SentenceLookup | None
                      ) -> list[dict[tuple[int, int], float]] | None:
    """Per passage, the query's cosine with each sentence's stored vector; None unless all have them.

    All or nothing: a passage without vectors (ingested with QA_SENTENCE_VECTORS off, or whose
    stored sentences do not cover today's split of its text) would lose every comparison
    against one with them, so then no passage's vectors count and sentences are scored as
    without the setting.
    """
    if query_vector is None or lookup is None or not passages:
        return None
    stored = lookup([p.chunk_id for p in passages])
    out: list[dict[tuple[int, int], float]] = []
    for p, spans in zip(passages, splits, strict=True):
        found = stored.get(p.chunk_id)
        cosines = found.cosines(query_vector, spans) if found is not None else None
        if cosines is None:
            return None
        out.append(cosines)
    return out


def _cross_lingual_match(question: Question, spans: list[tuple[Passage, int, int]],
                         similarity: SentenceSimilarity | None) -> list[float]:
    """Token-vector match for sentences in another language than the question (0 elsewhere).

    Within one language lexical overlap is the better signal (measured), and skipping the
    tokenizer there keeps same-language composition fast.
    """
    scores = [0.0] * len(spans)
    foreign = [i for i, (p, _, _) in enumerate(spans) if p.lang != question.lang]
    if similarity is None or not foreign:
        return scores
    # Only the question's content words: "how", "many", "the" match everything (measured +1 point).
    content = " ".join(tokenize(question.text)) or question.text
    found = similarity.similarities(content, [spans[i][0].text[spans[i][1]:spans[i][2]] for i in foreign])
    for i, value in zip(foreign, found, strict=True):
        scores[i] = value
    return scores


def _term_weights(question_terms: frozenset[str], sentence_terms: list[set[str]]) -> dict[str, float]:
    """Inverse sentence frequency of each question term among the candidates (smoothed)."""
    df = Counter(t for terms in sentence_terms for t in question_terms & terms)
    n = len(sentence_terms)
    return {t: math.log(1 + (n + 1) / (1 + df[t])) for t in question_terms}


def corroboration(ranked: list[Evidence], margin: float = SECOND_CITATION_MARGIN) -> list[Evidence]:
    """A second article saying the same thing, when it scores close to the best."""
    best = ranked[0]
    for ev in ranked[1:]:
        if ev.score < best.score - margin:
            break
        if (ev.passage.document_id != best.passage.document_id and best.short is not None
                and _same_answer(ev, best)):
            return [ev]
    return []


def _same_answer(a: Evidence, b: Evidence) -> bool:
    if a.value is not None and b.value is not None:
        return a.value == b.value
    return a.short is not None and b.short is not None and a.short.strip() == b.short.strip()


def disagreement(question: Question, ranked: list[Evidence], margin: float = DISAGREEMENT_MARGIN
                 ) -> tuple[Evidence | None, Evidence | None]:
    """(newest, older) when the top evidence gives different figures on different dates."""
    if question.kind is not Kind.QUANTITY or question.years:
        return None, None  # a question naming a time wants evidence from then, not the newest
    best = ranked[0]
    figures = [ev for ev in ranked if ev.score >= best.score - margin
               and ev.value is not None and ev.day]
    if best not in figures:
        return None, None
    newest = max(figures, key=lambda ev: (ev.day, ev.score))
    for ev in figures:  # best-scored first
        if ev.day < newest.day and ev.value != newest.value \
                and ev.passage.document_id != newest.passage.document_id:
            return newest, ev
    return None, None


# -- rendering -----------------------------------------------------------------------------


def format_day(day: str, lang: str) -> str:
    """"2024-01-25" as "25 January 2024" / "25 يناير 2024"; unparsable input unchanged."""
    try:
        d = date.fromisoformat(day[:10])
    except ValueError:
        return day
    return f"{d.day} {_MONTHS[lang][d.month - 1]} {d.year}"


def _source(lang: str, p: Passage) -> str:
    """The outlet as the answer names it: its Latin form for English answers where the collection
    has one (``Passage.source_latin``), else verbatim."""
    if lang == "en" and p.source_latin:
        return p.source_latin
    return p.source or p.title or ("the collection" if lang == "en" else "المجموعة")


def _as_of(lang: str, ev: Evidence) -> str:
    """"as of 25 January 2024, Arabi Post" / «حتى 25 يناير 2024، عربي بوست» (no date: the source)."""
    source = _source(lang, ev.passage)
    if not ev.day:
        return source
    if lang == "ar":
        return f"حتى {format_day(ev.day, lang)}، {source}"
    return f"as of {format_day(ev.day, lang)}, {source}"


def display_short(lang: str, short: str | None) -> str | None:
    """The short answer as an answer in ``lang`` gives it: English forms of figures and dates taken
    from Arabic text for English answers (see answer/forms.py), else verbatim."""
    if short is None or lang != "en":
        return short
    return english_form(short) or short


def _lead(lang: str, ev: Evidence, short: str | None) -> str:
    """The plain first line: "2,500 — as of 25 January 2024, Arabi Post"."""
    as_of = _as_of(lang, ev)
    if short:
        return f"{short} — {as_of}"
    return as_of[:1].upper() + as_of[1:] if lang == "en" else as_of


def _quoted(ev: Evidence) -> str:
    sentence = ev.sentence
    arabic = script_ratio(sentence)["ar"] >= ARABIC_QUOTE_MIN_RATIO
    open_q, close_q = _QUOTES["ar" if arabic else "en"]
    return f"{open_q}{sentence}{close_q}"


class _Writer:
    """Builds the answer text and records each citation's claim span inside it."""

    def __init__(self) -> None:
        self.text = ""
        self.citations: list[Citation] = []

    def claim(self, claim: str, ev: Evidence, separator: str = PARAGRAPH_BREAK) -> int:
        """Append ``claim`` followed by its ``[n]`` marker, citing ``ev``; return n."""
        if self.text:
            self.text += separator
        start = len(self.text)
        n = len(self.citations) + 1
        self.text += f"{claim} [{n}]"
        p = ev.passage
        self.citations.append(Citation(
            n=n, document_id=p.document_id, chunk_id=p.chunk_id, title=p.title, url=p.url,
            source=p.source, published_at=p.published_at, lang=p.lang, quote=ev.sentence,
            start=p.start + ev.start, end=p.start + ev.end, answer_start=start,
            answer_end=start + len(claim), score=ev.plain_score,
            span_start=p.start + ev.span[0] if ev.span else None,
            span_end=p.start + ev.span[1] if ev.span else None,
            source_latin=p.source_latin,
        ))
        return n

    def quote(self, ev: Evidence, n: int) -> None:
        """The verbatim quote of citation ``n`` as a paragraph of its own."""
        self.text += f"{PARAGRAPH_BREAK}{_quoted(ev)} [{n}]"


def render(lang: str, chosen: list[Evidence]) -> Composition:
    """The lead line ("2,500 — as of 25 January 2024, Arabi Post [1]", with any corroborating
    source on the same line), then each quote as its own paragraph."""
    lead = chosen[0]
    display = display_short(lang, lead.short)
    writer = _Writer()
    numbers = [writer.claim(_lead(lang, lead, display), lead)]
    for ev in chosen[1:]:
        day = f", {format_day(ev.day, lang)}" if ev.day else ""
        also = f"وكذلك {_source(lang, ev.passage)}{day.replace(',', '،')}" if lang == "ar" else \
            f"also {_source(lang, ev.passage)}{day}"
        numbers.append(writer.claim(also, ev, separator="؛ " if lang == "ar" else "; "))
    for ev, n in zip(chosen, numbers, strict=True):
        writer.quote(ev, n)
    return Composition(writer.text, lead.short, lang, abstained=False, citations=writer.citations,
                       short_display=display)


def render_as_of(lang: str, newer: Evidence, older: Evidence) -> Composition:
    """The newest answer as of its date, its quote, then the older answer as earlier, its quote."""
    writer = _Writer()
    display = display_short(lang, newer.short)
    n = writer.claim(_lead(lang, newer, display), newer)
    writer.quote(newer, n)
    earlier = "سابقًا" if lang == "ar" else "Earlier"
    m = writer.claim(f"{earlier}: {_lead(lang, older, display_short(lang, older.short))}", older)
    writer.quote(older, m)
    return Composition(writer.text, newer.short, lang, abstained=False, citations=writer.citations,
                       short_display=display)
