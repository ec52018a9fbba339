"""Conversations: follow-up questions graded with their history and asked alone.

A conversation file is JSONL, one conversation a line (``tests/data/conversations/README.md``):

    {"id": "troops-talks-en", "lang": "en", "collection": "news", "note": "…",
     "turns": [{"question": "How many US troops are in Iraq?", "answers": ["2500"], "evidence": "…",
                "document_ids": ["…"], "type": "first"},
               {"question": "And since when have they been negotiating over it?", …, "type": "followup"},
               {"question": "Who became the first woman to head the CIA?", …, "type": "standalone"}]}

Each turn is a hand-written question line (``datasets.jsonl_item``) plus its ``type``: ``first``
(opens the conversation), ``followup`` (cannot be answered without the turns before it) or
``standalone`` (a new topic or a complete question: the conversation must not pull it back).
``source`` (where the gold came from) is an annotation. Turns are asked in order, each with the
history of the turns before it as the widget sends it (the user's questions, the service's own
answers and the documents they cited); every turn after the first is also asked alone, so the
report puts "with history" beside "asked alone" for the same questions.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, cast

import msgspec
import numpy as np

from qa_service.errors import BadInputError, LLMError
from qa_service.models import Answer, AskRequest, Mode, Turn

from .datasets import EvalItem, jsonl_item
from .metrics import QuestionRecord, grade, new_record, summarize
from .options import EvalOptions, Threshold

if TYPE_CHECKING:
    from qa_service.service import QAService

TurnType = Literal["first", "followup", "standalone"]
TURN_TYPES: Final[tuple[TurnType, ...]] = ("first", "followup", "standalone")
CONVERSATION_FIELDS: Final = frozenset({"id", "turns"})
CONVERSATION_ANNOTATIONS: Final = frozenset({"lang", "collection", "note"})
TURN_FIELDS: Final = frozenset({"type", "complete"})
Condition = Literal["history", "alone", "complete"]
CONDITIONS: Final[tuple[Condition, ...]] = ("history", "alone", "complete")
TURN_ANNOTATIONS: Final = frozenset({"source"})
SUMMARY_KEYS: Final = ("cited_accuracy", "citation_support", "em", "f1", "abstain_rate")
REPORT_FILE: Final = "report.md"
RESULTS_FILE: Final = "results.json"
RECORDS_FILE: Final = "records.jsonl"
HEADLINE: Final = "cited_accuracy"


@dataclass(frozen=True)
class ConversationTurn:
    item: EvalItem
    type: TurnType
    # The follow-up with its subject spelled out ("complete"), asked alone as a reference: what the
    # composer does when nothing needs resolving.
    complete: EvalItem | None = None


@dataclass(frozen=True)
class Conversation:
    id: str
    turns: tuple[ConversationTurn, ...]
    lang: str | None = None
    collection: str | None = None


@dataclass
class TurnRecord:
    """One turn of one conversation, graded, asked with its history or alone."""

    conversation: str
    turn: int  # 0-based
    type: TurnType
    condition: Condition  # asked with its history, alone, or in its complete form (alone)
    record: QuestionRecord
    resolved: bool | None = None  # the service read it as a follow-up (FollowUp.resolved)
    resolution: dict[str, Any] | None = None
    followup_ms: float | None = None
    # Reading the history, embedding and retrieval (the part of the answer time that history
    # changes; the composer then reads the same number of passages).
    search_ms: float | None = None
    cited_documents: list[str] = field(default_factory=list)


# -- the file ---------------------------------------------------------------------------------


def is_conversation_file(path: Path) -> bool:
    """Whether ``path`` is conversation JSONL (its first object has ``turns``)."""
    if not path.name.lower().endswith((".jsonl", ".ndjson")):
        return False
    try:
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    first = json.loads(line)
                    return isinstance(first, dict) and "turns" in first
    except (OSError, ValueError):
        return False
    return False


def load_conversations(path: Path) -> list[Conversation]:
    """Every conversation of ``path``, validated (a clear error names the line and field)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise BadInputError(f"{path}: cannot read: {exc}") from None
    out: list[Conversation] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BadInputError(f"{where}: invalid JSON: {exc.msg}") from None
        conversation = _conversation(raw, where)
        if conversation.id in seen:
            raise BadInputError(f"{where}: conversation id {conversation.id!r} occurs twice")
        seen.add(conversation.id)
        out.append(conversation)
    if not out:
        raise BadInputError(f"{path}: the file holds no conversations")
    return out


def _conversation(raw: Any, where: str) -> Conversation:
    if not isinstance(raw, dict):
        raise BadInputError(f"{where}: each line must be a JSON object with 'id' and 'turns'")
    unknown = sorted(set(raw) - CONVERSATION_FIELDS - CONVERSATION_ANNOTATIONS)
    if unknown:
        raise BadInputError(f"{where}: unknown field(s) {', '.join(unknown)}; allowed: id, turns "
                            "(and the annotations lang, collection, note)")
    cid = raw.get("id")
    turns = raw.get("turns")
    if not isinstance(cid, str) or not cid.strip():
        raise BadInputError(f"{where}: 'id' must be a non-empty string")
    if not isinstance(turns, list) or len(turns) < 2:
        raise BadInputError(f"{where}: 'turns' must be a list of at least two questions")
    parsed = []
    for i, turn in enumerate(turns):
        at = f"{where} turn {i + 1}"
        if not isinstance(turn, dict):
            raise BadInputError(f"{at}: a turn must be a JSON object")
        kind = turn.get("type", "first" if i == 0 else None)
        if kind not in TURN_TYPES or (i == 0) != (kind == "first"):
            raise BadInputError(f"{at}: 'type' must be \"first\" for the first turn and \"followup\" or "
                                "\"standalone\" after it")
        line = {k: v for k, v in turn.items() if k not in TURN_FIELDS | TURN_ANNOTATIONS}
        item = jsonl_item({"id": f"{cid}#{i + 1}", **line}, at, default_id=f"{cid}#{i + 1}")
        complete = turn.get("complete")
        if complete is not None and (not isinstance(complete, str) or not complete.strip()):
            raise BadInputError(f"{at}: 'complete' must be a non-empty string (the question spelled out)")
        parsed.append(ConversationTurn(item, cast(TurnType, kind),
                                       replace(item, question=complete.strip()) if complete else None))
    lang, collection = raw.get("lang"), raw.get("collection")
    return Conversation(cid, tuple(parsed), lang if isinstance(lang, str) else None,
                        collection if isinstance(collection, str) else None)


# -- asking -----------------------------------------------------------------------------------


def history_after(history: list[Turn], question: str, answer: Answer | None) -> list[Turn]:
    """The history a client sends next: the question, the answer and the documents it cited."""
    if answer is None:
        return [*history, Turn(role="user", content=question)]
    cited = list(dict.fromkeys(c.document_id for c in answer.citations))
    return [*history, Turn(role="user", content=question),
            Turn(role="assistant", content=answer.answer, document_ids=cited)]


def _turn_record(conversation: Conversation, i: int, condition: Condition, record: QuestionRecord,
                 answer: Answer | None) -> TurnRecord:
    resolution = None
    if answer is not None and answer.followup is not None:
        resolution = msgspec.structs.asdict(answer.followup)
    return TurnRecord(
        conversation.id, i, conversation.turns[i].type, condition, record,
        resolved=None if resolution is None else bool(resolution["resolved"]), resolution=resolution,
        followup_ms=answer.timings_ms.followup if answer is not None else None,
        search_ms=(round(answer.timings_ms.followup + answer.timings_ms.embed + answer.timings_ms.retrieve, 3)
                   if answer is not None else None),
        cited_documents=[c.document_id for c in answer.citations] if answer is not None else [])


def _ask_in_process(service: QAService, item: EvalItem, history: list[Turn], options: EvalOptions
                    ) -> tuple[QuestionRecord, Answer | None]:
    request = AskRequest(question=item.question, top_k=options.top_k, mode=cast(Mode, options.mode),
                         history=history)
    started = time.perf_counter()
    try:
        answer = service.ask(request)
    except (BadInputError, LLMError) as exc:
        record = new_record(item)
        record.error = exc.detail
        return record, None
    latency_ms = 1000 * (time.perf_counter() - started)
    texts = {}
    for doc_id in {c.document_id for c in answer.citations}:
        doc = service.store.get_document(doc_id)
        if doc is not None:
            texts[doc_id] = doc.text
    return grade(item, answer, latency_ms, texts), answer


def run_in_process(service: QAService, conversations: Sequence[Conversation], options: EvalOptions
                   ) -> list[TurnRecord]:
    """Every conversation in order: each turn with its history, and each later turn alone too."""
    records: list[TurnRecord] = []
    for conversation in conversations:
        history: list[Turn] = []
        for i, turn in enumerate(conversation.turns):
            record, answer = _ask_in_process(service, turn.item, history, options)
            records.append(_turn_record(conversation, i, "history", record, answer))
            if i > 0:
                alone, alone_answer = _ask_in_process(service, turn.item, [], options)
                records.append(_turn_record(conversation, i, "alone", alone, alone_answer))
            if i > 0 and turn.complete is not None:
                full, full_answer = _ask_in_process(service, turn.complete, [], options)
                records.append(_turn_record(conversation, i, "complete", full, full_answer))
            history = history_after(history, turn.item.question, answer)
    return records


AskOne = Callable[[EvalItem, list[Turn]], Awaitable[tuple[QuestionRecord, Answer | None]]]


async def run_async(conversations: Sequence[Conversation], ask: AskOne) -> list[TurnRecord]:
    """The same through ``ask`` (over HTTP): conversations concurrently, each one's turns in order."""

    async def one(conversation: Conversation) -> list[TurnRecord]:
        out: list[TurnRecord] = []
        history: list[Turn] = []
        for i, turn in enumerate(conversation.turns):
            record, answer = await ask(turn.item, history)
            out.append(_turn_record(conversation, i, "history", record, answer))
            if i > 0:
                alone, alone_answer = await ask(turn.item, [])
                out.append(_turn_record(conversation, i, "alone", alone, alone_answer))
            if i > 0 and turn.complete is not None:
                full, full_answer = await ask(turn.complete, [])
                out.append(_turn_record(conversation, i, "complete", full, full_answer))
            history = history_after(history, turn.item.question, answer)
        return out

    done = await asyncio.gather(*(one(c) for c in conversations))
    return [r for rs in done for r in rs]


# -- summary ----------------------------------------------------------------------------------


def _rate(values: Iterable[bool]) -> float | None:
    values = list(values)
    return round(sum(values) / len(values), 4) if values else None


def _group(records: Sequence[TurnRecord]) -> dict[str, Any]:
    summary = summarize([r.record for r in records], [1, 5])
    out: dict[str, Any] = {"turns": len(records), "errors": summary["errors"]}
    out.update({key: summary[key] for key in SUMMARY_KEYS})
    out["resolved"] = _rate(bool(r.resolved) for r in records
                            if r.condition == "history" and r.resolved is not None)
    latencies = [r.record.server_ms for r in records if r.record.server_ms is not None]
    out["server_p50_ms"] = round(float(np.percentile(latencies, 50)), 2) if latencies else None
    followup = [r.followup_ms for r in records if r.followup_ms is not None and r.condition == "history"]
    out["followup_p50_ms"] = round(float(np.percentile(followup, 50)), 3) if followup else None
    search = [r.search_ms for r in records if r.search_ms is not None]
    out["search_p50_ms"] = round(float(np.percentile(search, 50)), 2) if search else None
    return out


def summarize_turns(records: Sequence[TurnRecord]) -> dict[str, Any]:
    """Per turn type, with history and alone; the follow-ups also by language."""
    table: dict[str, Any] = {}
    for kind in TURN_TYPES:
        for condition in CONDITIONS:
            group = [r for r in records if r.type == kind and r.condition == condition]
            if group:
                table[f"{kind}/{condition}"] = _group(group)
    for lang in ("en", "ar"):
        for condition in CONDITIONS:
            group = [r for r in records if r.type == "followup" and r.condition == condition
                     and r.record.language == lang]
            if group:
                table[f"followup-{lang}/{condition}"] = _group(group)
    return table


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}" if value <= 1.0 else f"{value:.1f}"
    return str(value)


def table_lines(summary: dict[str, Any]) -> list[str]:
    header = ["turns", "n", "correct cited answer", "citation support", "short EM", "short F1",
              "abstained", "read as follow-up", "server p50 ms", "history + embed + retrieve p50 ms",
              "history handling p50 ms"]
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key, g in summary.items():
        rows.append("| " + " | ".join([
            key.replace("/", " · "), str(g["turns"]), _fmt(g["cited_accuracy"]), _fmt(g["citation_support"]),
            _fmt(g["em"]), _fmt(g["f1"]), _fmt(g["abstain_rate"]), _fmt(g["resolved"]),
            _fmt(g["server_p50_ms"]), _fmt(g["search_p50_ms"]), _fmt(g["followup_p50_ms"])]) + " |")
    return rows


def _misses(records: Sequence[TurnRecord]) -> list[str]:
    lines = []
    for r in records:
        if r.type != "followup" or r.condition != "history" or r.record.cited_correct:
            continue
        how = r.resolution or {}
        lines.append(f"- `{r.conversation}` turn {r.turn + 1}: {r.record.question} — "
                     f"read as: {how.get('question', '?')!s} ({how.get('reason', '–')}); "
                     f"answer: {(r.record.answer or '').splitlines()[0][:120] if r.record.answer else '–'}")
    return lines


def render_markdown(meta: dict[str, Any], summary: dict[str, Any], records: Sequence[TurnRecord]) -> str:
    lines = [f"# Conversations: {meta['name']}", "",
             f"{meta['conversations']} conversations, {meta['turns']} turns; every turn after the first is "
             "asked with its history (the user's questions, the service's own answers and the documents "
             "they cited) and alone; a follow-up is also asked in its complete form (its subject spelled "
             "out), the reference for what resolving it could reach. A correct cited answer is an answer "
             "whose first citation holds the gold evidence.", "", *table_lines(summary), "",
             f"Index: {meta.get('index_dir') or meta.get('url')}; model {meta.get('model')}; "
             f"{meta.get('documents_in_index')} documents; top_k {meta['top_k']}; {meta['seconds']} s.",
             "", "## Follow-ups answered wrongly with their history", "", *(_misses(records) or ["none"])]
    return "\n".join(lines) + "\n"


# -- the run ----------------------------------------------------------------------------------


def write_conversation_results(out: Path, meta: dict[str, Any], records: Sequence[TurnRecord],
                               thresholds: Sequence[Threshold]) -> dict[str, Any]:
    """results.json, records.jsonl and report.md; the result with each threshold's verdict
    (thresholds apply to the follow-ups asked with their history)."""
    summary = summarize_turns(records)
    result: dict[str, Any] = {"meta": meta, "summary": summary, "thresholds": []}
    followups = summary.get("followup/history", {})
    for t in thresholds:
        value = followups.get(t.metric)
        passed = value is not None and (value >= t.limit if t.kind == "min" else value <= t.limit)
        result["thresholds"].append({"metric": t.metric, "kind": t.kind, "limit": t.limit, "value": value,
                                     "passed": passed})
    out.mkdir(parents=True, exist_ok=True)
    (out / RESULTS_FILE).write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    with (out / RECORDS_FILE).open("w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(asdict(r), ensure_ascii=False) + "\n")
    (out / REPORT_FILE).write_text(render_markdown(meta, summary, records), encoding="utf-8")
    return result


def print_conversation_summary(result: dict[str, Any], out: Path) -> None:
    print("\n".join(table_lines(result["summary"])))
    for t in result["thresholds"]:
        print(f"threshold {t['metric']} (follow-ups with history) {t['kind']} {t['limit']}: "
              f"{_fmt(t['value'])} {'pass' if t['passed'] else 'FAIL'}")
    print(f"\nreport: {out / REPORT_FILE}", file=sys.stdout)
