"""The news QA set (tests/data/news-qa) and its collection (qa_service.bench.news_collection).

The set is evaluation data: these tests check its shape and that every gold string is
grounded in the collection; nothing trains on it.
"""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from qa_service.bench.news_collection import (
    DISTRACTORS,
    NEWS_FILE,
    collection_records,
    main,
    spread,
    write_collection,
)
from qa_service.errors import BadInputError
from qa_service.eval.datasets import load_dataset
from qa_service.eval.metrics import contains_answer
from qa_service.ingest.loaders import load_paths
from qa_service.text.sentences import split_sentences
from tests.conftest import ROOT, shared_data

NEWS_QA = ROOT / "tests" / "data" / "news-qa"
SPLITS = ("dev", "test")
SEED_ID = "arabipost-2024-01-25-iraq-coalition"
KINDS = frozenset({"count", "who", "when", "where", "why", "what"})
ARABIC_LETTER = re.compile(r"[\u0621-\u064a]")


def _rows(split: str) -> list[dict[str, Any]]:
    lines = (NEWS_QA / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _all_rows() -> list[dict[str, Any]]:
    return [row for split in SPLITS for row in _rows(split)]


def _articles(row: dict[str, Any]) -> set[str]:
    """Every article a question touches: its documents and those of its earlier figures."""
    return set(row.get("document_ids", [])) | {e["document_id"] for e in row.get("earlier", [])}


def _evidence_checks(row: dict[str, Any]) -> Iterator[tuple[str, list[str], list[str]]]:
    """(evidence, answers, document ids) for the gold answer and for each earlier figure."""
    if not row["abstain"]:
        yield row["evidence"], row["answers"], row["document_ids"]
    for earlier in row.get("earlier", []):
        yield earlier["evidence"], earlier["answers"], [earlier["document_id"]]


# -- the set on its own ----------------------------------------------------------------------


@pytest.mark.parametrize("split", SPLITS)
def test_every_line_parses_with_the_projects_reader(split: str) -> None:
    rows = _rows(split)
    dataset = load_dataset(NEWS_QA / f"{split}.jsonl")
    assert [item.id for item in dataset.items] == [row["id"] for row in rows]
    for item, row in zip(dataset.items, rows, strict=True):
        assert item.abstain == row["abstain"]
        if item.abstain:
            assert not (item.answers or item.evidence or item.gold_document_ids)
        else:
            assert item.answers and item.evidence and item.gold_document_ids


def test_ids_are_unique_across_both_splits() -> None:
    ids = [row["id"] for row in _all_rows()]
    assert [i for i, n in Counter(ids).items() if n > 1] == []


def test_no_article_is_in_both_splits() -> None:
    dev = set().union(*(_articles(row) for row in _rows("dev")))
    test = set().union(*(_articles(row) for row in _rows("test")))
    assert dev and test
    assert dev & test == set()


def test_counts_meet_the_minimums() -> None:
    rows = _all_rows()
    langs = Counter(row["lang"] for row in rows)
    assert len(rows) >= 150
    assert langs["en"] >= 60 and langs["ar"] >= 60
    assert sum(row["abstain"] for row in rows) >= 15
    assert sum("earlier" in row for row in rows) >= 5
    assert {row["kind"] for row in rows} == KINDS
    for split in SPLITS:  # each split has both languages, abstentions and changed answers
        split_rows = _rows(split)
        assert {row["lang"] for row in split_rows} == {"en", "ar"}
        assert any(row["abstain"] for row in split_rows)
        assert any("earlier" in row for row in split_rows)


def test_annotations_are_well_formed() -> None:
    for row in _all_rows():
        assert row["lang"] in ("en", "ar"), row["id"]
        assert bool(ARABIC_LETTER.search(row["question"])) == (row["lang"] == "ar"), row["id"]
        assert row["kind"] in KINDS, row["id"]
        if "earlier" in row:
            assert not row["abstain"] and row.get("note"), row["id"]
            for earlier in row["earlier"]:
                assert set(earlier) == {"answers", "evidence", "document_id", "published_at"}, row["id"]


def test_every_answer_is_in_its_evidence() -> None:
    """Normalised as the evaluation does (digits, alef forms, punctuation), whole tokens."""
    for row in _all_rows():
        for evidence, answers, _ in _evidence_checks(row):
            for answer in answers:
                assert contains_answer(evidence, [answer]), (row["id"], answer)


def test_the_mission_questions_are_in_the_test_split() -> None:
    rows = {row["id"]: row for row in _rows("test")}
    for qid, question in (("mission-en", "How many US troops are in Iraq?"),
                          ("mission-ar", "كم عدد الجنود الأمريكيين في العراق؟")):
        row = rows[qid]
        assert row["question"] == question
        assert "2500" in row["answers"] and row["document_ids"][0] == SEED_ID
        assert row["earlier"], "the 2018 figures are the older answers"


def test_the_reader_accepts_annotations_and_still_rejects_unknown_fields(tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    line = {"id": "q", "question": "q?", "answers": ["x"], "evidence": "x y",
            "lang": "en", "kind": "what", "note": "n", "earlier": [{"answers": ["z"]}]}
    good.write_text(json.dumps(line) + "\n", encoding="utf-8")
    (item,) = load_dataset(good).items
    assert item.answers == ("x",) and item.evidence == "x y"
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"question": "q?", "answers": ["x"], "language": "en"}) + "\n",
                   encoding="utf-8")
    with pytest.raises(BadInputError, match="unknown field\\(s\\) language"):
        load_dataset(bad)


# -- against the real collection (../shared/data) -------------------------------------------


@pytest.fixture(scope="module")
def documents() -> dict[str, dict[str, Any]]:
    """Document id → record of the collection exactly as the builder writes it."""
    records, stats = collection_records(shared_data(NEWS_FILE))
    assert (stats.seed, stats.distractors) == (1, DISTRACTORS)
    assert stats.topic > 1500
    return {str(r["id"]): r for r in records}


@pytest.fixture(scope="module")
def collection(documents: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Document id → text."""
    return {doc_id: str(r["text"]) for doc_id, r in documents.items()}


def _in_one_sentence(text: str, evidence: str) -> bool:
    spans = split_sentences(text)
    start = text.find(evidence)
    while start >= 0:
        end = start + len(evidence)
        if any(s <= start and end <= e for s, e in spans):
            return True
        start = text.find(evidence, start + 1)
    return False


@pytest.mark.shared_data
def test_every_evidence_is_verbatim_in_each_of_its_documents(collection: dict[str, str]) -> None:
    """Verbatim, and inside one sentence of the project's splitter (a citation quotes sentences)."""
    for row in _all_rows():
        for evidence, _, documents in _evidence_checks(row):
            for doc_id in documents:
                assert doc_id in collection, (row["id"], doc_id)
                assert evidence in collection[doc_id], (row["id"], doc_id)
                assert _in_one_sentence(collection[doc_id], evidence), (row["id"], doc_id)


@pytest.mark.shared_data
def test_document_ids_list_every_document_that_holds_the_evidence(collection: dict[str, str]) -> None:
    """Retrieving a duplicate (a CNN page with the paragraph pasted in) counts as a hit."""
    for row in _all_rows():
        if not row["abstain"]:
            holders = {doc_id for doc_id, text in collection.items() if row["evidence"] in text}
            assert set(row["document_ids"]) == holders, row["id"]


@pytest.mark.shared_data
def test_earlier_figures_are_older_than_the_gold_answer(documents: dict[str, dict[str, Any]]) -> None:
    def published(doc_id: str) -> datetime:
        return datetime.fromisoformat(str(documents[doc_id]["published_at"]))

    for row in _all_rows():
        for earlier in row.get("earlier", []):
            assert earlier["published_at"] == documents[earlier["document_id"]]["published_at"], row["id"]
            assert published(earlier["document_id"]) < published(row["document_ids"][0]), row["id"]


# -- the collection builder -----------------------------------------------------------------


def _article(i: int, text: str) -> dict[str, Any]:
    return {"id": f"A-{i}", "title": f"t{i}", "url": f"https://example.com/{i}", "source": "bbc",
            "category": "middleEast", "published_at": "2018-03-16T00:53:52+00:00", "author": "",
            "text": text}


def _news_file(folder: Path, articles: list[dict[str, Any]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / NEWS_FILE
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for article in articles:
            fh.write(json.dumps(article, ensure_ascii=False) + "\n")
    return path


def test_spread_picks_evenly_and_never_more_than_there_are() -> None:
    assert spread(4, 10) == [0, 2, 5, 7]
    assert spread(5, 3) == [0, 1, 2]
    assert spread(0, 3) == []


def test_collection_is_seed_then_topic_articles_then_spread_distractors(tmp_path: Path) -> None:
    articles = [_article(i, f"خبر عن العراق رقم {i}" if i % 3 == 0 else f"خبر آخر {i}") for i in range(12)]
    news = _news_file(tmp_path / "data", articles)
    out = tmp_path / "out" / "collection.jsonl"
    stats = write_collection(out, news, distractors=4)
    assert (stats.seed, stats.topic, stats.distractors, stats.scanned) == (1, 4, 4, 12)
    loaded = list(load_paths([out]))  # the ingestion's own loader accepts every line
    assert all(item.document is not None for item in loaded), [item.error for item in loaded]
    docs = [item.document for item in loaded if item.document is not None]
    others = [a["id"] for a in articles if "العراق" not in a["text"]]  # 8 of them; positions 0, 2, 4, 6
    assert [d.id for d in docs] == [SEED_ID, "A-0", "A-3", "A-6", "A-9", *others[0:8:2]]
    first = docs[1]
    assert first.text == articles[0]["text"] and first.lang == "ar" and first.title == "t0"
    assert first.metadata == {"category": "middleEast"}  # the empty author is left out
    assert not out.with_name(out.name + ".partial").exists()


def test_the_command_line_writes_the_collection_and_reports_a_missing_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    _news_file(data, [_article(i, "العراق" if i == 1 else "نص") for i in range(3)])
    out = tmp_path / "c.jsonl"
    assert main([str(out), "--data", str(data), "--distractors", "1"]) == 0
    assert [json.loads(line)["id"] for line in out.read_text(encoding="utf-8").splitlines()] == [
        SEED_ID, "A-1", "A-0"]
    assert "3 documents" in capsys.readouterr().out
    assert main([str(out), "--data", str(tmp_path / "nowhere")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_a_damaged_news_file_is_a_clear_error(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / NEWS_FILE).write_bytes(b"not gzip")
    with pytest.raises(BadInputError, match="cannot read"):
        collection_records(folder / NEWS_FILE)
    _news_file(folder, [_article(0, "العراق")])
    with gzip.open(folder / NEWS_FILE, "at", encoding="utf-8") as fh:
        fh.write("[1, 2]\n")
    with pytest.raises(BadInputError, match=":2: not a JSON object"):
        collection_records(folder / NEWS_FILE)
