"""An in-process uvicorn server on loopback (fake encoder) for the HTTP reliability tests."""

from __future__ import annotations

from tests.served import serve_in_thread

__all__ = ["serve_in_thread"]
