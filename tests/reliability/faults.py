"""Fault injection at the n-th disk operation of the index publisher.

``qa_service.store.vector_index`` does every write, fsync and rename of a generation through
its module attribute ``os``; replacing that attribute with ``FaultyOS`` makes the n-th such
call fail with an errno (ENOSPC, EIO) or kill the process outright, deterministically, at
each step of a publish in turn.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from typing import Any

DISK_OPERATIONS = frozenset({"write", "fsync", "rename", "replace"})


class FaultyOS:
    """The ``os`` module, except that disk operation number ``fail_at`` (1-based) fails."""

    def __init__(self, fail_at: int, error: int | None = None) -> None:
        self.fail_at = fail_at
        self.error = error  # None: SIGKILL this process instead of raising
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        real = getattr(os, name)
        if name not in DISK_OPERATIONS:
            return real

        def operation(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            if self.calls == self.fail_at:
                if self.error is None:
                    os.kill(os.getpid(), signal.SIGKILL)
                raise OSError(self.error, os.strerror(self.error))
            return real(*args, **kwargs)

        return operation


def count_operations(action: Callable[[], object]) -> int:
    """How many disk operations ``action`` makes in the publisher (no fault)."""
    import qa_service.store.vector_index as vector_index

    counter = FaultyOS(fail_at=0)
    saved = vector_index.os
    vector_index.os = counter  # type: ignore[assignment]
    try:
        action()
    finally:
        vector_index.os = saved
    return counter.calls
