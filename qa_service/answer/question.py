"""What a question asks for: its kind (quantity, date, person, place, yes/no), its terms, its time.

English and Arabic question words are recognised on the normalised question (so "كَم" and
"كم", "أين" and "اين" match alike). A "how many" answer is compared as a figure (٢٥٠٠ =
2,500); a year named in the question ("in 2018", "عام ٢٠١٨") makes evidence from that time
preferred; a question about the present prefers the newest evidence, one about the past not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from qa_service.text import extract_numbers, light_stem, normalize, tokenize

# A four-digit number in this range is read as a year, not as a quantity.
YEAR_MIN: Final = 1000
YEAR_MAX: Final = 2100
NISBA_ACCUSATIVE: Final = "يا"
MIN_NISBA_STEM: Final = 3


class Kind(StrEnum):
    """The kind of thing a question asks for."""

    QUANTITY = "quantity"
    DATE = "date"
    PERSON = "person"  # a person or an organisation
    PLACE = "place"
    YESNO = "yesno"
    OTHER = "other"


# Patterns run on ``normalize(question)``: lower case, hamza/alef folded, ة → ه, ى → ي,
# Arabic punctuation folded to ASCII. Order matters: the first kind that matches wins
# ("how many years" is a quantity, "what year" a date, "من اين" a place, "من" a person).
_PATTERNS: Final[tuple[tuple[Kind, re.Pattern[str]], ...]] = (
    (Kind.QUANTITY, re.compile(
        r"\bhow (many|much|long|old|far|big|large|tall|high)\b|\bnumber of\b|\bwhat (percentage|percent|"
        r"proportion|amount)\b|(^| )(كم|بكم)( |$)|(^| )(ما|ماهو|ماهي) (هو |هي )?(عدد|مقدار|نسبه|حجم|"
        r"مساحه|طول|عمر|قيمه|تكلفه)( |$)|^عدد ")),
    (Kind.DATE, re.compile(
        r"^when\b|\bwhen (did|was|were|is|does|do|will)\b|\b(what|which|in what) (year|date|decade|"
        r"century|month|day|time)\b|(^| )متي( |$)|(^| )(في )?(اي|اى) (عام|سنه|تاريخ|قرن|شهر|يوم|"
        r"عقد)( |$)|(^| )(ما|ماهو) (هو )?(تاريخ|عام|سنه)( |$)")),
    (Kind.PLACE, re.compile(
        r"^where\b|\bwhere (did|was|were|is|are|does|do)\b|\b(what|which|in what) (country|city|state|"
        r"place|region|location|town|continent|province|area|county|island)\b|(^| )(اين|من اين|الي اين)( |$)"
        r"|(^| )(في )?(اي|اى) (دوله|مدينه|بلد|مكان|منطقه|ولايه|قاره|مقاطعه|جزيره)( |$)|(^| )(ما|ماهي) "
        r"(هي )?(الدوله|المدينه|البلد|المنطقه|الولايه)( |$)")),
    (Kind.PERSON, re.compile(
        r"^(who|whom|whose)\b|\b(who|whom|whose) (is|was|were|are|did|does|has|had|led|won|wrote)\b|"
        r"\b(what|which) (company|organization|organisation|team|group|agency|party|person|man|woman|"
        r"player|band|university|school|club|body)\b|\bwhat is the name\b|^(من|ومن|لمن)( |$)|"
        r"(^| )(اي|اى) (شركه|منظمه|فريق|مجموعه|حزب|شخص|جامعه|لاعب|نادي|وكاله|هيئه)( |$)|"
        r"(^| )(ما|ماهو|ماهي) (هو |هي )?(اسم|الشركه|المنظمه|الفريق|الحزب|الجامعه)( |$)")),
    (Kind.YESNO, re.compile(
        r"^(is|are|was|were|do|does|did|can|could|has|have|had|will|would|should|shall)\b|^(هل|اهل)( |$)")),
)

# A question about the past ("how many were", "كم كان") wants the evidence of then, not the newest.
_PAST_RE: Final = re.compile(
    r"\b(was|were|did|had|used to|ago|former|formerly|previously|originally|first)\b|"
    r"(^| )(كان|كانت|كانوا|سابقا|السابق|السابقه|الماضي|الماضيه|اول)( |$)")
_YEAR_RE: Final = re.compile(r"(?<![0-9])(1[0-9]{3}|20[0-9]{2})(?![0-9])")


@dataclass(frozen=True)
class Question:
    """A question as the reader composer sees it."""

    text: str
    lang: str  # "ar" or "en": the answer language
    kind: Kind
    years: frozenset[int]  # years the question names ("in 2018")
    past: bool = False  # asks about an earlier time ("was", "كان"): the newest evidence is not preferred


def question_kind(text: str) -> Kind:
    """The kind of thing ``text`` asks for (``Kind.OTHER`` when no question word says)."""
    key = normalize(text).strip(" ?!.")
    for kind, pattern in _PATTERNS:
        if pattern.search(key):
            return kind
    return Kind.OTHER


def stem(term: str) -> str:
    """Light stem of one ``tokenize`` term, with the accusative alef of nisba adjectives dropped.

    Light10 keeps a final alef, so "عسكرياً" / "أمريكيا" (accusative) would not meet
    "العسكريين" / "الأمريكي"; news writes these forms constantly.
    """
    stemmed = light_stem(term)
    if len(stemmed) > MIN_NISBA_STEM and stemmed.endswith(NISBA_ACCUSATIVE):
        return stemmed[:-1]
    return stemmed


def stemmed_terms(text: str) -> list[str]:
    """Content terms of ``text`` as evidence scoring compares them: tokenised, light-stemmed."""
    return [stem(t) for t in tokenize(text)]


def years_in(text: str) -> set[int]:
    """Years written in ``text`` (any digit script)."""
    return {int(v) for v, _, _ in extract_numbers(text)
            if v.is_integer() and YEAR_MIN <= v <= YEAR_MAX and _YEAR_RE.fullmatch(str(int(v)))}


def analyse(text: str, lang: str) -> Question:
    """Kind, named years and tense of a question; ``lang`` is the detected question language."""
    answer_lang = "ar" if lang == "ar" else "en"
    return Question(text=text, lang=answer_lang, kind=question_kind(text), years=frozenset(years_in(text)),
                    past=_PAST_RE.search(normalize(text)) is not None)
