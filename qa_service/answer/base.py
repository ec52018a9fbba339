"""The Composer protocol: turns retrieved passages into a cited answer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from qa_service.models import Citation, Passage, Turn


@dataclass(frozen=True)
class ComposeInput:
    question: str
    question_lang: str
    passages: Sequence[Passage]
    history: Sequence[Turn] = ()


@dataclass
class Composition:
    answer: str
    short_answer: str | None
    answer_language: str
    abstained: bool
    citations: list[Citation] = field(default_factory=list)
    mode: str = "extractive"
    fallback: bool = False
    # The composer's own confidence that the evidence answers (what abstention is decided on).
    confidence: float | None = None


class Composer(Protocol):
    name: str

    def compose(self, request: ComposeInput) -> Composition:
        """Answer from the given passages only; cite with [n] markers."""
        ...
