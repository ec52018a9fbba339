"""Sentence-aligned chunking with code-point offsets into the stored text."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from qa_service.text import split_sentences

TokenCounter = Callable[[Sequence[str]], list[int]]

_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class ChunkerConfig:
    """Windows of whole sentences holding at most ``max_tokens`` model tokens."""

    max_tokens: int = 160

    def __post_init__(self) -> None:
        if self.max_tokens < 8:
            raise ValueError("max_tokens must be at least 8")

    def as_dict(self) -> dict[str, int | str]:
        return {"kind": "sentence-window", "max_tokens": self.max_tokens}


def chunk_spans(text: str, count_tokens: TokenCounter, config: ChunkerConfig) -> list[tuple[int, int]]:
    """Split ``text`` into (start, end) windows of whole sentences under the token budget.

    A sentence longer than the budget is cut at word boundaries into budget-sized pieces.
    """
    units = _units_within_budget(text, count_tokens, config.max_tokens)
    spans: list[tuple[int, int]] = []
    start: int | None = None
    end = used = 0
    for (s, e), n in units:
        if start is not None and used + n > config.max_tokens:
            spans.append((start, end))
            start = None
        if start is None:
            start, used = s, 0
        end = e
        used += n
    if start is not None:
        spans.append((start, end))
    return spans


def _units_within_budget(text: str, count_tokens: TokenCounter,
                         budget: int) -> list[tuple[tuple[int, int], int]]:
    sentences = split_sentences(text)
    counts = count_tokens([text[s:e] for s, e in sentences])
    units: list[tuple[tuple[int, int], int]] = []
    for span, n in zip(sentences, counts, strict=True):
        if n <= budget:
            units.append((span, n))
        else:
            units.extend(_split_long(text, span, n, count_tokens, budget))
    return units


def _split_long(text: str, span: tuple[int, int], n_tokens: int, count_tokens: TokenCounter,
                budget: int) -> list[tuple[tuple[int, int], int]]:
    """Cut one over-long sentence into word-aligned pieces that each fit the budget."""
    words = [(m.start() + span[0], m.end() + span[0]) for m in _WORD.finditer(text[span[0]:span[1]])]
    counts = count_tokens([text[s:e] for s, e in words])
    pieces: list[tuple[tuple[int, int], int]] = []
    start, end, used = words[0][0], words[0][0], 0
    for (s, e), n in zip(words, counts, strict=True):
        if used and used + n > budget:
            pieces.append(((start, end), used))
            start, used = s, 0
        end = e
        used += n
    pieces.append(((start, end), used))
    return pieces
