"""The Encoder protocol every embedding backend implements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]


class Encoder(Protocol):
    """Turns text into L2-normalised float32 vectors, asymmetrically for queries and passages."""

    @property
    def model_id(self) -> str:
        """Stable identifier of the model; recorded in index manifests."""
        ...

    @property
    def dim(self) -> int:
        """Embedding dimension."""
        ...

    def encode_queries(self, texts: Sequence[str]) -> Vectors:
        """Embed questions, shape (len(texts), dim)."""
        ...

    def encode_passages(self, texts: Sequence[str]) -> Vectors:
        """Embed passages to be indexed, shape (len(texts), dim)."""
        ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Model tokens of each text without special tokens or prompts."""
        ...
