"""The conversation set (tests/data/conversations) and its evaluation (qa_service.eval.conversations)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from qa_service.errors import BadInputError
from qa_service.eval.conversations import is_conversation_file, load_conversations
from qa_service.eval.metrics import contains_answer
from qa_service.eval.options import EvalOptions, Threshold
from qa_service.eval.runner import EXIT_OK, EXIT_THRESHOLD, evaluate
from qa_service.models import AskRequest, Document
from qa_service.samples import SAMPLE_DIR
from qa_service.service import QAService
from qa_service.settings import Settings
from qa_service.text import detect_language
from qa_service.text.sentences import split_sentences
from tests.conftest import ROOT
from tests.fakes import FakeEncoder

CONVERSATIONS = ROOT / "tests" / "data" / "conversations"
NEWS_QA = ROOT / "tests" / "data" / "news-qa"
SPLITS = ("dev", "test")


def _rows(split: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (CONVERSATIONS / f"{split}.jsonl").read_text().splitlines()
            if line.strip()]


def _news_qa() -> dict[str, tuple[str, dict[str, Any]]]:
    out = {}
    for split in SPLITS:
        for line in (NEWS_QA / f"{split}.jsonl").read_text().splitlines():
            row = json.loads(line)
            out[row["id"]] = (split, row)
    return out


def _sample_texts() -> dict[str, str]:
    texts = {}
    for path in SAMPLE_DIR.glob("*.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            doc = json.loads(line)
            texts[doc["id"]] = doc["text"]
    return texts


def test_the_set_has_enough_conversations_follow_ups_and_topic_switches_in_both_languages() -> None:
    rows = [row for split in SPLITS for row in _rows(split)]
    assert len(rows) >= 40 and len({r["id"] for r in rows}) == len(rows)
    turns = Counter(len(r["turns"]) for r in rows)
    assert set(turns) == {2, 3} and turns[2] >= 10 and turns[3] >= 10
    assert Counter(r["lang"] for r in rows)["en"] >= 20 and Counter(r["lang"] for r in rows)["ar"] >= 20
    assert {r["collection"] for r in rows} == {"news", "sample"}
    kinds = Counter(t["type"] for r in rows for t in r["turns"])
    assert kinds["followup"] >= 60 and kinds["standalone"] >= 10
    # Every follow-up has its complete form, in its own language.
    for turn in (t for r in rows for t in r["turns"] if t["type"] == "followup"):
        assert turn["complete"] and detect_language(turn["complete"]) == detect_language(turn["question"])
    for split in SPLITS:
        conversations = load_conversations(CONVERSATIONS / f"{split}.jsonl")
        assert all(c.turns[0].type == "first" for c in conversations)


def test_gold_is_copied_from_news_qa_and_xquad_and_stays_in_its_split() -> None:
    news = _news_qa()
    sample = _sample_texts()
    articles: dict[str, set[str]] = {split: set() for split in SPLITS}
    for split in SPLITS:
        for row in _rows(split):
            for turn in row["turns"]:
                assert turn["answers"] and contains_answer(turn["evidence"], turn["answers"]), turn
                source, key = turn["source"].split(":", 1)
                if source == "news-qa":
                    news_split, item = news[key]
                    assert news_split == split, (row["id"], key)
                    gold = (turn["answers"], turn["evidence"], turn["document_ids"])
                    assert gold == (item["answers"], item["evidence"], item["document_ids"])
                else:
                    assert source == "xquad"
                    (doc_id,) = turn["document_ids"]
                    text = sample[doc_id]
                    at = text.index(turn["evidence"])
                    assert any(s <= at and at + len(turn["evidence"]) <= e for s, e in split_sentences(text))
                articles[split] |= set(turn["document_ids"])
    assert not articles["dev"] & articles["test"]


def test_conversation_files_are_recognised_and_bad_lines_are_named(tmp_path: Path) -> None:
    assert is_conversation_file(CONVERSATIONS / "dev.jsonl")
    assert not is_conversation_file(NEWS_QA / "dev.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "x", "turns": [{"question": "q?", "answers": ["a"]},
                                                   {"question": "r?", "answers": ["b"], "type": "later"}]}))
    with pytest.raises(BadInputError, match=r"bad.jsonl:1 turn 2: 'type'"):
        load_conversations(bad)
    second = {"question": "r?", "answers": ["b"], "type": "followup"}
    bad.write_text(json.dumps({"id": "x", "turns": [{"question": "q?", "answer": ["a"]}, second]}))
    with pytest.raises(BadInputError, match="unknown field"):
        load_conversations(bad)


SEED = Document(
    id="seed", title="العراق يعلن اتفاقاً مع أمريكا", source="عربي بوست", lang="ar",
    published_at="2024-01-25T15:41:00+00:00",
    text=("أعلنت بغداد توصلها إلى اتفاق مع واشنطن لإنهاء مهمة التحالف.\n\n"
          "وتنشر الولايات المتحدة 2500 عسكري في العراق لتقديم المشورة. "
          "ومن المتوقع أن تستغرق المحادثات عدة أشهر قبل انسحاب القوات."),
)
SYRIA = Document(id="syria", title="سوريا", source="BBC", lang="ar", published_at="2018-04-01",
                 text="وتنشر الولايات المتحدة نحو 2000 عسكري في سوريا لمحاربة تنظيم الدولة.")


def test_eval_asks_each_follow_up_with_its_history_and_alone(settings: Settings, tmp_path: Path) -> None:
    service = QAService(settings, FakeEncoder())
    service.ingest([SEED, SYRIA])
    service.close()
    path = tmp_path / "conversations.jsonl"
    path.write_text(json.dumps({"id": "troops", "lang": "ar", "turns": [
        {"question": "كم عدد الجنود الأمريكيين في العراق؟", "answers": ["2500"],
         "evidence": "2500 عسكري في العراق", "document_ids": ["seed"], "type": "first"},
        {"question": "وفي سوريا؟", "answers": ["2000"], "evidence": "2000 عسكري في سوريا",
         "document_ids": ["syria"], "type": "followup", "source": "hand",
         "complete": "كم عدد الجنود الأمريكيين في سوريا؟"}]}, ensure_ascii=False) + "\n",
        encoding="utf-8")
    out = tmp_path / "out"
    options = EvalOptions(dataset=path, out=out, top_k=5,
                          thresholds=(Threshold("min", "cited_accuracy", 0.5),))
    run = evaluate(options, settings, service_factory=lambda s: QAService(s, FakeEncoder()))
    assert run.exit_code == EXIT_OK
    summary = run.result["summary"]
    assert summary["followup/history"]["cited_accuracy"] == 1.0
    assert summary["followup/history"]["resolved"] == 1.0
    assert summary["followup/alone"]["turns"] == 1
    assert summary["first/history"]["cited_accuracy"] == 1.0
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert [(r["turn"], r["condition"]) for r in records] == [(0, "history"), (1, "history"), (1, "alone"),
                                                             (1, "complete")]
    assert summary["followup/complete"]["cited_accuracy"] == 1.0
    assert records[1]["resolution"]["question"] == "كم عدد الجنود الأمريكيين في سوريا؟"
    assert "followup · history" in (out / "report.md").read_text()
    strict = EvalOptions(dataset=path, out=tmp_path / "out2",
                         thresholds=(Threshold("max", "server_p50_ms", 0.0),))
    assert evaluate(strict, settings, service_factory=lambda s: QAService(s, FakeEncoder())).exit_code \
        == EXIT_THRESHOLD


def test_eval_over_http_sends_the_history_with_the_cited_documents(settings: Settings,
                                                                  tmp_path: Path) -> None:
    service = QAService(settings, FakeEncoder())
    service.ingest([SEED, SYRIA])
    bodies: list[dict[str, Any]] = []
    answers: list[Any] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/readyz":
            return httpx.Response(200, json={"status": "ready", "model": "fake", "documents": 2})
        if request.url.path.startswith("/v1/documents/"):
            doc = service.store.get_document(request.url.path.rsplit("/", 1)[1])
            return httpx.Response(200, json={"id": doc.id, "text": doc.text} if doc else {})
        bodies.append(json.loads(request.content))
        answer = service.ask(msgspec.json.decode(request.content, type=AskRequest))
        answers.append(answer)
        return httpx.Response(200, content=msgspec.json.encode(answer))

    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"id": "c", "turns": [
        {"question": "كم عدد الجنود الأمريكيين في العراق؟", "answers": ["2500"], "type": "first"},
        {"question": "وفي سوريا؟", "answers": ["2000"], "type": "followup"}]}, ensure_ascii=False),
        encoding="utf-8")
    try:
        run = evaluate(EvalOptions(dataset=path, url="http://qa.test", out=tmp_path / "o", concurrency=1),
                       settings, transport=httpx.MockTransport(handler))
    finally:
        service.close()
    assert run.exit_code == EXIT_OK
    assert [len(b["history"]) for b in bodies] == [0, 2, 0]  # the follow-up with history, then alone
    cited = list(dict.fromkeys(c.document_id for c in answers[0].citations))
    assert cited[0] == "seed" and bodies[1]["history"][1]["document_ids"] == cited
    assert run.result["summary"]["followup/history"]["cited_accuracy"] == 1.0
