"""The answer's paragraphs as blocks of one direction each, for clients that lay answers out.

An answer is a plain first line in the question's language (the short answer, its date and its
source: "2,500 — as of 25 January 2024, Arabi Post [1]"), then each verbatim quote in a paragraph
of its own («وتنشر الولايات المتحدة 2500 عسكري …» [1]). Paragraphs are separated by a blank line.
``answer_blocks`` reads any answer back into blocks — the reader composer's layout, an LLM's
prose, an abstention — so a client can set each in an isolated block with its own direction
instead of letting the bidi algorithm reorder an English frame around an Arabic quote.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final, Literal

from qa_service.models import AnswerBlock, Citation
from qa_service.text import script_ratio

PARAGRAPH_BREAK: Final = "\n\n"
_PARAGRAPH_RE: Final = re.compile(r"[^\n]+(?:\n(?!\s*\n)[^\n]*)*")
_MARKER_RE: Final = re.compile(r"\[(\d+)\]")
_TRAILING_MARKERS_RE: Final = re.compile(r"(?:\s*\[\d+\])+\s*$")
_QUOTE_MARKS: Final = (("«", "»"), ("“", "”"), ('"', '"'))
# Share of Arabic letters from which a paragraph is Arabic (right to left).
ARABIC_MIN_RATIO: Final = 0.5


def text_language(text: str) -> str:
    """"ar" when most letters are Arabic, else "en"."""
    ratio = script_ratio(text)
    return "ar" if ratio["ar"] >= ARABIC_MIN_RATIO and ratio["ar"] >= ratio["latin"] else "en"


def answer_blocks(answer: str, citations: Sequence[Citation], lang: str) -> list[AnswerBlock]:
    """Each paragraph of ``answer`` as a block: the lead line, verbatim quotes, other text."""
    quotes = {c.quote for c in citations}
    lang = "ar" if lang == "ar" else "en"
    blocks: list[AnswerBlock] = []
    for m in _PARAGRAPH_RE.finditer(answer):
        start, end = m.start(), m.end()
        while end > start and answer[end - 1].isspace():
            end -= 1
        while start < end and answer[start].isspace():
            start += 1
        if start == end:
            continue
        text = answer[start:end]
        trailing = _TRAILING_MARKERS_RE.search(text)
        body = text[:trailing.start()] if trailing else text
        quoted = _unquoted(body)
        kind: Literal["lead", "quote", "text"]
        if quoted is not None and quoted in quotes:
            block_lang = text_language(quoted)
            markers = [int(n) for n in _MARKER_RE.findall(trailing.group(0))] if trailing else []
            kind = "quote"
        else:
            block_lang = lang
            markers = [int(n) for n in _MARKER_RE.findall(_without_quotes(text, quotes))]
            kind = "text"
        blocks.append(AnswerBlock(kind=kind, text=text, start=start, end=end, lang=block_lang,
                                  dir="rtl" if block_lang == "ar" else "ltr",
                                  citations=list(dict.fromkeys(markers))))
    # The first paragraph leads when quotes follow it (the extractive layout); an LLM's prose is text.
    if blocks and blocks[0].kind == "text" and any(b.kind == "quote" for b in blocks):
        blocks[0].kind = "lead"
    return blocks


def _unquoted(text: str) -> str | None:
    """The text inside one pair of quotation marks around all of ``text``, else None."""
    for open_q, close_q in _QUOTE_MARKS:
        if len(text) > 2 and text.startswith(open_q) and text.endswith(close_q):
            return text[1:-1]
    return None


def _without_quotes(text: str, quotes: set[str]) -> str:
    """A quote's own footnote marks ("… 1990.[2]") are the source's text, not markers."""
    for quote in quotes:
        if quote and _MARKER_RE.search(quote):
            text = text.replace(quote, " " * len(quote))
    return text
