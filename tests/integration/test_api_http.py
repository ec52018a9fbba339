"""The HTTP API over real HTTP with the real model: documents, SSE, search, keys, limits, CORS, metrics.

One `qa-service serve` process is configured the way a newsroom would run it behind a
proxy: API keys, a trusted proxy on 127.0.0.1, tight rate limits and small upload limits.
Each test speaks as its own client (its own X-Forwarded-For address, believed because the
peer is the trusted proxy), so rate limits only bite where a test means them to.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from qa_service.bench.server import served

pytestmark = pytest.mark.integration

KEYS = ("key-one", "key-two")
ORIGIN = "https://news.example"
BURST = 5
MAX_BODY = 100_000
MAX_BATCH = 5
ARTICLES = [
    {"id": "iraq", "title": "العراق يعلن اتفاقاً مع أمريكا", "source": "عربي بوست", "lang": "ar",
     "published_at": "2024-01-25T15:41:00Z", "url": "https://example.org/iraq",
     "text": "أعلنت بغداد توصلها إلى اتفاق مع واشنطن.\nوتنشر الولايات المتحدة 2500 عسكري في العراق."},
    {"id": "nile", "title": "Nile dam talks", "source": "Wire", "lang": "en",
     "published_at": "2021-06-01", "text": "Egypt and Sudan resumed talks on the Nile dam. "
     "The reservoir holds 74 billion cubic metres of water."},
]
_addresses = (f"198.51.100.{i}" for i in itertools.count(1))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("api-http")
    env = {"QA_API_KEYS": ",".join(KEYS), "QA_TRUSTED_PROXIES": "127.0.0.1",
           "QA_RATE_LIMIT_PER_S": "0.05", "QA_RATE_LIMIT_BURST": str(BURST), "QA_RATE_LIMIT_LOOPBACK": "true",
           "QA_CORS_ORIGINS": ORIGIN, "QA_MAX_BODY_BYTES": str(MAX_BODY),
           "QA_MAX_BATCH_DOCUMENTS": str(MAX_BATCH)}
    with served(root / "index", root / "server.log", env) as live:
        r = httpx.post(f"{live.url}/v1/documents", json=ARTICLES, timeout=120,
                       headers={"authorization": f"Bearer {KEYS[0]}", "x-forwarded-for": next(_addresses)})
        assert r.status_code == 201, r.text
        yield live.url


def client(url: str, address: str | None = None, key: str | None = KEYS[0],
           **kwargs: Any) -> httpx.Client:
    """A client that the trusted proxy introduces as ``address`` (a fresh one by default)."""
    headers = {"x-forwarded-for": address or next(_addresses)}
    if key:
        headers["authorization"] = f"Bearer {key}"
    return httpx.Client(base_url=url, headers=headers, timeout=120, **kwargs)


def problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    assert body["status"] == status and body["detail"] and body["type"].startswith("https://")
    return body


def test_documents_crud_answers_and_search_filters(server: str) -> None:
    with client(server) as c:
        doc = c.get("/v1/documents/iraq")
        assert doc.status_code == 200 and doc.json()["text"] == ARTICLES[0]["text"]
        answer = c.post("/v1/ask", json={"question": "How many US troops are in Iraq?"}).json()
        first = answer["citations"][0]
        assert first["document_id"] == "iraq" and "2500" in first["quote"]
        assert ARTICLES[0]["text"][first["start"]:first["end"]] == first["quote"]
    with client(server) as c:
        only_en = c.get("/v1/search", params={"q": "water in the reservoir", "lang": "en"}).json()
        assert {p["document_id"] for p in only_en["passages"]} == {"nile"}
        recent = c.get("/v1/search", params={"q": "اتفاق", "published_after": "2023-01-01"}).json()
        assert {p["document_id"] for p in recent["passages"]} == {"iraq"}
        by_source = c.get("/v1/search", params={"q": "talks", "source": "Wire"}).json()
        assert {p["document_id"] for p in by_source["passages"]} == {"nile"}
    with client(server) as c:
        lines = "\n".join(json.dumps({"id": f"tmp-{i}", "text": f"Temporary note number {i}."})
                          for i in range(2))
        r = c.post("/v1/documents", content=lines, headers={"content-type": "application/x-ndjson"})
        assert r.status_code == 201 and r.json()["added"] == 2
        assert c.delete("/v1/documents/tmp-0").status_code == 204
        problem(c.get("/v1/documents/tmp-0"), 404)
        problem(c.delete("/v1/documents/tmp-0"), 404)


def test_sse_stream_over_http_ends_with_the_json_response(server: str) -> None:
    question = {"question": "كم عدد الجنود الأمريكيين في العراق؟"}
    with client(server) as c:
        plain = c.post("/v1/ask", json=question).json()
        events: list[tuple[str, str]] = []
        with c.stream("POST", "/v1/ask", json=question, headers={"accept": "text/event-stream"}) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
            event = ""
            for line in r.iter_lines():
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    events.append((event, line.removeprefix("data: ")))
    kinds = [k for k, _ in events]
    assert kinds[0] == "passages" and kinds[-1] == "done"
    assert kinds.count("citation") == len(plain["citations"]) >= 1
    assert "".join(json.loads(d)["text"] for k, d in events if k == "delta") == plain["answer"]
    done = json.loads(events[-1][1])
    done.pop("timings_ms"), plain.pop("timings_ms")
    assert done == plain


def test_writes_need_a_valid_key_and_reads_do_not(server: str) -> None:
    doc = {"id": "keyed", "text": "A note written with a key."}
    with client(server, key=None) as c:
        missing = problem(c.post("/v1/documents", json=doc), 401)
        assert "Authorization: Bearer" in missing["detail"]
        assert problem(c.delete("/v1/documents/iraq"), 401)
        assert c.get("/v1/documents/iraq").status_code == 200
        assert c.get("/v1/search", params={"q": "Nile"}).status_code == 200
    with client(server, key="key-three") as c:
        r = c.post("/v1/documents", json=doc)
        assert problem(r, 401)["detail"].startswith("the API key is not valid")
        assert r.headers["www-authenticate"].startswith("Bearer")
    with client(server, key=KEYS[1]) as c:
        assert c.post("/v1/documents", json=doc).status_code == 201
        assert c.delete("/v1/documents/keyed").status_code == 204


def test_rate_limit_is_per_client_and_x_forwarded_for_cannot_dodge_it(server: str) -> None:
    # Behind the trusted proxy the client prepends made-up hops; the proxy appends the real one.
    spoofed = [f"10.9.8.{i}, 203.0.113.7" for i in range(BURST + 3)]
    with client(server) as c:
        statuses = [c.get("/v1/search", params={"q": "Nile"}, headers={"x-forwarded-for": h}).status_code
                    for h in spoofed]
        assert statuses[:BURST] == [200] * BURST and statuses[-1] == 429, statuses
        limited = c.get("/v1/search", params={"q": "Nile"},
                        headers={"x-forwarded-for": "203.0.113.7"})
        assert int(limited.headers["retry-after"]) >= 1
        assert "too many requests" in problem(limited, 429)["detail"]
        # Another client is unaffected; health checks are never limited.
        assert c.get("/v1/search", params={"q": "Nile"}).status_code == 200
        assert c.get("/healthz", headers={"x-forwarded-for": "203.0.113.7"}).status_code == 200
    # A peer that is not a trusted proxy is limited by its own address, whatever it forwards.
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(base_url=server, transport=transport, timeout=60) as direct:
        statuses = [direct.get("/v1/search", params={"q": "Nile"},
                               headers={"x-forwarded-for": f"192.0.2.{i}"}).status_code
                    for i in range(BURST + 3)]
    assert statuses[:BURST] == [200] * BURST and statuses[-1] == 429, statuses


@pytest.mark.parametrize(("method", "path", "kwargs", "status", "words"), [
    ("post", "/v1/documents", {"content": b'{"text": "' + b"x" * MAX_BODY + b'"}',
                               "headers": {"content-type": "application/json"}}, 413, "large"),
    ("post", "/v1/documents", {"json": [{"text": f"doc {i}"} for i in range(MAX_BATCH + 1)]},
     413, "limit is 5"),
    ("post", "/v1/ask", {"json": {"question": "x" * 2001}}, 400, "limit is 2000"),
    ("post", "/v1/ask", {"json": {"question": "troops?", "top_k": 51}}, 400, "top_k"),
    ("post", "/v1/ask", {"json": {"question": "troops?",
                                  "history": [{"role": "user", "content": "hi"}] * 21}}, 400, "turns"),
    ("post", "/v1/ask", {"json": {"question": "troops?", "filters": {"published_after": "last week"}}},
     400, "ISO 8601"),
    ("get", "/v1/search", {"params": {"q": "troops", "k": 500}}, 400, "top_k"),
    ("post", "/v1/documents", {"content": b"{not json", "headers": {"content-type": "application/json"}},
     400, "not valid JSON"),
])
def test_limits_answer_clear_problems(server: str, method: str, path: str, kwargs: dict[str, Any],
                                      status: int, words: str) -> None:
    with client(server) as c:
        body = problem(getattr(c, method)(path, **kwargs), status)
    assert words.lower() in body["detail"].lower(), body["detail"]


def test_cors_allows_only_the_configured_origin(server: str) -> None:
    preflight = {"access-control-request-method": "POST",
                 "access-control-request-headers": "content-type, authorization"}
    with client(server) as c:
        ok = c.options("/v1/ask", headers={"origin": ORIGIN, **preflight})
        assert ok.status_code in (200, 204)
        assert ok.headers["access-control-allow-origin"] == ORIGIN
        assert "authorization" in ok.headers["access-control-allow-headers"].lower()
        other = c.options("/v1/ask", headers={"origin": "https://evil.example", **preflight})
        assert other.headers.get("access-control-allow-origin") != "https://evil.example"
        simple = c.get("/v1/search", params={"q": "Nile"}, headers={"origin": ORIGIN})
        assert simple.headers["access-control-allow-origin"] == ORIGIN


def test_metrics_and_readiness(server: str) -> None:
    with client(server) as c:
        ready = c.get("/readyz").json()
        assert ready["status"] == "ready" and ready["documents"] >= 2 and ready["generation"]
        c.get("/v1/search", params={"q": "Nile"})
        r = c.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'qa_http_requests_total{method="GET",route="/v1/search",status="200"}' in text
    assert 'qa_http_request_duration_seconds_bucket{le="0.5",method="GET",route="/v1/search"' in text
    assert 'route="/v1/documents",status="401"' in text  # failures are counted by status too
    for gauge in ("qa_ready 1.0", "qa_index_vectors ", "qa_index_generation ", "qa_model_load_seconds "):
        assert gauge in text


def test_openapi_schema_lists_every_endpoint(server: str) -> None:
    with client(server) as c:
        schema = c.get("/schema/openapi.json").json()
    assert {"/v1/ask", "/v1/search", "/v1/documents", "/v1/documents/{doc_id}", "/healthz",
            "/readyz", "/metrics"} <= set(schema["paths"])
    upload = schema["paths"]["/v1/documents"]["post"]
    assert {"application/json", "application/x-ndjson"} <= set(upload["requestBody"]["content"])
    assert "text/event-stream" in schema["paths"]["/v1/ask"]["post"]["responses"]["200"]["content"]
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_server_log_has_no_tracebacks(server: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    logs = list(Path(tmp_path_factory.getbasetemp()).glob("api-http*/server.log"))
    assert logs and all("Traceback" not in log.read_text() for log in logs)
