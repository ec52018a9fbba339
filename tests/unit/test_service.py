"""Store, index generations and the service, with the fake encoder."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa_service.errors import BadInputError, IndexCorruptError, WriterBusyError
from qa_service.models import AskRequest, Document, Filters
from qa_service.service import QAService
from qa_service.settings import Settings
from tests.fakes import FakeEncoder

SEED = Document(
    id="seed", title="العراق يعلن اتفاقاً مع أمريكا", source="عربي بوست",
    published_at="2024-01-25T15:41:00+00:00", lang="ar",
    text=("أعلنت بغداد توصلها إلى اتفاق مع واشنطن لإنهاء مهمة التحالف.\n\n"
          "وتنشر الولايات المتحدة 2500 عسكري في العراق لتقديم المشورة. "
          "ومن المتوقع أن تستغرق المحادثات عدة أشهر."),
)
OTHER = Document(id="other", title="Football", source="XQuAD", lang="en",
                 text="The Panthers defense gave up just 308 points. They ranked sixth in the league.",
                 published_at="2018-02-01")


def test_ask_cites_the_exact_sentence_and_offsets_match_the_stored_text(fake_service: QAService) -> None:
    fake_service.ingest([SEED, OTHER])
    answer = fake_service.ask(AskRequest(question="كم عدد الجنود الذين تنشرهم الولايات المتحدة في العراق؟"))
    assert not answer.abstained
    first = answer.citations[0]
    assert "2500" in first.quote
    assert first.source == "عربي بوست" and first.published_at.startswith("2024-01-25")
    for c in answer.citations:
        doc = fake_service.store.get_document(c.document_id)
        assert doc is not None and doc.text[c.start:c.end] == c.quote
        assert f"[{c.n}]" in answer.answer
        assert f"«{c.quote}» [{c.n}]" in answer.answer
    assert answer.short_answer == "2500"
    assert answer.answer_language == "ar"
    # The answer's paragraphs as blocks: the lead line in the question's direction, then quotes.
    kinds = [(b.kind, b.dir) for b in answer.blocks]
    assert kinds[0] == ("lead", "rtl") and all(k == ("quote", "rtl") for k in kinds[1:])
    assert all(answer.answer[b.start:b.end] == b.text for b in answer.blocks)
    assert answer.blocks[1].citations == [1] and answer.followup is None


def test_reingesting_unchanged_documents_does_no_work(fake_service: QAService) -> None:
    first = fake_service.ingest([SEED, OTHER])
    assert (first.added, first.unchanged) == (2, 0)
    encoder = fake_service.encoder
    assert isinstance(encoder, FakeEncoder)
    encoded = encoder.passages_encoded
    generation = fake_service.index.manifest.name
    again = fake_service.ingest([SEED, OTHER])
    assert (again.added, again.updated, again.unchanged, again.chunks) == (0, 0, 2, 0)
    assert encoder.passages_encoded == encoded
    assert fake_service.index.manifest.name == generation


def test_changed_document_replaces_its_chunks(fake_service: QAService) -> None:
    fake_service.ingest([SEED])
    old_chunks = {c.id for c in fake_service.store.chunks_of("seed")}
    changed = Document(id="seed", text="نص جديد تماماً عن 9000 جندي أمريكي في العراق.", lang="ar")
    report = fake_service.ingest([changed])
    assert report.updated == 1
    new_chunks = fake_service.store.chunks_of("seed")
    assert not old_chunks & {c.id for c in new_chunks}
    assert fake_service.index.size == len(new_chunks)
    passages, _ = fake_service.search("9000 جندي", 5)
    assert passages[0].text == changed.text


def test_delete_removes_document_from_store_and_index(fake_service: QAService) -> None:
    fake_service.ingest([SEED, OTHER])
    assert fake_service.delete("seed") is True
    assert fake_service.store.get_document("seed") is None
    passages, _ = fake_service.search("الولايات المتحدة", 10)
    assert all(p.document_id != "seed" for p in passages)
    assert fake_service.delete("seed") is False


def test_index_reloads_without_reembedding_and_survives_a_damaged_generation(settings: Settings) -> None:
    service = QAService(settings, FakeEncoder())
    service.ingest([SEED, OTHER])
    size = service.index.size
    service.close()
    encoder = FakeEncoder()
    reopened = QAService(settings, encoder)
    assert reopened.index.size == size and encoder.passages_encoded == 0
    reopened.close()
    # flip bytes in the live FAISS file: detected by checksum and rebuilt from the store
    name = (settings.index_dir / "CURRENT").read_text()
    path = settings.index_dir / "generations" / name / "index.faiss"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    rebuilt = QAService(settings, FakeEncoder())
    assert rebuilt.index.size == size
    passages, _ = rebuilt.search("2500 عسكري", 1)
    assert "2500" in passages[0].text
    rebuilt.close()


def test_model_mismatch_is_a_clear_startup_error(settings: Settings) -> None:
    QAService(settings, FakeEncoder()).ingest([SEED])
    with pytest.raises(IndexCorruptError, match="QA_EMBEDDING_MODEL"):
        QAService(settings, FakeEncoder(model_id="another-model"))


def test_second_writer_is_refused_while_one_writes(fake_service: QAService) -> None:
    with fake_service.index_dir.writer(), pytest.raises(WriterBusyError, match="another process"):
        fake_service.ingest([SEED])


def test_filters_restrict_results(fake_service: QAService) -> None:
    fake_service.ingest([SEED, OTHER])
    only_en, _ = fake_service.search("troops", 10, Filters(lang="en"))
    assert {p.document_id for p in only_en} == {"other"}
    recent, _ = fake_service.search("troops", 10, Filters(published_after="2020-01-01"))
    assert {p.document_id for p in recent} == {"seed"}


@pytest.mark.parametrize(("question", "top_k", "message"), [
    ("   ", 5, "empty"), ("x" * 5000, 5, "limit"), ("ok", 0, "top_k"), ("ok", 500, "top_k"),
])
def test_bad_questions_are_rejected(fake_service: QAService, question: str, top_k: int,
                                    message: str) -> None:
    with pytest.raises(BadInputError, match=message):
        fake_service.ask(AskRequest(question=question, top_k=top_k))


def test_empty_collection_abstains(fake_service: QAService) -> None:
    answer = fake_service.ask(AskRequest(question="How many US troops are in Iraq?"))
    assert answer.abstained and answer.citations == []
    assert "does not contain" in answer.answer


def test_low_scores_abstain_in_the_question_language(tmp_path: Path) -> None:
    service = QAService(Settings(index_dir=tmp_path, min_reader_score=100.0,
                                 min_reader_score_cross_lingual=100.0), FakeEncoder())
    service.ingest([OTHER])
    answer = service.ask(AskRequest(question="ما هي عاصمة اليابان؟"))
    assert answer.abstained and answer.answer_language == "ar" and not answer.citations
