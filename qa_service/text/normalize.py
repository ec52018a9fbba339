"""Matching-only normalisation, numbers, tokens and a light stemmer for Arabic and English.

Stored text is never changed. Everything here produces a *matching key*; functions that
return positions report them as code-point offsets into the caller's original string
(Python ``str`` indices), so a match found in normalised text can always be cited
verbatim in the stored text.

How normalisation works (and why it is fast):

* Every code point is folded on its own, through a lazily filled translation table
  (``_FoldTable``). ``normalize`` is therefore one ``str.translate`` (C speed) plus a
  whitespace collapse, and ``normalize_with_offsets`` can attribute each output
  character to exactly one input character.
* A code point's fold is: explicit Arabic/digit/punctuation/control rules, else
  per-code-point NFKC, ``casefold``, canonical decomposition with Arabic harakat and
  Latin combining accents removed, recomposition (NFC). The fold is iterated to a fixed
  point, which is what makes ``normalize`` idempotent.
* Because folding is per code point, NFKC composition *across* characters does not
  happen. Latin and Arabic are unaffected (their combining marks are removed anyway,
  so "é" and "e" + U+0301 both give "e"); decomposed sequences in other scripts stay
  decomposed, consistently for documents and queries.

Latin: casefolded and accent-free ("Café", "cafe", "CAFE\u0301" share a key; "Straße"
→ "strasse"). Other NFKC effects: ligatures and fullwidth forms are expanded, Arabic
presentation forms become base letters ("ﻻ" → "لا").

Arabic folding choices (standard for Arabic IR, e.g. Larkey et al.'s Light10 setup):

* Harakat/tanween/shadda/sukun (U+064B-065F), superscript alef (U+0670), Quranic
  annotation marks (U+0610-061A, U+06D6-06ED, U+08D3-08FF) and tatweel (U+0640) are
  removed: writers use them inconsistently, so "مُحَمَّد" must match "محمد".
* Alef forms أ إ آ ٱ (and the rare ٲ ٳ) → ا: hamza seats are very often omitted.
* ى → ي: final alef maqsura and yeh are interchanged in web text (notably Egyptian
  usage). Side effect: "على" (on) and "علي" (Ali) share a key, so ``tokenize`` decides
  stopwords *before* this fold (see ``tokenize``).
* ة → ه: ta marbuta is often written as heh. Side effect: feminine -ة and the
  possessive -ه ("his") conflate, e.g. "كتابة" (writing) and "كتابه" (his book).
* ؤ → و and ئ → ي: hamza on a seat is folded to the seat letter; bare ء is kept.
* Persian letter variants common in Arabic web text: ی (U+06CC) → ي, ک (U+06A9) → ك,
  ۀ (U+06C0) → ه.
* Digits (Arabic-Indic and Persian) → ASCII; ٫ → "."; ٬ → ","; ٪ → "%";
  ؟ ، ؛ ۔ → ? , ; . so that numbers and punctuation look the same in both scripts.
* Bidi and zero-width controls (U+200B-200F, U+202A-202E, U+2066-2069, U+FEFF, plus the
  Arabic letter mark U+061C, soft hyphen U+00AD and word joiner U+2060) are removed;
  every Unicode whitespace becomes one ASCII space and runs collapse.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections.abc import Iterable
from typing import Final

__all__ = [
    "ARABIC_STOPWORDS",
    "ENGLISH_STOPWORDS",
    "extract_numbers",
    "fold_digits",
    "light_stem",
    "normalize",
    "normalize_with_offsets",
    "strip_number_grouping",
    "tokenize",
    "tokenize_with_spans",
]

# ---------------------------------------------------------------------------------------
# Code points
# ---------------------------------------------------------------------------------------

ALEF: Final = "\u0627"
YEH: Final = "\u064a"
ALEF_MAQSURA: Final = "\u0649"
HEH: Final = "\u0647"
WAW: Final = "\u0648"
KAF: Final = "\u0643"
TA_MARBUTA: Final = "\u0629"
TATWEEL: Final = "\u0640"

ARABIC_DECIMAL_SEPARATOR: Final = "\u066b"  # ٫
ARABIC_THOUSANDS_SEPARATOR: Final = "\u066c"  # ٬

ARABIC_INDIC_ZERO: Final = 0x0660
PERSIAN_ZERO: Final = 0x06F0
DIGITS_PER_SCRIPT: Final = 10

# Inclusive code-point ranges that are deleted by the matching fold.
ARABIC_MARK_RANGES: Final[tuple[tuple[int, int], ...]] = (
    (0x0610, 0x061A),  # honorific / Quranic signs above letters
    (0x064B, 0x065F),  # harakat, tanween, shadda, sukun, hamza above/below, ...
    (0x0670, 0x0670),  # superscript (dagger) alef
    (0x06D6, 0x06ED),  # Quranic annotation marks
    (0x08D3, 0x08FF),  # extended Quranic marks
)
COMBINING_ACCENT_RANGES: Final[tuple[tuple[int, int], ...]] = (
    (0x0300, 0x036F),  # combining diacritical marks (Latin, Greek, Cyrillic accents)
    (0x1AB0, 0x1AFF),  # combining diacritical marks extended
    (0x1DC0, 0x1DFF),  # combining diacritical marks supplement
    (0x20D0, 0x20FF),  # combining marks for symbols
    (0xFE20, 0xFE2F),  # combining half marks
)
INVISIBLE_CONTROL_RANGES: Final[tuple[tuple[int, int], ...]] = (
    (0x00AD, 0x00AD),  # soft hyphen
    (0x061C, 0x061C),  # Arabic letter mark
    (0x200B, 0x200F),  # zero-width space/non-joiner/joiner, LRM, RLM
    (0x202A, 0x202E),  # bidi embeddings and overrides
    (0x2060, 0x2060),  # word joiner
    (0x2066, 0x2069),  # bidi isolates
    (0xFEFF, 0xFEFF),  # zero-width no-break space / BOM
)
TATWEEL_RANGE: Final[tuple[tuple[int, int], ...]] = ((0x0640, 0x0640),)


def _expand(ranges: Iterable[tuple[int, int]]) -> frozenset[int]:
    """All code points of a sequence of inclusive ranges."""
    return frozenset(cp for lo, hi in ranges for cp in range(lo, hi + 1))


_DELETED: Final[frozenset[int]] = _expand(
    (*ARABIC_MARK_RANGES, *COMBINING_ACCENT_RANGES, *INVISIBLE_CONTROL_RANGES, *TATWEEL_RANGE)
)

_DIGIT_FOLD: Final[dict[int, str]] = {
    **{ARABIC_INDIC_ZERO + d: str(d) for d in range(DIGITS_PER_SCRIPT)},
    **{PERSIAN_ZERO + d: str(d) for d in range(DIGITS_PER_SCRIPT)},
    ord(ARABIC_DECIMAL_SEPARATOR): ".",
    ord(ARABIC_THOUSANDS_SEPARATOR): ",",
}

_LETTER_FOLD: Final[dict[str, str]] = {
    "\u0623": ALEF,  # أ
    "\u0625": ALEF,  # إ
    "\u0622": ALEF,  # آ
    "\u0671": ALEF,  # ٱ alef wasla
    "\u0672": ALEF,  # ٲ wavy hamza above
    "\u0673": ALEF,  # ٳ wavy hamza below
    TA_MARBUTA: HEH,  # ة
    "\u06c0": HEH,  # ۀ heh with yeh above (Persian)
    "\u0624": WAW,  # ؤ
    "\u0626": YEH,  # ئ
    "\u06cc": YEH,  # ی Farsi yeh
    "\u06a9": KAF,  # ک keheh
}

_PUNCT_FOLD: Final[dict[str, str]] = {
    "\u061f": "?",  # ؟
    "\u060c": ",",  # ،
    "\u061b": ";",  # ؛
    "\u06d4": ".",  # ۔ Arabic full stop
    "\u066a": "%",  # ٪
}

# Upper bound on re-folding a code point's output; real data converges in 1-2 passes.
MAX_FOLD_PASSES: Final = 4


# ---------------------------------------------------------------------------------------
# Digits
# ---------------------------------------------------------------------------------------


_DIGIT_RUN_RE: Final = re.compile(f"[{''.join(map(chr, _DIGIT_FOLD))}]+")


def _fold_digit_run(match: re.Match[str]) -> str:
    """ASCII spelling of one run of Arabic-script digits and separators."""
    return match.group().translate(_DIGIT_FOLD)


def fold_digits(text: str) -> str:
    """Arabic-Indic/Persian digits and Arabic ٫ ٬ separators to ASCII; length is preserved."""
    if text.isascii():
        return text
    # Translating only the digit runs is several times faster than translating all of a
    # mostly-letter text with a partial table.
    return _DIGIT_RUN_RE.sub(_fold_digit_run, text)


# ---------------------------------------------------------------------------------------
# The fold table
# ---------------------------------------------------------------------------------------


def _explicit_rules(fold_maqsura: bool) -> dict[str, str]:
    """Single-code-point rules applied before (and after) Unicode normalisation."""
    rules = {chr(cp): "" for cp in _DELETED}
    rules.update({chr(cp): ch for cp, ch in _DIGIT_FOLD.items()})
    rules.update(_LETTER_FOLD)
    rules.update(_PUNCT_FOLD)
    if fold_maqsura:
        rules[ALEF_MAQSURA] = YEH
    return rules


def _fold_once(ch: str, rules: dict[str, str]) -> str:
    """One pass of the fold for a single code point (see the module docstring)."""
    explicit = rules.get(ch)
    if explicit is not None:
        return explicit
    if ch.isspace():
        return " "
    folded = unicodedata.normalize("NFKC", ch).casefold()
    decomposed = unicodedata.normalize("NFKD", folded)
    kept = "".join(c for c in decomposed if ord(c) not in _DELETED)
    recomposed = unicodedata.normalize("NFC", kept)
    # NFKC may expand to several code points (ligatures): apply the rules to each.
    return "".join(rules.get(c, " " if c.isspace() else c) for c in recomposed)


def _fold_code_point(ch: str, rules: dict[str, str]) -> str:
    """The fold of one code point, iterated until every output code point is a fixed point."""
    current = ch
    for _ in range(MAX_FOLD_PASSES):
        nxt = "".join(_fold_once(c, rules) for c in current)
        if nxt == current:
            return current
        current = nxt
    # Not converged (no known code point does this): leaving it unchanged keeps idempotence.
    return ch


def _char_class(code_points: Iterable[int]) -> str:
    """A regex character-class body for ``code_points``, compressed into ranges."""
    ordered = sorted(code_points)
    parts: list[str] = []
    start = 0
    while start < len(ordered):
        stop = start
        while stop + 1 < len(ordered) and ordered[stop + 1] == ordered[stop] + 1:
            stop += 1
        first, last = re.escape(chr(ordered[start])), re.escape(chr(ordered[stop]))
        parts.append(first if stop == start else f"{first}-{last}")
        start = stop + 1
    return "".join(parts)


class _FoldTable(dict[int, str]):
    """Code point → replacement string for ``str.translate``, filled on first use.

    ``str.translate`` looks each code point up with ``__getitem__``, so ``__missing__``
    lets one table cover all of Unicode while only the code points actually seen are
    computed (once each). Concurrent first lookups compute the same value, so races
    are harmless.

    ``irregular`` matches every code point whose fold is not exactly one code point
    (deleted or expanded), plus everything outside the pre-filled blocks; offset maps
    only need Python work at those positions.
    """

    def __init__(self, fold_maqsura: bool, warm: Iterable[int]) -> None:
        super().__init__()
        self._rules = _explicit_rules(fold_maqsura)
        for cp in warm:
            self[cp] = _fold_code_point(chr(cp), self._rules)
        regular = (cp for cp, value in self.items() if len(value) == 1)
        self.irregular: re.Pattern[str] = re.compile(f"[^{_char_class(regular)}]")

    def __missing__(self, key: int) -> str:
        value = _fold_code_point(chr(key), self._rules)
        self[key] = value
        return value


# Pre-fill the blocks every document uses so the hot path never leaves C.
_WARM_RANGES: Final[tuple[tuple[int, int], ...]] = (
    (0x0000, 0x024F),  # ASCII, Latin-1, Latin Extended-A/B
    (0x0600, 0x06FF),  # Arabic
    (0x2000, 0x206F),  # general punctuation
    (0xFE70, 0xFEFF),  # Arabic presentation forms-B
)
_WARM: Final[frozenset[int]] = _expand(_WARM_RANGES)

# The matching fold (ى → ي) and the tokenizer's fold, which keeps ى so that stopwords can
# be told apart from names ("على" vs "علي"); the two differ only in that one code point.
_MATCH_TABLE: Final = _FoldTable(fold_maqsura=True, warm=_WARM)
_TOKEN_TABLE: Final = _FoldTable(fold_maqsura=False, warm=_WARM)

# Spaces that whitespace collapsing removes from folded text (where every whitespace is
# already " "): leading, trailing, and all but the first of a run.
_EXTRA_SPACE_RE: Final = re.compile(r"^ +| +$|(?<= ) +")


# ---------------------------------------------------------------------------------------
# normalize
# ---------------------------------------------------------------------------------------


def normalize(text: str) -> str:
    """Matching key for ``text``: folded, casefolded, digits ASCII, whitespace collapsed.

    Idempotent: ``normalize(normalize(t)) == normalize(t)``. Never store its output in
    place of the original text.
    """
    return " ".join(text.translate(_MATCH_TABLE).split())


def _fold_pieces(text: str, table: _FoldTable) -> tuple[str, list[int]]:
    """Translate ``text`` and map every output code point to its source index.

    Runs of one-to-one code points are mapped with C-level ``range`` slices; Python
    work is only done for deleted/expanded code points.
    """
    origin: list[int] = []
    position = 0
    for match in table.irregular.finditer(text):
        index = match.start()
        origin.extend(range(position, index))
        origin.extend([index] * len(table[ord(match.group())]))
        position = index + 1
    origin.extend(range(position, len(text)))
    return text.translate(table), origin


def _drop_positions(
    text: str, origin: list[int], pattern: re.Pattern[str]
) -> tuple[str, list[int]]:
    """Remove what ``pattern`` matches from ``text`` and the matching ``origin`` entries."""
    parts: list[str] = []
    offsets: list[int] = []
    position = 0
    for match in pattern.finditer(text):
        parts.append(text[position:match.start()])
        offsets.extend(origin[position:match.start()])
        position = match.end()
    if position == 0:
        return text, origin
    parts.append(text[position:])
    offsets.extend(origin[position:])
    return "".join(parts), offsets


def normalize_with_offsets(text: str) -> tuple[str, list[int]]:
    """``normalize(text)`` plus, for each output code point, the index it came from.

    ``len(offsets) == len(out)``; offsets are non-decreasing. A span ``[i, j)`` of the
    output maps back to ``text[offsets[i]:offsets[j - 1] + 1]``. Characters deleted by
    the fold (e.g. a final haraka) just after ``j - 1`` are not inside that span.
    A collapsed whitespace run maps to its first whitespace character.
    """
    folded, origin = _fold_pieces(text, _MATCH_TABLE)
    return _drop_positions(folded, origin, _EXTRA_SPACE_RE)


# ---------------------------------------------------------------------------------------
# Numbers
# ---------------------------------------------------------------------------------------

# A number inside ASCII-digit text (apply fold_digits first). It starts with a plain
# digit class so the regex engine can skip to digits quickly; the lookbehinds, placed
# after that first digit, say it must not continue another number ("1.2.3" yields "1.2"
# only). Alternatives, most specific first: dot-grouped "1.000.000" (two or more groups,
# otherwise "1.000" is a decimal), comma-grouped "2,500" with an optional decimal part,
# plain "2500" / "2.5". Grouping needs exact 3-digit groups, so "2024, 2500" and
# "2024,2500" stay two numbers.
_NUMBER_PATTERN: Final = r"""
    [0-9](?<![0-9][0-9])(?<![0-9]\.[0-9])
    (?:
        [0-9]{0,2}(?:\.[0-9]{3}){2,}
      | [0-9]{0,2}(?:,[0-9]{3})+(?:\.[0-9]+)?
      | [0-9]*(?:\.[0-9]+)?
    )
    (?![0-9])
"""
_NUMBER_RE: Final = re.compile(_NUMBER_PATTERN, re.VERBOSE)
_COMMA_GROUPED_RE: Final = re.compile(r"[+\-]?[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?")
_DOT_GROUPED_RE: Final = re.compile(r"[+\-]?[0-9]{1,3}(?:\.[0-9]{3}){2,}")
_UNICODE_MINUS: Final = "\u2212"


def strip_number_grouping(token: str) -> str:
    """Digits folded to ASCII and thousands separators removed where they are real groups.

    "٢٬٥٠٠" → "2500", "2,500.5" → "2500.5", "1.000.000" → "1000000". Anything that is
    not a well-formed grouped number ("2,5", "12,34") is returned digit-folded only.
    """
    folded = fold_digits(token.strip()).replace(_UNICODE_MINUS, "-")
    if _COMMA_GROUPED_RE.fullmatch(folded):
        return folded.replace(",", "")
    if _DOT_GROUPED_RE.fullmatch(folded):
        return folded.replace(".", "")
    return folded


def _canonical_number(digits: str) -> str:
    """Canonical spelling of a matched number: no grouping, no padding zeros."""
    if digits.isdigit() and digits[0] != "0":
        return digits  # the common case: a plain integer is already canonical
    plain = strip_number_grouping(digits)
    integer, _, fraction = plain.partition(".")
    integer = integer.lstrip("0") or "0"
    fraction = fraction.rstrip("0")
    return f"{integer}.{fraction}" if fraction else integer


def extract_numbers(text: str) -> list[tuple[float, int, int]]:
    """Every number in ``text`` as ``(value, start, end)`` with spans into ``text``.

    Handles Arabic-Indic/Persian digits, ٫/. decimals, thousands grouping with exact
    3-digit groups. Signs are not read ("2014-2020" is two positive numbers); numbers
    glued to letters ("F-16", "ب2500") are still found.
    """
    folded = fold_digits(text)  # same length, so spans are valid in ``text``
    numbers: list[tuple[float, int, int]] = []
    for match in _NUMBER_RE.finditer(folded):
        value = float(strip_number_grouping(match.group()))
        if math.isfinite(value):
            numbers.append((value, match.start(), match.end()))
    return numbers


# Words that scale a figure and belong to it ("2.5 million", "30 ألف").
_SCALE_RE: Final = re.compile(
    r"\s?(?:%|٪|(?:مليون|ملايين|مليار|مليارات|ألف|آلاف|الف|الاف|million|billion|thousand|trillion|"
    r"percent|per cent|بالمئة|بالمائة|في المئة|في المائة)(?![\w]))", re.IGNORECASE)
_SCALE_FACTORS: Final = {
    "مليار": 1e9, "billion": 1e9, "مليون": 1e6, "ملايين": 1e6, "million": 1e6, "trillion": 1e12,
    "ألف": 1e3, "آلاف": 1e3, "الف": 1e3, "الاف": 1e3, "thousand": 1e3,
}


def figure_value(text: str) -> float | None:
    """The value of the first figure written in digits, scale words applied ("2.5 million" = 2500000)."""
    numbers = extract_numbers(text)
    if not numbers:
        return None
    value, _, end = numbers[0]
    scale = _SCALE_RE.match(text, end)
    word = scale.group().strip().lower() if scale else ""
    return value * next((f for w, f in _SCALE_FACTORS.items() if word.startswith(w)), 1.0)


# ---------------------------------------------------------------------------------------
# Tokens
# ---------------------------------------------------------------------------------------

# Curated, written naturally; folded at import with the tokenizer's fold. Question words
# are included (they never help lexical matching). Deliberately absent: "us" (the U.S.),
# "who" (the WHO), "may" (the month), and temporal words such as بعد/قبل.
ARABIC_STOPWORDS: Final[frozenset[str]] = frozenset({
    "في", "من", "على", "إلى", "عن", "أن", "إن", "ما", "هذا", "هذه", "ذلك", "تلك", "هؤلاء", "التي",
    "الذي", "الذين", "اللذان", "اللتان", "اللاتي", "و", "أو", "ثم", "أم", "بل", "لا", "لم", "لن",
    "ليس", "قد", "لقد", "مع", "كل", "بين", "عند", "حتى", "إذا", "إلا", "كما", "لكن", "أي", "أيضا",
    "هو", "هي", "هم", "هن", "أنا", "نحن", "أنت", "كان", "كانت", "يكون", "تكون", "كانوا", "به",
    "بها", "له", "لها", "لهم", "فيه", "فيها", "منه", "منها", "عليه", "عليها", "إليه", "عنه",
    "عنها", "وقد", "وفي", "ومن", "وأن", "وإن", "وهو", "وهي", "وما", "ولا", "ولم", "وكان", "كم",
    "كيف", "ماذا", "متى", "أين", "لماذا", "هل",
})
ENGLISH_STOPWORDS: Final[frozenset[str]] = frozenset({
    "the", "a", "an", "of", "in", "on", "at", "to", "for", "from", "by", "with", "about", "as",
    "into", "than", "is", "are", "was", "were", "be", "been", "being", "am", "do", "does", "did",
    "has", "have", "had", "will", "would", "can", "could", "should", "might", "must", "shall",
    "it", "its", "this", "that", "these", "those", "there", "here", "and", "or", "but", "not",
    "no", "nor", "so", "if", "then", "i", "me", "my", "we", "our", "you", "your", "he", "him",
    "his", "she", "her", "they", "them", "their", "what", "which", "whom", "whose", "when",
    "where", "why", "how", "many", "much", "s", "t",
})

_TOKEN_RE: Final = re.compile(
    # 1. a number not glued to a letter;
    # 2. dotted single-letter initials, "U.S." → "us" so it matches "US" (the final dot
    #    is left out: it may end the sentence);
    # 3. a run of word characters (letters and digits: "h200" stays one term). "_" is a
    #    separator here, as in slugs and handles.
    rf"""
    (?P<num>{_NUMBER_PATTERN}(?![^\W\d_]))
  | (?P<initials>(?<![^\W_])[^\W\d_](?:\.[^\W\d_])+(?![^\W_]))
  | (?P<word>[^\W_]+)
    """,
    re.VERBOSE,
)
INITIALS_SEPARATOR: Final = "."


def _fold_stopwords(words: Iterable[str]) -> frozenset[str]:
    """Stopwords as the tokenizer sees them (tokenizer fold, before ى → ي)."""
    return frozenset(" ".join(w.translate(_TOKEN_TABLE).split()) for w in words)


_STOPWORDS: Final[frozenset[str]] = _fold_stopwords(ARABIC_STOPWORDS | ENGLISH_STOPWORDS)


def _term(number: str, initials: str, word: str) -> str | None:
    """The index term for one token match's groups, or None for a stopword."""
    if number:
        return _canonical_number(number)
    term = word or initials.replace(INITIALS_SEPARATOR, "")
    if term in _STOPWORDS:
        return None
    # The tokenizer fold kept ى for the stopword test; terms use the matching fold.
    return term.replace(ALEF_MAQSURA, YEH)


def tokenize(text: str) -> list[str]:
    """Lexical terms for BM25: normalised, split on non-word characters, stopwords dropped.

    Numbers are kept in canonical form ("2,500", "٢٬٥٠٠" and "2500" all give "2500";
    "2.50" gives "2.5"); dotted initials are joined ("U.S." gives "us"). Stopwords are
    decided before ى → ي, so "على" (on) is dropped while "علي" (Ali) is kept; "إلى" is
    dropped while "آلي" (automatic) is kept. Terms are not stemmed (see ``light_stem``).
    """
    # findall yields group tuples without building Match objects; the loop is inlined
    # (no per-token call) because this runs on every chunk at indexing time.
    terms: list[str] = []
    for number, initials, word in _TOKEN_RE.findall(text.translate(_TOKEN_TABLE)):
        if number:
            terms.append(_canonical_number(number))
            continue
        term = word or initials.replace(INITIALS_SEPARATOR, "")
        if term not in _STOPWORDS:
            terms.append(term.replace(ALEF_MAQSURA, YEH))
    return terms


def tokenize_with_spans(text: str) -> list[tuple[str, int, int]]:
    """``tokenize`` with each term's ``(start, end)`` code-point span in ``text``."""
    folded, origin = _fold_pieces(text, _TOKEN_TABLE)
    spans: list[tuple[str, int, int]] = []
    for match in _TOKEN_RE.finditer(folded):
        term = _term(match.group("num") or "", match.group("initials") or "",
                     match.group("word") or "")
        if term is not None:
            spans.append((term, origin[match.start()], origin[match.end() - 1] + 1))
    return spans


# ---------------------------------------------------------------------------------------
# Light stemming
# ---------------------------------------------------------------------------------------

# Light10 (Larkey, Ballesteros & Connell 2007): strip a leading و if at least 3 letters
# remain; then one definite-article prefix if at least 2 remain; then go once through
# the suffix list, in this order, removing each that matches if at least 2 remain.
# Known Light10 behaviour kept on purpose: root-initial و is stripped too ("وزير" → "زير")
# — consistently for documents and queries.
AR_CONJUNCTION: Final = WAW
AR_MIN_STEM_AFTER_CONJUNCTION: Final = 3
AR_MIN_STEM: Final = 2
AR_ARTICLE_PREFIXES: Final[tuple[str, ...]] = ("وال", "بال", "كال", "فال", "لل", "ال")
AR_SUFFIXES: Final[tuple[str, ...]] = ("ها", "ان", "ات", "ون", "ين", "يه", "ية", "ه", "ة", "ي")

# Every answer stems the words of its passages again: remembering a news vocabulary's stems
# costs a few MB and takes stemming off the /v1/ask profile.
STEM_CACHE_SIZE: Final = 1 << 17
# Latin: Harman's S-stemmer (plural -s only), on words longer than this.
LATIN_MIN_STEM_LENGTH: Final = 3

_ARABIC_LETTER_RE: Final = re.compile(r"[\u0620-\u064a\u066e-\u06d3\u06d5\u06fa-\u06ff]")
_LATIN_WORD_RE: Final = re.compile(r"[a-z]+")


def _stem_arabic(token: str) -> str:
    """Light10 on one Arabic token."""
    stem = token
    if stem.startswith(AR_CONJUNCTION) and len(stem) - 1 >= AR_MIN_STEM_AFTER_CONJUNCTION:
        stem = stem[1:]
    for prefix in AR_ARTICLE_PREFIXES:
        if stem.startswith(prefix) and len(stem) - len(prefix) >= AR_MIN_STEM:
            stem = stem[len(prefix):]
            break
    for suffix in AR_SUFFIXES:
        if stem.endswith(suffix) and len(stem) - len(suffix) >= AR_MIN_STEM:
            stem = stem[: -len(suffix)]
    return stem


def _stem_latin(token: str) -> str:
    """Harman S-stemmer: -ies → -y, -es → -e, -s → "" (with its exceptions)."""
    if len(token) <= LATIN_MIN_STEM_LENGTH:
        return token
    if token.endswith("ies") and not token.endswith(("eies", "aies")):
        return token[:-3] + "y"
    if token.endswith("es") and not token.endswith(("aes", "ees", "oes")):
        return token[:-1]
    if token.endswith("s") and not token.endswith(("us", "ss")):
        return token[:-1]
    return token


@functools.lru_cache(maxsize=STEM_CACHE_SIZE)
def light_stem(token: str) -> str:
    """Light stem of one token: Light10 for Arabic, plural-s stripping for lowercase Latin.

    Meant for ``tokenize`` output (already normalised; works on raw Arabic too since
    both ة and ه suffixes are listed). Numbers and other scripts are returned unchanged.
    Examples: "والمعلمون" → "معلم", "بالعراق" → "عراق", "الكتابات" → "كتاب",
    "troops" → "troop", "countries" → "country".
    """
    if _ARABIC_LETTER_RE.search(token):
        return _stem_arabic(token)
    if _LATIN_WORD_RE.fullmatch(token):
        return _stem_latin(token)
    return token


def has_letters_or_digits(text: str) -> bool:
    """Whether ``text`` has something to search for: not only spaces, controls (NUL), zero-width,
    direction or other invisible characters, punctuation or symbols."""
    return any(c.isalnum() for c in text)
