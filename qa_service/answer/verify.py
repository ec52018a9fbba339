"""Citation verification, run on every answer of every mode before it leaves the service."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from qa_service.models import Citation, Passage

MARKER: Final = re.compile(r"\[(\d+)\]")
# A marker after optional spaces; a claim may carry several ("... [1] [2]").
_NEXT_MARKER: Final = re.compile(r"\s*\[(\d+)\]")


class CitationProblem(ValueError):
    """An answer whose citations do not hold; the message says which rule failed."""


def verify_citations(answer: str, citations: Sequence[Citation], passages: Sequence[Passage],
                     *, abstained: bool = False) -> None:
    """Raise CitationProblem unless every citation quotes its passage verbatim and is referenced.

    Rules: an abstention cites nothing; each quote equals the document text at
    [start, end) in code points (checked through the passage that holds it, whose text is
    the document's text at the passage's offsets); citations are numbered 1..n without
    duplicates; every [n] marker points at a citation and every citation has a marker;
    claim offsets, when given, lie inside the answer and are followed by the claim's own
    marker; a support score lies in [0, 1].
    """
    if abstained and citations:
        raise CitationProblem("an abstention must not cite anything")
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
        _check_claim(answer, c)
        if c.support is not None and not 0.0 <= c.support <= 1.0:
            raise CitationProblem(f"citation [{c.n}] support {c.support} is outside [0, 1]")
    markers = {int(m) for m in MARKER.findall(_without_quotes(answer, citations))}
    numbers = {c.n for c in citations}
    if markers - numbers:
        raise CitationProblem(f"marker(s) {sorted(markers - numbers)} have no citation")
    if numbers - markers:
        raise CitationProblem(f"citation(s) {sorted(numbers - markers)} are never referenced")


def _without_quotes(answer: str, citations: Sequence[Citation]) -> str:
    """The answer with each quoted source sentence blanked: a footnote mark a quote carries
    ("… in 1990.[2]", Wikipedia style) is the source's text, not a citation marker."""
    for c in citations:
        if MARKER.search(c.quote):
            answer = answer.replace(c.quote, " " * len(c.quote))
    return answer


def _check_claim(answer: str, c: Citation) -> None:
    """The claim span is a non-empty part of the answer and its marker follows it."""
    if c.answer_start is None and c.answer_end is None:
        return
    if c.answer_start is None or c.answer_end is None or not (
        0 <= c.answer_start < c.answer_end <= len(answer)
    ):
        raise CitationProblem(f"citation [{c.n}] claim offsets fall outside the answer")
    if not _marker_follows(answer, c.answer_end, c.n):
        raise CitationProblem(f"citation [{c.n}] claim is not followed by its marker [{c.n}]")

def _marker_follows(answer: str, position: int, n: int) -> bool:
    """Whether [n] stands at ``position``, possibly after spaces and other citations' markers."""
    while (m := _NEXT_MARKER.match(answer, position)) is not None:
        if int(m.group(1)) == n:
            return True
        position = m.end()
    return False
