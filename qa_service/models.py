"""Domain types shared by ingestion, storage, retrieval, answering and the API (public contract)."""

from __future__ import annotations

from typing import Any, Literal

import msgspec


class Document(msgspec.Struct, kw_only=True):
    """An article as stored; ``text`` is never modified after validation."""

    id: str
    text: str
    title: str | None = None
    url: str | None = None
    source: str | None = None
    published_at: str | None = None  # ISO 8601
    lang: str = "other"
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)


class Chunk(msgspec.Struct, kw_only=True, frozen=True):
    """A sentence-aligned window of a document: ``document.text[start:end]``."""

    id: str
    document_id: str
    ord: int
    start: int
    end: int


class Passage(msgspec.Struct, kw_only=True):
    """A retrieved chunk with its document's attribution."""

    chunk_id: str
    document_id: str
    text: str
    start: int
    end: int
    score: float
    title: str | None = None
    url: str | None = None
    source: str | None = None
    published_at: str | None = None
    lang: str = "other"


class Citation(msgspec.Struct, kw_only=True):
    n: int
    document_id: str
    chunk_id: str
    title: str | None
    url: str | None
    source: str | None
    published_at: str | None
    lang: str
    quote: str
    start: int
    end: int
    answer_start: int | None
    answer_end: int | None
    score: float
    # Share of the cited claim's checkable facts (numbers, names) found in the quote; set by
    # the LLM composer's support check (extractive claims quote their evidence: None).
    support: float | None = None
    # The short answer's code points in the document's text (inside [start, end)), when a
    # reader found it as a span.
    span_start: int | None = None
    span_end: int | None = None


class Timings(msgspec.Struct, kw_only=True):
    embed: float = 0.0
    retrieve: float = 0.0
    compose: float = 0.0
    total: float = 0.0


class Filters(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    source: list[str] | None = None
    lang: str | None = None
    published_after: str | None = None
    published_before: str | None = None


class Turn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    role: Literal["user", "assistant"]
    content: str


Mode = Literal["auto", "extractive", "llm"]


class AskRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    question: str
    top_k: int = 5
    mode: Mode = "auto"
    filters: Filters | None = None
    history: list[Turn] = msgspec.field(default_factory=list)


class Answer(msgspec.Struct, kw_only=True):
    answer: str
    short_answer: str | None
    answer_language: str
    abstained: bool
    citations: list[Citation]
    passages: list[Passage]
    timings_ms: Timings
    mode: str = "extractive"
    fallback: bool = False
