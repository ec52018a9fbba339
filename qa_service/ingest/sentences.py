"""Sentence vectors at ingestion (``QA_SENTENCE_VECTORS``): questions are matched sentence by sentence.

Each chunk's text is split exactly as the answer quotes a passage (``split_sentences`` on
the chunk's own text), so the stored spans are the sentences retrieval ranks and the reader
reads around. The sentences of a whole ingest batch go to the encoder in one call, with the
passage prompt like chunks: the encoder sorts them by length into full batches, and the
embedding cache (by exact text) makes re-ingesting the same articles free.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np

from qa_service.embedding.base import Encoder
from qa_service.store.sentence_vectors import SentenceVectors
from qa_service.text import split_sentences

# Fragments shorter than this many model tokens (datelines, bylines, a lone number) are not
# embedded: they cannot answer a question, and a zero vector keeps them from leading.
MIN_SENTENCE_TOKENS: Final = 3


def embed_sentences(texts: Sequence[str], encoder: Encoder) -> list[SentenceVectors]:
    """For each chunk text, its sentences and their passage vectors (one encoder call in all)."""
    splits = [split_sentences(text) for text in texts]
    sentences = [text[s:e] for text, spans in zip(texts, splits, strict=True) for s, e in spans]
    vectors = np.zeros((len(sentences), encoder.dim), dtype=np.float32)
    if sentences:
        counts = encoder.count_tokens(sentences)
        keep = [i for i, n in enumerate(counts) if n >= MIN_SENTENCE_TOKENS]
        if keep:
            vectors[keep] = encoder.encode_passages([sentences[i] for i in keep])
    out: list[SentenceVectors] = []
    offset = 0
    for spans in splits:
        out.append(SentenceVectors(tuple(spans), vectors[offset:offset + len(spans)]))
        offset += len(spans)
    return out
