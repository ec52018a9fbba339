"""Answer-benchmark scoring (on the evaluation metrics) and threshold calibration."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from qa_service.answer.base import Composition
from qa_service.bench.answers import (
    Decision,
    Item,
    NewsOutcome,
    Outcome,
    calibrate,
    exact_match,
    f1,
    news_decisions,
    run,
    summarise_news,
    xquad_decisions,
)
from qa_service.cli import build_parser
from qa_service.eval.datasets import EvalItem
from qa_service.eval.metrics import contains_answer


def test_exact_match_and_f1() -> None:
    assert exact_match("الولايات المتحدة", ["في الولايات المتحدة", "الولايات المتحدة"]) == 1.0
    assert f1("308 نقطة", ["308"]) == 2 * (0.5 * 1.0) / 1.5
    assert f1(None, ["308"]) == 0.0 and exact_match(None, ["308"]) == 0.0
    assert contains_answer("لم يتخلى فريق بانثرز سوى عن ٣٠٨ نقطة", ["308 نقطة"])


def _outcome(answerable: float, unanswerable: float) -> Outcome:
    item = Item("q", "How many?", "en", "d", ("1",), "dev")

    def comp(conf: float) -> Composition:
        return Composition("x", None, "en", abstained=False, confidence=conf)

    return Outcome(item, comp(answerable), comp(unanswerable), 1.0, 0.0, False)


def test_calibration_separates_answerable_from_unanswerable() -> None:
    threshold = calibrate(xquad_decisions([_outcome(0.9, 0.7), _outcome(0.95, 0.8), _outcome(0.85, 0.75)]))
    assert 0.8 < threshold <= 0.85
    assert calibrate(xquad_decisions([_outcome(0.5, 0.9)])) in (-math.inf, 0.9, 0.5)


def _news(confidence: float, *, cited: bool = False, abstain: bool = False, short: str | None = "1"
          ) -> NewsOutcome:
    item = EvalItem("n", "How many?", ("1",), evidence="x 1", abstain=abstain)
    return NewsOutcome(item, "en", "dev", confidence, cited, short)


def test_each_dev_set_weighs_the_same_in_the_joint_calibration() -> None:
    # A large set whose answerable and unanswerable questions part at 0.8 ...
    xquad = xquad_decisions([_outcome(0.9, 0.7)] * 10)
    assert 0.7 < calibrate(xquad) <= 0.9
    # ... and a small news set whose right answers all score below 0.7: pooled, the large set
    # would decide; each weighing the same, answering them wins, the threshold falls below them.
    news = news_decisions([_news(0.6, cited=True), _news(0.65, cited=True), _news(0.5, abstain=True)])
    assert 0.5 < calibrate(xquad, news) <= 0.6
    assert 0.7 < calibrate(xquad, []) <= 0.9  # an empty set (no news index) changes nothing


def test_a_news_answer_is_right_only_when_it_cites_the_evidence() -> None:
    decisions = news_decisions([_news(0.9, cited=False), _news(0.9, cited=True), _news(0.2, abstain=True)])
    assert decisions == [Decision(0.9, False, False), Decision(0.9, True, False), Decision(0.2, False, True)]


def test_the_news_summary_counts_what_a_reader_sees_at_the_threshold() -> None:
    outcomes = [_news(0.9, cited=True), _news(0.4, cited=True), _news(0.9, cited=False, short="2"),
                _news(0.3, abstain=True), _news(0.95, abstain=True)]
    m = summarise_news(outcomes, threshold=0.5)
    assert m["questions"] == 5 and m["answerable"] == 3
    assert m["cited_sentence_accuracy"] == 1 / 3  # the 0.4 one abstained
    assert m["cited_sentence_accuracy_no_abstention"] == 2 / 3
    assert m["short_answer_f1"] == pytest.approx(100 / 3)  # "1" right once; the abstention and "2" score 0
    assert m["abstained"] == 2 / 5
    assert m["abstain_precision"] == 1 / 2 and m["abstain_recall"] == 1 / 2


def test_a_news_index_that_is_not_an_index_folder_is_refused_before_the_long_run(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "data" / "xquad").mkdir(parents=True)
    (tmp_path / "data" / "xquad" / "xquad.ar.json").write_text("{}", encoding="utf-8")
    args = build_parser().parse_args(["bench", "answers", "--data", str(tmp_path / "data"),
                                      "--news-index", str(tmp_path / "empty")])
    assert run(args) == 1
    err = capsys.readouterr().err
    assert "is not an index folder" in err and "tests/data/news-qa/README.md" in err
