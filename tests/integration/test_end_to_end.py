"""The walking skeleton, for real: the built model, the bundled sample, HTTP on loopback."""

from __future__ import annotations

import sqlite3

import httpx
import pytest

from tests.integration.conftest import LiveServer

pytestmark = pytest.mark.integration

TROOPS_SENTENCE = "وتنشر الولايات المتحدة 2500 عسكري في العراق"


def _stored_text(server: LiveServer, doc_id: str) -> str:
    with sqlite3.connect(server.index_dir / "store.sqlite3") as db:
        return str(db.execute("SELECT text FROM documents WHERE id = ?", (doc_id,)).fetchone()[0])


@pytest.mark.parametrize("question", [
    "How many US troops are in Iraq?",
    "كم عدد الجنود الأمريكيين في العراق؟",
])
def test_troops_question_cites_the_2500_sentence(live_server: LiveServer, question: str) -> None:
    r = httpx.post(f"{live_server.url}/v1/ask", json={"question": question}, timeout=60)
    assert r.status_code == 200, r.text
    body = r.json()
    assert not body["abstained"]
    first = body["citations"][0]
    assert TROOPS_SENTENCE in first["quote"]
    assert first["source"] == "عربي بوست" and first["published_at"].startswith("2024-01-25")
    assert "2500" in (body["short_answer"] or "")
    for c in body["citations"]:
        assert _stored_text(live_server, c["document_id"])[c["start"]:c["end"]] == c["quote"]
        assert f"[{c['n']}]" in body["answer"]
    assert body["answer_language"] == ("ar" if "كم" in question else "en")


def test_search_and_readiness(live_server: LiveServer) -> None:
    ready = httpx.get(f"{live_server.url}/readyz").json()
    assert ready["status"] == "ready" and ready["documents"] == 241
    r = httpx.get(f"{live_server.url}/v1/search", params={"q": "Super Bowl 50", "k": 3})
    assert r.status_code == 200
    assert any("Super Bowl" in (p["title"] or "") for p in r.json()["passages"])


def test_document_added_over_http_is_answerable(live_server: LiveServer) -> None:
    doc = {"id": "test-moon", "title": "القمر", "source": "test", "lang": "ar",
           "text": "يبعد القمر عن الأرض نحو 384400 كيلومتر في المتوسط."}
    r = httpx.post(f"{live_server.url}/v1/documents", json=doc, timeout=60)
    assert r.status_code == 201, r.text
    r = httpx.post(f"{live_server.url}/v1/ask",
                   json={"question": "How far is the Moon from the Earth?"}, timeout=60)
    assert r.json()["citations"][0]["document_id"] == "test-moon"
    assert httpx.delete(f"{live_server.url}/v1/documents/test-moon").status_code == 204
