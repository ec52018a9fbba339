"""Rendering a cited answer from evidence: the plain lead line, then the verbatim quotes.

An answer starts with one line in the question's language built from the short answer, its
date and its source ("2,500 — as of 25 January 2024, Arabi Post [1]" / «2500 — حتى 25 يناير
2024، عربي بوست [1]»); each quoted sentence follows as a paragraph of its own, with its
citation. Every citation records the quote's code-point offsets in its document and the claim
it supports in the answer text, so ``verify_citations`` can check both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Final

from qa_service.answer.base import Composition
from qa_service.answer.forms import MONTHS_EN, english_form
from qa_service.answer.layout import PARAGRAPH_BREAK
from qa_service.models import Citation, Passage
from qa_service.text import normalize, script_ratio

ABSTAIN: Final = {
    "en": "The collection does not contain an answer to this question.",
    "ar": "لا تحتوي المجموعة على إجابة عن هذا السؤال.",
}
_MONTHS: Final = {
    "en": MONTHS_EN,
    "ar": ("يناير", "فبراير", "مارس", "أبريل", "مايو", "يونيو", "يوليو", "أغسطس", "سبتمبر", "أكتوبر",
           "نوفمبر", "ديسمبر"),
}
_QUOTES: Final = {"ar": ("«", "»"), "en": ("“", "”")}
# Share of Arabic letters above which a quote is set in Arabic quotation marks.
ARABIC_QUOTE_MIN_RATIO: Final = 0.5


@dataclass(frozen=True)
class Evidence:
    """One candidate: the sentence ``passage.text[start:end]`` holding the short answer, scored."""

    passage: Passage
    rank: int
    start: int
    end: int
    score: float
    short: str | None = None
    value: float | None = None  # the short answer's number, when it is a figure in digits
    span: tuple[int, int] | None = None  # the short answer in ``passage.text``
    read_score: float = 0.0  # the reader's own span score, without the retrieval evidence

    @property
    def sentence(self) -> str:
        return self.passage.text[self.start:self.end]

    @property
    def day(self) -> str:
        return (self.passage.published_at or "")[:10]


def abstention(lang: str, confidence: float | None) -> Composition:
    """The localised "not in the collection" answer, with no citation."""
    lang = "ar" if lang == "ar" else "en"
    return Composition(ABSTAIN[lang], None, lang, abstained=True, confidence=confidence)


def corroboration(ranked: list[Evidence], margin: float) -> list[Evidence]:
    """A second article saying the same thing, when it scores within ``margin`` of the best."""
    best = ranked[0]
    for ev in ranked[1:]:
        if ev.score < best.score - margin:
            break
        if ev.passage.document_id != best.passage.document_id and best.short and same_answer(ev, best):
            return [ev]
    return []


def same_answer(a: Evidence, b: Evidence) -> bool:
    """Two short answers say the same: equal figures (٢٥٠٠ = 2,500), or equal after normalisation."""
    if a.value is not None and b.value is not None:
        return a.value == b.value
    return normalize(a.short or "").strip(" .،,") == normalize(b.short or "").strip(" .،,")


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
            answer_end=start + len(claim), score=ev.score,
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
