"""Consonant skeletons: match a Latin-script name to its Arabic transliteration.

"Denver" and "دنفر", "Panthers" and "بانثرز", "Super" and "سوبر" share a skeleton: the
word's consonants mapped to coarse classes that both scripts agree on, vowels and the
letters that double as vowels (و ي ا / w y h) dropped, repeats collapsed. It is a
matching key, not a transliteration, and is only used to compare a question's names with
the words of passages already retrieved, never to search the whole collection.
"""

from __future__ import annotations

import re
from collections.abc import Set as AbstractSet
from functools import lru_cache
from typing import Final

# Coarse classes shared by both scripts: p/b, v/f, s/z (English plural -s is often ز),
# g/j, c/k/q. Letters absent from the maps are dropped.
_LATIN_DIGRAPHS: Final = (("ph", "f"), ("th", "t"), ("sh", "s"), ("ch", "s"), ("ck", "k"),
                          ("kh", "k"), ("gh", "g"), ("qu", "k"), ("x", "ks"))
_LATIN: Final = {
    "b": "b", "p": "b", "t": "t", "d": "d", "f": "f", "v": "f", "s": "s", "z": "s",
    "g": "g", "j": "g", "k": "k", "q": "k", "c": "k", "l": "l", "m": "m", "n": "n", "r": "r",
}
_SOFT_C_RE: Final = re.compile(r"c(?=[eiy])")
_ARABIC: Final = {
    "ب": "b", "پ": "b", "ت": "t", "ط": "t", "ث": "t", "د": "d", "ض": "d", "ذ": "d",
    "ف": "f", "ڤ": "f", "س": "s", "ص": "s", "ز": "s", "ظ": "s", "ش": "s", "ج": "g",
    "غ": "g", "ك": "k", "ق": "k", "خ": "k", "ل": "l", "م": "m", "ن": "n", "ر": "r",
}
# Arabic clitics and the article written before a transliterated name ("والدنفر" is rare,
# "ال" + name is common for teams and organisations).
_ARABIC_PREFIXES: Final = ("وال", "بال", "لل", "ال", "و", "ب", "ل")
MIN_SKELETON: Final = 3  # shorter skeletons ("bl", "nt") match by chance
_REPEAT_RE: Final = re.compile(r"(.)\1+")


@lru_cache(maxsize=65536)
def latin_skeleton(word: str) -> str:
    """Skeleton of a Latin-script word ("Panthers" → "bntrs")."""
    w = _SOFT_C_RE.sub("s", word.lower())
    for digraph, repl in _LATIN_DIGRAPHS:
        w = w.replace(digraph, repl)
    return _REPEAT_RE.sub(r"\1", "".join(_LATIN.get(ch, "") for ch in w))


@lru_cache(maxsize=262144)
def arabic_skeletons(token: str) -> frozenset[str]:
    """Skeletons of a normalised Arabic token, with and without a leading clitic/article."""
    forms = {token}
    for prefix in _ARABIC_PREFIXES:
        if token.startswith(prefix) and len(token) - len(prefix) >= MIN_SKELETON:
            forms.add(token[len(prefix):])
    out = set()
    for form in forms:
        skeleton = _REPEAT_RE.sub(r"\1", "".join(_ARABIC.get(ch, "") for ch in form))
        if len(skeleton) >= MIN_SKELETON:
            out.add(skeleton)
    return frozenset(out)


def same_name(latin: str, arabic: AbstractSet[str]) -> bool:
    """Whether a Latin skeleton equals one of an Arabic token's skeletons (or of a passage's),
    allowing one trailing extra consonant on either side (the English plural "Broncos" / "برونكو")."""
    if latin in arabic:
        return True
    if len(latin) - 1 > MIN_SKELETON and latin[:-1] in arabic:
        return True
    return len(latin) > MIN_SKELETON and any(
        len(skeleton) == len(latin) + 1 and skeleton.startswith(latin) for skeleton in arabic)
