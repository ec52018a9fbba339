"""Short answers: the span of an evidence sentence that answers the question's kind.

Every function returns a ``(start, end)`` span into the sentence as given (code points),
so a short answer is always verbatim evidence. Numbers and years are found on
digit-folded text of the same length (٢٥٠٠ = 2500 = 2,500). Person and place answers
need the question's own words in the sentence to anchor on (the words next to them are
the answer); an English question over an Arabic sentence has no anchor, so it gets a
quantity, date or yes/no short answer but no name — better none than a wrong one.
"""

from __future__ import annotations

import re
from typing import Final

from qa_service.answer.question import YEAR_MAX, YEAR_MIN, Kind, Question, stem
from qa_service.text import extract_numbers, fold_digits, script_ratio, tokenize_with_spans

Span = tuple[int, int]

# Longest name a person/place short answer may be, in words.
MAX_NAME_WORDS: Final = {Kind.PERSON: 4, Kind.PLACE: 3}
# Share of the question's terms a sentence must hold before it can answer yes or no.
YESNO_MIN_COVERAGE: Final = 0.8

_AR_MONTHS: Final = (
    "يناير|فبراير|مارس|أبريل|ابريل|إبريل|مايو|يونيو|يونيه|يوليو|يوليه|أغسطس|اغسطس|سبتمبر|أكتوبر|"
    "اكتوبر|نوفمبر|ديسمبر|كانون الثاني|كانون الأول|كانون الاول|شباط|آذار|اذار|نيسان|أيار|ايار|حزيران|"
    "تموز|آب|اب|أيلول|ايلول|تشرين الأول|تشرين الاول|تشرين الثاني")
_EN_MONTHS: Final = (
    "January|February|March|April|May|June|July|August|September|October|November|December|"
    "Jan\\.|Feb\\.|Mar\\.|Apr\\.|Jun\\.|Jul\\.|Aug\\.|Sep\\.|Sept\\.|Oct\\.|Nov\\.|Dec\\.")
_MONTH: Final = f"(?:{_AR_MONTHS}|{_EN_MONTHS})"
_YEAR: Final = r"(?:1[0-9]{3}|20[0-9]{2})"
_DAY: Final = r"(?:[0-3]?[0-9])"
# Richest first: day month[/month] year, month day, year, month year, day month, decade, year.
_DATE_RE: Final = re.compile(
    rf"(?<![0-9]){_DAY}(?:st|nd|rd|th)? (?:من |of )?{_MONTH}(?:/{_MONTH})?,?"
    rf"(?: (?:عام |سنة )?{_YEAR})?(?![0-9])"
    rf"|{_MONTH} {_DAY}(?:st|nd|rd|th)?,? {_YEAR}(?![0-9])"
    rf"|{_MONTH}(?:/{_MONTH})?,? (?:(?:من )?(?:عام|سنة) )?{_YEAR}(?![0-9])"
    rf"|(?<![0-9]){_YEAR}s(?![a-z])"
    rf"|(?<![0-9]){_YEAR}(?:-{_YEAR})?(?![0-9])"
    r"|\b[0-9]{1,2}(?:st|nd|rd|th) century\b"
    r"|القرن (?:ال)?[\u0621-\u064a]+(?: (?:عشر|الميلادي|قبل الميلاد))?",
    re.IGNORECASE,
)

# A date with a month name: its day and year are not counts ("25 يناير 2024").
_MONTH_DATE_RE: Final = re.compile(
    rf"(?<![0-9]){_DAY}(?:st|nd|rd|th)? (?:من |of )?{_MONTH}(?:/{_MONTH})?,?(?: (?:عام |سنة )?{_YEAR})?"
    rf"|{_MONTH}(?:/{_MONTH})?,? (?:{_DAY},? )?(?:(?:من )?(?:عام|سنة) )?{_YEAR}(?![0-9])", re.IGNORECASE)

# Spelled-out numbers, with the one-letter Arabic prefixes (و ب ل ف ك) kept outside the span.
_AR_NUMBER_WORDS: Final = (
    "واحد|واحدة|اثنان|اثنين|اثنتين|اثنتان|ثلاث|ثلاثة|أربع|أربعة|اربع|اربعة|خمس|خمسة|ست|ستة|سبع|سبعة|"
    "ثمان|ثماني|ثمانية|تسع|تسعة|عشر|عشرة|أحد عشر|إحدى عشرة|اثنا عشر|اثني عشر|عشرون|عشرين|ثلاثون|ثلاثين|"
    "أربعون|أربعين|خمسون|خمسين|ستون|ستين|سبعون|سبعين|ثمانون|ثمانين|تسعون|تسعين|مائة|مئة|مئتين|مائتين|"
    "ثلاثمائة|أربعمائة|خمسمائة|ألف|ألفين|ألفان|آلاف|مليون|ملايين|مليار|مليارات|نصف|ربع|ثلث")
_EN_NUMBER_WORDS: Final = (
    "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|"
    "sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|"
    "hundred|thousand|million|billion|dozen|half|a quarter|a third")
_NUMBER_WORD_RE: Final = re.compile(
    rf"(?:(?<=\s)|(?<=^)|(?<=\s[وبلفك])|(?<=^[وبلفك]))(?:{_AR_NUMBER_WORDS})(?=[\s،,.؛;:)]|$)"
    rf"|\b(?:{_EN_NUMBER_WORDS})\b",
    re.IGNORECASE,
)
# Words that scale or qualify a number and belong to it ("2.5 million", "30 بالمئة").
_SCALE_RE: Final = re.compile(
    r"\s?(?:%|٪|(?:مليون|ملايين|مليار|مليارات|ألف|آلاف|الف|الاف|million|billion|thousand|trillion|"
    r"percent|per cent|بالمئة|بالمائة|في المئة|في المائة)(?![\w]))", re.IGNORECASE)
# A four-digit number after one of these words is a year, not a count ("في 2018", "since 1990").
_SCALE_FACTORS: Final = {
    "مليار": 1e9, "billion": 1e9, "مليون": 1e6, "ملايين": 1e6, "million": 1e6, "trillion": 1e12,
    "ألف": 1e3, "آلاف": 1e3, "الف": 1e3, "الاف": 1e3, "thousand": 1e3,
}
_PERCENT_SIGN_RE: Final = re.compile(r"%|٪|percent|per cent|بالمئة|بالمائة|في المئة|في المائة")
_YEAR_CUE_RE: Final = re.compile(
    rf"(?:عام|العام|سنة|السنة|منذ|حتى|في|خلال|قبل|بعد|in|since|by|until|of|year|during|{_MONTH})[\s,]*$",
    re.IGNORECASE)

_NEGATION_RE: Final = re.compile(
    r"(?:^|\s|[وف])(?:لا|لم|لن|ليس|ليست|غير|لسن|ما)(?:\s|$)|\b(?:not|no|never|neither|nor|n't)\b",
    re.IGNORECASE)
_PLACE_CUE_RE: Final = re.compile(r"(?:\s|^)(?:في|ب|إلى|الى|من|قرب|in|at|near|from|to)\s*$", re.IGNORECASE)
# Words that end a name: relations and directions ("الجيزة قرب النيل", "Giza near the Nile").
_NAME_BREAKS: Final = frozenset({
    "قرب", "بالقرب", "شمال", "جنوب", "شرق", "غرب", "وسط", "داخل", "خارج", "حيث", "بعد", "قبل", "عام", "سنه",
    "near", "north", "south", "east", "west", "inside", "outside", "after", "before", "during",
})
_YES: Final = {"en": "Yes", "ar": "نعم"}
_NO: Final = {"en": "No", "ar": "لا"}


def short_answer(question: Question, sentence: str) -> tuple[str, Span | None] | None:
    """The short answer to ``question`` in ``sentence``: its text and its span (None for yes/no)."""
    if question.kind is Kind.QUANTITY:
        span = quantity_span(question, sentence)
    elif question.kind is Kind.DATE:
        span = date_span(question, sentence)
    elif question.kind in MAX_NAME_WORDS:
        span = name_span(question, sentence)
    elif question.kind is Kind.YESNO:
        verdict = yes_no(question, sentence)
        return (verdict, None) if verdict else None
    else:
        return None
    return (sentence[span[0]:span[1]], span) if span else None


def may_answer(question: Question, sentence: str, anchored: bool) -> bool:
    """A cheap test: could ``sentence`` hold the kind of answer asked for? (ranking feature)"""
    if question.kind is Kind.QUANTITY:
        return bool(quantities(sentence))
    if question.kind is Kind.DATE:
        return _DATE_RE.search(fold_digits(sentence)) is not None
    return anchored and question.kind in MAX_NAME_WORDS


def quantities(sentence: str) -> list[tuple[float | None, Span]]:
    """Counts and amounts in ``sentence`` (value when written in digits), years left out."""
    found: list[tuple[float | None, Span]] = []
    in_dates = [m.span() for m in _MONTH_DATE_RE.finditer(fold_digits(sentence))]
    for value, s, e in extract_numbers(sentence):
        if _is_year(sentence, value, s) or any(ds <= s < de for ds, de in in_dates):
            continue
        found.append((value, _with_scale(sentence, s, e)))
    for m in _NUMBER_WORD_RE.finditer(sentence):
        if not any(s <= m.start() < e for _, (s, e) in found):
            found.append((None, _with_scale(sentence, m.start(), m.end())))
    return sorted(found, key=lambda f: f[1])


def figure_value(text: str) -> float | None:
    """The value of a figure written in digits, scale words applied ("2.5 million" = 2500000)."""
    numbers = extract_numbers(text)
    if not numbers:
        return None
    value, _, end = numbers[0]
    scale = _SCALE_RE.match(text, end)
    word = scale.group().strip().lower() if scale else ""
    return value * next((f for w, f in _SCALE_FACTORS.items() if word.startswith(w)), 1.0)


def quantity_span(question: Question, sentence: str) -> Span | None:
    """The count or amount nearest to the question's words in the sentence.

    Numbers the question itself names are not its answer; a question about a percentage
    takes a percentage when the sentence has one.
    """
    spans = [span for value, span in quantities(sentence) if value not in question.numbers]
    if question.wants_percent:
        spans = [sp for sp in spans if _PERCENT_SIGN_RE.search(sentence[sp[0]:sp[1]])] or spans
    return _nearest(spans, _anchors(question, sentence))


def date_span(question: Question, sentence: str) -> Span | None:
    """The date expression nearest to the question's words (a full date before a bare year)."""
    folded = fold_digits(sentence)
    spans = [m.span() for m in _DATE_RE.finditer(folded) if not _names_asked_year(question, m.group())]
    return _nearest(spans, _anchors(question, sentence))


def name_span(question: Question, sentence: str) -> Span | None:
    """The name next to the question's words that the question does not already hold.

    Latin script: a run of capitalised words. Arabic has no capitals to tell a name from
    a verb, so Arabic text gives a place only after a place preposition (في، ب، إلى، من)
    and no person at all (measured on XQuAD: the unconstrained run was junk, F1 4).
    """
    tokens = tokenize_with_spans(sentence)
    anchored = [stem(t) in question.terms for t, _, _ in tokens]
    if not any(anchored):
        return None
    ratio = script_ratio(sentence)
    latin = ratio["latin"] > ratio["ar"]
    if not latin and question.kind is Kind.PERSON:
        return None

    def eligible(k: int) -> bool:
        term, start, _ = tokens[k]
        if anchored[k] or term.isdigit() or term in _NAME_BREAKS:
            return False
        return sentence[start].isupper() if latin else True

    runs: list[tuple[int, int]] = []  # token index ranges of eligible words, adjacent in the text
    i = 0
    while i < len(tokens):
        if not eligible(i):
            i += 1
            continue
        j = i
        while (j + 1 < len(tokens) and eligible(j + 1) and j + 1 - i < MAX_NAME_WORDS[question.kind]
               and sentence[tokens[j][2]:tokens[j + 1][1]].isspace()):
            j += 1
        runs.append((i, j))
        i = j + 1
    if not latin:  # Arabic places: only right after a place preposition
        runs = [r for r in runs if _PLACE_CUE_RE.search(sentence[:tokens[r[0]][1]])]
    if not runs:
        return None
    anchor_idx = [k for k, a in enumerate(anchored) if a]

    def cost(run: tuple[int, int]) -> tuple[int, int]:
        distance = min(min(abs(run[0] - a), abs(run[1] - a)) for a in anchor_idx)
        cue = question.kind is Kind.PLACE and bool(_PLACE_CUE_RE.search(sentence[:tokens[run[0]][1]]))
        return (distance - cue, run[0])

    best = min(runs, key=cost)
    return tokens[best[0]][1], tokens[best[1]][2]


def yes_no(question: Question, sentence: str) -> str | None:
    """"Yes"/"No" (localised) when the sentence states the question's words explicitly."""
    if not question.terms:
        return None
    terms = {stem(t) for t, _, _ in tokenize_with_spans(sentence)}
    if len(question.terms & terms) / len(question.terms) < YESNO_MIN_COVERAGE:
        return None
    negated = bool(_NEGATION_RE.search(sentence)) != bool(_NEGATION_RE.search(question.text))
    return (_NO if negated else _YES)[question.lang]


def _is_year(sentence: str, value: float, start: int) -> bool:
    if not (value.is_integer() and YEAR_MIN <= value <= YEAR_MAX):
        return False
    return bool(_YEAR_CUE_RE.search(sentence[max(0, start - 20):start]))


def _with_scale(sentence: str, start: int, end: int) -> Span:
    m = _SCALE_RE.match(sentence, end)
    return (start, m.end()) if m else (start, end)


def _names_asked_year(question: Question, text: str) -> bool:
    """A bare year the question itself names is not the answer to "when"."""
    return text.isdigit() and int(text) in question.years


def _anchors(question: Question, sentence: str) -> list[int]:
    """Positions of the question's terms in the sentence."""
    return [s for t, s, _ in tokenize_with_spans(sentence) if stem(t) in question.terms]


def _nearest(spans: list[Span], anchors: list[int]) -> Span | None:
    """The span closest to any anchor; without anchors, the first (richest when tied)."""
    if not spans:
        return None
    if not anchors:
        return spans[0]
    return min(spans, key=lambda sp: (min(min(abs(sp[0] - a), abs(sp[1] - a)) for a in anchors),
                                      -(sp[1] - sp[0])))
