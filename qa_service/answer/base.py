"""The Composer protocol: turns retrieved passages into a cited answer."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeAlias

from qa_service.embedding.base import Vectors
from qa_service.models import Citation, Passage, Turn
from qa_service.store.sentence_vectors import SentenceVectors

# Sentence vectors of chunks by chunk id (``Store.sentences``); chunks without any are absent.
SentenceLookup: TypeAlias = Callable[[Sequence[str]], Mapping[str, SentenceVectors]]


@dataclass(frozen=True)
class ComposeInput:
    question: str
    question_lang: str
    passages: Sequence[Passage]
    history: Sequence[Turn] = ()
    # The question's query embedding (from retrieval) and where to read the passages'
    # sentence vectors (QA_SENTENCE_VECTORS); without either, the reader reads whole passages.
    query_vector: Vectors | None = None
    sentence_vectors: SentenceLookup | None = None
    # A follow-up question as resolved with the conversation ("When will they leave? US troops
    # Iraq"; see answer/followup.py); the reader reads it, the LLM reads ``history``.
    resolved_question: str | None = None
    # Passages ranked just below ``passages``: a composer may read the newest of them for a
    # question about the present (the newest evidence that answers leads, see answer/reader.py).
    reserve: Sequence[Passage] = ()

    @property
    def reading_question(self) -> str:
        """What the reader reads: the resolved question, else the question."""
        return self.resolved_question or self.question


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
    # The short answer as the answer's first line gives it (English forms for English questions).
    short_display: str | None = None


class Composer(Protocol):
    name: str

    def compose(self, request: ComposeInput) -> Composition:
        """Answer from the given passages only; cite with [n] markers."""
        ...
