"""How `qa-service serve` runs the app under uvicorn (tests serve it the same way)."""

from __future__ import annotations

from typing import Any

import uvicorn

from qa_service.settings import Settings


def uvicorn_config(app: Any, settings: Settings) -> uvicorn.Config:
    """The uvicorn configuration of a server for ``app`` on ``settings.host:settings.port``.

    uvicorn's proxy headers are off: it would otherwise believe X-Forwarded-For from any
    loopback peer and rewrite the client address, so clients could pick their own rate-limit
    bucket. Only the app reads the header, and only from QA_TRUSTED_PROXIES.
    """
    return uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning",
                          proxy_headers=False, forwarded_allow_ips=None)


def serve(app: Any, settings: Settings) -> None:
    """Serve ``app`` until interrupted."""
    uvicorn.Server(uvicorn_config(app, settings)).run()
