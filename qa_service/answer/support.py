"""Support check: do a claim's numbers and names appear in the quote it cites?

A claim's checkable facts are its numbers (compared by value after digit folding and
grouping: ٢٥٠٠ = 2500 = 2,500) and its Latin-script names (capitalised words that do not
start the claim). A name is only checked against a quote that has Latin letters: an
English claim citing an Arabic sentence cannot be compared word for word, and is judged
on its numbers. Numbers that spell the cited article's own date ("as of 25 January
2024") are supported by the citation's metadata.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from qa_service.answer.forms import MONTHS_EN
from qa_service.text import extract_numbers, figure_value, normalize

_MARKERS_RE: Final = re.compile(r"\[\d+\]")
_NAME_RE: Final = re.compile(r"(?<![\w.])[A-Z][\w'’-]+")
_LATIN_RE: Final = re.compile(r"[A-Za-z]")


@dataclass(frozen=True)
class Facts:
    """What a claim asserts that can be checked against text."""

    numbers: frozenset[frozenset[float]]  # each number: its value, and scaled value if written so
    names: frozenset[str]

    @property
    def empty(self) -> bool:
        return not self.numbers and not self.names


def claim_facts(claim: str) -> Facts:
    """Numbers and Latin names of a claim, its [n] markers left out."""
    text = _MARKERS_RE.sub(" ", claim)
    numbers = frozenset(_alternatives(text))
    lead = len(text) - len(text.lstrip())  # the first word is capitalised anyway
    names = frozenset(m.group() for m in _NAME_RE.finditer(text) if m.start() != lead)
    names -= set(MONTHS_EN)
    return Facts(numbers, names)


def support(facts: Facts, quote: str, published_at: str | None = None) -> float | None:
    """Share of ``facts`` found in ``quote``; None when the claim has nothing checkable here."""
    allowed = _all_values(quote) | _date_numbers(published_at)
    checked = found = 0
    for values in facts.numbers:
        checked += 1
        found += bool(values & allowed)
    if _LATIN_RE.search(quote):
        key = normalize(quote)
        for name in facts.names:
            checked += 1
            found += normalize(name) in key
    return found / checked if checked else None


def numbers_supported(facts: Facts, quote: str, published_at: str | None = None) -> bool:
    """Whether every number of the claim is in the quote (or spells the article's date)."""
    allowed = _all_values(quote) | _date_numbers(published_at)
    return all(values & allowed for values in facts.numbers)


def _alternatives(text: str) -> Iterable[frozenset[float]]:
    """Each number's value, with its scaled value when a scale word follows ("2.5 million")."""
    for value, start, _ in extract_numbers(text):
        scaled = figure_value(text[start:])
        yield frozenset({value} if scaled is None else {value, scaled})


def _all_values(text: str) -> set[float]:
    return {v for values in _alternatives(text) for v in values}


def _date_numbers(published_at: str | None) -> set[float]:
    day = (published_at or "")[:10]
    parts = day.split("-")
    return {float(p) for p in parts if p.isdigit()}
