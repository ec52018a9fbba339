"""Cross-lingual sentence matching from the embedding model's own token vectors, at question time.

An English question over Arabic passages shares no words with them, so lexical evidence
scoring cannot tell which sentence answers. The multilingual encoder's input token
embeddings are roughly aligned across languages ("troops" lies near "جنود"/"عسكري"), so
each sentence is scored by late interaction over those static vectors: for every
question token, its best cosine with a sentence token, averaged over the question.

How it relates to sentence vectors: measured on XQuAD (gold paragraph given), picking the
answer sentence EN→AR with

* lexical overlap: 0.37; static token max-sim (this module): 0.56;
* embedding each sentence with the encoder: 0.69 alone, ~80 ms per sentence if done at
  question time (seconds per answer), so it is done at ingestion instead
  (``QA_SENTENCE_VECTORS``, a second encoder pass over every sentence, store/sentence_vectors.py);
* both together (the composer's score plus 2 x the sentence cosine): 0.76.

This module stays the signal for collections ingested without sentence vectors, and adds
to them where they exist (end to end, EN→AR dev: 0.588 with it, 0.563 without). It costs
well under a millisecond per answer with no ingestion work: the vectors are read through a
memory map of the model's weights file (only the rows of tokens actually seen are paged
in) and tokenised with the model's fast tokenizer.
"""

from __future__ import annotations

import json
import logging
import struct
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Final, Protocol

import numpy as np
import numpy.typing as npt
from tokenizers import Tokenizer

from qa_service.embedding.tokenizer import shared_tokenizer

log = logging.getLogger(__name__)

WORD_EMBEDDINGS_SUFFIX: Final = "word_embeddings.weight"
_SAFETENSORS_DTYPES: Final = {"F32": np.float32, "F16": np.float16, "BF16": None}
_HEADER_LENGTH_BYTES: Final = 8
# Sentences whose token ids are remembered (a few MB at most).
SENTENCE_CACHE_SIZE: Final = 20_000


class SentenceSimilarity(Protocol):
    """Scores how well each sentence matches a question, in any pair of languages."""

    def similarities(self, question: str, sentences: Sequence[str]) -> list[float]:
        """One score per sentence, higher is closer."""
        ...


class TokenVectors:
    """Static token vectors and the tokenizer of one sentence-transformers model directory."""

    def __init__(self, matrix: npt.NDArray[np.floating], tokenizer: Tokenizer) -> None:
        self._matrix = matrix
        self._tokenizer = tokenizer
        # Popular passages come back question after question; their tokens are kept.
        self._token_ids = lru_cache(maxsize=SENTENCE_CACHE_SIZE)(self._encode)

    @classmethod
    def from_model_dir(cls, path: Path) -> TokenVectors | None:
        """Load from ``model.safetensors`` + ``tokenizer.json``; None when the folder lacks them."""
        weights, tokenizer_file = path / "model.safetensors", path / "tokenizer.json"
        if not (weights.is_file() and tokenizer_file.is_file()):
            return None
        try:
            matrix = _map_word_embeddings(weights)
        except (OSError, ValueError, KeyError, struct.error) as exc:
            # The composer works without it (lexical scoring only); say why once.
            log.warning("cross-lingual sentence matching is off: cannot read %s (%s)", weights, exc)
            return None
        if matrix is None:
            log.warning("cross-lingual sentence matching is off: no word embeddings in %s", weights)
            return None
        try:
            tokenizer = shared_tokenizer(tokenizer_file)  # the encoder's own instance
        except Exception as exc:  # the tokenizers library raises bare Exception for a bad file
            log.warning("cross-lingual sentence matching is off: cannot read %s (%s)", tokenizer_file, exc)
            return None
        return cls(matrix, tokenizer)

    def similarities(self, question: str, sentences: Sequence[str]) -> list[float]:
        """Mean over question tokens of the best cosine with each sentence's tokens."""
        if not sentences:
            return []
        q = self._unit_rows(self._encode(question))
        ids = [self._token_ids(sentence) for sentence in sentences]
        lengths = np.array([len(i) for i in ids])
        if q.shape[0] == 0 or not lengths.sum():
            return [0.0] * len(sentences)
        # One gather and one product for all sentences; then the best match per sentence segment.
        # (sentence tokens, question tokens). einsum, not BLAS: for products this small, BLAS
        # thread start-up on a busy 2-core machine cost 10+ ms where einsum takes 0.3 ms.
        cosines = np.einsum("ij,kj->ik", self._unit_rows(np.concatenate(ids)), q)
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        present = lengths > 0
        best = np.zeros((len(sentences), q.shape[0]), dtype=np.float32)
        best[present] = np.maximum.reduceat(cosines, starts[present], axis=0)
        return [float(v) for v in best.mean(axis=1)]

    def _encode(self, text: str) -> npt.NDArray[np.int64]:
        """Distinct token ids of ``text`` (one call: the batch API's thread pool costs more here)."""
        return np.unique(np.asarray(self._tokenizer.encode(text, add_special_tokens=False).ids,
                                    dtype=np.int64))

    def _unit_rows(self, ids: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        rows = np.asarray(self._matrix[ids], dtype=np.float32)
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        unit: npt.NDArray[np.float32] = rows / np.maximum(norms, np.float32(1e-6))
        return unit


def _map_word_embeddings(path: Path) -> npt.NDArray[np.floating] | None:
    """A read-only memory map of the word-embedding matrix inside a safetensors file."""
    with path.open("rb") as fh:
        (length,) = struct.unpack("<Q", fh.read(_HEADER_LENGTH_BYTES))
        header = json.loads(fh.read(length))
    name = next((k for k in header if k.endswith(WORD_EMBEDDINGS_SUFFIX)), None)
    if name is None:
        return None
    entry = header[name]
    dtype = _SAFETENSORS_DTYPES.get(entry["dtype"])
    if dtype is None:
        raise ValueError(f"unsupported dtype {entry['dtype']} for {name}")
    begin, _ = entry["data_offsets"]
    rows, dim = entry["shape"]
    mapped = np.memmap(path, dtype=np.dtype(dtype).newbyteorder("<"), mode="r",
                       offset=_HEADER_LENGTH_BYTES + length + begin, shape=(rows, dim))
    return np.asarray(mapped)  # a plain view of the map: indexing skips memmap's Python overhead
