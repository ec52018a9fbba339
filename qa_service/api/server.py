"""How `qa-service serve` runs the app under uvicorn (tests serve it the same way)."""

from __future__ import annotations

import asyncio
import ctypes
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from qa_service.settings import Settings

M_MMAP_THRESHOLD = -3  # mallopt's parameter number in glibc's malloc.h


class HeaderTimeoutProtocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, closing connections whose request headers are late.

    uvicorn times out idle keep-alive connections but not a request whose headers never end
    (slowloris): the deadline runs from the connection (or the first byte of a next request)
    and trickled bytes do not extend it.
    """

    header_timeout_s = 10.0  # set per server by header_timeout_protocol()
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self._arm()  # still waiting for (the rest of) a request line and headers
        else:
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_late)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


def header_timeout_protocol(seconds: float) -> type[HeaderTimeoutProtocol]:
    return type("HeaderTimeoutProtocol", (HeaderTimeoutProtocol,), {"header_timeout_s": seconds})


def uvicorn_config(app: Any, settings: Settings) -> uvicorn.Config:
    """The uvicorn configuration of a server for ``app`` on ``settings.host:settings.port``.

    uvicorn's proxy headers are off: it would otherwise believe X-Forwarded-For from any
    loopback peer and rewrite the client address, so clients could pick their own rate-limit
    bucket. Only the app reads the header, and only from QA_TRUSTED_PROXIES.
    """
    return uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning",
                          proxy_headers=False, forwarded_allow_ips=None,
                          http=header_timeout_protocol(settings.header_timeout_s))


def keep_large_blocks_mapped() -> None:
    """Give freed blocks over 128 KiB back to the system at once (glibc only).

    glibc raises its mmap threshold to the largest block freed (up to 32 MiB), so once an upload's
    body is freed, blocks of that size come from the heap and stay there: the first upload at the
    body limit left +47 MiB behind instead of +25. Setting the threshold stops that adjustment.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # musl, macOS: their allocators do not do this
        return
    libc.mallopt(M_MMAP_THRESHOLD, 128 * 1024)


def serve(app: Any, settings: Settings) -> None:
    """Serve ``app`` until interrupted."""
    keep_large_blocks_mapped()
    uvicorn.Server(uvicorn_config(app, settings)).run()
