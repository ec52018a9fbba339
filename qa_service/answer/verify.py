"""Citation verification, run on every answer of every mode before it leaves the service."""

from __future__ import annotations

import re
from collections.abc import Sequence

from qa_service.models import Citation, Passage

MARKER = re.compile(r"\[(\d+)\]")


class CitationProblem(ValueError):
    """An answer whose citations do not hold; the message says which rule failed."""


def verify_citations(answer: str, citations: Sequence[Citation], passages: Sequence[Passage]) -> None:
    """Raise CitationProblem unless every citation quotes its passage verbatim and is referenced.

    Rules: each quote equals the document text at [start, end) (checked through the passage
    that holds it, whose text is the document's text at the passage's offsets); citations
    are numbered 1..n without duplicates; every [n] marker points at a citation and every
    citation has a marker; claim offsets, when given, lie inside the answer.
    """
    by_chunk = {p.chunk_id: p for p in passages}
    seen: set[tuple[str, int, int]] = set()
    for i, c in enumerate(citations, start=1):
        if c.n != i:
            raise CitationProblem(f"citation numbers must run 1..n; found {c.n} at position {i}")
        key = (c.document_id, c.start, c.end)
        if key in seen:
            raise CitationProblem(f"citation [{c.n}] duplicates an earlier one")
        seen.add(key)
        passage = by_chunk.get(c.chunk_id)
        if passage is None or passage.document_id != c.document_id:
            raise CitationProblem(f"citation [{c.n}] points at a passage that was not retrieved")
        if not (passage.start <= c.start < c.end <= passage.end):
            raise CitationProblem(f"citation [{c.n}] lies outside its passage")
        if passage.text[c.start - passage.start:c.end - passage.start] != c.quote:
            raise CitationProblem(f"citation [{c.n}] quote is not verbatim at its offsets")
        if c.answer_start is not None and c.answer_end is not None and not (
            0 <= c.answer_start <= c.answer_end <= len(answer)
        ):
            raise CitationProblem(f"citation [{c.n}] claim offsets fall outside the answer")
    markers = {int(m) for m in MARKER.findall(answer)}
    numbers = {c.n for c in citations}
    if markers - numbers:
        raise CitationProblem(f"marker(s) {sorted(markers - numbers)} have no citation")
    if numbers - markers:
        raise CitationProblem(f"citation(s) {sorted(numbers - markers)} are never referenced")
