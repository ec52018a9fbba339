"""Passage texts exactly as ingestion embeds them, for calibration and benchmarks."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from qa_service.ingest.chunker import ChunkerConfig, chunk_spans
from qa_service.models import Chunk, Document


def passage_texts(documents: Iterable[Document], count_tokens: Callable[[Sequence[str]], list[int]],
                  limit: int, max_tokens: int) -> list[str]:
    """The first ``limit`` passages of ``documents``, chunked and titled as ingestion embeds them."""
    from qa_service.service import _embedding_text

    texts: list[str] = []
    config = ChunkerConfig(max_tokens=max_tokens)
    for doc in documents:
        for i, (start, end) in enumerate(chunk_spans(doc.text, count_tokens, config)):
            texts.append(_embedding_text(doc, Chunk(id="", document_id=doc.id, ord=i, start=start, end=end)))
            if len(texts) >= limit:
                return texts
    return texts
