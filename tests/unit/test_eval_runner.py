"""``qa-service eval`` end to end with the fake encoder: in-process, over real HTTP, and the CLI."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import uvicorn

from qa_service.api.app import create_app
from qa_service.cli import main
from qa_service.errors import BadInputError, NotReadyError
from qa_service.eval import runner
from qa_service.eval.options import EvalOptions, Threshold
from qa_service.eval.runner import EXIT_PARTIAL, EXIT_THRESHOLD, evaluate
from qa_service.models import Answer, Citation, Passage, Timings
from qa_service.service import QAService
from qa_service.settings import Settings
from tests.fakes import FakeEncoder

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
OUTPUT_FILES = ("results.json", "records.jsonl", "report.md", "recall_at_k.png", "latency.png",
                "by_type.png")

PARAGRAPHS = {
    "Iraq": "أعلنت بغداد توصلها إلى اتفاق مع واشنطن لإنهاء مهمة التحالف الدولي. "
            "وتنشر الولايات المتحدة ٢٥٠٠ عسكري في العراق لتقديم المشورة والمساعدة.",
    "Panthers": "The Panthers defense gave up just 308 points, ranking sixth in the league. "
                "Their defense also led the league in interceptions.",
    "Moon": "يبعد القمر عن الأرض نحو 384400 كيلومتر في المتوسط. ويدور القمر حول الأرض كل شهر تقريباً.",
    "Nile": "The Nile flows north through Egypt into the Mediterranean Sea. "
            "The river is about 6650 kilometres long.",
}
QUESTIONS = [
    ("q-iraq", "Iraq", "كم عسكري تنشر الولايات المتحدة في العراق؟", "2500"),
    ("q-panthers", "Panthers", "How many points did the Panthers defense give up?", "308"),
    ("q-moon", "Moon", "كم كيلومتر يبعد القمر عن الأرض؟", "384400"),
    ("q-nile", "Nile", "How many kilometres long is the Nile river?", "6650"),
    ("q-nile-where", "Nile", "Where does the Nile flow into the Mediterranean Sea?", "Mediterranean Sea"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    by_title: dict[str, list[dict[str, Any]]] = {t: [] for t in PARAGRAPHS}
    for qid, title, question, answer in QUESTIONS:
        by_title[title].append({"id": qid, "question": question,
                                "answers": [{"text": answer, "answer_start": 0}]})
    data = {"data": [{"title": t, "paragraphs": [{"context": PARAGRAPHS[t], "qas": by_title[t]}]}
                     for t in PARAGRAPHS]}
    path = tmp_path / "mini.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def _fake(settings: Settings) -> QAService:
    return QAService(settings, FakeEncoder())


def _in_process(dataset: Path, settings: Settings, out: Path, **kwargs: Any) -> runner.EvalRun:
    options = EvalOptions(dataset=dataset, ingest=True, out=out, top_k=3, **kwargs)
    return evaluate(options, settings, service_factory=_fake)


def test_in_process_run_grades_and_writes_every_output(dataset: Path, settings: Settings,
                                                       tmp_path: Path) -> None:
    run = _in_process(dataset, settings, tmp_path / "run")
    overall = run.result["overall"]
    assert run.exit_code == 0
    assert overall["questions"] == 5 and overall["errors"] == 0
    assert overall["recall@3"] == 1.0  # four distinct topics: the fake encoder finds each one
    assert overall["citation_validity"] == 1.0 and overall["citations_unchecked"] == 0
    assert overall["citation_support"] is not None and overall["citation_support"] >= 0.8
    assert set(run.result["by_language"]) == {"ar", "en"}
    assert run.result["by_type"]["how many"]["questions"] == 4
    assert run.result["meta"]["ingested"] == {"paragraphs": 4, "distractors": 0}
    assert Path(run.result["meta"]["index_dir"]) == tmp_path / "run" / "index"
    for name in OUTPUT_FILES:
        assert (run.out / name).stat().st_size > 0, name
    for plot in OUTPUT_FILES[3:]:
        assert (run.out / plot).read_bytes().startswith(PNG_SIGNATURE)
    records = [json.loads(line) for line in (run.out / "records.jsonl").read_text().splitlines()]
    iraq = next(r for r in records if r["id"] == "q-iraq")
    assert iraq["gold_document_ids"] == ["mini/Iraq/0"] and iraq["gold_rank"] == 1
    assert iraq["short_answer"] in ("٢٥٠٠", "2500") and iraq["exact_match"] is True
    assert iraq["citations"][0]["valid"] is True
    report = (run.out / "report.md").read_text(encoding="utf-8")
    assert "## Headline" in report and "| recall@1 |" in report and "![recall@k](recall_at_k.png)" in report


def test_thresholds_fail_the_run_and_compare_shows_changes(dataset: Path, settings: Settings,
                                                            tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    first = _in_process(dataset, settings, tmp_path / "first")
    previous = json.loads((first.out / "results.json").read_text())
    previous["overall"]["recall@1"] = 0.25
    (tmp_path / "old.json").write_text(json.dumps(previous))
    second = evaluate(EvalOptions(
        dataset=dataset, ingest=True, out=tmp_path / "second", top_k=3, limit=4,
        index_dir=tmp_path / "fresh", compare=tmp_path / "old.json",
        thresholds=(Threshold("min", "recall@1", 0.5), Threshold("max", "latency_p95_ms", 0.001),
                    Threshold("min", "abstain_recall", 0.5))),
        settings.replace(index_dir=tmp_path / "ignored"), service_factory=_fake)
    assert second.exit_code == EXIT_THRESHOLD
    verdicts = {t["metric"]: t["passed"] for t in second.result["thresholds"]}
    # latency cannot be under 1 µs; no unanswerable items means abstain recall cannot be measured
    assert verdicts == {"recall@1": True, "latency_p95_ms": False, "abstain_recall": False}
    rows = {r["metric"]: r for r in second.result["comparison"]["rows"]}
    assert rows["recall@1"]["previous"] == 0.25
    assert rows["recall@1"]["delta"] == pytest.approx(second.result["overall"]["recall@1"] - 0.25)
    runner.print_summary(second)
    printed = capsys.readouterr().out
    assert "changes against" in printed and "FAIL" in printed and "report:" in printed
    assert "## Compared with" in (second.out / "report.md").read_text()
    assert (tmp_path / "fresh" / "store.sqlite3").exists()


def test_ingest_refuses_a_folder_that_is_not_empty(dataset: Path, settings: Settings,
                                                   tmp_path: Path) -> None:
    used = tmp_path / "used"
    used.mkdir()
    (used / "store.sqlite3").write_bytes(b"")
    with pytest.raises(BadInputError, match="not empty"):
        evaluate(EvalOptions(dataset=dataset, ingest=True, index_dir=used, out=tmp_path / "o"),
                 settings, service_factory=_fake)


def test_an_empty_index_without_ingest_says_what_to_do(dataset: Path, settings: Settings,
                                                       tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="holds no documents; add --ingest"):
        evaluate(EvalOptions(dataset=dataset, out=tmp_path / "o"), settings, service_factory=_fake)


# -- over real HTTP on loopback ----------------------------------------------------------------


@pytest.fixture
def fake_server(settings: Settings) -> Iterator[str]:
    """``qa-service serve`` in a thread, on loopback, with the fake encoder and an empty index."""
    port = free_port()
    app = create_app(settings, _fake, wait_ready=True)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the test server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_http_run_ingests_then_grades_a_newsroom_jsonl(fake_server: str, tmp_path: Path) -> None:
    articles = tmp_path / "articles.jsonl"
    articles.write_text("".join(
        json.dumps({"id": f"article-{title.lower()}", "title": title, "text": text},
                   ensure_ascii=False) + "\n" for title, text in PARAGRAPHS.items()), encoding="utf-8")
    questions = tmp_path / "newsroom.jsonl"
    questions.write_text("\n".join(json.dumps(line, ensure_ascii=False) for line in [
        {"question": "كم عسكري تنشر الولايات المتحدة في العراق؟", "answers": ["2500"],
         "evidence": "وتنشر الولايات المتحدة", "document_ids": ["article-iraq"]},
        {"question": "How many points did the Panthers defense give up?", "answers": ["308"],
         "document_ids": ["article-panthers"]},
        {"question": "How long is the Nile river in kilometres?", "evidence": "6650 kilometres"},
    ]), encoding="utf-8")
    run = evaluate(EvalOptions(dataset=questions, url=fake_server, ingest=True,
                               distractors=articles, out=tmp_path / "run", top_k=2, concurrency=2),
                   Settings())
    overall = run.result["overall"]
    assert run.exit_code == 0 and overall["errors"] == 0
    assert run.result["meta"]["documents_in_index"] == 4  # ingested over POST /v1/documents
    assert overall["with_gold_document"] == 2 and overall["recall@1"] == 1.0
    # Every citation was read back with GET /v1/documents/{id} and found verbatim.
    assert overall["citations"] > 0 and overall["citations_unchecked"] == 0
    assert overall["citation_validity"] == 1.0
    assert overall["citation_support"] == 1.0
    assert all(r.latency_ms and r.latency_ms > 0 for r in run.records)


def test_http_run_against_a_server_that_is_not_there(tmp_path: Path, dataset: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "BACKOFF_S", 0.01)
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(NotReadyError, match="is `qa-service serve` running there"):
        evaluate(EvalOptions(dataset=dataset, url=url, retries=1, out=tmp_path / "o"), Settings())


def _answer_json() -> bytes:
    quote = "The Panthers defense gave up just 308 points, ranking sixth in the league."
    return msgspec.json.encode(Answer(
        answer=f"308. “{quote}” [1]", short_answer="308", answer_language="en", abstained=False,
        citations=[Citation(n=1, document_id="mini/Panthers/0", chunk_id="c", title=None, url=None,
                            source=None, published_at=None, lang="en", quote=quote, start=0,
                            end=len(quote), answer_start=None, answer_end=None, score=0.9)],
        passages=[Passage(chunk_id="c", document_id="mini/Panthers/0", text=quote, start=0,
                          end=len(quote), score=0.9)],
        timings_ms=Timings(total=3.0)))


def test_http_retries_busy_answers_and_records_rejected_questions(
        tmp_path: Path, dataset: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "BACKOFF_S", 0.01)
    calls: dict[str, int] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        calls[path] = calls.get(path, 0) + 1
        if path == "/readyz":
            return httpx.Response(200, json={"status": "ready", "model": "m", "documents": 4})
        if path.startswith("/v1/documents/"):
            # The id travels percent-encoded as one path segment.
            assert request.url.raw_path.decode() == "/v1/documents/mini%2FPanthers%2F0"
            return httpx.Response(200, json={"id": "mini/Panthers/0", "text": PARAGRAPHS["Panthers"]})
        question = json.loads(request.content)["question"]
        if "Panthers" not in question:
            return httpx.Response(400, json={"status": 400, "detail": "the question is not about football"})
        calls["panthers"] = calls.get("panthers", 0) + 1
        if calls["panthers"] <= 3:  # rate limited: waited out, without using up --retries
            return httpx.Response(429, json={"status": 429, "detail": "slow down"},
                                  headers={"retry-after": "0"})
        if calls["panthers"] == 4:  # busy once: one retry
            return httpx.Response(503, json={"status": 503, "detail": "busy"})
        return httpx.Response(200, content=_answer_json())

    run = evaluate(EvalOptions(dataset=dataset, url="http://qa.test", out=tmp_path / "o", top_k=3,
                               concurrency=1, retries=1),
                   Settings(), transport=httpx.MockTransport(handler))
    assert run.exit_code == EXIT_PARTIAL
    assert run.result["overall"]["errors"] == 4
    panthers = next(r for r in run.records if r.id == "q-panthers")
    assert panthers.error is None and panthers.exact_match and panthers.citations[0].valid
    assert calls["panthers"] == 5
    assert calls["/v1/documents/mini/Panthers/0"] == 1
    rejected = next(r for r in run.records if r.id == "q-iraq")
    assert rejected.error == "HTTP 400: the question is not about football"
    assert "failed with an error" in (run.out / "report.md").read_text()


# -- the command line -------------------------------------------------------------------------


@pytest.mark.parametrize(("extra", "message"), [
    (["--seed", "3"], "give --limit N too"),
    (["--min-f1", "40"], "fraction between 0 and 1"),
    (["--min-recall@20", "0.9"], "raise --top-k"),
    (["--distractors", "x.jsonl"], "--distractors needs --ingest"),
    (["--url", "localhost:8000"], "--url must look like http://host:port"),
    (["--url", "http://127.0.0.1:1", "--index-dir", "x"], "--index-dir is for in-process runs"),
])
def test_cli_rejects_bad_options_with_a_message(dataset: Path, extra: list[str], message: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", str(dataset), *extra]) == 1
    assert message in capsys.readouterr().err


def test_cli_reports_a_missing_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", str(tmp_path / "nope.json")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_http_citations_that_cannot_be_read_back_are_reported_not_counted(
        tmp_path: Path, dataset: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/readyz":
            return httpx.Response(200, json={"status": "ready"})
        if request.url.path.startswith("/v1/documents/"):
            return httpx.Response(404, json={"status": 404, "detail": "Not Found"})
        return httpx.Response(200, content=_answer_json())

    run = evaluate(EvalOptions(dataset=dataset, url="http://qa.test", out=tmp_path / "o", limit=2),
                   Settings(), transport=httpx.MockTransport(handler))
    overall = run.result["overall"]
    assert overall["citations"] == 2 and overall["citations_unchecked"] == 2
    assert overall["citation_validity"] is None  # unknown, not 0% and not 100%
    problem = run.records[0].citations[0].problem or ""
    assert problem == "GET /v1/documents/mini/Panthers/0 returned 404: Not Found"
    assert "**2 of 2 citations could not be checked**" in (run.out / "report.md").read_text()
