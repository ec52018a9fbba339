"""English forms of figures taken from Arabic text, for answers to English questions.

A short answer is a verbatim span of an Arabic article; an English reader is better served by
"2,500" than by «٢٥٠٠», by "August 2023" than by «أغسطس/آب 2023», by "95%" than by «95 بالمئة»
and by "several months" than by «عدة أشهر». These conversions are exact (a number, a month, a
unit), so they are done; anything else — names above all — stays verbatim in Arabic script.

``english_form(span)`` gives the English form when the whole span is a figure, date, duration or
percentage (with "about", "more than" and the like), or when it starts with one followed by a
noun («2500 عسكري» → "2,500": the quote beside it says what was counted); otherwise None.
"""

from __future__ import annotations

import re
from typing import Final

from qa_service.text import fold_digits

MONTHS_EN: Final = ("January", "February", "March", "April", "May", "June", "July", "August",
                    "September", "October", "November", "December")
# Egyptian/Gulf names, then Levantine ones, for months 1..12 (with common spellings).
_AR_MONTHS: Final[dict[str, int]] = {
    **{m: i for i, names in enumerate((
        ("يناير",), ("فبراير",), ("مارس",), ("أبريل", "ابريل", "إبريل"), ("مايو",), ("يونيو", "يونيه"),
        ("يوليو", "يوليه"), ("أغسطس", "اغسطس"), ("سبتمبر",), ("أكتوبر", "اكتوبر"), ("نوفمبر",),
        ("ديسمبر",)), start=1) for m in names},
    **{m: i for i, names in enumerate((
        ("كانون الثاني",), ("شباط",), ("آذار", "اذار"), ("نيسان",), ("أيار", "ايار"), ("حزيران",),
        ("تموز",), ("آب", "اب"), ("أيلول", "ايلول"), ("تشرين الأول", "تشرين الاول"), ("تشرين الثاني",),
        ("كانون الأول", "كانون الاول")), start=1) for m in names},
}
_WEEKDAYS: Final = {"السبت": "Saturday", "الأحد": "Sunday", "الاحد": "Sunday", "الاثنين": "Monday",
                    "الإثنين": "Monday", "الثلاثاء": "Tuesday", "الأربعاء": "Wednesday",
                    "الاربعاء": "Wednesday", "الخميس": "Thursday", "الجمعة": "Friday"}
_NUMBER_WORDS: Final = {
    "واحد": "one", "واحدة": "one", "اثنان": "two", "اثنين": "two", "اثنتان": "two", "اثنتين": "two",
    "ثلاث": "three", "ثلاثة": "three", "أربع": "four", "أربعة": "four", "اربع": "four", "اربعة": "four",
    "خمس": "five", "خمسة": "five", "ست": "six", "ستة": "six", "سبع": "seven", "سبعة": "seven",
    "ثمان": "eight", "ثماني": "eight", "ثمانية": "eight", "تسع": "nine", "تسعة": "nine", "عشر": "ten",
    "عشرة": "ten", "عشرون": "twenty", "عشرين": "twenty", "ثلاثون": "thirty", "ثلاثين": "thirty",
    "مئة": "a hundred", "مائة": "a hundred", "ألف": "a thousand", "عدة": "several", "بضعة": "a few",
    "بضع": "a few", "نصف": "half", "ربع": "a quarter",
}
# Units of time: (singular, plural).
_DURATION_UNITS: Final[dict[str, tuple[str, str]]] = {
    **dict.fromkeys(("يوم", "يوما", "يوماً", "أيام", "ايام"), ("day", "days")),
    **dict.fromkeys(("أسبوع", "اسبوع", "أسبوعا", "أسابيع", "اسابيع"), ("week", "weeks")),
    **dict.fromkeys(("شهر", "شهرا", "شهراً", "أشهر", "اشهر", "شهور"), ("month", "months")),
    **dict.fromkeys(("سنة", "سنوات", "عام", "عاما", "عاماً", "أعوام", "اعوام", "سنين"), ("year", "years")),
    **dict.fromkeys(("ساعة", "ساعات"), ("hour", "hours")),
    **dict.fromkeys(("دقيقة", "دقائق"), ("minute", "minutes")),
    **dict.fromkeys(("عقد", "عقود"), ("decade", "decades")),
}
_SCALES: Final = {"ألف": "thousand", "الف": "thousand", "آلاف": "thousand", "الاف": "thousand",
                  "مليون": "million", "ملايين": "million", "مليار": "billion", "مليارات": "billion",
                  "بليون": "billion", "تريليون": "trillion"}
_CURRENCIES: Final = {"دولار": "dollars", "دولارا": "dollars", "دولاراً": "dollars", "دولارات": "dollars",
                      "دينار": "dinars", "دينارا": "dinars", "يورو": "euros", "جنيه": "pounds",
                      "جنيها": "pounds", "ريال": "riyals", "ريالا": "riyals", "درهم": "dirhams",
                      "ليرة": "lira"}
_QUALIFIERS: Final = {"نحو": "about", "حوالي": "about", "حوالى": "about", "قرابة": "nearly",
                      "قرابه": "nearly", "أكثر من": "more than", "اكثر من": "more than",
                      "أقل من": "less than",
                      "اقل من": "less than", "ما يزيد على": "more than", "ما يزيد عن": "more than",
                      "ما لا يقل عن": "at least", "في عام": "in", "في العام": "in", "في سنة": "in",
                      "منذ عام": "since", "منذ": "since", "عام": "", "العام": "", "سنة": ""}

_MONTH_ALT: Final = "|".join(sorted(map(re.escape, _AR_MONTHS), key=len, reverse=True))
_DATE_RE: Final = re.compile(
    rf"(?:(?P<weekday>{'|'.join(_WEEKDAYS)})\s*،?\s*)?(?:(?P<day>[0-9]{{1,2}})\s+(?:من\s+)?)?"
    rf"(?P<month>{_MONTH_ALT})(?:\s*/\s*(?:{_MONTH_ALT}))?"
    rf"(?:\s*،?\s*(?:(?:من\s+)?(?:عام|العام|سنة)\s+)?(?P<year>[0-9]{{4}}))?")
_NUMBER: Final = r"[0-9]+(?:[.,٫٬][0-9]+)*"
_PERCENT_RE: Final = re.compile(rf"(?P<n>{_NUMBER})\s*(?:%|٪|بالمئة|بالمائة|في المئة|في المائة|المئة)")
_WORD_NUMBER_ALT: Final = "|".join(sorted(map(re.escape, _NUMBER_WORDS), key=len, reverse=True))
_UNIT_ALT: Final = "|".join(sorted(map(re.escape, _DURATION_UNITS), key=len, reverse=True))
_DURATION_RE: Final = re.compile(
    rf"(?:(?P<n>{_NUMBER})|(?P<w>{_WORD_NUMBER_ALT}))\s+(?P<unit>{_UNIT_ALT})(?![\u0621-\u064a])")
_SCALE_RE: Final = re.compile(
    rf"(?P<n>{_NUMBER})\s*(?P<scale>{'|'.join(sorted(_SCALES, key=len, reverse=True))})(?![\u0621-\u064a])"
    rf"(?:\s+(?P<cur>{'|'.join(sorted(_CURRENCIES, key=len, reverse=True))})(?![\u0621-\u064a]))?")
_CURRENCY_RE: Final = re.compile(
    rf"(?P<n>{_NUMBER})\s+(?P<cur>{'|'.join(sorted(_CURRENCIES, key=len, reverse=True))})(?![\u0621-\u064a])")
_QUALIFIER_RE: Final = re.compile(
    rf"^(?:{'|'.join(sorted(map(re.escape, _QUALIFIERS), key=len, reverse=True))})(?=\s)")
_PLAIN_NUMBER_RE: Final = re.compile(rf"(?<![0-9A-Za-z]){_NUMBER}(?![0-9])")
_ARABIC_LETTER_RE: Final = re.compile(r"[\u0621-\u064a\u0671-\u06d3]")
_PUNCTUATION: Final = " \t\n.،,؛;:!?؟()«»\"'“”"
YEAR_LOOKING: Final = range(1900, 2100)
GROUPING_FROM: Final = 1000


def english_form(text: str) -> str | None:
    """The English form of a figure, date, duration or percentage written in Arabic; else None."""
    given = text.strip(_PUNCTUATION)
    source = _latin_separators(fold_digits(given))
    if not source:
        return None
    if not _ARABIC_LETTER_RE.search(source):  # digits and Latin: only grouping and digit forms
        grouped = _PLAIN_NUMBER_RE.sub(lambda m: _group(m.group(0)), source)
        return grouped if grouped != given else None
    converted = _convert(source)
    if not _ARABIC_LETTER_RE.search(converted):
        return converted.strip(_PUNCTUATION) or None
    # A figure followed by the noun it counts («2500 عسكري»): the figure alone.
    head = re.match(r"^[^\u0621-\u064a\u0671-\u06d3]+", converted)
    if head and re.search(r"[0-9]", head.group(0)) and head.group(0).strip(_PUNCTUATION):
        return head.group(0).strip(_PUNCTUATION)
    return None


def _latin_separators(text: str) -> str:
    return text.replace("٫", ".").replace("٬", ",").replace("٪", "%")


def _convert(text: str) -> str:
    out = text
    qualifier = _QUALIFIER_RE.match(out)
    if qualifier:
        out = (_QUALIFIERS[qualifier.group(0)] + out[qualifier.end():]).strip()
    out = _DATE_RE.sub(_date, out)
    out = _PERCENT_RE.sub(lambda m: f"{_plain(m.group('n'))}%", out)
    out = _SCALE_RE.sub(_scaled, out)
    out = _CURRENCY_RE.sub(lambda m: f"{_group(m.group('n'))} {_CURRENCIES[m.group('cur')]}", out)
    out = _DURATION_RE.sub(_duration, out)
    out = re.sub(rf"(?<![\u0621-\u064a])(?:{_WORD_NUMBER_ALT})(?![\u0621-\u064a])",
                 lambda m: _NUMBER_WORDS[m.group(0)], out)
    out = re.sub(r"(?<=[0-9A-Za-z%])\s+و\s*(?=[0-9A-Za-z])", " and ", out)
    out = re.sub(r"\s*،\s*", ", ", out)
    return _PLAIN_NUMBER_RE.sub(lambda m: _group(m.group(0)) if not _in_date(out, m) else m.group(0), out)


def _in_date(text: str, m: re.Match[str]) -> bool:
    """A year after a month name ("August 2023") is never grouped."""
    return bool(re.search(rf"(?:{'|'.join(MONTHS_EN)})\s*$", text[:m.start()]))


def _date(m: re.Match[str]) -> str:
    parts = []
    if m.group("weekday"):
        parts.append(_WEEKDAYS[m.group("weekday")] + ",")
    if m.group("day"):
        parts.append(str(int(m.group("day"))))
    parts.append(MONTHS_EN[_AR_MONTHS[m.group("month")] - 1])
    if m.group("year"):
        parts.append(m.group("year"))
    return " ".join(parts)


def _scaled(m: re.Match[str]) -> str:
    amount = f"{_plain(m.group('n'))} {_SCALES[m.group('scale')]}"
    return f"{amount} {_CURRENCIES[m.group('cur')]}" if m.group("cur") else amount


def _duration(m: re.Match[str]) -> str:
    singular, plural = _DURATION_UNITS[m.group("unit")]
    if m.group("n"):
        n = _plain(m.group("n"))
        return f"{n} {singular if n == '1' else plural}"
    word = _NUMBER_WORDS[m.group("w")]
    return f"{word} {singular if word == 'one' else plural}"


def _plain(number: str) -> str:
    """Arabic separators as English ones, no grouping added ("2.5", "95")."""
    return _latin_separators(number)


def _group(number: str) -> str:
    """"2500" → "2,500" (years left alone: "2018"); already grouped or decimal numbers unchanged."""
    if not number.isdigit():
        return number
    value = int(number)
    if value < GROUPING_FROM or (len(number) == 4 and value in YEAR_LOOKING):
        return number
    return f"{value:,}"
