"""Sentence vectors with the real model: stored at ingestion, they lead the reader to the answer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from qa_service.embedding import load_encoder
from qa_service.embedding.base import Encoder
from qa_service.models import AskRequest
from qa_service.service import QAService, ingest_sample
from qa_service.settings import Settings

pytestmark = pytest.mark.integration

TALKS = "ومن المتوقع أن تستغرق المحادثات عدة أشهر"
TROOPS = "وتنشر الولايات المتحدة 2500 عسكري في العراق"


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Encoder]]:
    settings = Settings.from_env().replace(index_dir=tmp_path_factory.mktemp("sv") / "index",
                                           sentence_vectors=True)
    encoder = load_encoder(settings)
    service = QAService(settings, encoder)
    try:
        ingest_sample(service)
        # Every chunk of the sample has its sentences stored beside it (cached after a first run).
        rows = service.store.reader().execute("SELECT count(*) FROM chunk_sentences").fetchone()[0]
        assert rows == service.store.counts()[1]
    finally:
        service.close()
    yield settings, encoder


@pytest.mark.parametrize(("question", "short", "sentence"), [
    ("How long are the talks expected to take?", "عدة أشهر", TALKS),
    ("كم من الوقت ستستغرق المحادثات؟", "عدة أشهر", TALKS),
    ("How many US troops are in Iraq?", "2500", TROOPS),
])
def test_the_reader_answers_from_the_sentence_closest_to_the_question(
        sample: tuple[Settings, Encoder], question: str, short: str, sentence: str) -> None:
    # Over the whole sample: retrieval ranks passages by their best sentence, the reader reads the
    # window around it, and the answer quotes the sentence holding the span.
    settings, encoder = sample
    service = QAService(settings, encoder)
    try:
        answer = service.ask(AskRequest(question=question))
    finally:
        service.close()
    assert not answer.abstained and answer.short_answer == short
    assert answer.citations[0].source == "عربي بوست" and answer.citations[0].quote.startswith(sentence)
