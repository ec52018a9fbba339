"""Hybrid retrieval with the real model over HTTP and the CLI: cross-lingual questions,
filters and dates on every hit."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

from tests.integration.conftest import LiveServer

pytestmark = pytest.mark.integration

SEED_SOURCE = "عربي بوست"


@pytest.mark.parametrize(("question", "doc_id"), [
    # XQuAD questions (English and the paired Arabic one) over the bundled Arabic paragraphs.
    ("How many points did the Panthers defense surrender?", "xquad-ar/Super_Bowl_50/0"),
    ("كم نقطة تخلى عنها دفاع البانثرز؟", "xquad-ar/Super_Bowl_50/0"),
    ("How many US troops are in Iraq?", "arabipost-2024-01-25-iraq-coalition"),
])
def test_questions_in_either_language_find_the_arabic_paragraph(
        live_server: LiveServer, question: str, doc_id: str) -> None:
    r = httpx.get(f"{live_server.url}/v1/search", params={"q": question, "k": 5}, timeout=60)
    assert r.status_code == 200, r.text
    passages = r.json()["passages"]
    assert passages[0]["document_id"] == doc_id
    assert all("published_at" in p for p in passages)


def test_search_filters_over_http(live_server: LiveServer) -> None:
    url = f"{live_server.url}/v1/search"
    question = "انسحاب قوات التحالف من العراق"
    by_source = httpx.get(url, params={"q": question, "k": 5, "source": SEED_SOURCE}, timeout=60).json()
    assert {p["source"] for p in by_source["passages"]} == {SEED_SOURCE}
    recent = httpx.get(url, params={"q": "Super Bowl", "k": 5, "published_after": "2024-01-01"},
                       timeout=60).json()["passages"]
    assert recent and all(p["published_at"] >= "2024-01-01" for p in recent)  # undated ones excluded
    none = httpx.get(url, params={"q": question, "k": 5, "published_before": "2000-01-01"}, timeout=60)
    assert none.status_code == 200 and none.json()["passages"] == []
    bad = httpx.get(url, params={"q": question, "published_after": "last week"}, timeout=60)
    assert bad.status_code == 400 and "published_after" in bad.json()["detail"]


def test_ask_honours_filters(live_server: LiveServer) -> None:
    r = httpx.post(f"{live_server.url}/v1/ask", timeout=60, json={
        "question": "How many US troops are in Iraq?",
        "filters": {"source": ["no such outlet"]}})
    assert r.status_code == 200 and r.json()["abstained"] and r.json()["citations"] == []


def test_cli_search_filters_and_bad_dates(live_server: LiveServer) -> None:
    env = {**os.environ, "QA_INDEX_DIR": str(live_server.index_dir), "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "qa_service.cli", "search", "Super Bowl 50", "-k", "3"]
    ok = subprocess.run([*cmd, "--source", SEED_SOURCE, "--json"], env=env, capture_output=True,
                        text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert '"document_id": "arabipost-2024-01-25-iraq-coalition"' in ok.stdout
    bad = subprocess.run([*cmd, "--published-before", "25/01/2024"], env=env, capture_output=True,
                         text=True, timeout=300)
    assert bad.returncode == 1 and "published_before" in bad.stderr and "Traceback" not in bad.stderr
