"""Per-sentence vectors (QA_SENTENCE_VECTORS): storage, migration, cleanup, fallback, older splits."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from qa_service.embedding.cache import CachedEncoder
from qa_service.errors import BadInputError
from qa_service.models import AskRequest, Document
from qa_service.service import QAService
from qa_service.settings import Settings
from qa_service.store.sentence_vectors import SentenceVectors, best_cosines
from qa_service.store.sqlite_store import MIGRATIONS
from qa_service.text import split_sentences
from tests.conftest import NEVER_ABSTAIN
from tests.fakes import FakeEncoder

SEED = Document(
    id="seed", title="العراق يعلن اتفاقاً مع أمريكا", source="عربي بوست", lang="ar",
    published_at="2024-01-25T15:41:00+00:00",
    text=("أعلنت بغداد توصلها إلى اتفاق مع واشنطن لإنهاء مهمة التحالف.\n\n"
          "وتنشر الولايات المتحدة 2500 عسكري في العراق لتقديم المشورة. "
          "ومن المتوقع أن تستغرق المحادثات عدة أشهر.\nرويترز"),
)
OTHER = Document(id="other", title="Football", source="XQuAD", lang="en",
                 text="The Panthers defense gave up just 308 points. They ranked sixth in the league.")


def _rows(service: QAService) -> int:
    return int(service.store.reader().execute("SELECT count(*) FROM chunk_sentences").fetchone()[0])


def _stored(service: QAService, doc_id: str) -> dict[str, SentenceVectors]:
    return service.store.sentences([c.id for c in service.store.chunks_of(doc_id)])


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_codec_round_trip_keeps_spans_and_cosine() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((3, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors[1] = 0.0  # an unembedded fragment
    original = SentenceVectors(((0, 10), (11, 15), (16, 200)), vectors)
    blob = original.encode()
    assert len(blob) == 4 + 3 * (8 + 4 + 384)  # int8 with a scale per vector
    decoded = SentenceVectors.decode(blob)
    assert decoded is not None and decoded.spans == original.spans
    for i in (0, 2):
        assert _cosine(decoded.vectors[i], vectors[i]) >= 0.9999
    assert not decoded.vectors[1].any()
    cosines = decoded.cosines(vectors[2], decoded.spans)
    assert cosines is not None and cosines[(16, 200)] == pytest.approx(1.0, abs=1e-3)
    assert cosines[(11, 15)] == 0.0
    assert decoded.cosines(np.ones(8, np.float32), decoded.spans) is None  # another model's dimension
    assert SentenceVectors.decode(blob[:-1]) is None and SentenceVectors.decode(b"") is None


def test_best_cosines_match_the_decoded_vectors_and_skip_what_cannot_count() -> None:
    rng = np.random.default_rng(1)
    query = rng.standard_normal(384).astype(np.float32)
    query /= np.linalg.norm(query)
    blobs = {}
    for key in (1, 2):
        vectors = rng.standard_normal((4, 384)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors[0] = 0.0  # an unembedded fragment never wins
        blobs[key] = SentenceVectors(tuple((i, i + 1) for i in range(4)), vectors).encode()
    other_model = SentenceVectors(((0, 1),), np.ones((1, 8), np.float32)).encode()
    rows = [*blobs.items(), (3, blobs[1][:-1]), (4, other_model), (5, b"")]
    best = best_cosines(rows, query)
    assert set(best) == {1, 2}
    for key, blob in blobs.items():
        decoded = SentenceVectors.decode(blob)
        assert decoded is not None
        assert best[key] == pytest.approx(float((decoded.vectors[1:] @ query).max()), abs=1e-5)


def test_ingestion_stores_each_chunks_sentences_as_the_composer_splits_them(
        fake_service: QAService) -> None:
    report = fake_service.ingest([SEED, OTHER])
    encoder = fake_service.encoder
    assert isinstance(encoder, FakeEncoder)
    for doc in (SEED, OTHER):
        chunks = fake_service.store.chunks_of(doc.id)
        stored = _stored(fake_service, doc.id)
        assert set(stored) == {c.id for c in chunks}
        for chunk in chunks:
            text = doc.text[chunk.start:chunk.end]
            sentences = stored[chunk.id]
            assert list(sentences.spans) == split_sentences(text)
            for (s, e), vec in zip(sentences.spans, sentences.vectors, strict=True):
                if text[s:e] == "رويترز":  # one token: not embedded, never leads
                    assert not vec.any()
                else:
                    assert _cosine(vec, encoder.encode_passages([text[s:e]])[0]) >= 0.999
    stored = [v for d in ("seed", "other") for v in _stored(fake_service, d).values()]
    assert report.sentences == sum(len(v.spans) for v in stored)


def test_sentences_of_a_whole_batch_go_to_the_encoder_in_one_call(settings: Settings) -> None:
    encoder = FakeEncoder()
    service = QAService(settings, encoder)
    try:
        docs = [Document(id=f"d{i}", text=f"الخبر رقم {i} هنا. وجملة ثانية عن الموضوع {i}.", lang="ar")
                for i in range(5)]
        service.ingest(docs)
        assert encoder.calls == 2  # the chunks, then every sentence of the batch
    finally:
        service.close()


def test_reingesting_into_a_new_folder_embeds_nothing_again(tmp_path: Path) -> None:
    inner = FakeEncoder()
    cached = CachedEncoder(inner, tmp_path / "cache.sqlite3")
    for folder in ("a", "b"):
        service = QAService(Settings(index_dir=tmp_path / folder, min_reader_score=NEVER_ABSTAIN), cached)
        service.ingest([SEED, OTHER])
        service.close()
        if folder == "a":
            embedded = inner.passages_encoded
    assert embedded > 0 and inner.passages_encoded == embedded


def test_setting_off_stores_no_sentences_and_answers_as_before(settings: Settings) -> None:
    service = QAService(settings.replace(sentence_vectors=False), FakeEncoder())
    try:
        report = service.ingest([SEED, OTHER])
        assert report.sentences == 0 and _rows(service) == 0
        assert service.sentence_lookup() is None
        answer = service.ask(AskRequest(question="كم عدد الجنود الذين تنشرهم الولايات المتحدة في العراق؟"))
        assert answer.short_answer == "2500" and "2500" in answer.citations[0].quote
    finally:
        service.close()


def test_deleting_or_replacing_a_document_removes_its_sentences(fake_service: QAService) -> None:
    fake_service.ingest([SEED, OTHER])
    other_rows = len(fake_service.store.chunks_of("other"))
    fake_service.ingest([Document(id="seed", text="نص جديد تماماً عن 9000 جندي أمريكي في العراق.", lang="ar")])
    new_chunks = fake_service.store.chunks_of("seed")
    assert _rows(fake_service) == len(new_chunks) + other_rows
    assert set(_stored(fake_service, "seed")) == {c.id for c in new_chunks}
    assert fake_service.delete("seed")
    assert _rows(fake_service) == other_rows
    assert fake_service.delete("other")
    assert _rows(fake_service) == 0


def test_an_old_store_upgrades_answers_without_vectors_and_reingest_fills_them(settings: Settings) -> None:
    service = QAService(settings, FakeEncoder())
    service.ingest([SEED, OTHER])
    service.close()
    # Make it a store of the previous schema: no sentence table, schema version one less.
    with sqlite3.connect(settings.store_path) as db:
        db.execute("DROP TABLE chunk_sentences")
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS) - 1}")

    service = QAService(settings, FakeEncoder())
    try:
        chunks = service.store.counts()[1]
        assert _rows(service) == 0 and service.store.counts()[0] == 2
        generation = service.index.manifest.name
        question = AskRequest(question="كم عدد الجنود الذين تنشرهم الولايات المتحدة في العراق؟")
        before = service.ask(question)
        assert before.short_answer == "2500" and not before.abstained  # scored without vectors
        report = service.ingest([SEED, OTHER])
        assert (report.unchanged, report.chunks) == (2, 0) and report.sentences > 0
        assert _rows(service) == chunks
        assert service.index.manifest.name == generation  # chunks and index untouched
        assert service.ask(question).citations[0].quote == before.citations[0].quote
    finally:
        service.close()


# -- sentences of today against vectors stored under an older split ------------------------

ARABIC = ("وقال المتحدث إن الاجتماع عقد في العاصمة يوم الأحد. "
          "ويبلغ عدد سكان المدينة نحو مليوني نسمة بحسب آخر إحصاء.")
QUERY = np.eye(8, dtype=np.float32)[0]


def test_vectors_stored_under_an_older_split_still_score_todays_sentences() -> None:
    # A splitter update since ingestion: the store split the text into three sentences where
    # today's splitter sees two (or the reverse). Each sentence of today takes the best cosine
    # of the stored sentences it overlaps, so the vectors still find the sentence to read around.
    (s0, e0), (s1, e1) = split_sentences(ARABIC)
    middle = (s1 + e1) // 2
    three = SentenceVectors(((s0, e0), (s1, middle), (middle + 1, e1)),
                            np.stack([np.eye(8, dtype=np.float32)[1], np.eye(8, dtype=np.float32)[1], QUERY]))
    one = SentenceVectors(((s0, e1),), QUERY[None, :])
    assert three.cosines(QUERY, [(s0, e0), (s1, e1)]) == {(s0, e0): 0.0, (s1, e1): 1.0}
    assert one.cosines(QUERY, [(s0, e0), (s1, e1)]) == {(s0, e0): 1.0, (s1, e1): 1.0}
    # Stored sentences that do not cover the text (not this text's vectors) are as good as none.
    stale = SentenceVectors(((0, 5),), QUERY[None, :])
    assert stale.cosines(QUERY, [(s0, e0), (s1, e1)]) is None


def test_setting_is_parsed_and_validated() -> None:
    assert Settings.from_env({"QA_SENTENCE_VECTORS": "off"}).sentence_vectors is False
    assert Settings.from_env({"QA_SENTENCE_VECTORS": "1"}).sentence_vectors is True
    with pytest.raises(BadInputError, match="QA_SENTENCE_VECTORS"):
        Settings.from_env({"QA_SENTENCE_VECTORS": "maybe"})
