"""Answer-benchmark scoring (on the evaluation metrics) and threshold calibration."""

from __future__ import annotations

import math

from qa_service.answer.base import Composition
from qa_service.bench.answers import (
    Item,
    Outcome,
    calibrate,
    exact_match,
    f1,
)
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
    threshold = calibrate([_outcome(0.9, 0.7), _outcome(0.95, 0.8), _outcome(0.85, 0.75)])
    assert 0.8 < threshold <= 0.85
    assert calibrate([_outcome(0.5, 0.9)]) in (-math.inf, 0.9, 0.5)
