"""Passage texts exactly as ingestion embeds them (also for int8 calibration and benchmarks)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from qa_service.ingest.chunker import ChunkerConfig, chunk_spans
from qa_service.models import Chunk, Document


def embedding_text(doc: Document, chunk: Chunk) -> str:
    """What the encoder sees for a chunk: the article's title, then the chunk's text."""
    body = doc.text[chunk.start:chunk.end]
    return f"{doc.title}\n{body}" if doc.title else body


def passage_texts(documents: Iterable[Document], count_tokens: Callable[[Sequence[str]], list[int]],
                  limit: int, max_tokens: int) -> list[str]:
    """The first ``limit`` passages of ``documents``, chunked and titled as ingestion embeds them."""
    texts: list[str] = []
    config = ChunkerConfig(max_tokens=max_tokens)
    for doc in documents:
        for i, (start, end) in enumerate(chunk_spans(doc.text, count_tokens, config)):
            texts.append(embedding_text(doc, Chunk(id="", document_id=doc.id, ord=i, start=start, end=end)))
            if len(texts) >= limit:
                return texts
    return texts
