"""The app under uvicorn on loopback, configured as `qa-service serve` runs it (fake encoder)."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from qa_service.api.app import create_app
from qa_service.service import QAService
from qa_service.settings import Settings
from tests.fakes import FakeEncoder
from tests.served import serve_in_thread

BURST = 3


def _serve(settings: Settings) -> Iterator[str]:
    app = create_app(settings, lambda s: QAService(s, FakeEncoder()), wait_ready=True)
    with serve_in_thread(app) as url:
        yield url


@pytest.fixture
def limited(settings: Settings) -> Iterator[str]:
    """Keys, a tight rate limit that applies on loopback too, and no trusted proxy."""
    yield from _serve(settings.replace(api_keys=("k1",), rate_limit_per_s=0.01, rate_limit_burst=BURST,
                                       rate_limit_loopback=True))


def test_x_forwarded_for_does_not_dodge_the_rate_limit_without_a_trusted_proxy(limited: str) -> None:
    with httpx.Client(base_url=limited, timeout=30) as client:
        searches = [client.get("/v1/search", params={"q": "Iraq", "k": 1},
                               headers={"x-forwarded-for": f"203.0.113.{i}"}).status_code
                    for i in range(BURST + 3)]
        guesses = [client.post("/v1/documents", json={"text": "x"},
                               headers={"x-forwarded-for": f"198.51.100.{i}",
                                        "authorization": f"Bearer guess-{i}"}).status_code
                   for i in range(3)]
    assert searches[:BURST] == [200] * BURST and set(searches[BURST:]) == {429}, searches
    assert guesses == [429] * 3, guesses  # key guesses share the peer's bucket


def test_loopback_clients_are_not_rate_limited_by_default(settings: Settings) -> None:
    for url in _serve(settings.replace(rate_limit_per_s=0.01, rate_limit_burst=BURST)):
        with httpx.Client(base_url=url, timeout=30) as client:
            statuses = {client.get("/v1/search", params={"q": "Iraq"}).status_code
                        for _ in range(BURST + 5)}
        assert statuses == {200}


def test_clients_of_a_proxy_on_loopback_are_rate_limited(settings: Settings) -> None:
    proxied = settings.replace(trusted_proxies=("127.0.0.1",), rate_limit_per_s=0.01, rate_limit_burst=2)
    for url in _serve(proxied):
        with httpx.Client(base_url=url, timeout=30, headers={"x-forwarded-for": "203.0.113.9"}) as client:
            statuses = [client.get("/v1/search", params={"q": "Iraq"}).status_code for _ in range(4)]
        assert statuses == [200, 200, 429, 429]


def test_ids_with_odd_slashes_are_addressable_over_http(settings: Settings) -> None:
    for url in _serve(settings):
        with httpx.Client(base_url=url, timeout=30) as client:
            for doc_id in ("/lead", "trail/", "a//b", "https://example.org/x"):
                assert client.post("/v1/documents", json={"id": doc_id, "text": "نص."}).status_code == 201
                assert client.get(f"/v1/documents/{doc_id}").json()["id"] == doc_id
                assert client.delete(f"/v1/documents/{doc_id}").status_code == 204


def _metric_lines(url: str, route: str) -> list[str]:
    text = httpx.get(f"{url}/metrics", timeout=30).text
    return [line for line in text.splitlines()
            if line.startswith("qa_http_requests_total") and f'route="{route}"' in line]


def test_a_client_that_leaves_mid_upload_is_counted_as_499_not_500(settings: Settings) -> None:
    for url in _serve(settings):
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"POST /v1/documents HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
                         b"content-length: 1000\r\n\r\n{\"text\": \"half")
            time.sleep(0.2)
        for _ in range(100):
            if lines := _metric_lines(url, "/v1/documents"):
                break
            time.sleep(0.05)
        assert lines == ['qa_http_requests_total{method="POST",route="/v1/documents",status="499"} 1.0']


def test_a_complete_event_stream_is_counted_as_200(settings: Settings) -> None:
    for url in _serve(settings):
        with httpx.Client(base_url=url, timeout=30) as client:
            for _ in range(3):
                r = client.post("/v1/ask", json={"question": "troops?"},
                                headers={"accept": "text/event-stream"})
                assert r.status_code == 200 and "event: done" in r.text
        assert _metric_lines(url, "/v1/ask") == [
            'qa_http_requests_total{method="POST",route="/v1/ask",status="200"} 3.0']


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server closes ``sock`` within ``seconds`` (whatever it says first)."""
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        pass
    return True


def test_connections_that_never_finish_their_headers_are_closed(settings: Settings) -> None:
    for url in _serve(settings.replace(header_timeout_s=0.5)):
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as silent, \
                socket.create_connection(("127.0.0.1", port)) as slow, \
                socket.create_connection(("127.0.0.1", port)) as kept_alive:
            slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            kept_alive.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert b"200 OK" in kept_alive.recv(4096)
            kept_alive.sendall(b"GET /healthz HTTP/1.1\r\n")  # a second request that never ends
            for _ in range(4):  # trickling bytes does not extend the deadline
                time.sleep(0.2)
                with contextlib.suppress(OSError):  # closed already
                    slow.sendall(b"X-a: b\r\n")
            assert _closed_within(silent, 2) and _closed_within(slow, 2) and _closed_within(kept_alive, 2)
        assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
