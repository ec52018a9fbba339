"""Evaluation datasets: SQuAD-style JSON, cross-lingual question pairing, newsroom JSONL.

Every format becomes a ``Dataset``: the questions (``EvalItem``) and, for SQuAD-style
files, the paragraphs as ``Document`` values with stable ids, so a question's gold
paragraph is a document id the service returns in ``passages``.

Paragraph ids are ``<prefix>/<title>/<i>``: ``prefix`` defaults to the file name without
``.json`` and with dots as dashes (``xquad.ar.json`` → ``xquad-ar``), ``title`` is the
article title as written in the file and ``i`` the paragraph's index in its article. A
title that occurs again in the same file gets ``~2``, ``~3``… (ARCD repeats titles).
These are the ids of the bundled sample (``xquad-ar/Super_Bowl_50/0``), so XQuAD can be
graded against it without re-ingesting. A question's gold documents are every paragraph
whose text equals its context (a few datasets repeat a paragraph).

Formats:

* SQuAD v1.1/v2.0-style JSON (optionally ``.json.gz``): XQuAD, ARCD, MLQA, TyDi QA gold
  passage. ``is_impossible`` questions (SQuAD 2.0) are expected abstentions.
* Pairing (``questions_from``): the questions of a second SQuAD file with the same
  question ids (the English XQuAD) over the paragraphs and gold answers of the first (the
  Arabic XQuAD): the English→Arabic cross-lingual test.
* JSONL written by hand, one object a line:
  ``{"question", "answers": [...], "evidence"?: "substring a citation must contain",
  "abstain"?: true, "id"?, "document_ids"?: [...]}``. Annotations for people and other
  tools (``lang``, ``kind``, ``note``, ``earlier``: the older figures of an answer that
  changed over time) are accepted and not read; any other field is an error (a typo such as
  ``answer`` must not silently drop the gold answers).
"""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

from qa_service.errors import BadInputError
from qa_service.ingest.documents import document_from_mapping
from qa_service.ingest.loaders import load_paths, parse_json_lines
from qa_service.models import Document

SQUAD_SUFFIXES: Final = (".json", ".json.gz")
JSONL_SUFFIXES: Final = (".jsonl", ".jsonl.gz", ".ndjson")
JSONL_FIELDS: Final = frozenset({"id", "question", "answers", "evidence", "abstain", "document_ids"})
# Accepted on a JSONL line and ignored by the evaluation (see tests/data/news-qa/README.md).
JSONL_ANNOTATIONS: Final = frozenset({"lang", "kind", "note", "earlier"})
REPEATED_TITLE_MARK: Final = "~"
SQUAD_SHAPE: Final = ('{"data": [{"title", "paragraphs": '
                      '[{"context", "qas": [{"id", "question", "answers"}]}]}]}')


@dataclass(frozen=True)
class EvalItem:
    """One question with what a correct answer looks like."""

    id: str
    question: str
    answers: tuple[str, ...] = ()
    gold_document_ids: tuple[str, ...] = ()
    evidence: str | None = None
    abstain: bool = False


@dataclass(frozen=True)
class Dataset:
    """Questions plus the paragraphs they are about (empty for JSONL datasets)."""

    name: str
    items: tuple[EvalItem, ...]
    documents: tuple[Document, ...] = ()


def load_dataset(path: Path, *, questions_from: Path | None = None, doc_prefix: str | None = None,
                 name: str | None = None) -> Dataset:
    """Read a dataset file; ``questions_from`` swaps in another file's questions by id."""
    kind = _kind(path)
    if kind == "jsonl":
        if questions_from is not None:
            raise BadInputError("question pairing (--questions-from) needs SQuAD-style JSON files, "
                                f"but {path} is JSONL")
        return Dataset(name or _stem(path), tuple(_read_jsonl(path)))
    prefix = doc_prefix or default_prefix(path)
    dataset = _read_squad(path, prefix)
    if questions_from is None:
        return replace(dataset, name=name or prefix) if name else dataset
    if _kind(questions_from) != "squad":
        raise BadInputError(f"--questions-from needs a SQuAD-style JSON file, got {questions_from}")
    paired = pair_questions(dataset, _questions_by_id(questions_from), source=questions_from)
    return replace(paired, name=name or f"{default_prefix(questions_from)}→{prefix}")


def default_prefix(path: Path) -> str:
    """Document id prefix for a SQuAD file: ``xquad.ar.json`` → ``xquad-ar``."""
    return _stem(path).replace(".", "-")


def pair_questions(dataset: Dataset, questions: Mapping[str, str], *, source: Path) -> Dataset:
    """Replace each item's question with ``questions[item.id]``; items without one are dropped."""
    items = tuple(replace(i, question=questions[i.id]) for i in dataset.items if i.id in questions)
    if not items:
        raise BadInputError(f"no question id of {source} occurs in dataset {dataset.name}; "
                            "pairing needs the same question ids in both files (as in XQuAD)")
    return replace(dataset, items=items)


def subset(dataset: Dataset, limit: int | None, seed: int | None) -> Dataset:
    """The first ``limit`` questions, or ``limit`` drawn at random with ``seed`` (paragraphs kept)."""
    items = list(dataset.items)
    if seed is not None:
        random.Random(seed).shuffle(items)
    if limit is not None:
        if limit < 1:
            raise BadInputError(f"--limit must be at least 1, got {limit}")
        items = items[:limit]
    return replace(dataset, items=tuple(items))


def load_distractors(path: Path, limit: int | None) -> tuple[list[Document], list[str]]:
    """Up to ``limit`` documents from any ingestible file or folder, and the records skipped."""
    documents: list[Document] = []
    skipped: list[str] = []
    for loaded in load_paths([path]):
        if loaded.document is None:
            skipped.append(f"{loaded.where}: {loaded.error}")
            continue
        documents.append(loaded.document)
        if limit is not None and len(documents) >= limit:
            break
    return documents, skipped


# -- SQuAD-style JSON -------------------------------------------------------------------------


def _kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(SQUAD_SUFFIXES):
        return "squad"
    if name.endswith(JSONL_SUFFIXES):
        return "jsonl"
    raise BadInputError(f"{path}: unknown dataset format; use SQuAD-style {' or '.join(SQUAD_SUFFIXES)} "
                        f"or question lines {' or '.join(JSONL_SUFFIXES)}")


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (*SQUAD_SUFFIXES, *JSONL_SUFFIXES):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _open_text(path: Path) -> Iterator[str]:
    """Lines of a plain or gzip file, with a clear error when it cannot be read."""
    try:
        opener = gzip.open if path.name.lower().endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as fh:
            yield from fh
    except FileNotFoundError:
        raise BadInputError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise BadInputError(f"{path}: cannot read: {exc}") from None


def _load_json(path: Path) -> Any:
    text = "".join(_open_text(path))
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInputError(f"{path}: invalid JSON: {exc.msg} at line {exc.lineno}") from None


def _squad_articles(path: Path) -> list[dict[str, Any]]:
    data = _load_json(path)
    articles = data.get("data") if isinstance(data, dict) else None
    if not isinstance(articles, list):
        raise BadInputError(f"{path}: not a SQuAD-style file; expected {SQUAD_SHAPE}")
    for a, article in enumerate(articles):
        if not isinstance(article, dict) or not isinstance(article.get("paragraphs"), list):
            raise BadInputError(f"{path}: data[{a}] has no 'paragraphs' list; expected {SQUAD_SHAPE}")
    return articles


def _field(value: Any, kind: type, where: str, name: str) -> Any:
    if not isinstance(value, kind):
        raise BadInputError(f"{where}: '{name}' must be a {kind.__name__}")
    return value


def _read_squad(path: Path, prefix: str) -> Dataset:
    articles = _squad_articles(path)
    documents: list[Document] = []
    contexts: list[tuple[str, list[dict[str, Any]], str]] = []  # (context, qas, where)
    titles_seen: dict[str, int] = {}
    for a, article in enumerate(articles):
        title = str(article.get("title") or f"article-{a}")
        titles_seen[title] = titles_seen.get(title, 0) + 1
        key = title if titles_seen[title] == 1 else f"{title}{REPEATED_TITLE_MARK}{titles_seen[title]}"
        for i, paragraph in enumerate(article["paragraphs"]):
            where = f"{path}: data[{a}].paragraphs[{i}]"
            context = _field(paragraph.get("context") if isinstance(paragraph, dict) else None,
                             str, where, "context")
            qas = _field(paragraph.get("qas", []), list, where, "qas")
            doc_id = f"{prefix}/{key}/{i}"
            documents.append(_paragraph_document(doc_id, title, context, prefix, where))
            contexts.append((context, qas, where))
    ids_by_text: dict[str, list[str]] = {}
    for doc in documents:
        ids_by_text.setdefault(doc.text, []).append(doc.id)
    items = _unique_items(
        ((_squad_item(qa, tuple(ids_by_text[context]), f"{where}.qas[{q}]"), f"{where}.qas[{q}]")
         for context, qas, where in contexts for q, qa in enumerate(qas)), path)
    return Dataset(prefix, tuple(items), tuple(documents))


def _paragraph_document(doc_id: str, title: str, context: str, prefix: str, where: str) -> Document:
    try:
        return document_from_mapping(
            # The id in the metadata keeps repeated paragraphs (same text) distinct documents.
            {"id": doc_id, "title": title.replace("_", " "), "text": context, "source": prefix,
             "metadata": {"dataset": prefix, "paragraph": doc_id}},
            extra_to_metadata=False)
    except BadInputError as exc:
        raise BadInputError(f"{where}: {exc.detail}") from None


def _squad_item(qa: Any, gold: tuple[str, ...], where: str) -> EvalItem:
    if not isinstance(qa, dict):
        raise BadInputError(f"{where}: a question must be an object with 'id', 'question', 'answers'")
    question = _field(qa.get("question"), str, where, "question").strip()
    if not question:
        raise BadInputError(f"{where}: 'question' is empty")
    answers = _field(qa.get("answers", []), list, where, "answers")
    texts = tuple(dict.fromkeys(
        str(a["text"]).strip() for a in answers
        if isinstance(a, dict) and isinstance(a.get("text"), str) and a["text"].strip()))
    impossible = bool(qa.get("is_impossible", False))
    if not texts and not impossible:
        raise BadInputError(f"{where}: question has no answer text and is not marked is_impossible")
    return EvalItem(id=str(qa.get("id") or where), question=question, answers=texts,
                    gold_document_ids=gold, abstain=impossible)


def _questions_by_id(path: Path) -> dict[str, str]:
    questions: dict[str, str] = {}
    for article in _squad_articles(path):
        for paragraph in article["paragraphs"]:
            for qa in paragraph.get("qas", []) if isinstance(paragraph, dict) else []:
                if isinstance(qa, dict) and isinstance(qa.get("question"), str) and qa.get("id"):
                    questions[str(qa["id"])] = qa["question"].strip()
    return questions


# -- JSONL written by hand --------------------------------------------------------------------


def _read_jsonl(path: Path) -> Iterable[EvalItem]:
    items = []
    for where, raw, error in parse_json_lines(_open_text(path), str(path)):
        if error is not None:
            raise BadInputError(f"{where}: {error}")
        items.append((jsonl_item(raw, where, default_id=f"line-{where.rsplit(':', 1)[1]}"), where))
    return _unique_items(items, path)


def _unique_items(items: Iterable[tuple[EvalItem, str]], path: Path) -> list[EvalItem]:
    """The items in order; a repeated id or an empty file is a clear error."""
    out: list[EvalItem] = []
    seen: set[str] = set()
    for item, where in items:
        if item.id in seen:
            raise BadInputError(f"{where}: id {item.id!r} occurs twice")
        seen.add(item.id)
        out.append(item)
    if not out:
        raise BadInputError(f"{path}: the file holds no questions")
    return out


def _strings(raw: Mapping[str, Any], name: str, where: str) -> tuple[str, ...]:
    value = raw.get(name, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadInputError(f"{where}: '{name}' must be a list of strings")
    return tuple(v.strip() for v in value if v.strip())


def jsonl_item(raw: Any, where: str, default_id: str) -> EvalItem:
    """Validate one hand-written question line."""
    if not isinstance(raw, dict):
        raise BadInputError(f"{where}: each line must be a JSON object with 'question' and 'answers'")
    unknown = sorted(set(raw) - JSONL_FIELDS - JSONL_ANNOTATIONS)
    if unknown:
        raise BadInputError(f"{where}: unknown field(s) {', '.join(unknown)}; "
                            f"allowed: {', '.join(sorted(JSONL_FIELDS))} "
                            f"(and the annotations {', '.join(sorted(JSONL_ANNOTATIONS))}, not read)")
    question = raw.get("question")
    if not isinstance(question, str) or not question.strip():
        raise BadInputError(f"{where}: 'question' is required and must be a non-empty string")
    evidence = raw.get("evidence")
    if evidence is not None and (not isinstance(evidence, str) or not evidence.strip()):
        raise BadInputError(f"{where}: 'evidence' must be a non-empty string")
    abstain = raw.get("abstain", False)
    if not isinstance(abstain, bool):
        raise BadInputError(f"{where}: 'abstain' must be true or false")
    answers = _strings(raw, "answers", where)
    if not (answers or evidence or abstain):
        raise BadInputError(f"{where}: give 'answers', 'evidence', or \"abstain\": true")
    if abstain and (answers or evidence):
        raise BadInputError(f"{where}: an item with \"abstain\": true cannot also have answers or evidence")
    raw_id = raw.get("id", default_id)
    if not isinstance(raw_id, str | int) or not str(raw_id).strip():
        raise BadInputError(f"{where}: 'id' must be a non-empty string")
    return EvalItem(id=str(raw_id).strip(), question=question.strip(), answers=answers,
                    gold_document_ids=_strings(raw, "document_ids", where),
                    evidence=evidence.strip() if evidence else None, abstain=abstain)
