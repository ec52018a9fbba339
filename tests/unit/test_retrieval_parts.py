"""The pieces of hybrid retrieval on their own: fusion, recency ties, feedback and anchor
terms, paragraph keys, and the benchmark's metrics and data pairing."""

from __future__ import annotations

import json

import pytest

from qa_service.bench.retrieval import XQUAD_AR, gold_rank, load_questions, summarise
from qa_service.retrieval.fusion import Ranked, feedback_terms, recency_order, rrf
from qa_service.retrieval.lexical import anchors, match_expression, question_terms
from qa_service.retrieval.translit import arabic_skeletons, latin_skeleton, same_name
from qa_service.store.lexical import MIN_PARAGRAPH_CHARS, paragraph_key
from qa_service.text import detect_language, normalize
from tests.conftest import shared_data


def test_rrf_adds_weighted_reciprocal_ranks() -> None:
    fused = rrf([([1, 2, 3], 1.0), ([3, 4], 0.5), ([9], 0.0)], k=10)
    assert fused[1] == pytest.approx(1 / 11)
    assert fused[3] == pytest.approx(1 / 13 + 0.5 / 11)
    assert 9 not in fused  # a zero-weight ranking contributes nothing


def test_recency_breaks_near_ties_only() -> None:
    items = [Ranked(1, 1.00, "2018-01-01"), Ranked(2, 0.995, "2018-06-01"),
             Ranked(3, 0.99, None), Ranked(4, 0.50, "2019-01-01")]
    order = [r.rowid for r in recency_order(items, margin=0.02)]
    # 1 and 2 tie within 2%: the newer (2) first; the undated one keeps its place; the
    # newest article of all (4) is far less relevant and stays last.
    assert order == [2, 1, 3, 4]
    assert [r.rowid for r in recency_order(items, margin=0.0)] == [1, 2, 3, 4]


def test_feedback_terms_prefer_rare_terms_of_the_best_passages() -> None:
    docs = [["بانثرز", "دفاع", "نقطه"], ["دفاع", "الدوري"], ["عام"]]
    df = {"بانثرز": 2, "دفاع": 50, "نقطه": 40, "الدوري": 30, "عام": 900}
    terms = feedback_terms(docs, df, total=1000, limit=2)
    assert terms[0] == "بانثرز" and "عام" not in terms
    assert "دفاع" not in feedback_terms(docs, df, 1000, 5, exclude=frozenset({"دفاع"}))


@pytest.mark.parametrize(("question", "numbers", "names"), [
    ("How many US troops were in Iraq in 2018?", ["2018"], []),  # "US", "Iraq": skeletons too short to tell
    ("How many points did the Panthers give up, 308 or 2,500?", ["308", "2500"], ["bntrs"]),
    ("What is the capital?", [], []),  # the capitalised first word is not a name
    ("Who coached the Denver Broncos?", [], ["dnfr", "brnks"]),
    ("كم عدد سكان مدينة ٢٥٠٠ NASA", ["2500"], []),  # "NASA": too short
])
def test_anchors_are_numbers_and_name_skeletons(question: str, numbers: list[str], names: list[str]) -> None:
    assert anchors(question) == (numbers, names)


@pytest.mark.parametrize(("latin", "arabic", "same"), [
    ("Panthers", "بانثرز", True),
    ("Broncos", "برونكو", True),  # English plural -s
    ("Denver", "الدنفر", True),  # article
    ("Pittsburgh", "بيتسبرغ", True),
    ("Carolina", "كارولينا", True),
    ("Denver", "دبي", False),
    ("Manning", "مانديلا", False),
])
def test_transliterated_names_share_a_skeleton(latin: str, arabic: str, same: bool) -> None:
    assert same_name(latin_skeleton(latin), arabic_skeletons(normalize(arabic))) is same


def test_query_terms_and_fts_expression() -> None:
    assert question_terms("ما هي الكتابات في المكتبات؟", "stems") == ["كتاب", "مكتب"]
    assert question_terms("كم جندي، كم جندي؟", "terms") == ["جندي"]
    assert match_expression(["2.5", 'a"b'], "terms") == 'terms : ("2.5" OR "a""b")'


def test_paragraph_keys_ignore_spelling_variants_but_not_short_lines() -> None:
    line = "وأكدت وزارة الصحة أن حملة التطعيم ستشمل جميع المحافظات"
    # Diacritics, hamza forms and spacing do not make a different paragraph.
    assert paragraph_key(line) == paragraph_key("وأكّدت  وزارة الصحّة ان حملة التطعيم ستشمل جميع المحافظات")
    assert paragraph_key(line) != paragraph_key(line + " اليوم")
    assert paragraph_key("ا" * (MIN_PARAGRAPH_CHARS - 1)) is None


def test_gold_rank_counts_distinct_documents() -> None:
    assert gold_rank(["a", "a", "b", "c"], "c") == 3
    assert gold_rank(["a", "b"], "z") is None
    m = summarise([1, 3, None, 12])
    assert m == {"R@1": 0.25, "R@5": 0.5, "R@20": 0.75, "MRR@10": round((1 + 1 / 3) / 4, 3)}


def test_benchmark_pairs_english_questions_with_the_arabic_paragraph() -> None:
    path = shared_data(XQUAD_AR)
    questions = load_questions(path.parent.parent)
    sets = {q.set for q in questions}
    assert sets == {"xquad ar→ar", "xquad en→ar", "arcd ar→ar"}
    ar = {q.id: q for q in questions if q.set == "xquad ar→ar"}
    en = [q for q in questions if q.set == "xquad en→ar"]
    assert len(ar) == len(en) == 1190
    sample = en[0]
    assert sample.gold == ar[sample.id].gold
    assert detect_language(sample.text) == "en" and detect_language(ar[sample.id].text) == "ar"
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert raw["data"][0]["paragraphs"][0]["qas"][0]["id"] in ar
