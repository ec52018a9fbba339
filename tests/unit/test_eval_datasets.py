"""Evaluation dataset adapters: SQuAD-style JSON, question pairing, hand-written JSONL."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from qa_service.errors import BadInputError
from qa_service.eval.datasets import default_prefix, load_dataset, load_distractors, subset
from qa_service.samples import SAMPLE_DIR
from tests.conftest import shared_data


def _squad(articles: list[dict[str, Any]]) -> dict[str, Any]:
    return {"version": "1.1", "data": articles}


def _qa(qid: str, question: str, *answers: str, **extra: Any) -> dict[str, Any]:
    return {"id": qid, "question": question,
            "answers": [{"text": a, "answer_start": 0} for a in answers], **extra}


def _write(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def test_squad_paragraphs_get_stable_ids_and_questions_their_gold_paragraph(tmp_path: Path) -> None:
    data = _squad([
        {"title": "Nile", "paragraphs": [
            {"context": "The Nile is long.", "qas": [_qa("a", "Is the Nile long?", "long", "long")]},
            {"context": "It flows north.", "qas": [_qa("b", "Where does it flow?", "north")]}]},
        {"title": "Nile", "paragraphs": [  # a repeated title (ARCD has some)
            {"context": "The Nile is long.", "qas": [_qa("c", "What is long?", "The Nile")]}]},
        {"title": "Moon", "paragraphs": [
            {"context": "No answer here.", "qas": [_qa("d", "Who lives there?", is_impossible=True)]}]},
    ])
    ds = load_dataset(_write(tmp_path / "mini.v1.json", data))
    assert ds.name == "mini-v1"
    assert [d.id for d in ds.documents] == ["mini-v1/Nile/0", "mini-v1/Nile/1", "mini-v1/Nile~2/0",
                                            "mini-v1/Moon/0"]
    items = {i.id: i for i in ds.items}
    assert items["a"].answers == ("long",)  # duplicates collapsed
    assert items["b"].gold_document_ids == ("mini-v1/Nile/1",)
    # The same paragraph text under two ids: retrieving either one is a hit.
    assert items["a"].gold_document_ids == items["c"].gold_document_ids == ("mini-v1/Nile/0",
                                                                              "mini-v1/Nile~2/0")
    assert items["d"].abstain and items["d"].answers == ()
    assert ds.documents[0].text == "The Nile is long." and ds.documents[0].title == "Nile"


def test_prefix_and_name_can_be_chosen_and_gzip_is_read(tmp_path: Path) -> None:
    data = _squad([{"title": "T", "paragraphs": [{"context": "x y", "qas": [_qa("a", "q?", "x")]}]}])
    path = tmp_path / "data.json.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        json.dump(data, fh)
    ds = load_dataset(path, doc_prefix="mine", name="my run")
    assert ds.name == "my run" and ds.documents[0].id == "mine/T/0"
    assert default_prefix(Path("xquad.ar.json")) == "xquad-ar"


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "invalid JSON"),
    ('{"rows": []}', "not a SQuAD-style file"),
    ('{"data": [{"title": "T"}]}', "no 'paragraphs' list"),
    ('{"data": [{"paragraphs": [{"qas": []}]}]}', "'context' must be a str"),
    ('{"data": [{"paragraphs": [{"context": "c", "qas": [{"id": "1", "question": "q?", "answers": []}]}]}]}',
     "no answer text"),
    ('{"data": []}', "holds no questions"),
])
def test_bad_squad_files_are_reported_with_their_location(tmp_path: Path, content: str,
                                                          message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(BadInputError, match=message) as info:
        load_dataset(path)
    assert str(path) in info.value.detail


def test_missing_or_unknown_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="no such file"):
        load_dataset(tmp_path / "absent.json")
    with pytest.raises(BadInputError, match="unknown dataset format"):
        load_dataset(tmp_path / "questions.csv")


def test_pairing_takes_questions_by_id_and_keeps_paragraphs_and_answers(tmp_path: Path) -> None:
    ar = _write(tmp_path / "xq.ar.json", _squad([{"title": "T", "paragraphs": [
        {"context": "فاز الفريق ب308 نقاط.",
         "qas": [_qa("q1", "كم نقطة؟", "308"), _qa("q2", "من فاز؟", "الفريق")]}]}]))
    en = _write(tmp_path / "xq.en.json", _squad([{"title": "T", "paragraphs": [
        {"context": "The team won with 308 points.", "qas": [_qa("q1", "How many points?", "308")]}]}]))
    ds = load_dataset(ar, questions_from=en)
    assert ds.name == "xq-en→xq-ar"
    assert [(i.id, i.question, i.answers) for i in ds.items] == [("q1", "How many points?", ("308",))]
    assert ds.items[0].gold_document_ids == ("xq-ar/T/0",)
    assert ds.documents[0].text == "فاز الفريق ب308 نقاط."
    other = _write(tmp_path / "other.json", _squad([{"title": "T", "paragraphs": [
        {"context": "c", "qas": [_qa("zz", "q?", "c")]}]}]))
    with pytest.raises(BadInputError, match="same question ids"):
        load_dataset(ar, questions_from=other)


def test_jsonl_written_by_hand(tmp_path: Path) -> None:
    path = tmp_path / "newsroom.jsonl"
    path.write_text("\n".join([
        json.dumps({"question": "كم عدد الجنود الأمريكيين في العراق؟", "answers": ["2500"],
                    "evidence": "2500 عسكري"}, ensure_ascii=False),
        "",
        json.dumps({"id": "mars", "question": "Who lives on Mars?", "abstain": True}),
        json.dumps({"question": "Where is the seed article from?", "answers": "Arabi Post",
                    "document_ids": ["seed"]}),
    ]), encoding="utf-8")
    ds = load_dataset(path)
    assert ds.name == "newsroom" and ds.documents == ()
    first, mars, seed = ds.items
    assert first.id == "line-1" and first.evidence == "2500 عسكري" and first.answers == ("2500",)
    assert mars.id == "mars" and mars.abstain and mars.answers == ()
    assert seed.answers == ("Arabi Post",) and seed.gold_document_ids == ("seed",)


@pytest.mark.parametrize(("line", "message"), [
    ('{"question": "q?", "answer": ["x"]}', "unknown field\\(s\\) answer; allowed"),
    ('{"answers": ["x"]}', "'question' is required"),
    ('{"question": "q?"}', "give 'answers', 'evidence', or \"abstain\": true"),
    ('{"question": "q?", "answers": ["x"], "abstain": true}', "cannot also have answers"),
    ('{"question": "q?", "abstain": "yes"}', "'abstain' must be true or false"),
    ('{"question": "q?", "answers": [1]}', "'answers' must be a list of strings"),
    ('["q?", "x"]', "must be a JSON object"),
    ('{"question": "q?", "answers": ["x"]', "invalid JSON"),
])
def test_bad_jsonl_lines_name_the_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"question": "fine?", "answers": ["yes"]}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(BadInputError, match=message) as info:
        load_dataset(path)
    assert f"{path}:2" in info.value.detail


def test_jsonl_cannot_be_paired(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"question": "q?", "answers": ["a"]}\n', encoding="utf-8")
    with pytest.raises(BadInputError, match="SQuAD-style"):
        load_dataset(path, questions_from=tmp_path / "x.json")


def test_subset_is_the_first_n_or_a_seeded_draw(tmp_path: Path) -> None:
    qas = [_qa(str(i), f"question {i}?", "a") for i in range(30)]
    ds = load_dataset(_write(tmp_path / "d.json", _squad([{"title": "T", "paragraphs": [
        {"context": "a b", "qas": qas}]}])))
    assert [i.id for i in subset(ds, 3, None).items] == ["0", "1", "2"]
    drawn = [i.id for i in subset(ds, 5, 7).items]
    assert drawn == [i.id for i in subset(ds, 5, 7).items]  # reproducible
    assert drawn != [i.id for i in subset(ds, 5, 8).items]
    assert subset(ds, 5, 7).documents == ds.documents  # every paragraph stays ingestible
    with pytest.raises(BadInputError, match="at least 1"):
        subset(ds, 0, None)


def test_distractors_are_loaded_up_to_the_limit_with_bad_records_reported(tmp_path: Path) -> None:
    path = tmp_path / "news.jsonl"
    path.write_text('{"id": "a", "text": "one"}\n{"id": "b"}\n{"id": "c", "text": "three"}\n'
                    '{"id": "d", "text": "four"}\n', encoding="utf-8")
    docs, skipped = load_distractors(path, limit=2)
    assert [d.id for d in docs] == ["a", "c"]
    assert len(skipped) == 1 and ":2" in skipped[0] and "text" in skipped[0]


# -- the real datasets ------------------------------------------------------------------------


def _sample_texts() -> dict[str, str]:
    lines = (SAMPLE_DIR / "xquad-ar-paragraphs.jsonl").read_text(encoding="utf-8").splitlines()
    return {r["id"]: r["text"] for r in map(json.loads, lines)}


def test_xquad_arabic_paragraph_ids_are_the_bundled_sample_ids() -> None:
    ds = load_dataset(shared_data("xquad/xquad.ar.json"))
    assert len(ds.items) == 1190 and len(ds.documents) == 240
    sample = _sample_texts()
    assert {d.id: d.text for d in ds.documents} == sample  # no re-ingest needed to grade retrieval
    assert all(len(i.gold_document_ids) == 1 and i.gold_document_ids[0] in sample for i in ds.items)


def test_xquad_english_questions_over_arabic_paragraphs() -> None:
    ds = load_dataset(shared_data("xquad/xquad.ar.json"),
                      questions_from=shared_data("xquad/xquad.en.json"))
    assert ds.name == "xquad-en→xquad-ar" and len(ds.items) == 1190
    first = ds.items[0]
    assert first.question == "How many points did the Panthers defense surrender?"
    assert first.answers == ("308",) and first.gold_document_ids == ("xquad-ar/Super_Bowl_50/0",)


def test_arcd_loads_with_unique_paragraph_ids() -> None:
    ds = load_dataset(shared_data("arcd/arcd.json"))
    assert len(ds.items) == 1395
    ids = [d.id for d in ds.documents]
    assert len(ids) == len(set(ids)) == 465
    assert any("~2/" in i for i in ids)  # ARCD repeats article titles
