"""Sentence spans for Arabic and English news text, as code-point offsets.

``split_sentences`` never copies or changes the text: it returns ``(start, end)`` spans
into it, stripped of surrounding whitespace, in order and disjoint, covering every
non-whitespace character. Boundaries:

* every line break (titles, bylines and captions stand on their own lines in news);
* ``! ? ؟ ۔`` (and runs of them, "?!"), except inside URLs. A semicolon (``;`` ``؛``)
  joins two clauses of one sentence, so it never ends one;
* an ellipsis ("..", "...", "…") is one boundary, unless what follows continues the
  sentence (a lowercase Latin letter or , ; :). Arabic has no case, so an ellipsis
  before Arabic text is a boundary: in headlines ".." separates clauses;
* a single "." when followed by whitespace (or end of text), except after known
  abbreviations, single-letter initials ("J. Smith", Arabic "د. محمد"; Latin initials
  spelled in Arabic inside a name, "جون سي. ميسنجر"), list numbers at
  the start of a segment, or before a lowercase Latin word. Also a "." glued between two
  Arabic letters ("العراق.وقال"), a common typing slip, unless a single letter precedes it:
  Arabic abbreviations are dotted letters ("ق.م" = BC, "ص.ب" = PO box). "." between digits (2.5,
  1.000.000), inside domains and dotted initialisms is never a boundary (no space).

Closing quotes and brackets right after the terminator belong to the sentence.
The Arabic comma ، is a comma, never a boundary.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator
from typing import Final

__all__ = ["split_sentences"]

Span = tuple[int, int]

_LINE_BREAK: Final = r"\r\n|[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]"
SENTENCE_TERMINATORS: Final = ".!?؟۔…‼⁇⁈⁉"
# Terminators that always end a sentence (outside URLs), unlike "." and "…".
STRONG_TERMINATORS: Final[frozenset[str]] = frozenset("!?؟۔‼⁇⁈⁉")
ELLIPSIS_CHAR: Final = "…"
MIN_ELLIPSIS_DOTS: Final = 2
CLOSING_PUNCTUATION: Final = "\"'”’»›)]}"
OPENING_PUNCTUATION: Final = "\"'“‘«‹([{¿¡"
# After an ellipsis these characters show that the sentence goes on.
CONTINUATION_PUNCTUATION: Final = ",;:،"

# A single "." glued to an ASCII letter or digit ("2.5", "U.S", "x.com") can never end
# a sentence; leaving it out of the pattern spares the per-candidate checks.
_TERMINATOR_RUN: Final = (
    r"(?:\.{2,}|\.(?![0-9A-Za-z])|["
    + re.escape(SENTENCE_TERMINATORS.replace(".", ""))
    + "])+"
)
_BOUNDARY_RE: Final = re.compile(
    f"(?P<nl>{_LINE_BREAK})"
    f"|(?P<term>(?:{_TERMINATOR_RUN}[{re.escape(CLOSING_PUNCTUATION)}]*)+)"
)
# Where a boundary can start. A pattern that begins with a plain character class lets the
# regex engine skip ahead in C; ``_BOUNDARY_RE`` (an alternation) is then only tried at
# these positions, which is an order of magnitude faster on long texts.
_LINE_BREAK_CHARS: Final = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"
_CANDIDATE_RE: Final = re.compile(
    f"[{_LINE_BREAK_CHARS}{re.escape(SENTENCE_TERMINATORS)}](?!(?<=\\.)[0-9A-Za-z])"
)
_URL_RE: Final = re.compile(
    r"(?:https?://|www\.)\S+|[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.IGNORECASE
)
URL_HINTS: Final[tuple[str, ...]] = ("://", "www.", "WWW.", "@")
URL_TRAILING_PUNCTUATION: Final = ".,;:!?)]}\"'»”’؟،؛…"

_ARABIC_LETTER_RE: Final = re.compile(r"[\u0620-\u064a\u066e-\u06d3\u06d5\u06fa-\u06ff]")
_DOTTED_INITIALISM_RE: Final = re.compile(r"(?:[^\W\d_]\.)+[^\W\d_]")
_NEXT_WORD_RE: Final = re.compile(r"\s*(\S{1,40})")
TATWEEL: Final = "\u0640"

# Longest abbreviation we look back for ("messrs", "approx", "u.s.a"); longer words are
# ordinary words and end sentences.
MAX_ABBREVIATION_LENGTH: Final = 8
# "1. First item": a list number at the start of a segment has at most this many digits.
MAX_LIST_NUMBER_DIGITS: Final = 3

# Lowercase, without the final dot. Never end a sentence: they precede a name/number.
NON_TERMINAL_ABBREVIATIONS: Final[frozenset[str]] = frozenset({
    "mr", "mrs", "ms", "messrs", "dr", "prof", "st", "mt", "gen", "col", "lt", "sgt", "capt",
    "cmdr", "adm", "maj", "gov", "sen", "rep", "rev", "hon", "pres", "supt", "insp", "e.g", "i.e",
    "cf", "viz", "vs", "v", "approx", "dept", "jan", "feb", "mar", "apr", "jun", "jul", "aug",
    "sep", "sept", "oct", "nov", "dec",
})
# Not a boundary when the next word starts with a digit ("No. 5", "pp. 12").
NUMBER_ABBREVIATIONS: Final[frozenset[str]] = frozenset(
    ["no", "nos", "vol", "vols", "pp", "p", "fig", "figs", "art", "ch", "sec", "para"]
)
# May end a sentence: a boundary only before a typical sentence opener ("... in the
# U.S. The talks ..."), not before a name ("U.S. Army") or lowercase ("U.S. has").
AMBIGUOUS_ABBREVIATIONS: Final[frozenset[str]] = frozenset({
    "etc", "inc", "ltd", "co", "corp", "plc", "llc", "bros", "jr", "sr", "a.m", "p.m", "u.s",
    "u.k", "u.n", "e.u", "d.c", "u.s.a", "al", "ave", "blvd", "rd", "ft", "lbs", "oz",
})
# Latin letters spelled out in Arabic script: an initial inside a transliterated name
# ("جون سي. ميسنجر" = John C. Messenger, "رايموند إس. برادلي"). Not when it closes a
# run of spelled letters, which is an acronym that may end the sentence ("... لبي بي سي.").
ARABIC_LETTER_NAMES: Final[frozenset[str]] = frozenset({
    "إيه", "بي", "سي", "دي", "إي", "اي", "إف", "اف", "جي", "إتش", "اتش", "آي", "جاي", "جيه", "كي", "كيه",
    "إل", "ال", "إم", "ام", "إن", "أو", "او", "كيو", "آر", "ار", "إس", "اس", "تي", "يو", "دبليو", "إكس",
    "اكس", "واي", "زد", "زي",
})
# How far back to look for the name before a spelled initial (longer words are not names).
MAX_NAME_LOOKBACK: Final = 24
# Words that open an Arabic sentence far more often than a name: after a spelled initial
# they mean the "." ends the sentence ("فيتامين سي. ثم ...").
ARABIC_SENTENCE_STARTERS: Final[frozenset[str]] = frozenset({
    "ثم", "لكن", "ولكن", "كما", "قد", "لقد", "وقد", "ولقد", "وقال", "قال", "وأضاف", "وأكد", "وأشار",
    "وتابع", "كان", "كانت", "وكان", "وكانت", "وفي", "في", "وهو", "وهي", "هو", "هي", "هذا", "هذه",
    "وهذا", "وهذه", "إلا", "بينما", "حيث", "ومن", "من", "وعلى", "على", "ويأتي", "يذكر", "ويذكر",
})
SENTENCE_STARTERS: Final[frozenset[str]] = frozenset({
    "The", "A", "An", "He", "She", "It", "They", "We", "I", "You", "This", "That", "These",
    "Those", "There", "Here", "His", "Her", "Its", "Their", "Our", "My", "But", "And", "However",
    "In", "On", "At", "After", "Before", "When", "While", "If", "As", "Meanwhile", "Also", "So",
    "Yet", "What", "Why", "How", "Who", "Where", "Some", "Many", "Most", "No",
})


# ---------------------------------------------------------------------------------------
# URLs
# ---------------------------------------------------------------------------------------


def _url_spans(text: str) -> list[Span]:
    """Spans of URLs and e-mail addresses (their own trailing punctuation excluded)."""
    if not any(hint in text for hint in URL_HINTS):
        return []
    spans: list[Span] = []
    for match in _URL_RE.finditer(text):
        trimmed = match.group().rstrip(URL_TRAILING_PUNCTUATION)
        if trimmed:
            spans.append((match.start(), match.start() + len(trimmed)))
    return spans


def _span_start(span: Span) -> int:
    """Sort key of a span."""
    return span[0]


def _inside(spans: list[Span], position: int) -> bool:
    """True when ``position`` lies within one of the sorted, disjoint ``spans``."""
    index = bisect.bisect_right(spans, position, key=_span_start) - 1
    return index >= 0 and position < spans[index][1]


# ---------------------------------------------------------------------------------------
# Boundary decisions
# ---------------------------------------------------------------------------------------


def _word_before(text: str, end: int) -> tuple[str, int]:
    """The whitespace-delimited word ending at ``end`` and its start, or ("", end) if long."""
    start = end
    limit = max(0, end - MAX_ABBREVIATION_LENGTH - 1)
    while start > limit and not text[start - 1].isspace():
        start -= 1
    if start == limit and start > 0 and not text[start - 1].isspace():
        return "", end  # longer than any abbreviation
    return text[start:end], start


def _word_after(text: str, position: int) -> str:
    """The next whitespace-delimited word after ``position``, opening quotes removed."""
    match = _NEXT_WORD_RE.match(text, position)
    return match.group(1).lstrip(OPENING_PUNCTUATION) if match else ""


def _is_abbreviation(word: str, next_word: str) -> bool:
    """True when ``word`` + "." is an abbreviation that does not end the sentence here."""
    key = word.lstrip(OPENING_PUNCTUATION).replace(TATWEEL, "")
    lowered = key.lower()
    if lowered in NON_TERMINAL_ABBREVIATIONS:
        return True
    if lowered in NUMBER_ABBREVIATIONS and next_word[:1].isdigit():
        return True
    if len(key) == 1 and key.isalpha() and not key.islower():
        return True  # an initial: "J. Smith", "د. محمد"
    if _DOTTED_INITIALISM_RE.fullmatch(key) and _ARABIC_LETTER_RE.match(key):
        return next_word not in ARABIC_SENTENCE_STARTERS  # "322 ق.م. وكان ..." ends there
    if lowered in AMBIGUOUS_ABBREVIATIONS or _DOTTED_INITIALISM_RE.fullmatch(key):
        return next_word not in SENTENCE_STARTERS
    return False


def _is_spelled_initial(text: str, word: str, word_start: int, next_word: str) -> bool:
    """A Latin initial spelled in Arabic inside a name: "جيمس أو. ماكينزي" (see ARABIC_LETTER_NAMES)."""
    if (word not in ARABIC_LETTER_NAMES or next_word in ARABIC_SENTENCE_STARTERS
            or not _ARABIC_LETTER_RE.match(next_word[:1])):
        return False
    preceding = text[max(0, word_start - MAX_NAME_LOOKBACK):word_start].split()
    before = preceding[-1] if preceding else ""
    return bool(before) and before not in ARABIC_LETTER_NAMES and bool(_ARABIC_LETTER_RE.match(before[-1]))


def _single_dot_ends(text: str, dot: int, after: int, segment_start: int) -> bool:
    """Whether the "." at ``dot`` (its closers end at ``after``) ends a sentence."""
    if after < len(text) and not text[after].isspace():
        # Glued to what follows: only "عربي.عربي" (missing space) is a boundary, not "ق.م".
        return (dot > 1 and bool(_ARABIC_LETTER_RE.match(text, dot - 1))
                and bool(_ARABIC_LETTER_RE.match(text, dot - 2))
                and bool(_ARABIC_LETTER_RE.match(text, after)))
    next_word = _word_after(text, after)
    if next_word[:1].islower():
        return False  # English sentences do not start in lowercase
    word, word_start = _word_before(text, dot)
    if not word:
        return True
    if _is_abbreviation(word, next_word) or _is_spelled_initial(text, word, word_start, next_word):
        return False
    is_list_number = word.isdigit() and len(word) <= MAX_LIST_NUMBER_DIGITS
    # "1. First item": only a number that opens the segment is a list marker.
    return not (is_list_number and not text[segment_start:word_start].strip())


def _ellipsis_ends(text: str, after: int) -> bool:
    """An ellipsis ends the sentence unless a lowercase word or , ; : follows."""
    next_word = _word_after(text, after)
    if not next_word:
        return True
    first = next_word[0]
    return not (first.islower() or first in CONTINUATION_PUNCTUATION)


def _terminator_ends(text: str, match: re.Match[str], segment_start: int) -> bool:
    """Whether a run of terminators (with its closers) ends a sentence."""
    run = match.group()
    if run == ".":  # by far the most common case
        return _single_dot_ends(text, match.start(), match.end(), segment_start)
    if not STRONG_TERMINATORS.isdisjoint(run):
        return True
    if ELLIPSIS_CHAR in run or run.count(".") >= MIN_ELLIPSIS_DOTS:
        return _ellipsis_ends(text, match.end())
    return _single_dot_ends(text, match.start(), match.end(), segment_start)


# ---------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------


def _append_stripped(text: str, start: int, end: int, spans: list[Span]) -> None:
    """Append ``[start, end)`` without surrounding whitespace, if anything is left."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if start < end:
        spans.append((start, end))


def _boundary_candidates(text: str) -> Iterator[re.Match[str]]:
    """``_BOUNDARY_RE`` matches in ``text``, left to right, found via ``_CANDIDATE_RE``."""
    position = 0
    while (candidate := _CANDIDATE_RE.search(text, position)) is not None:
        match = _BOUNDARY_RE.match(text, candidate.start())
        if match is None:  # cannot happen: every candidate character starts a boundary
            position = candidate.end()
            continue
        yield match
        position = match.end()


def split_sentences(text: str) -> list[Span]:
    """Sentence spans ``(start, end)`` into ``text`` (see the module docstring)."""
    urls = _url_spans(text)
    spans: list[Span] = []
    segment_start = 0
    for match in _boundary_candidates(text):
        if match.lastgroup == "nl":
            _append_stripped(text, segment_start, match.start(), spans)
            segment_start = match.end()
        elif not (urls and _inside(urls, match.start())) and _terminator_ends(
            text, match, segment_start
        ):
            _append_stripped(text, segment_start, match.end(), spans)
            segment_start = match.end()
    _append_stripped(text, segment_start, len(text), spans)
    return spans
