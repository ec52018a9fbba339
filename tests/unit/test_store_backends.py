"""One behavioural suite, run against both backends: embedded (SQLite + FAISS) and PostgreSQL + pgvector.

The PostgreSQL half runs against a real server the session starts (tests/pg.py); it skips,
saying why, only where no PostgreSQL with pgvector can be started.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from qa_service.errors import QAError
from qa_service.models import AskRequest, Document, Filters
from qa_service.retrieval.filters import condition
from qa_service.retrieval.lexical import question_terms
from qa_service.service import QAService
from qa_service.settings import Settings
from qa_service.store import lexical
from tests.conftest import pg_database
from tests.fakes import FakeEncoder
from tests.pg import PgServer

SEED = Document(
    id="seed", title="العراق يعلن اتفاقاً مع أمريكا", source="عربي بوست",
    published_at="2024-01-25T15:41:00+00:00", lang="ar", metadata={"outlet_en": "Arabi Post"},
    text=("أعلنت بغداد توصلها إلى اتفاق مع واشنطن لإنهاء مهمة التحالف.\n\n"
          "وتنشر الولايات المتحدة 2500 عسكري في العراق لتقديم المشورة. "
          "ومن المتوقع أن تستغرق المحادثات عدة أشهر."),
)
OLDER = Document(
    id="older", title="القوات الأمريكية في العراق", source="الجزيرة", published_at="2020-03-01", lang="ar",
    text="قالت وزارة الدفاع إن الولايات المتحدة تنشر 5200 جندي في العراق. وأكدت أن المهمة مستمرة.",
)
FOOTBALL = Document(id="football", title="Football", source="XQuAD", lang="en", published_at="2018-02-01",
                    text="The Panthers defense gave up just 308 points. They ranked sixth in the league.")
WEATHER = Document(id="weather", title="Weather", source="XQuAD", lang="en", published_at="2019-06-01",
                   text="Heavy rain is expected in Denver this weekend. Temperatures will fall sharply.")
ALL = [SEED, OLDER, FOOTBALL, WEATHER]


@pytest.fixture
def service(backend_settings: Settings) -> Iterator[QAService]:
    svc = QAService(backend_settings, FakeEncoder())
    yield svc
    svc.close()


def _ids(passages: list) -> list[str]:  # type: ignore[type-arg]
    return [p.document_id for p in passages]


def test_ingest_and_answer_with_exact_citation_offsets(service: QAService) -> None:
    report = service.ingest(ALL)
    assert (report.added, report.updated, report.unchanged) == (4, 0, 0)
    assert service.store.counts() == (4, report.chunks)
    answer = service.ask(AskRequest(question="كم عدد الجنود الذين تنشرهم الولايات المتحدة في العراق؟"))
    assert not answer.abstained and answer.citations
    for c in answer.citations:
        doc = service.store.get_document(c.document_id)
        assert doc is not None and doc.text[c.start:c.end] == c.quote
    passage = next(p for p in answer.passages if p.document_id == "seed")
    assert SEED.text[passage.start:passage.end] == passage.text
    assert passage.source_latin == "Arabi Post" and passage.published_at == SEED.published_at
    assert service.store.get_document("seed") == SEED


def test_reingesting_unchanged_documents_does_no_work(service: QAService) -> None:
    service.ingest(ALL)
    encoder = service.encoder
    assert isinstance(encoder, FakeEncoder)
    encoded = encoder.passages_encoded
    again = service.ingest(ALL)
    assert (again.added, again.updated, again.unchanged, again.chunks) == (0, 0, 4, 0)
    assert encoder.passages_encoded == encoded


def test_update_replaces_the_chunks(service: QAService) -> None:
    service.ingest(ALL)
    old = {c.id for c in service.store.chunks_of("seed")}
    changed = Document(id="seed", text="نص جديد تماماً عن 9000 جندي أمريكي في سوريا.", lang="ar")
    assert service.ingest([changed]).updated == 1
    new = service.store.chunks_of("seed")
    assert new and not old & {c.id for c in new}
    assert service.store.counts() == (4, sum(len(service.store.chunks_of(d.id)) for d in ALL))
    passages, _ = service.search("9000 جندي في سوريا", 5)
    assert passages[0].document_id == "seed" and passages[0].text == changed.text
    assert all("2500" not in p.text for p in passages)


def test_delete_removes_the_document_everywhere(service: QAService) -> None:
    service.ingest(ALL)
    assert service.delete("seed") is True
    assert service.store.get_document("seed") is None and service.store.chunks_of("seed") == []
    passages, _ = service.search("الولايات المتحدة 2500 عسكري", 10)
    assert passages and "seed" not in _ids(passages)
    assert service.delete("seed") is False
    assert service.store.counts()[0] == 3


@pytest.mark.parametrize(("filters", "allowed"), [
    (Filters(source=["الجزيرة"]), {"older"}),
    (Filters(lang="en"), {"football", "weather"}),
    (Filters(published_after="2024-01-01"), {"seed"}),
    (Filters(published_before="2019-12-31"), {"football", "weather"}),
    (Filters(source=["XQuAD"], published_after="2019-01-01"), {"weather"}),
])
def test_filters_keep_to_the_allowed_documents(service: QAService, filters: Filters,
                                               allowed: set[str]) -> None:
    service.ingest(ALL)
    # A question that matches other documents best: the filter still finds the allowed ones.
    passages, _ = service.search("الولايات المتحدة تنشر جنود في العراق Panthers Denver", 10, filters)
    assert set(_ids(passages)) == allowed


def test_hybrid_ranking_puts_the_lexical_and_dense_match_first(service: QAService) -> None:
    service.ingest(ALL)
    passages, _ = service.search("How many points did the Panthers defense give up?", 3)
    assert passages[0].document_id == "football"
    passages, _ = service.search("وزارة الدفاع 5200 جندي", 3)
    assert passages[0].document_id == "older"
    # Two articles give a figure: near-ties go to the newer one (recency policy).
    passages, _ = service.search("الولايات المتحدة العراق", 2)
    assert _ids(passages) == ["seed", "older"]


def test_a_failure_inside_a_write_leaves_no_half_written_document(
        service: QAService, monkeypatch: pytest.MonkeyPatch) -> None:
    service.ingest([FOOTBALL])
    real = lexical.analyse_chunks

    def failing(title: str | None, text: str, chunks: list[lexical.ChunkRow]) -> list[lexical.ChunkAnalysis]:
        if text == WEATHER.text:  # the last document of the batch, after the others were written
            raise RuntimeError("crash in the middle of a write")
        return real(title, text, chunks)

    monkeypatch.setattr(lexical, "analyse_chunks", failing)
    with pytest.raises(RuntimeError):
        service.ingest([SEED, OLDER, WEATHER])
    monkeypatch.undo()
    assert service.store.counts() == (1, len(service.store.chunks_of("football")))
    for doc_id in ("seed", "older", "weather"):
        assert service.store.get_document(doc_id) is None and service.store.chunks_of(doc_id) == []
    assert service.ingest([SEED, OLDER, WEATHER]).added == 3  # nothing left over blocks a retry
    passages, _ = service.search("Heavy rain in Denver", 1)
    assert _ids(passages) == ["weather"]


def test_another_process_sees_new_documents_without_restart(
        backend_settings: Settings, service: QAService, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("qa_service.service.RELOAD_CHECK_INTERVAL_S", 0.0)
    other = QAService(backend_settings, FakeEncoder())
    try:
        service.ingest([FOOTBALL])
        assert other.search("Panthers defense points", 1)[0][0].document_id == "football"
        service.ingest([WEATHER])
        assert other.search("Heavy rain in Denver", 1)[0][0].document_id == "weather"
        service.delete("weather")
        assert "weather" not in _ids(other.search("Heavy rain in Denver", 5)[0])
    finally:
        other.close()


def test_several_writers_at_once_store_every_document_once(backend_settings: Settings) -> None:
    docs = [Document(id=f"d{i}", text=f"Report number {i} says {i * 7} people attended the meeting.",
                     lang="en") for i in range(24)]
    services = [QAService(backend_settings, FakeEncoder()) for _ in range(3)]
    errors: list[BaseException] = []

    def write(svc: QAService, part: list[Document]) -> None:
        try:
            for doc in part:
                svc.ingest([doc])
        except (QAError, OSError) as exc:
            errors.append(exc)

    # Overlapping shares: every document is written by two writers.
    shares = [docs[0:16], docs[8:24], docs[16:24] + docs[0:8]]
    threads = [threading.Thread(target=write, args=(svc, share))
               for svc, share in zip(services, shares, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert not errors
        store = services[0].store
        assert store.counts()[0] == 24
        assert store.counts()[1] == sum(len(store.chunks_of(d.id)) for d in docs)
        passages, _ = services[1].search("Report number 17", 1)
        assert passages[0].document_id == "d17"
    finally:
        for svc in services:
            svc.close()


@pytest.fixture
def both(settings: Settings, pg_server: PgServer | str) -> Iterator[tuple[QAService, QAService]]:
    """The same collection in both backends."""
    embedded = QAService(settings, FakeEncoder())
    # HNSW from the first chunk (the suite above covers the exact scan of small collections).
    pg = QAService(settings.replace(store_url=pg_database(pg_server), ann_min_vectors=1), FakeEncoder())
    embedded.ingest(ALL + MORE)
    pg.ingest(ALL + MORE)
    yield embedded, pg
    embedded.close()
    pg.close()


_PLACES = ["البصرة", "الموصل", "أربيل", "كركوك", "النجف", "حلب", "دمشق", "حمص", "الرقة", "دير الزور",
           "الأنبار", "تكريت"]
_WHAT = ["الجنود", "المدربين", "المستشارين", "الطائرات", "المركبات", "الخبراء"]
MORE = [Document(id=f"m{i}", lang="ar", source="وكالات", published_at=f"2023-0{1 + i % 9}-10",
                 text=f"قال المتحدث باسم {_PLACES[i]} إن {100 + 37 * i} من {_WHAT[i % 6]} وصلوا إلى "
                      f"{_PLACES[(i + 5) % 12]}. " + " ".join(_PLACES[j] for j in range(i % 5)) +
                      f" والحكومة تؤكد أن الولايات المتحدة شريك في {'العراق' if i % 2 else 'سوريا'}.")
        for i in range(12)]
QUESTIONS = ["كم عدد الجنود الذين تنشرهم الولايات المتحدة في العراق؟", "الحكومة تؤكد شريك",
             "How many points did the Panthers defense give up?", "والحكومة سوريا", "Denver rain"]


def test_bm25_in_sql_scores_as_sqlite_fts5(both: tuple[QAService, QAService]) -> None:
    for question in QUESTIONS:
        for column in ("terms", "stems"):
            terms = question_terms(question, column)
            found = []
            for svc in both:
                lexical_index = svc.retriever._lexical
                hits = lexical_index.search(terms, 20, column)
                ids = {rid: p.chunk_id for rid, p in zip(
                    [h.rowid for h in hits], svc.store.passages([h.rowid for h in hits], [0.0] * len(hits)),
                    strict=True)}
                found.append([(ids[h.rowid], round(h.score, 6)) for h in hits])
            assert found[0], (question, column)
            def canonical(hits: list[tuple[str, float]]) -> list[tuple[str, float]]:
                return sorted(hits, key=lambda x: (-x[1], x[0]))

            assert canonical(found[0]) == canonical(found[1])


def _tie_groups(ranking: list[tuple[str, float]], tolerance: float = 2e-3) -> list[set[str]]:
    """A ranking as runs of equal scores; the last run may be cut by the depth, so it is left out."""
    groups: list[tuple[float, set[str]]] = []
    for key, score in ranking:
        if groups and abs(groups[-1][0] - score) <= tolerance:
            groups[-1][1].add(key)
        else:
            groups.append((score, {key}))
    return [g for _, g in groups[:-1]]


def test_both_backends_rank_alike(both: tuple[QAService, QAService]) -> None:
    condition_of = {"none": None, "source": Filters(source=["وكالات"]),
                    "after": Filters(published_after="2023-05-01")}
    for question in QUESTIONS:
        qvec = both[0].encoder.encode_queries([question])
        for name, filters in condition_of.items():
            dense = []
            for svc in both:
                hits = svc.retriever._backend.dense(qvec, 10, condition(filters))
                rowids, scores = [r for r, _ in hits], [s for _, s in hits]
                chunk_ids = [p.chunk_id for p in svc.store.passages(rowids, scores)]
                dense.append([(c, s) for c, (_, s) in zip(chunk_ids, hits, strict=True)])
            # halfvec: cosines agree to about 1e-3; equal cosines may come in either order.
            assert [s for _, s in dense[0]] == pytest.approx([s for _, s in dense[1]], abs=2e-3)
            assert _tie_groups(dense[0]) == _tie_groups(dense[1]), (question, name)
            ranked = [[p.chunk_id for p in svc.search(question, 5, filters)[0]] for svc in both]
            assert ranked[0] == ranked[1], (question, name)
