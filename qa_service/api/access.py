"""Who may call what: API keys, the client's address behind trusted proxies, per-client rate limits.

Each route handler declares its access in ``opt={"access": ...}``:

- ``"write"``: needs an API key whenever ``QA_API_KEYS`` is set;
- ``"read"``: open, unless ``QA_READ_REQUIRES_KEY`` is set;
- anything else (health, metrics, schema, static pages): open and not rate limited.

Rate limits apply to reads and writes, per client address. The address is the TCP peer;
``X-Forwarded-For`` counts only when the peer is one of ``QA_TRUSTED_PROXIES``, and then
only the hops those proxies appended, so a client cannot pick its own bucket. Loopback
clients are exempt unless ``QA_RATE_LIMIT_LOOPBACK`` is set (the server must see the real
TCP peer for this to be safe: see ``qa_service.api.server``).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from qa_service.errors import RateLimitedError, UnauthorizedError
from qa_service.settings import Settings

ACCESS_OPT = "access"
READ = "read"
WRITE = "write"
STATE_KEY = "access"
# Buckets of this many distinct clients are kept; the least recently seen is forgotten first
# (it comes back with a full bucket), so memory stays bounded under address churn.
MAX_TRACKED_CLIENTS = 10_000
UNKNOWN_CLIENT = "unknown"

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class KeyRing:
    """The configured API keys, compared in constant time (digests of equal length)."""

    def __init__(self, keys: Sequence[str]) -> None:
        self._digests = [_digest(k) for k in keys]

    def __bool__(self) -> bool:
        return bool(self._digests)

    def accepts(self, presented: str) -> bool:
        candidate = _digest(presented)
        ok = False
        for digest in self._digests:  # no early exit: timing says nothing about which key
            ok |= hmac.compare_digest(candidate, digest)
        return ok


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


class ClientAddresses:
    """Resolves the client address of a request, believing X-Forwarded-For only from trusted proxies."""

    def __init__(self, trusted_proxies: Sequence[str]) -> None:
        self._trusted = [ipaddress.ip_network(p, strict=False) for p in trusted_proxies]

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self._trusted)

    def resolve(self, peer: str | None, forwarded_for: Sequence[str]) -> str:
        """The nearest hop that is not a trusted proxy.

        Proxies append to X-Forwarded-For, so it is read from the right: every entry up to
        the first untrusted one was written by a trusted proxy; anything left of that was
        written by the client and is ignored.
        """
        if peer is None:
            return UNKNOWN_CLIENT
        if not self._is_trusted(peer):
            return peer
        hops = [h.strip() for value in forwarded_for for h in value.split(",") if h.strip()]
        client = peer
        for hop in reversed(hops):
            try:
                ipaddress.ip_address(hop)
            except ValueError:
                break  # a malformed hop: stop at the last proxy we trust
            client = hop
            if not self._is_trusted(hop):
                break
        return client


def is_loopback(address: str) -> bool:
    """Whether ``address`` is this machine (127.0.0.0/8, ::1, or IPv4-mapped 127.x)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def open_writes_warning(settings: Settings) -> str | None:
    """A start-up warning when anyone who can reach a non-loopback bind may write, else None."""
    if settings.api_keys or settings.host == "localhost" or is_loopback(settings.host):
        return None
    return (f"writes are open: the server listens on {settings.host} without QA_API_KEYS, so "
            "anyone who can reach it may add, replace or delete documents; set QA_API_KEYS "
            "(or bind to 127.0.0.1)")


class RateLimiter:
    """Token buckets per client: ``rate`` requests per second, bursts of ``burst``."""

    def __init__(self, rate: float, burst: int, *, max_clients: int = MAX_TRACKED_CLIENTS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self._max_clients = max_clients
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, updated
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._buckets)

    def acquire(self, client: str) -> float:
        """Take a token: 0.0 when allowed, else the seconds until one is available."""
        now = self._clock()
        with self._lock:
            tokens, updated = self._buckets.pop(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - updated) * self.rate)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / self.rate
            self._buckets[client] = (tokens, now)
            if len(self._buckets) > self._max_clients:
                self._buckets.popitem(last=False)
        return wait


class AccessControl:
    """Keys, client addresses and rate limits of one app (kept in its state, not in globals)."""

    def __init__(self, settings: Settings) -> None:
        self.keys = KeyRing(settings.api_keys)
        self.read_requires_key = settings.read_requires_key
        self.addresses = ClientAddresses(settings.trusted_proxies)
        self.limiter = (RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst)
                        if settings.rate_limit_per_s > 0 else None)
        self.limit_loopback = settings.rate_limit_loopback

    def client(self, connection: ASGIConnection[Any, Any, Any, Any]) -> str:
        peer = connection.client.host if connection.client else None
        return self.addresses.resolve(peer, connection.headers.getall("x-forwarded-for", []))

    def check(self, connection: ASGIConnection[Any, Any, Any, Any], access: str) -> None:
        """Raise RateLimitedError or UnauthorizedError; return when the request may proceed."""
        if access not in (READ, WRITE):
            return
        client = self.client(connection)
        if self.limiter is not None and (self.limit_loopback or not is_loopback(client)):
            # Before the key check, so that guessing keys is rate limited too.
            wait = self.limiter.acquire(client)
            if wait > 0:
                raise RateLimitedError(
                    f"too many requests from this client: the limit is {self.limiter.rate:g} per "
                    f"second with bursts of {self.limiter.burst}; retry after the Retry-After delay",
                    retry_after_s=max(1, math.ceil(wait)))
        if not self.keys or (access == READ and not self.read_requires_key):
            return
        token = bearer_token(connection.headers.get("authorization"))
        what = "writing" if access == WRITE else "this service"
        if token is None:
            raise UnauthorizedError(
                f"{what} needs an API key: send the header 'Authorization: Bearer <key>' with one "
                "of the keys in QA_API_KEYS")
        if not self.keys.accepts(token):
            raise UnauthorizedError("the API key is not valid; use one of the keys in QA_API_KEYS")


def access_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Litestar guard applied app-wide: rate limit and API key per the handler's declared access."""
    control: AccessControl = connection.app.state[STATE_KEY]
    control.check(connection, str(handler.opt.get(ACCESS_OPT, "")))
