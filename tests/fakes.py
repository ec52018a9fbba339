"""Deterministic test doubles that are real code: a hashing encoder, span readers (word overlap; scripted)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from qa_service.answer.question import Kind, question_kind, stemmed_terms
from qa_service.embedding.base import Vectors
from qa_service.reader.runtime import Reading
from qa_service.text import extract_numbers, normalize, split_sentences

_TOKEN = re.compile(r"\w+|[^\w\s]")


class FakeEncoder:
    """Bag-of-normalised-words hashed into a small space: similar wording → similar vectors.

    Same-language lexical overlap drives similarity, so retrieval tests are meaningful
    without a neural model; one token of the text is one token of the "model".
    """

    def __init__(self, dim: int = 256, model_id: str = "fake-hash-encoder") -> None:
        self._dim = dim
        self._model_id = model_id
        self.calls = 0
        self.passages_encoded = 0

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dim(self) -> int:
        return self._dim

    def encode_queries(self, texts: Sequence[str]) -> Vectors:
        return self._encode(texts)

    def encode_passages(self, texts: Sequence[str]) -> Vectors:
        self.passages_encoded += len(texts)
        return self._encode(texts)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(_TOKEN.findall(t)) for t in texts]

    def _encode(self, texts: Sequence[str]) -> Vectors:
        self.calls += 1
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for token in _TOKEN.findall(normalize(text)):
                h = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=4).digest(), "little")
                out[row, h % self._dim] += 1.0 if (h >> 16) & 1 else -1.0
            norm = np.linalg.norm(out[row])
            if norm == 0:  # no tokens at all: a fixed unit vector, never NaN
                out[row, 0], norm = 1.0, 1.0
            out[row] /= norm
        return out


class FakeReader:
    """The span reader's stand-in: in each context, the sentence sharing most light-stemmed terms
    with the question (the first on ties). Its span is the sentence's first number for a "how
    many" / «كم» question, else the sentence; its score is the shared terms less one, so a context
    that shares no term (another language, another topic) scores below zero.
    """

    def __init__(self) -> None:
        self.calls = 0

    def read(self, question: str, contexts: Sequence[str]) -> list[Reading]:
        self.calls += 1
        terms = set(stemmed_terms(question))
        quantity = question_kind(question) is Kind.QUANTITY
        out = []
        for i, context in enumerate(contexts):
            sentences = split_sentences(context) or [(0, len(context))]
            shared = [len(terms & set(stemmed_terms(context[s:e]))) for s, e in sentences]
            best = shared.index(max(shared))
            start, end = sentences[best]
            numbers = extract_numbers(context[start:end]) if quantity else []
            if numbers:
                start, end = start + numbers[0][1], start + numbers[0][2]
            out.append(Reading(i, start, end, float(shared[best] - 1)))
        return out


class ScriptedReader:
    """Finds a given substring in each context that holds it, with a given score."""

    def __init__(self, answers: dict[str, float]) -> None:
        self.answers = answers
        self.calls = 0

    def read(self, question: str, contexts: Sequence[str]) -> list[Reading]:
        self.calls += 1
        out = []
        for n, text in enumerate(contexts):
            for needle, score in self.answers.items():
                if needle in text:
                    i = text.index(needle)
                    out.append(Reading(n, i, i + len(needle), score))
                    break
        return out
