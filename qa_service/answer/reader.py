"""Reader composer (the default): a trained span reader picks the answer in the top passages.

The reader (``qa_service.reader``) reads the question against each of the top passages in
one batch and gives each its best span with a score: the span's logits over the no-answer
logits. A candidate's score adds, weighted, the passage's retrieval score and the cosine of
the span's sentence with the question (stored sentence vectors); the best candidate leads.
Its span is the short answer, and the sentence holding the span is quoted verbatim with its
attribution. Below the calibrated threshold (its own for evidence in another
language than the question) the composer abstains. News changes: when close candidates give
different figures on different dates, the newest leads "as of" its date and the older one
follows with its own citation.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Final, Protocol

from qa_service.answer.base import ComposeInput, Composition
from qa_service.answer.injection import addresses_a_model
from qa_service.answer.question import Kind, Question, analyse, years_in
from qa_service.answer.render import Evidence, abstention, corroboration, render, render_as_of, same_answer
from qa_service.models import Passage
from qa_service.reader.runtime import Reading
from qa_service.store.lexical import is_caption
from qa_service.text import figure_value, split_sentences

# Passages read per question (one batch): the gold passage is in the top 5 for 0.97 of Arabic
# and 0.93 of English XQuAD questions (bench retrieval).
PASSAGES_READ: Final = 5
# Weights of the passage's retrieval score and of the cosine of the sentence holding the span
# with the question (both cosine-like, 0.7-0.9) next to the reader's span score (logit
# differences over about -10..10). The sentence's cosine is what lifts an English question's
# Arabic answer over a span the reader scores alike in an unrelated paragraph. Tuned on the
# XQuAD and news dev splits (docs/benchmarks.md, "Scoring the reader's candidates").
RETRIEVAL_WEIGHT: Final = 8.0
SENTENCE_WEIGHT: Final = 24.0
# A question about the present also reads up to this many passages from below the top ones
# (to ``READ_DEPTH`` retrieved) that are newer than every top passage: the newest evidence that
# answers may rank low when older articles share more of the question's words.
NEWER_READ: Final = 2
READ_DEPTH: Final = 15
# Added to a candidate whose sentence or article is from a year the question names.
TIME_MATCH_BONUS: Final = 1.0
# Candidates this close to the best count as its contenders for "as of" and corroboration.
CONTENDER_MARGIN: Final = 1.5
# ... for "as of", by the reader's own span score, and within this of the best's whole score (so a
# passage about something else, which the reader may score alike when unsure, is no contender).
AS_OF_SCORE_MARGIN: Final = 3.0

Cosines = dict[tuple[int, int], float]  # a sentence's (start, end) in the passage -> its cosine


class SpanReading(Protocol):
    def read(self, question: str, contexts: Sequence[str]) -> list[Reading]: ...


class LazyReader:
    """The reader, loaded on first use or ``warm_up``, once: services that never answer (ingestion,
    most tests) never compile it."""

    def __init__(self, load: Callable[[], SpanReading]) -> None:
        self._load = load
        self._reader: SpanReading | None = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        self._get().read("?", ["."])

    def read(self, question: str, contexts: Sequence[str]) -> list[Reading]:
        return self._get().read(question, contexts)

    def _get(self) -> SpanReading:
        with self._lock:
            if self._reader is None:
                self._reader = self._load()
            return self._reader


class ReaderComposer:
    """Cited answers from a trained span reader (see the module docstring)."""

    name = "reader"

    def __init__(
        self,
        reader: SpanReading,
        min_score: float,
        *,
        min_score_cross_lingual: float | None = None,
        window_chars: int = 0,
    ) -> None:
        """``window_chars`` > 0: read, in each passage, the sentence closest to the question (by its
        stored vector) and its neighbours up to that many characters, not the whole passage."""
        self.reader = reader
        self.window_chars = window_chars
        self.min_score = min_score
        self.min_score_cross_lingual = (
            min_score if min_score_cross_lingual is None else min_score_cross_lingual
        )

    def warm_up(self) -> None:
        if isinstance(self.reader, LazyReader):
            self.reader.warm_up()

    def compose(self, request: ComposeInput) -> Composition:
        question = analyse(request.reading_question, request.question_lang)
        ranked = self.candidates(request, question)
        if not ranked:
            return abstention(question.lang, confidence=None)
        best = ranked[0]
        cross_lingual = best.passage.lang != question.lang
        threshold = self.min_score_cross_lingual if cross_lingual else self.min_score
        if best.score < threshold:
            return abstention(question.lang, confidence=best.score)
        newer, older = as_of(question, ranked)
        if newer is not None and older is not None:
            composition = render_as_of(question.lang, newer, older)
        else:
            composition = render(question.lang, [best, *corroboration(ranked, CONTENDER_MARGIN)])
        composition.confidence = best.score
        return composition

    def candidates(self, request: ComposeInput, question: Question) -> list[Evidence]:
        """Each read passage's best span as evidence (its sentence quoted), best first."""
        considered = [*request.passages[:PASSAGES_READ], *newer(question, request)]
        cosines = sentence_cosines(request, considered)
        spans = [self.window(p, c) for p, c in zip(considered, cosines, strict=True)]
        readings = self.reader.read(
            request.reading_question, [p.text[s:e] for p, (s, e) in zip(considered, spans, strict=True)]
        )
        out: list[Evidence] = []
        for reading in readings:
            p = considered[reading.context]
            offset = spans[reading.context][0]
            span_start, span_end = reading.start + offset, reading.end + offset
            start, end = holding_sentence(p.text, span_start, span_end)
            if addresses_a_model(p.text[start:end]):  # instructions to an AI are never evidence
                continue
            if all(is_caption(line) for line in p.text[start:end].splitlines() if line.strip()):
                continue  # nor a photo caption, credit or dateline ("تم التحديث: 2024/01/25")
            short = p.text[span_start:span_end]
            # Without stored sentence vectors the passage's own score stands in (same scale).
            found = cosines[reading.context] or {}
            overlapping = [c for (s, e), c in found.items() if s < end and start < e]
            sentence = max(overlapping, default=p.score)
            score = reading.score + RETRIEVAL_WEIGHT * p.score + SENTENCE_WEIGHT * sentence
            if question.years & (years_in(p.text[start:end]) | years_in((p.published_at or "")[:4])):
                score += TIME_MATCH_BONUS  # "in 2018": evidence from then
            score = round(score, 6)
            value = figure_value(short) if question.kind is Kind.QUANTITY else None
            out.append(
                Evidence(p, reading.context, start, end, score, short, value, span=(span_start, span_end),
                         read_score=reading.score)
            )
        out.sort(key=lambda ev: (-ev.score, ev.rank))
        return out

    def window(self, p: Passage, cosines: Cosines | None) -> tuple[int, int]:
        """What the reader reads of a passage: the whole text, or (``window_chars``) the sentence
        the question is closest to, grown by its neighbours (next first) up to ``window_chars``."""
        if self.window_chars <= 0 or not cosines or len(p.text) <= self.window_chars:
            return 0, len(p.text)
        sentences = list(cosines)
        best = max(range(len(sentences)), key=lambda i: cosines[sentences[i]])
        lo = hi = best
        for step in range(2 * len(sentences)):
            grow = hi + 1 if step % 2 == 0 else lo - 1
            if not 0 <= grow < len(sentences):
                continue
            first, last = min(lo, grow), max(hi, grow)
            if sentences[last][1] - sentences[first][0] > self.window_chars:
                break
            lo, hi = first, last
        return sentences[lo][0], sentences[hi][1]


def sentence_cosines(request: ComposeInput, passages: Sequence[Passage]) -> list[Cosines | None]:
    """For each passage, the question's cosine with each of its sentences (in text order), from the
    stored sentence vectors; None where there are none (or no query vector)."""
    if request.query_vector is None or request.sentence_vectors is None:
        return [None] * len(passages)
    stored = request.sentence_vectors([p.chunk_id for p in passages])
    out = []
    for p in passages:
        found = stored.get(p.chunk_id)
        out.append(None if found is None else found.cosines(request.query_vector, split_sentences(p.text)))
    return out


def newer(question: Question, request: ComposeInput) -> list[Passage]:
    """For a question about the present: the newest passages below the top ones that are newer
    than all of them (at most ``NEWER_READ``); none for a question naming a year or the past."""
    if question.years or question.past:
        return []
    top = request.passages[:PASSAGES_READ]
    latest = max(((p.published_at or "")[:10] for p in top), default="")
    pool = [p for p in [*request.passages[PASSAGES_READ:], *request.reserve]
            if (p.published_at or "")[:10] > latest]
    pool.sort(key=lambda p: (p.published_at or "")[:10], reverse=True)  # stable: rank order within a day
    return pool[:NEWER_READ]


def as_of(question: Question, ranked: list[Evidence]) -> tuple[Evidence | None, Evidence | None]:
    """(newest, older) when close candidates from articles of different dates give different answers.

    News changes: a question about the present ("how many are", "who is", «كم عدد») is answered
    by the newest of the close candidates, and an older, conflicting one is cited as earlier. A
    question naming a year, or asking about the past ("was", «كان»), keeps the best evidence.
    "Close" is judged on the reader's own span score, since the retrieval terms measure shared
    words, which is what older articles win on; the whole score only keeps off-topic passages out.
    """
    if question.years or question.past:
        return None, None
    best = ranked[0]
    close = [ev for ev in ranked if ev.day and ev.short
             and ev.read_score >= best.read_score - CONTENDER_MARGIN
             and ev.score >= best.score - AS_OF_SCORE_MARGIN]
    if best not in close:
        return None, None
    newest = max(close, key=lambda ev: (ev.day, ev.score))
    for ev in close:  # best-scored first
        if (
            ev.day < newest.day
            and ev.passage.document_id != newest.passage.document_id
            and not same_answer(ev, newest)
        ):
            return newest, ev
    return None, None


def holding_sentence(text: str, start: int, end: int) -> tuple[int, int]:
    """The sentence(s) of ``text`` that hold ``text[start:end]``."""
    spans = split_sentences(text) or [(0, len(text))]
    first = next((s for s, e in spans if s <= start < e), spans[0][0])
    last = next((e for s, e in spans if s < end <= e), spans[-1][1])
    return min(first, start), max(last, end)
