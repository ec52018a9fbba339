"""Domain types shared by ingestion, storage, retrieval, answering and the API (public contract)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

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
    source_latin: Annotated[str | None, msgspec.Meta(description=(
        "the outlet's name in Latin script where the collection gives one (document metadata "
        "`outlet_en`, e.g. \"Arabi Post\" for «عربي بوست»)"))] = None


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
    source_latin: Annotated[str | None, msgspec.Meta(description=(
        "the outlet's name in Latin script where the collection gives one (metadata `outlet_en`)"))] = None


class AnswerBlock(msgspec.Struct, kw_only=True):
    """One paragraph of ``answer`` in one direction; a client renders each in its own isolated block."""

    kind: Annotated[Literal["lead", "quote", "text"], msgspec.Meta(description=(
        "`lead`: the plain first line in the question's language (short answer, date, source); "
        "`quote`: a verbatim quote of citation `citations[0]`; `text`: any other paragraph"))]
    text: Annotated[str, msgspec.Meta(description="the paragraph: `answer[start:end]`")]
    start: Annotated[int, msgspec.Meta(description="code-point offset of the paragraph in `answer`")]
    end: int
    lang: Annotated[str, msgspec.Meta(description="the language the paragraph is written in (`ar`, `en`)")]
    dir: Annotated[Literal["ltr", "rtl"], msgspec.Meta(description="its base direction")]
    citations: Annotated[list[int], msgspec.Meta(description="the `[n]` markers inside the paragraph")] = \
        msgspec.field(default_factory=list)


class FollowUp(msgspec.Struct, kw_only=True):
    """How the question was read with the conversation (``history``)."""

    resolved: Annotated[bool, msgspec.Meta(description=(
        "true: earlier turns were used; false: the question was taken alone (a new topic)"))]
    reason: Annotated[str, msgspec.Meta(description="why, in words")]
    question: Annotated[str, msgspec.Meta(description="the question as read (as asked when not resolved)")]
    query: Annotated[str, msgspec.Meta(description="what retrieval searched")]
    carried: Annotated[list[str], msgspec.Meta(description="words taken from earlier turns")] = \
        msgspec.field(default_factory=list)
    prior_documents: Annotated[list[str], msgspec.Meta(description=(
        "documents the previous answer cited (`history[].document_ids`), preferred by retrieval"))] = \
        msgspec.field(default_factory=list)


class Timings(msgspec.Struct, kw_only=True):
    followup: Annotated[float, msgspec.Meta(description=(
        "reading the question with its history (follow-up resolution)"))] = 0.0
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
    document_ids: Annotated[list[Annotated[str, msgspec.Meta(max_length=1000)]], msgspec.Meta(
        max_length=50, description=(
            "assistant turns: the documents the answer cited (`citations[].document_id`); a "
            "follow-up question prefers them"))] = msgspec.field(default_factory=list)


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
    blocks: Annotated[list[AnswerBlock], msgspec.Meta(description=(
        "the paragraphs of `answer` in order (the short line, then verbatim quotes), each in one "
        "direction; they cover `answer` except the blank lines between them"))] = \
        msgspec.field(default_factory=list)
    short_answer_display: Annotated[str | None, msgspec.Meta(description=(
        "the short answer as the answer's first line gives it: for English questions, English forms "
        "of numbers, dates, durations and percentages taken from Arabic text (٢٥٠٠ → 2,500, "
        "«أغسطس/آب 2023» → August 2023); names verbatim. `short_answer` stays the verbatim span"))] = None
    followup: Annotated[FollowUp | None, msgspec.Meta(description=(
        "present when the request carried `history`: how the conversation was used"))] = None
