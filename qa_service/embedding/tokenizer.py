"""One fast tokenizer per ``tokenizer.json`` in a process, shared read-only.

The XLM-R vocabulary costs about 280 MB as a loaded ``tokenizers.Tokenizer``; the encoder
(to count and cut tokens) and the span reader both need it, always without truncation or
padding, so they share one instance.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from tokenizers import Tokenizer


def shared_tokenizer(path: Path) -> Tokenizer:
    """The tokenizer in ``path`` (a tokenizer.json), loaded once, truncation and padding off."""
    return _load(str(path.resolve()))


@lru_cache(maxsize=4)
def _load(path: str) -> Tokenizer:
    tokenizer = Tokenizer.from_file(path)
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer
