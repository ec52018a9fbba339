"""Hybrid retrieval: lexical index kept with the chunks, language-aware fusion, filters,
recency and news noise — through QAService with deterministic encoders."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from qa_service.errors import BadInputError
from qa_service.models import Document, Filters
from qa_service.retrieval.lexical import LexicalSearcher, question_terms
from qa_service.retrieval.retriever import RetrievalConfig
from qa_service.service import QAService
from qa_service.settings import Settings
from qa_service.store import lexical
from qa_service.store.sqlite_store import Store
from tests.conftest import NEVER_ABSTAIN
from tests.fakes import FakeEncoder


def _doc(doc_id: str, text: str, **kw: object) -> Document:
    return Document(id=doc_id, text=text, lang=str(kw.pop("lang", "ar")), **kw)  # type: ignore[arg-type]


def _ids(service: QAService, question: str, k: int = 5, filters: Filters | None = None,
         **config: object) -> list[str]:
    cfg = RetrievalConfig(**config) if config else None  # type: ignore[arg-type]
    qvec = service.encoder.encode_queries([question])
    return [p.document_id for p in service.retriever.retrieve(question, qvec, k, filters, cfg)]


# -- the lexical index follows the chunks ---------------------------------------------------


def test_lexical_index_is_written_replaced_and_deleted_with_the_chunks(fake_service: QAService) -> None:
    searcher = LexicalSearcher(fake_service.store)
    fake_service.ingest([_doc("a", "وصل الرئيس إلى بغداد صباح الثلاثاء."), _doc("b", "ارتفعت أسعار النفط.")])

    def hits(word: str) -> list[int]:
        return [h.rowid for h in searcher.search(question_terms(word, "terms"), 10)]

    assert len(hits("بغداد")) == 1 and hits("النفط")
    fake_service.ingest([_doc("a", "وصل الرئيس إلى البصرة مساء الأربعاء.")])  # changed article
    assert hits("بغداد") == [] and len(hits("البصرة")) == 1
    fake_service.delete("a")
    assert hits("البصرة") == []
    conn = fake_service.store.reader()
    for table in ("lexical", "chunk_noise"):
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 1  # only "b" is left


def test_arabic_matching_ignores_diacritics_hamza_and_digit_script(fake_service: QAService) -> None:
    fake_service.ingest([_doc("a", "أعلنت الحكومة نشر ٢٥٠٠ جُنديٍّ في المنطقة."),
                         _doc("b", "افتتح المعرض الدولي للكتاب أبوابه.")])
    searcher = LexicalSearcher(fake_service.store)
    for question in ("اعلنت الحكومه نشر 2500 جندي", "2,500"):
        found = searcher.search(question_terms(question, "terms"), 5)
        assert found and found[0].rowid == fake_service.store.reader().execute(
            "SELECT rowid FROM chunks WHERE document_id = 'a'").fetchone()[0]


def test_lexical_tables_are_rebuilt_when_the_analyzer_changes(settings: Settings) -> None:
    service = QAService(settings, FakeEncoder())
    service.ingest([_doc("a", "انسحاب قوات التحالف من العراق")])
    service.store.set_meta(lexical.ANALYZER_META_KEY, "0")
    service.store.reader().execute("DELETE FROM lexical")
    service.close()
    store = Store(settings.store_path)  # re-analysed on open
    assert store.get_meta(lexical.ANALYZER_META_KEY) == lexical.ANALYZER_VERSION
    assert LexicalSearcher(store).search(["التحالف"], 5)
    store.close()


def test_an_index_written_before_the_lexical_index_existed_is_upgraded_on_open(
        settings: Settings) -> None:
    from qa_service.store.sqlite_store import MIGRATIONS

    settings.store_path.parent.mkdir(parents=True)
    conn = sqlite3.connect(settings.store_path)
    conn.executescript(MIGRATIONS[0] + "PRAGMA user_version = 1;")
    text = "وصل وفد المفاوضين إلى الدوحة.\nصورة أرشيفية / رويترز"
    conn.execute("INSERT INTO documents VALUES ('old', 'h', NULL, ?, NULL, NULL, NULL, 'ar', '{}', '')",
                 (text,))
    conn.execute('INSERT INTO chunks(id, document_id, ord, start, "end", vector) VALUES (?,?,?,?,?,?)',
                 ("c1", "old", 0, 0, len(text), np.zeros(4, np.float32).tobytes()))
    conn.commit()
    conn.close()
    store = Store(settings.store_path)
    found = LexicalSearcher(store).search(question_terms("المفاوضين الدوحة", "stems"), 5, "stems")
    assert [h.rowid for h in found] == [1]
    assert LexicalSearcher(store).noise_shares([1])[1] > 0  # the caption line was analysed too
    store.close()


# -- fusion that knows the question's language ----------------------------------------------


class TableEncoder(FakeEncoder):
    """Hand-set geometry: a text containing a key word gets that key's vector.

    Lets a test decide what the dense model "understands" across languages, which a
    hashing encoder cannot do.
    """

    def __init__(self, table: dict[str, Sequence[float]]) -> None:
        super().__init__(dim=len(next(iter(table.values()))))
        self._table = {k: np.asarray(v, dtype=np.float32) for k, v in table.items()}

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for key, vec in self._table.items():
                if key in text:
                    out[row] += vec
            out[row] = out[row] / (np.linalg.norm(out[row]) or 1.0)
        return out


@pytest.fixture
def crosslingual(settings: Settings) -> Iterator[QAService]:
    # The dense model maps "troops" (English) and "الجنود" (Arabic) together; an Arabic
    # article that happens to quote English words is unrelated.
    encoder = TableEncoder({
        "troops": [1, 0.3, 0], "الجنود": [1, 0.2, 0], "مباراة": [0, 1, 0], "The Voice": [0, 0, 1],
        "Iraq": [0.2, 0, 0],
    })
    service = QAService(settings, encoder)
    service.ingest([
        _doc("troops", "يبلغ عدد الجنود الأمريكيين في العراق ٢٥٠٠ جندي."),
        _doc("match", "انتهت مباراة الأمس بالتعادل."),
        _doc("quotes", "برنامج The Voice: how many troops are there "
                       "ليس سؤالاً عسكرياً بل اسم أغنية في مباراة."),
    ])
    yield service
    service.close()


def test_english_question_is_not_hijacked_by_latin_words_in_arabic_text(crosslingual: QAService) -> None:
    question = "How many US troops are in Iraq?"
    naive = _ids(crosslingual, question, 3, method="naive")
    hybrid = _ids(crosslingual, question, 3)
    assert naive[0] == "quotes"  # what language-blind fusion does
    assert hybrid[0] == "troops"


def test_pseudo_relevance_feedback_option_keeps_the_cross_lingual_answer(crosslingual: QAService) -> None:
    assert _ids(crosslingual, "How many US troops are in Iraq?", 1, prf_weight=0.5,
                prf_same_language=True) == ["troops"]


def test_english_question_uses_english_words_in_a_mixed_collection(fake_service: QAService) -> None:
    fake_service.ingest([
        _doc("ar", "أعلنت الحكومة العراقية خطة لانسحاب القوات الأمريكية."),
        _doc("en", "The coalition withdrawal timetable was announced in Baghdad.", lang="en"),
        _doc("en2", "Oil prices rose on Monday.", lang="en"),
    ])
    assert _ids(fake_service, "When was the withdrawal timetable announced?", 1) == ["en"]


def test_numbers_carry_an_english_question_to_arabic_text(settings: Settings) -> None:
    encoder = TableEncoder({"a": [1, 0], "ب": [1, 0.05]})  # every text looks alike to dense
    service = QAService(settings, encoder)
    service.ingest([_doc(f"d{i}", f"ب خبر رقم {i} عن الاقتصاد") for i in range(6)]
                   + [_doc("hit", "ب بلغ عدد السكان ٢٬٥٠٠ نسمة في القرية")])
    assert _ids(service, "Is a village of 2,500 people large?", 1) == ["hit"]
    service.close()


def test_arabic_question_uses_lexical_evidence(fake_service: QAService) -> None:
    fake_service.ingest([
        _doc("a", "افتتح وزير الثقافة معرض الكتاب في الرياض بمشاركة دور نشر عربية."),
        _doc("b", "قال المتحدث إن الوزير سيزور المعرض لاحقاً."),
        _doc("c", "سجل فريق الهلال هدفين في الشوط الثاني."),
    ])
    assert _ids(fake_service, "من افتتح معرض الكتاب في الرياض؟", 1) == ["a"]


# -- filters --------------------------------------------------------------------------------


NEWS = [
    _doc("bbc-old", "أعلنت الحكومة العراقية خطة لانسحاب القوات.", source="BBC",
         published_at="2018-03-01T10:00:00+00:00"),
    _doc("cnn-new", "أعلنت الحكومة العراقية موعد انسحاب القوات.", source="CNN",
         published_at="2018-09-20T10:00:00+00:00"),
    _doc("en", "The Iraqi government announced a withdrawal plan.", source="CNN", lang="en",
         published_at="2018-06-01"),
]


@pytest.mark.parametrize(("filters", "expected"), [
    (Filters(source=["BBC"]), {"bbc-old"}),
    (Filters(source=["CNN"], lang="ar"), {"cnn-new"}),
    (Filters(lang="en"), {"en"}),
    (Filters(published_after="2018-06-01"), {"cnn-new", "en"}),
    (Filters(published_before="2018-06-01"), {"bbc-old", "en"}),  # inclusive, by day
    (Filters(published_after="2018-03-01", published_before="2018-03-01"), {"bbc-old"}),
])
def test_filters_keep_exactly_the_matching_articles(fake_service: QAService, filters: Filters,
                                                    expected: set[str]) -> None:
    fake_service.ingest(NEWS)
    passages, _ = fake_service.search("انسحاب القوات العراقية", 10, filters)
    assert {p.document_id for p in passages} == expected
    assert all(p.published_at for p in passages)


def test_a_selective_filter_finds_its_article_far_below_the_dense_top(fake_service: QAService) -> None:
    crowd = [_doc(f"n{i}", f"أعلنت الحكومة العراقية انسحاب القوات الأمريكية من القاعدة {i}.",
                  source="crowd") for i in range(60)]
    rare = _doc("rare", "تقرير عن المناخ والأمطار في الشتاء.", source="rare-outlet")
    fake_service.ingest([*crowd, rare])
    passages, _ = fake_service.search("انسحاب القوات الأمريكية", 3, Filters(source=["rare-outlet"]))
    assert [p.document_id for p in passages] == ["rare"]


@pytest.mark.parametrize(("filters", "message"), [
    (Filters(published_after="yesterday"), "published_after"),
    (Filters(published_after="2018-09-01", published_before="2018-01-01"), "later than"),
    (Filters(lang="fr"), "lang"),
])
def test_invalid_filters_are_bad_input(fake_service: QAService, filters: Filters, message: str) -> None:
    fake_service.ingest(NEWS)
    with pytest.raises(BadInputError, match=message):
        fake_service.search("انسحاب", 5, filters)


# -- sentences ------------------------------------------------------------------------------


def test_the_sentence_that_answers_ranks_a_chunk_its_chunk_vector_dilutes(settings: Settings) -> None:
    # "letter" dilutes the seed chunk's vector; its one "troops" sentence is the answer. The
    # other article is about the army throughout, so its chunk vector is closer.
    encoder = TableEncoder({"troops": [1, 0], "الجنود": [1, 0], "رسالة": [0, 1], "الجيش": [0.8, 0.6]})
    service = QAService(settings, encoder)
    service.ingest([
        _doc("seed", "نشر السفير رسالة طويلة. وتنشر الولايات المتحدة الجنود في العراق. "
                     "وختم السفير رسالة ثانية."),
        _doc("army", "تحدث قائد الجيش عن التدريب. وزار الجيش المعسكر."),
    ])
    question = "How many US troops are in Iraq?"
    assert _ids(service, question, 2, sentence_weight=0.0) == ["army", "seed"]  # chunk vectors alone
    assert _ids(service, question, 2, dense_weight=0.0, sentence_weight=1.0) == ["seed", "army"]
    assert RetrievalConfig().sentence_weight > 0  # on by default (news dev: docs/benchmarks.md)
    service.close()


def test_chunks_stored_without_sentence_vectors_are_still_retrieved(tmp_path: Path) -> None:
    settings = Settings(index_dir=tmp_path / "index", model_cache=tmp_path / "m", sentence_vectors=False)
    service = QAService(settings, FakeEncoder())
    service.ingest([_doc("a", "عدد الجنود في العراق 2500 جندي."), _doc("b", "ارتفعت أسعار النفط.")])
    assert _ids(service, "كم عدد الجنود في العراق؟", 1) == ["a"]
    service.close()


# -- recency --------------------------------------------------------------------------------


@pytest.mark.parametrize("order", [("old", "new"), ("new", "old")])
def test_same_report_on_two_dates_ranks_the_newer_first(fake_service: QAService,
                                                        order: tuple[str, str]) -> None:
    # Equally relevant reports (one short line each, too short to count as a pasted
    # paragraph): whichever arrived first, the newer one leads.
    text = "عدد الجنود في العراق 2500 جندي."
    dates = {"old": "2018-02-01", "new": "2018-08-01T09:00:00+03:00"}
    fake_service.ingest([_doc(name, text, published_at=dates[name]) for name in order])
    assert _ids(fake_service, "كم عدد الجنود في العراق؟", 2) == ["new", "old"]


def test_recency_does_not_override_a_clear_relevance_gap(fake_service: QAService) -> None:
    fake_service.ingest([
        _doc("old", "عدد الجنود الأمريكيين في العراق 5200 جندي حسب وزارة الدفاع.", published_at="2018-02-01"),
        _doc("new", "ارتفعت أسعار الذهب في الأسواق.", published_at="2018-08-01"),
    ])
    assert _ids(fake_service, "كم عدد الجنود الأمريكيين في العراق؟", 2)[0] == "old"


# -- news noise -----------------------------------------------------------------------------

PASTED = ("وأكدت وزارة الصحة أن حملة التطعيم ضد الحصبة ستشمل جميع المحافظات خلال الشهر المقبل "
          "بمشاركة آلاف العاملين في القطاع الصحي.")


@pytest.fixture
def line_chunks(tmp_path: Path) -> Iterator[QAService]:
    # Small chunks: one line (paragraph) per chunk, as in long news articles.
    settings = Settings(index_dir=tmp_path / "index", model_cache=tmp_path / "m",
                        min_reader_score=NEVER_ABSTAIN, chunk_max_tokens=24)
    service = QAService(settings, FakeEncoder())
    yield service
    service.close()


def test_a_paragraph_pasted_into_many_articles_is_credited_to_its_first_article(
        line_chunks: QAService) -> None:
    original = _doc("original", f"{PASTED}\nوقال الوزير إن اللقاحات وصلت إلى المستودعات.",
                    published_at="2018-03-01")
    copies = [_doc(f"copy{i}", f"خبر رياضي رقم {i}: فاز الفريق بالمباراة النهائية بهدفين.\n{PASTED}",
                   published_at=f"2018-04-0{i + 1}") for i in range(5)]
    line_chunks.ingest([*copies, original])  # ingestion order does not decide: dates do
    ranked = _ids(line_chunks, "هل ستشمل حملة التطعيم ضد الحصبة جميع المحافظات؟", 6)
    assert ranked[0] == "original"
    plain = _ids(line_chunks, "هل ستشمل حملة التطعيم ضد الحصبة جميع المحافظات؟", 6, noise_penalty=0.0)
    assert plain[0] != "original"  # the copies are newer: without the noise rule one wins


def test_site_boilerplate_is_demoted_everywhere(line_chunks: QAService) -> None:
    promo = "يمكنكم استلام إشعارات بأهم الموضوعات بعد تحميل أحدث نسخة من تطبيقنا على هاتفكم المحمول."
    docs = [_doc(f"d{i}", f"خبر عن الطقس والأمطار في المدينة رقم {i}.\n{promo}", published_at="2018-05-01")
            for i in range(lexical.SITE_BOILERPLATE_MIN_DOCUMENTS)]
    docs.append(_doc("real", "أطلقت الشركة أحدث نسخة من تطبيق الإشعارات للهاتف المحمول.",
                     published_at="2018-05-02"))
    line_chunks.ingest(docs)
    assert _ids(line_chunks, "تحميل أحدث نسخة من تطبيق الإشعارات على الهاتف المحمول", 1) == ["real"]


def test_photo_captions_do_not_outrank_body_text(line_chunks: QAService) -> None:
    line_chunks.ingest([
        _doc("captioned", "متظاهرون أمام البرلمان في بغداد / رويترز\nارتفعت أسعار الخبز في الأسواق المحلية.",
             published_at="2018-05-01"),
        _doc("body", "تجمع متظاهرون أمام مبنى البرلمان في بغداد مطالبين بالإصلاح.",
             published_at="2018-04-01"),
    ])
    question = "متظاهرون أمام البرلمان في بغداد"
    assert _ids(line_chunks, question, 1, method="dense") == ["captioned"]  # the caption's words match best
    assert _ids(line_chunks, question, 1) == ["body"]


@pytest.mark.parametrize(("line", "caption"), [
    ("متظاهرون أمام البرلمان في بغداد / رويترز", True),
    ("فرانس24/ أ ف ب", True),
    ("للمزيد: ضربات جوية تستهدف مطار التيفور العسكري السوري", True),
    ("*نقلاً عن الرؤية الإماراتية", True),
    ("--------------------------------------------------", True),
    ("مصدر الصورة Getty Images", True),
    ("وقال المتحدث باسم الحكومة إن رويترز نقلت الخبر عن مصادر رسمية في بغداد صباح اليوم.", False),
    ("أعلنت الحكومة العراقية خطة لانسحاب القوات.", False),
])
def test_caption_lines(line: str, caption: bool) -> None:
    assert lexical.is_caption(line) is caption
