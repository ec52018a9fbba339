"""Question + context windows for the span reader, with code-point offsets back into the context.

One layout serves training and answering: ``<s> question </s></s> context </s>`` (the XLM-R
pair template of the default model's tokenizer). Position 0 (``<s>``) is the no-answer slot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from tokenizers import Tokenizer

BOS: Final = 0
PAD: Final = 1
EOS: Final = 2
MAX_QUESTION_TOKENS: Final = 64
# Characters a subword offset may start with that are not part of the word it spells:
# the space its "▁" stands for, and the BOM / RTL marks some Arabic contexts open with.
_LEADING_JUNK: Final = frozenset(" \t\n\r\u00a0\ufeff\u200f\u200e\u200b")

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Window:
    """One model input: token ids and, for each context token, its code-point span in the context."""

    ids: list[int]
    context_offset: int  # index of the first context token in ``ids``
    spans: list[tuple[int, int]]  # one (start, end) per context token, into the context text

    def token_range(self, start: int, end: int) -> tuple[int, int] | None:
        """First and last input position of the tokens covering context chars [start, end)."""
        first = last = None
        for i, (s, e) in enumerate(self.spans):
            if e <= start or s >= end:
                continue
            if first is None:
                first = i
            last = i
        if first is None or last is None:
            return None
        return first + self.context_offset, last + self.context_offset


@dataclass(frozen=True)
class Encoded:
    ids: list[int]
    spans: list[tuple[int, int]]


def encode_text(tokenizer: Tokenizer, text: str) -> Encoded:
    """Subword ids of ``text`` (no special tokens) with code-point spans that hold no leading space."""
    enc = tokenizer.encode(text, add_special_tokens=False)
    spans = []
    for s, e in enc.offsets:
        while s < e and text[s] in _LEADING_JUNK:
            s += 1
        spans.append((s, e))
    return Encoded(list(enc.ids), spans)


def encode_question(tokenizer: Tokenizer, question: str) -> list[int]:
    return encode_text(tokenizer, question).ids[:MAX_QUESTION_TOKENS]


def windows(question_ids: Sequence[int], context: Encoded, *, max_len: int, stride: int) -> list[Window]:
    """Overlapping windows over the context, each with the whole question in front."""
    head = [BOS, *question_ids, EOS, EOS]
    room = max_len - len(head) - 1
    if room <= 0:
        raise ValueError(f"max_len {max_len} leaves no room for context after the question")
    n = len(context.ids)
    out: list[Window] = []
    start = 0
    while True:
        end = min(n, start + room)
        out.append(Window([*head, *context.ids[start:end], EOS], len(head), context.spans[start:end]))
        if end >= n:
            return out
        start = max(start + 1, end - stride)


def batch_arrays(items: Sequence[Window], multiple: int = 1) -> tuple[IntArray, IntArray, IntArray]:
    """Padded ids, attention mask and a mask of the positions a span may use (context + no-answer);
    as wide as the longest window, rounded up to ``multiple`` tokens."""
    width = -(-max(len(w.ids) for w in items) // multiple) * multiple
    ids = np.full((len(items), width), PAD, dtype=np.int64)
    mask = np.zeros((len(items), width), dtype=np.int64)
    allowed = np.zeros((len(items), width), dtype=np.int64)
    for row, w in enumerate(items):
        ids[row, : len(w.ids)] = w.ids
        mask[row, : len(w.ids)] = 1
        allowed[row, 0] = 1
        allowed[row, w.context_offset : w.context_offset + len(w.spans)] = 1
    return ids, mask, allowed


@dataclass(frozen=True)
class Span:
    """The best answer of one window: context char offsets and its score over the no-answer score."""

    start: int
    end: int
    score: float  # best span logit sum minus the no-answer logit sum
    span_logit: float
    null_logit: float


def best_span(
    window: Window,
    start_logits: npt.NDArray[np.float32],
    end_logits: npt.NDArray[np.float32],
    *,
    max_answer_tokens: int,
    top: int = 20,
) -> Span | None:
    """The highest-scoring start <= end pair inside the context, at most ``max_answer_tokens`` long."""
    off = window.context_offset
    n = len(window.spans)
    if n == 0:
        return None
    s_logits = start_logits[off : off + n]
    e_logits = end_logits[off : off + n]
    starts = np.argsort(-s_logits)[:top]
    ends = np.argsort(-e_logits)[:top]
    best: tuple[float, int, int] | None = None
    for i in starts:
        for j in ends:
            if j < i or j - i + 1 > max_answer_tokens:
                continue
            score = float(s_logits[i] + e_logits[j])
            if best is None or score > best[0]:
                best = (score, int(i), int(j))
    if best is None:
        return None
    score, i, j = best
    null = float(start_logits[0] + end_logits[0])
    return Span(window.spans[i][0], window.spans[j][1], score - null, score, null)
