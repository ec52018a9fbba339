"""HTTP contract over the Litestar test client, with the fake encoder."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from litestar.testing import TestClient

from qa_service.api.app import create_app
from qa_service.service import QAService
from qa_service.settings import Settings
from tests.fakes import FakeEncoder

SEED = {
    "id": "seed", "title": "العراق يعلن اتفاقاً مع أمريكا", "source": "عربي بوست",
    "published_at": "2024-01-25T15:41:00Z", "url": "https://example.org/iraq",
    "text": "أعلنت بغداد توصلها إلى اتفاق مع واشنطن.\nوتنشر الولايات المتحدة 2500 عسكري في العراق.",
}


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:  # type: ignore[type-arg]
    app = create_app(settings, lambda s: QAService(s, FakeEncoder()), wait_ready=True)
    with TestClient(app=app) as c:
        yield c


def _problem(response: object) -> dict[str, object]:
    assert response.headers["content-type"].startswith("application/problem+json")  # type: ignore[attr-defined]
    body: dict[str, object] = response.json()  # type: ignore[attr-defined]
    assert body["status"] == response.status_code and body["detail"]  # type: ignore[attr-defined]
    return body


def test_documents_crud_and_cited_answer(client: TestClient) -> None:  # type: ignore[type-arg]
    r = client.post("/v1/documents", json=SEED)
    assert r.status_code == 201, r.text
    assert r.json()["added"] == 1 and r.json()["ids"] == ["seed"]
    assert client.get("/v1/documents/seed").json()["text"] == SEED["text"]

    r = client.post("/v1/ask", json={"question": "كم عسكري تنشر الولايات المتحدة في العراق؟"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) >= {"answer", "short_answer", "answer_language", "abstained", "citations",
                         "passages", "timings_ms"}
    c = body["citations"][0]
    assert "2500" in c["quote"] and c["url"] == SEED["url"] and c["source"] == "عربي بوست"
    assert SEED["text"][c["start"]:c["end"]] == c["quote"]

    r = client.get("/v1/search", params={"q": "2500 عسكري", "k": 3})
    assert r.status_code == 200 and r.json()["passages"][0]["document_id"] == "seed"

    assert client.delete("/v1/documents/seed").status_code == 204
    assert _problem(client.get("/v1/documents/seed"))["status"] == 404
    assert _problem(client.delete("/v1/documents/seed"))["status"] == 404


def test_ndjson_and_list_bodies(client: TestClient) -> None:  # type: ignore[type-arg]
    body = "\n".join(json.dumps({"id": f"d{i}", "text": f"خبر رقم {i}."}) for i in range(3))
    r = client.post("/v1/documents", content=body, headers={"content-type": "application/x-ndjson"})
    assert r.status_code == 201 and r.json()["added"] == 3
    r = client.post("/v1/documents", json=[{"id": "d0", "text": "خبر رقم 0."}, {"id": "d9", "text": "y"}])
    assert r.json()["unchanged"] == 1 and r.json()["added"] == 1


def test_sse_stream_ends_with_the_full_response(client: TestClient) -> None:  # type: ignore[type-arg]
    client.post("/v1/documents", json=SEED)
    question = {"question": "كم عسكري في العراق؟"}
    plain = client.post("/v1/ask", json=question).json()
    r = client.post("/v1/ask", json=question, headers={"accept": "text/event-stream"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = [(block.split("\n")[0].removeprefix("event: "), block.split("data: ", 1)[1])
              for block in r.text.replace("\r\n", "\n").strip().split("\n\n")]
    kinds = [k for k, _ in events]
    assert kinds[0] == "passages" and kinds[-1] == "done" and "delta" in kinds and "citation" in kinds
    streamed = "".join(json.loads(d)["text"] for k, d in events if k == "delta")
    done = json.loads(events[-1][1])
    assert streamed == done["answer"] == plain["answer"]
    done.pop("timings_ms"), plain.pop("timings_ms")
    assert done == plain


@pytest.mark.parametrize(("method", "path", "kwargs", "status"), [
    ("post", "/v1/ask", {"json": {}}, 400),
    ("post", "/v1/ask", {"json": {"question": ""}}, 400),
    ("post", "/v1/ask", {"json": {"question": "ok", "top_k": 0}}, 400),
    ("post", "/v1/ask", {"json": {"question": "ok", "mode": "magic"}}, 400),
    ("post", "/v1/ask", {"json": {"question": "ok", "mode": "llm"}}, 400),
    ("post", "/v1/ask", {"content": b"{broken", "headers": {"content-type": "application/json"}}, 400),
    ("post", "/v1/documents", {"json": {"title": "no text"}}, 400),
    ("post", "/v1/documents", {"content": b"", "headers": {"content-type": "application/json"}}, 400),
    ("get", "/v1/search", {"params": {"q": "x", "k": 0}}, 400),
    ("get", "/v1/search", {}, 400),
    ("get", "/nowhere", {}, 404),
    ("put", "/v1/ask", {}, 405),
])
def test_bad_input_gets_a_problem_response(client: TestClient, method: str, path: str,  # type: ignore[type-arg]
                                           kwargs: dict[str, object], status: int) -> None:
    r = getattr(client, method)(path, **kwargs)
    assert r.status_code == status, r.text
    _problem(r)


def test_health_and_readiness(client: TestClient) -> None:  # type: ignore[type-arg]
    assert client.get("/healthz").json()["status"] == "ok"
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["model"] == "fake-hash-encoder"
    schema = client.get("/schema/openapi.json").json()
    assert {"/v1/ask", "/v1/search", "/v1/documents", "/healthz", "/readyz"} <= set(schema["paths"])


def test_document_ids_with_slashes_are_addressable(client: TestClient) -> None:  # type: ignore[type-arg]
    doc = {"id": "xquad-ar/Super_Bowl_50/0", "text": "لم يتخلى فريق بانثرز سوى عن 308 نقطة."}
    assert client.post("/v1/documents", json=doc).status_code == 201
    assert client.get("/v1/documents/xquad-ar/Super_Bowl_50/0").json()["id"] == doc["id"]
    assert client.get("/v1/documents/xquad-ar%2FSuper_Bowl_50%2F0").json()["id"] == doc["id"]
    assert client.delete("/v1/documents/xquad-ar/Super_Bowl_50/0").status_code == 204
    assert client.get("/v1/documents/xquad-ar/Super_Bowl_50/0").status_code == 404


@pytest.mark.parametrize("content_type", [None, "text/plain", "text/plain; charset=utf-8",
                                          "application/x-www-form-urlencoded", "multipart/form-data"])
@pytest.mark.parametrize("path", ["/v1/documents", "/v1/ask"])
def test_bodies_that_are_not_json_get_415(client: TestClient, content_type: str | None,  # type: ignore[type-arg]
                                          path: str) -> None:
    # A page on another origin can send these without a CORS preflight: they must not write.
    body = json.dumps({"id": "seed", "text": "9999 troops", "question": "troops?"}).encode()
    headers = {} if content_type is None else {"content-type": content_type}
    r = client.post(path, content=body, headers=headers)
    problem = _problem(r)
    assert r.status_code == 415 and "application/json" in str(problem["detail"])
    assert client.get("/v1/documents/seed").status_code == 404


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "application/x-ndjson",
                                          "application/ld+json"])
def test_json_media_types_are_accepted(client: TestClient, content_type: str) -> None:  # type: ignore[type-arg]
    r = client.post("/v1/documents", content=json.dumps(SEED).encode(),
                    headers={"content-type": content_type})
    assert r.status_code == 201, r.text


def _nested(depth: int, opener: str = '{"a":', closer: str = "}") -> str:
    return opener * depth + "1" + closer * depth


@pytest.mark.parametrize(("path", "body", "content_type"), [
    ("/v1/ask", '{"question": "troops?", "filters": ' + _nested(1000) + "}", "application/json"),
    ("/v1/ask", '{"question": "troops?", "filters": {"source": ' + _nested(5000, "[", "]") + "}}",
     "application/json"),
    ("/v1/documents", '{"text": "troops", "metadata": ' + _nested(1000) + "}", "application/json"),
    ("/v1/documents", '{"text": "troops", "metadata": ' + _nested(100) + "}", "application/json"),
    ("/v1/documents", '{"text": "a"}\n{"text": "b", "metadata": ' + _nested(1000) + "}",
     "application/x-ndjson"),
])
def test_deeply_nested_json_is_400(client: TestClient, path: str, body: str,  # type: ignore[type-arg]
                                   content_type: str) -> None:
    r = client.post(path, content=body.encode(), headers={"content-type": content_type})
    assert r.status_code == 400, r.text
    assert "nested" in str(_problem(r)["detail"])


@pytest.mark.parametrize("bounds", [
    {"published_before": "9999-12-31"}, {"published_before": "9999-12-31T23:59:59-12:00"},
    {"published_after": "0001-01-01", "published_before": "9999-12-31"},
    {"published_after": "0001-01-01T00:00:00+14:00"},
])
def test_extreme_filter_dates_mean_no_bound(client: TestClient, bounds: dict[str, str]) -> None:  # type: ignore[type-arg]
    client.post("/v1/documents", json=SEED)
    r = client.get("/v1/search", params={"q": "2500 عسكري", **bounds})
    assert r.status_code == 200 and r.json()["passages"][0]["document_id"] == "seed", r.text
    r = client.post("/v1/ask", json={"question": "كم عسكري؟", "filters": bounds})
    assert r.status_code == 200 and r.json()["citations"], r.text


def test_too_many_source_filters_is_400(client: TestClient, settings: Settings) -> None:  # type: ignore[type-arg]
    client.post("/v1/documents", json=SEED)
    many = [f"outlet {i}" for i in range(260_000)]
    r = client.post("/v1/ask", json={"question": "كم عسكري؟", "filters": {"source": many}})
    assert r.status_code == 400 and f"limit is {settings.max_filter_sources}" in str(_problem(r)["detail"])
    r = client.get("/v1/search", params={"q": "عسكري", "source": many[:settings.max_filter_sources + 1]})
    assert r.status_code == 400 and "source" in str(_problem(r)["detail"])
    at_limit = ["عربي بوست", *many[:settings.max_filter_sources - 1]]
    r = client.post("/v1/ask", json={"question": "كم عسكري؟", "filters": {"source": at_limit}})
    assert r.status_code == 200 and r.json()["citations"], r.text


@pytest.mark.parametrize("doc_id", ["/lead", "trail/", "a//b", "https://example.org/news/1?id=7",
                                    "pct%41", "خبر/١", "../notes/a.txt"])
def test_every_id_that_can_be_written_can_be_read_and_deleted(client: TestClient,  # type: ignore[type-arg]
                                                              doc_id: str) -> None:
    assert client.post("/v1/documents", json={"id": doc_id, "text": "خبر قصير."}).status_code == 201
    encoded = "/v1/documents/" + quote(doc_id, safe="")
    assert client.get(encoded).json()["id"] == doc_id
    if not any(c in doc_id for c in "%?#") and "./" not in doc_id:  # as typed, where a URL can hold it
        assert client.get("/v1/documents/" + doc_id).json()["id"] == doc_id
    assert client.delete(encoded).status_code == 204
    assert client.get(encoded).status_code == 404


def test_an_id_that_is_not_utf8_is_400(client: TestClient) -> None:  # type: ignore[type-arg]
    assert _problem(client.get("/v1/documents/%FF%FE"))["status"] == 400


INVISIBLE = ["\x00\x00\x00", "\u200b\u200c\u200d", "\u202e\u2066\u2069", "\ufeff \u200f\t", "\u00ad\u2060"]


@pytest.mark.parametrize("question", INVISIBLE)
def test_a_question_without_letters_or_digits_is_400(client: TestClient, question: str) -> None:  # type: ignore[type-arg]
    client.post("/v1/documents", json=SEED)
    r = client.post("/v1/ask", json={"question": question})
    assert r.status_code == 400 and "letters or digits" in str(_problem(r)["detail"]), r.text
    r = client.get("/v1/search", params={"q": question})
    assert r.status_code == 400 and "letters or digits" in str(_problem(r)["detail"]), r.text


@pytest.mark.parametrize("text", INVISIBLE)
def test_a_document_without_letters_or_digits_is_400(client: TestClient, text: str) -> None:  # type: ignore[type-arg]
    r = client.post("/v1/documents", json={"id": "blank", "text": text})
    assert r.status_code == 400 and "letters or digits" in str(_problem(r)["detail"]), r.text
    assert client.get("/v1/documents/blank").status_code == 404


def test_the_interactive_docs_say_they_need_a_cdn_and_where_the_schema_is(client: TestClient) -> None:  # type: ignore[type-arg]
    page = client.get("/schema/swagger")
    assert page.status_code == 200 and "cdn.jsdelivr.net" in page.text
    assert "without internet access" in page.text and 'href="/schema/openapi.json"' in page.text
    assert client.get("/schema/openapi.json").status_code == 200
    assert client.get("/schema/openapi.yaml").status_code == 200
