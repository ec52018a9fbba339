"""Language identification by script, good enough to pick the answer language.

Only three labels matter to the service: "ar", "en" and "other". The decision is made
from scripts, not from a statistical model:

1. Letters are classified as Arabic script, Latin script or other. If letters of other
   scripts outnumber Arabic and Latin letters together → "other". No letters at all
   (empty, digits, punctuation) → "other".
2. Between Arabic and Latin the *word* majority decides, ties going to Arabic. Words,
   not letters, because Latin-script names and acronyms inside Arabic sentences are
   common ("Joe Biden قال إن" is Arabic) and Latin names are long in letters.
3. Latin-majority text is "en" unless it is clearly another language: it has more
   French/German/Spanish/Italian/Portuguese function words than English ones, and
   either at least ``MIN_FOREIGN_FUNCTION_WORDS`` of them or accented letters.
   Name-only text ("Joe Biden", "José García") stays "en".

Arabic-script Persian/Urdu is reported as "ar" (same script, same folding pipeline).
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["detect_language", "script_ratio"]

LANG_ARABIC: Final = "ar"
LANG_ENGLISH: Final = "en"
LANG_OTHER: Final = "other"

# At least this many non-English function words are needed to call unaccented Latin text
# "other" (one "la" or "die" alone is not enough evidence).
MIN_FOREIGN_FUNCTION_WORDS: Final = 2

_ARABIC_LETTERS: Final = (
    "\u0620-\u063f\u0641-\u064a\u066e\u066f\u0671-\u06d3\u06d5\u06ee\u06ef\u06fa-\u06fc\u06ff"
    "\u0750-\u077f\u08a0-\u08c9\ufb50-\ufbb1\ufbd3-\ufd3d\ufd50-\ufdfb\ufe70-\ufefc"
)
# Marks and tatweel continue an Arabic word instead of splitting it.
_ARABIC_WORD_INNER: Final = "\u0610-\u061a\u0640\u064b-\u065f\u0670\u06d6-\u06ed\u08d3-\u08ff"
_LATIN_LETTERS: Final = "A-Za-z\u00aa\u00ba\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff"
_LATIN_ACCENTED: Final = "\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff\u0300-\u036f"
_LATIN_WORD_INNER: Final = "\u0300-\u036f'’"

_ARABIC_RUN_RE: Final = re.compile(f"[{_ARABIC_LETTERS}]+")
_LATIN_RUN_RE: Final = re.compile(f"[{_LATIN_LETTERS}]+")
_LETTER_RUN_RE: Final = re.compile(r"[^\W\d_]+")
_ARABIC_WORD_RE: Final = re.compile(f"[{_ARABIC_LETTERS}][{_ARABIC_LETTERS}{_ARABIC_WORD_INNER}]*")
_LATIN_WORD_RE: Final = re.compile(f"[{_LATIN_LETTERS}][{_LATIN_LETTERS}{_LATIN_WORD_INNER}]*")
_LATIN_ACCENTED_RE: Final = re.compile(f"[{_LATIN_ACCENTED}]")

# Common English function words that are rare as words in the other Latin-script
# languages we see (so not "a", "in", "was", "will", "also", "an", "on").
ENGLISH_FUNCTION_WORDS: Final[frozenset[str]] = frozenset({
    "the", "and", "of", "to", "is", "are", "were", "that", "this", "these", "those", "with", "for",
    "from", "by", "what", "which", "who", "how", "has", "have", "had", "been", "be", "it", "its",
    "said", "they", "their", "he", "she", "his", "her", "not", "or", "but", "at", "would", "there",
    "about", "after", "than",
})
# Frequent function words of French, German, Spanish, Italian and Portuguese.
FOREIGN_FUNCTION_WORDS: Final[frozenset[str]] = frozenset({
    "le", "la", "les", "des", "du", "une", "un", "et", "est", "avec", "pour", "dans", "sur", "que",
    "qui", "pas", "au", "aux", "ce", "cette", "der", "die", "das", "und", "ist", "nicht", "mit",
    "von", "zu", "den", "dem", "ein", "eine", "sich", "auf", "el", "los", "las", "y", "del", "por",
    "con", "para", "una", "es", "il", "di", "che", "della", "non", "gli", "um", "uma", "não",
    "com", "em", "os",
})


def _letters(pattern: re.Pattern[str], text: str) -> int:
    """Number of letters of ``text`` in the runs that ``pattern`` finds."""
    return sum(map(len, pattern.findall(text)))


def script_ratio(text: str) -> dict[str, float]:
    """Share of letters by script: keys "ar", "latin", "other"; all 0.0 when no letters."""
    arabic = _letters(_ARABIC_RUN_RE, text)
    latin = _letters(_LATIN_RUN_RE, text)
    total = max(_letters(_LETTER_RUN_RE, text), arabic + latin)
    if total == 0:
        return {"ar": 0.0, "latin": 0.0, "other": 0.0}
    return {"ar": arabic / total, "latin": latin / total, "other": (total - arabic - latin) / total}


def _looks_foreign(text: str, latin_words: list[str]) -> bool:
    """True when Latin-script text is clearly not English (see the module docstring)."""
    lowered = [w.lower() for w in latin_words]
    english = sum(w in ENGLISH_FUNCTION_WORDS for w in lowered)
    foreign = sum(w in FOREIGN_FUNCTION_WORDS for w in lowered)
    if foreign <= english:
        return False
    return foreign >= MIN_FOREIGN_FUNCTION_WORDS or bool(_LATIN_ACCENTED_RE.search(text))


def detect_language(text: str) -> str:
    """"ar", "en" or "other" for ``text``, decided by script (see the module docstring)."""
    ratio = script_ratio(text)
    if ratio["other"] > ratio["ar"] + ratio["latin"]:
        return LANG_OTHER
    arabic_words = len(_ARABIC_WORD_RE.findall(text))
    latin_words = _LATIN_WORD_RE.findall(text)
    if arabic_words == 0 and not latin_words:
        return LANG_OTHER
    if arabic_words >= len(latin_words):
        return LANG_ARABIC
    return LANG_OTHER if _looks_foreign(text, latin_words) else LANG_ENGLISH
