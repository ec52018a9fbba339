"""Access rules (keys, client address, rate limits), readiness and metrics, without a network."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from litestar.testing import TestClient

from qa_service.api.access import ClientAddresses, KeyRing, RateLimiter, bearer_token, is_loopback
from qa_service.api.app import create_app
from qa_service.errors import BadInputError
from qa_service.service import QAService
from qa_service.settings import Settings
from tests.fakes import FakeEncoder


@pytest.mark.parametrize(("peer", "forwarded", "client"), [
    ("203.0.113.5", ["1.2.3.4"], "203.0.113.5"),  # untrusted peer: its header is ignored
    ("10.0.0.2", ["1.2.3.4"], "1.2.3.4"),  # trusted proxy: the hop it appended
    ("10.0.0.2", ["6.6.6.6, 1.2.3.4"], "1.2.3.4"),  # made-up hops left of the real one
    ("10.0.0.2", ["6.6.6.6", "1.2.3.4, 10.0.0.9"], "1.2.3.4"),  # two trusted proxies, two headers
    ("10.0.0.2", ["10.0.0.7"], "10.0.0.7"),  # only proxies: the farthest one
    ("10.0.0.2", ["not-an-ip"], "10.0.0.2"),  # garbage: stop at the proxy we trust
    ("10.0.0.2", [], "10.0.0.2"),
    ("::1", ["2001:db8::1"], "2001:db8::1"),
    (None, ["1.2.3.4"], "unknown"),
])
def test_client_address_believes_only_trusted_proxies(peer: str | None, forwarded: list[str],
                                                      client: str) -> None:
    addresses = ClientAddresses(["10.0.0.0/8", "::1"])
    assert addresses.resolve(peer, forwarded) == client


@pytest.mark.parametrize(("address", "loopback"), [
    ("127.0.0.1", True), ("127.8.0.2", True), ("::1", True), ("::ffff:127.0.0.1", True),
    ("10.0.0.1", False), ("2001:db8::1", False), ("unknown", False), ("", False),
])
def test_loopback_addresses(address: str, loopback: bool) -> None:
    assert is_loopback(address) is loopback


def test_rate_limiter_allows_a_burst_then_the_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=2.0, burst=3, clock=lambda: now[0])
    assert [limiter.acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("a") == pytest.approx(0.5)
    assert limiter.acquire("b") == 0.0  # another client has its own bucket
    now[0] = 0.5
    assert limiter.acquire("a") == 0.0
    assert limiter.acquire("a") > 0


def test_rate_limiter_memory_is_bounded() -> None:
    limiter = RateLimiter(rate=1.0, burst=1, max_clients=100)
    for i in range(1000):
        limiter.acquire(f"client-{i}")
    assert len(limiter) == 100


def test_keys_compare_by_value_and_bearer_parsing() -> None:
    keys = KeyRing(["alpha", "beta"])
    assert keys.accepts("beta") and not keys.accepts("gamma") and not keys.accepts("")
    assert not KeyRing([])
    assert bearer_token("Bearer beta") == "beta" and bearer_token("bearer  beta ") == "beta"
    assert bearer_token("Basic YWxhZGRpbg==") is None and bearer_token("Bearer") is None
    assert bearer_token(None) is None


@pytest.mark.parametrize(("env", "message"), [
    ({"QA_TRUSTED_PROXIES": "10.0.0.0/8,proxy.local"}, "proxy.local"),
    ({"QA_READ_REQUIRES_KEY": "true"}, "QA_API_KEYS"),
    ({"QA_RATE_LIMIT_BURST": "0"}, "QA_RATE_LIMIT_BURST"),
    ({"QA_RATE_LIMIT_PER_S": "-1"}, "QA_RATE_LIMIT_PER_S"),
])
def test_bad_access_settings_fail_at_start(env: dict[str, str], message: str) -> None:
    with pytest.raises(BadInputError, match=message):
        Settings.from_env(env)


def test_reads_need_a_key_when_configured(settings: Settings) -> None:
    locked = settings.replace(api_keys=("k",), read_requires_key=True)
    app = create_app(locked, lambda s: QAService(s, FakeEncoder()), wait_ready=True)
    with TestClient(app=app) as client:
        assert client.get("/v1/search", params={"q": "x"}).status_code == 401
        ok = client.get("/v1/search", params={"q": "x"}, headers={"authorization": "Bearer k"})
        assert ok.status_code == 200
        assert client.get("/healthz").status_code == 200 and client.get("/metrics").status_code == 200


def test_readyz_is_503_until_the_service_has_loaded(settings: Settings) -> None:
    release = threading.Event()

    def slow_factory(s: Settings) -> QAService:
        release.wait(timeout=30)
        return QAService(s, FakeEncoder())

    with TestClient(app=create_app(settings, slow_factory)) as client:
        loading = client.get("/readyz")
        assert loading.status_code == 503 and loading.json()["status"] == "loading"
        assert client.post("/v1/ask", json={"question": "troops?"}).status_code == 503
        assert "qa_ready 0.0" in client.get("/metrics").text
        release.set()
        for _ in range(200):
            if client.get("/readyz").status_code == 200:
                break
            threading.Event().wait(0.05)
        assert client.get("/readyz").json()["status"] == "ready"
        assert "qa_ready 1.0" in client.get("/metrics").text


def test_each_app_counts_its_own_requests(tmp_path: Path) -> None:
    apps = [create_app(Settings(index_dir=tmp_path / name), lambda s: QAService(s, FakeEncoder()),
                       wait_ready=True) for name in ("a", "b")]
    with TestClient(app=apps[0]) as first, TestClient(app=apps[1]) as second:
        for _ in range(3):
            first.get("/v1/search", params={"q": "x"})
        first.get("/v1/documents/missing")
        text = first.get("/metrics").text
        assert 'qa_http_requests_total{method="GET",route="/v1/search",status="200"} 3.0' in text
        assert 'route="/v1/documents/{doc_id}",status="404"} 1.0' in text
        assert 'route="/v1/search"' not in second.get("/metrics").text


@pytest.mark.parametrize(("host", "keys", "warns"), [
    ("0.0.0.0", (), True), ("192.0.2.7", (), True), ("::", (), True),
    ("0.0.0.0", ("k",), False), ("127.0.0.1", (), False), ("localhost", (), False), ("::1", (), False),
])
def test_serve_warns_when_writes_are_open_beyond_this_machine(
        settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        host: str, keys: tuple[str, ...], warns: bool) -> None:
    from qa_service import cli
    from qa_service.api import server

    monkeypatch.setattr(server, "serve", lambda app, s: None)
    monkeypatch.setenv("QA_INDEX_DIR", str(settings.index_dir))
    monkeypatch.setenv("QA_API_KEYS", ",".join(keys))
    assert cli.main(["serve", "--host", host]) == 0
    err = capsys.readouterr().err
    assert ("QA_API_KEYS" in err and "anyone who can reach" in err) is warns, err


def test_requests_to_unrouted_paths_are_counted(settings: Settings) -> None:
    app = create_app(settings, lambda s: QAService(s, FakeEncoder()), wait_ready=True)
    with TestClient(app=app) as client:
        client.get("/nowhere")
        client.get("/v1/nowhere/else")
        streamed = client.post("/v1/ask", json={"question": "troops?"},
                               headers={"accept": "text/event-stream"})
        assert streamed.status_code == 200
        text = client.get("/metrics").text
    assert 'qa_http_requests_total{method="GET",route="unmatched",status="404"} 2.0' in text
    assert 'qa_http_requests_total{method="POST",route="/v1/ask",status="200"} 1.0' in text  # not a leave


def test_503_while_loading_says_when_to_retry(settings: Settings) -> None:
    release = threading.Event()

    def slow_factory(s: Settings) -> QAService:
        release.wait(timeout=30)
        return QAService(s, FakeEncoder())

    with TestClient(app=create_app(settings, slow_factory)) as client:
        try:
            for r in (client.get("/readyz"), client.post("/v1/ask", json={"question": "troops?"}),
                      client.get("/v1/search", params={"q": "troops"})):
                assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1, r.headers
        finally:
            release.set()


def test_the_demo_page_shows_no_stored_text_when_reads_need_a_key(settings: Settings) -> None:
    from qa_service.api.web import SEED_DOCUMENT_ID

    locked = settings.replace(api_keys=("k",), read_requires_key=True)
    app = create_app(locked, lambda s: QAService(s, FakeEncoder()), wait_ready=True)
    with TestClient(app=app) as client:
        stored = {"id": SEED_DOCUMENT_ID, "title": "internal memo", "text": "PRIVATE-9999 troops."}
        written = client.post("/v1/documents", json=stored, headers={"authorization": "Bearer k"})
        assert written.status_code == 201
        page = client.get("/")
    assert page.status_code == 200 and "PRIVATE-9999" not in page.text and "internal memo" not in page.text
