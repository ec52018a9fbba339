"""Evaluation metrics: answer normalisation (Arabic included), containment, question types, grading."""

from __future__ import annotations

import pytest

from qa_service.eval.datasets import EvalItem
from qa_service.eval.metrics import (
    QuestionRecord,
    breakdown,
    contains_answer,
    exact_match,
    f1_score,
    grade,
    new_record,
    normalize_answer,
    question_type,
    summarize,
)
from qa_service.models import Answer, Citation, Passage, Timings

# -- normalisation, EM, F1 --------------------------------------------------------------------


@pytest.mark.parametrize(("a", "b"), [
    ("مُحَمَّد", "محمد"),  # diacritics
    ("٢٥٠٠", "2500"),  # Arabic-Indic digits
    ("٢٬٥٠٠", "2,500"),  # Arabic thousands separator
    ("2,500", "2500"),  # grouping, as SQuAD's punctuation removal does
    ("الجيش الأمريكي", "جيش أمريكي"),  # the article ال, like SQuAD's a/an/the
    ("إنجلترا", "انجلترا"),  # hamza on alef
    ("القاهرة", "القاهره"),  # ta marbuta
    ("مصطفى", "مصطفي"),  # alef maqsura
    ("الحـــرب", "الحرب"),  # tatweel
    ("The Denver Broncos!", "denver broncos"),
    ("«الحرس الأحمر»؟", "الحرس الأحمر"),  # Arabic quotes and question mark
])
def test_equivalent_answers_match_exactly(a: str, b: str) -> None:
    assert normalize_answer(a) == normalize_answer(b)
    assert exact_match(a, [b])


@pytest.mark.parametrize(("a", "b"), [
    ("2.5", "25"),  # a decimal point between digits is kept
    ("308", "3080"),
    ("الحرس", "الأحمر"),
])
def test_different_answers_do_not_match(a: str, b: str) -> None:
    assert not exact_match(a, [b])


def test_short_article_words_keep_their_letters() -> None:
    # "ال" is stripped only when at least two letters remain, so short words are not mangled.
    assert normalize_answer("الف") == "الف"
    assert normalize_answer("الأمم") == "امم"


def test_empty_prediction_never_matches() -> None:
    assert not exact_match("", ["the"])  # "the" normalises to nothing, like an empty answer
    assert f1_score("", ["2500"]) == 0.0


def test_f1_is_the_best_token_overlap_over_gold_answers() -> None:
    # prediction {جيش, امريكي} against {جيش, امريكي, كبير}: P = 1, R = 2/3, F1 = 0.8
    assert f1_score("جيش الأمريكي", ["شيء آخر", "الجيش الأمريكي الكبير"]) == pytest.approx(0.8)
    assert f1_score("٢٥٠٠ جندي", ["2500 جندي"]) == 1.0
    assert f1_score("Denver", ["Carolina Panthers"]) == 0.0


# -- containment in quotes --------------------------------------------------------------------


@pytest.mark.parametrize(("quote", "target"), [
    ("وتنشر الولايات المتحدة ٢٥٠٠ عسكري في العراق.", "2500"),
    ("وتنشر الولايات المتحدة 2,500 عسكري", "٢٥٠٠"),
    ("انسحب ب2500 جندي", "2500"),  # a clitic glued to a number
    ("وقاتل والجيش الأمريكي في المدينة", "الجيش الأمريكي"),  # و + article
    ("The Panthers defense gave up just 308 points.", "308 points"),
    ("The temperature was 565 °C at the inlet.", "565 °C"),
])
def test_quote_contains_the_answer(quote: str, target: str) -> None:
    assert contains_answer(quote, [target])


@pytest.mark.parametrize(("quote", "target"), [
    ("He won 15 times.", "5"),  # not inside a longer number
    ("The value was 1.5 in total.", "5"),  # nor after a decimal point
    ("A cargo ship sank.", "car"),  # nor inside a Latin word
    ("وتنشر الولايات المتحدة 2500 عسكري", "3000"),
])
def test_quote_does_not_contain_the_answer(quote: str, target: str) -> None:
    assert not contains_answer(quote, [target])


# -- question types ---------------------------------------------------------------------------


@pytest.mark.parametrize(("question", "kind"), [
    ("How many points did the Panthers defense surrender?", "how many"),
    ("How much did the war cost?", "how many"),
    ("How did the plague spread?", "how"),
    ("When did the Black Death reach England?", "when"),
    ("In what year did the war end?", "when"),
    ("Who won Super Bowl 50?", "who"),
    ("Whose army crossed the river?", "who"),
    ("Where is the museum?", "where"),
    ("Why was the network founded?", "why"),
    ("Which team won?", "which"),
    ("What is the name of the stadium?", "what"),
    ("Is Paris the capital of France?", "yes/no"),
    ("Did the Broncos win?", "yes/no"),
    ("The Panthers finished the season with how many wins?", "how many"),
    ("Name the stadium.", "other"),
    ("كم نقطة تخلى عنها دفاع البانثرز؟", "how many"),
    ("ما عدد الجنود الأمريكيين في العراق؟", "how many"),
    ("متى وصلت يرسينيا الطاعونية إلى إنجلترا؟", "when"),
    ("في أي عام انتهت الحرب؟", "when"),
    ("من الذي دمر أثمن الآثار في الضريح؟", "who"),
    (" - من هو جمال أحمد حمزة خاشقجي؟ ", "who"),
    ("لمن ينتقده في مقالاته؟", "who"),
    ("أين يقع المتحف؟", "where"),
    ("لماذا أسست شبكة الاتصالات؟", "why"),
    ("\u200fما هي اعتبارات حظر الأخطار؟", "what"),  # a leading right-to-left mark
    ("ماذا كان سيسمى الكيان الجديد؟", "what"),
    ("هل انتهت الحرب؟", "yes/no"),
    ("كيف انتشر الطاعون؟", "how"),
    ("أيّ فريق فاز بالمباراة؟", "which"),
    ("في أي مدينة ولد خاشقجي؟", "which"),
    ("كم من الوقت استغرقت الرحلة؟", "how many"),  # من later in the question is "of", not "who"
    ("ذهب الجيش من المدينة", "other"),  # من mid-sentence is a preposition
])
def test_question_type(question: str, kind: str) -> None:
    assert question_type(question) == kind


# -- grading one answer -----------------------------------------------------------------------

DOC = "أعلنت بغداد توصلها إلى اتفاق. وتنشر الولايات المتحدة ٢٥٠٠ عسكري في العراق."
SENTENCE_START = DOC.index("وتنشر")
ITEM = EvalItem(id="q1", question="كم عدد الجنود الأمريكيين في العراق؟", answers=("2500",),
                gold_document_ids=("iraq",))


def _citation(n: int, doc_id: str, start: int, end: int, quote: str) -> Citation:
    return Citation(n=n, document_id=doc_id, chunk_id=f"{doc_id}-c", title=None, url=None, source=None,
                    published_at=None, lang="ar", quote=quote, start=start, end=end,
                    answer_start=None, answer_end=None, score=0.9)


def _answer(citations: list[Citation], *, short: str | None = "٢٥٠٠", abstained: bool = False,
            passages: tuple[str, ...] = ("other", "iraq")) -> Answer:
    return Answer(
        answer="…", short_answer=short, answer_language="ar", abstained=abstained,
        citations=citations, timings_ms=Timings(total=12.0),
        passages=[Passage(chunk_id=f"{d}-c", document_id=d, text="", start=0, end=0, score=0.9)
                  for d in passages])


def test_grade_checks_each_citation_against_the_stored_text() -> None:
    good = _citation(1, "iraq", SENTENCE_START, len(DOC), DOC[SENTENCE_START:])
    shifted = _citation(2, "iraq", SENTENCE_START + 1, len(DOC), DOC[SENTENCE_START:])
    missing = _citation(3, "gone", 0, 5, "أعلنت")
    unreadable = _citation(4, "remote", 0, 5, "أعلنت")
    record = grade(ITEM, _answer([good, shifted, missing, unreadable]), 15.0, {"iraq": DOC},
                   {"remote": "GET /v1/documents/remote returned 503"})
    assert [c.valid for c in record.citations] == [True, False, False, None]
    assert "verbatim" in (record.citations[1].problem or "")
    assert "503" in (record.citations[3].problem or "")
    assert record.gold_rank == 2
    assert record.exact_match and record.f1 == 1.0
    assert record.cited_correct and record.supported
    assert record.language == "ar" and record.question_type == "how many"


def test_grade_support_can_come_from_a_later_citation() -> None:
    intro = _citation(1, "iraq", 0, SENTENCE_START - 1, DOC[:SENTENCE_START - 1])
    troops = _citation(2, "iraq", SENTENCE_START, len(DOC), DOC[SENTENCE_START:])
    record = grade(ITEM, _answer([intro, troops], short=None), 10.0, {"iraq": DOC})
    assert not record.cited_correct and record.supported
    assert not record.exact_match and record.f1 == 0.0  # no short answer scores 0


def test_abstaining_on_an_answerable_question_scores_zero() -> None:
    record = grade(ITEM, _answer([], short=None, abstained=True, passages=()), 5.0, {})
    assert record.gold_rank is None
    assert (record.exact_match, record.f1) == (False, 0.0)
    assert (record.cited_correct, record.supported) == (False, False)


def test_evidence_is_what_citations_must_contain() -> None:
    item = EvalItem(id="q", question="How many US troops are in Iraq?", answers=("2500",),
                    evidence="وتنشر الولايات المتحدة")
    quote = DOC[:SENTENCE_START - 1]  # holds neither the evidence nor 2500
    record = grade(item, _answer([_citation(1, "iraq", 0, len(quote), quote)]), 1.0, {"iraq": DOC})
    assert not record.supported
    record = grade(item, _answer([_citation(1, "iraq", SENTENCE_START, len(DOC), DOC[SENTENCE_START:])]),
                   1.0, {"iraq": DOC})
    assert record.supported and record.cited_correct


# -- summaries --------------------------------------------------------------------------------


def _record(rank: int | None, *, abstained: bool = False, expect_abstain: bool = False,
            latency: float = 10.0, error: str | None = None, lang: str = "ar") -> QuestionRecord:
    item = EvalItem(id="x", question="كم؟" if lang == "ar" else "How many?",
                    answers=() if expect_abstain else ("1",),
                    gold_document_ids=("d",), abstain=expect_abstain)
    r = new_record(item)
    r.gold_rank, r.abstained, r.latency_ms, r.error = rank, abstained, latency, error
    if not expect_abstain:
        r.exact_match, r.f1 = rank == 1, 1.0 if rank == 1 else 0.5
        r.cited_correct = r.supported = rank == 1
    return r


def test_summary_rates_and_denominators() -> None:
    records = [_record(1), _record(3), _record(None, abstained=True),
               _record(None, abstained=True, expect_abstain=True),
               _record(None, expect_abstain=True), _record(1, error="HTTP 400: bad", latency=999.0)]
    s = summarize(records, ks=[1, 3])
    assert s["questions"] == 6 and s["errors"] == 1
    assert s["recall@1"] == pytest.approx(1 / 5) and s["recall@3"] == pytest.approx(2 / 5)
    assert s["mrr"] == pytest.approx((1 + 1 / 3) / 5, abs=1e-4)
    assert s["em"] == pytest.approx(1 / 3, abs=1e-4)  # over the 3 answerable, error excluded
    assert s["f1"] == pytest.approx((1.0 + 0.5 + 0.5) / 3, abs=1e-4)
    assert s["abstain_precision"] == 0.5 and s["abstain_recall"] == 0.5
    assert s["latency_p50_ms"] == 10.0  # the failed question's 999 ms is not counted


def test_abstention_metrics_are_undefined_without_unanswerable_items() -> None:
    s = summarize([_record(1), _record(None, abstained=True)], ks=[1])
    assert s["abstain_rate"] == 0.5
    assert s["abstain_precision"] is None and s["abstain_recall"] is None


def test_breakdown_groups_by_key_in_the_given_order() -> None:
    records = [_record(1, lang="en"), _record(2), _record(None)]
    groups = breakdown(records, lambda r: r.language, [1], order=("ar", "en"))
    assert list(groups) == ["ar", "en"]
    assert groups["ar"]["questions"] == 2 and groups["en"]["recall@1"] == 1.0


def test_the_answer_bearing_passage_is_ranked_and_the_composer_timed() -> None:
    passages = [Passage(chunk_id=f"p{i}", document_id=f"d{i}", text=text, start=0, end=len(text), score=0.9)
                for i, text in enumerate(["لا شيء هنا", DOC[SENTENCE_START:], "ولا هنا"])]
    answer = Answer(answer="…", short_answer="2500", answer_language="ar", abstained=False, citations=[],
                    timings_ms=Timings(total=30.0, compose=21.5), passages=passages)
    record = grade(ITEM, answer, 40.0, {})
    assert record.evidence_rank == 2 and record.compose_ms == 21.5
    summary = summarize([record], ks=(1, 5))
    assert summary["evidence_recall@1"] == 0.0 and summary["evidence_recall@5"] == 1.0
    assert summary["compose_p50_ms"] == 21.5
