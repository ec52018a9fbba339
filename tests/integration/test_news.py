"""The mission question over the real news collection: the seed among ~1,700 Iraq articles and 800 others.

Ingests the collection described in tests/data/news-qa/README.md with the real model (several
minutes on 2 cores), then asks in both languages. Needs ../shared/data (skipped visibly without).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from qa_service.bench.news_collection import write_collection
from qa_service.embedding import load_encoder
from qa_service.ingest.loaders import load_paths
from qa_service.models import AskRequest
from qa_service.service import QAService
from qa_service.settings import Settings
from tests.conftest import shared_data

pytestmark = [pytest.mark.integration, pytest.mark.shared_data]

SEED_ID = "arabipost-2024-01-25-iraq-coalition"


@pytest.fixture(scope="module")
def news_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QAService]:
    news = shared_data("ant-news-ar.jsonl.gz")
    root = tmp_path_factory.mktemp("news")
    write_collection(root / "collection.jsonl", news)
    settings = Settings(index_dir=root / "index")
    service = QAService(settings, load_encoder(settings))
    docs = [item.document for item in load_paths([root / "collection.jsonl"]) if item.document]
    for start in range(0, len(docs), 500):
        service.ingest(docs[start:start + 500])
    yield service
    service.close()


@pytest.mark.parametrize("question", [
    "How many US troops are in Iraq?",
    pytest.param("كم عدد الجنود الأمريكيين في العراق؟", marks=pytest.mark.xfail(
        strict=True, reason="issue 14: the seed is read (a present-tense question reads the newest "
        "passages below the top), but the reader scores «قتل سبعة جنود أميركيين» (seven soldiers "
        "killed, 2018) 4 points above its 2500; strict, so a reader that gets it right says so")),
])
def test_the_mission_question_answers_2500_from_the_seed(news_service: QAService, question: str) -> None:
    answer = news_service.ask(AskRequest(question=question))
    assert not answer.abstained, answer.answer
    assert "2500" in (answer.short_answer or ""), answer.answer
    lead = answer.citations[0]
    assert lead.document_id == SEED_ID and "2500" in lead.quote
    assert "2024" in answer.answer.split("\n")[0]  # "as of 25 January 2024"
    assert {c.chunk_id for c in answer.citations} <= {p.chunk_id for p in answer.passages}
