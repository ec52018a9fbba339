"""Schemathesis against the service's own OpenAPI schema, over real HTTP on loopback.

Every operation is called with generated valid and invalid input, then with hostile input
the schema cannot describe: JSON nested thousands of levels deep, the extreme dates of the
calendar (and just past them), and arrays of hundreds of thousands of entries. Whatever
comes in, the answer must be no 5xx, a status the schema documents, the documented content
type, and a body that matches the documented schema (problem+json for errors). The number
of examples is bounded so the run stays around a minute with the fake encoder.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from qa_service.api.app import create_app
from qa_service.service import QAService
from tests.fakes import FakeEncoder
from tests.reliability.conftest import serve_in_thread
from tests.reliability.workload import child_settings, corpus

pytestmark = pytest.mark.reliability

EXAMPLES_PER_OPERATION = 40
QUERY_ONLY_STRINGS = {"GET /v1/search"}  # string list parameters: see _fuzz
CHECKS = [schemathesis.checks.not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance, negative_data_rejection]


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    root: Path = tmp_path_factory.mktemp("fuzz") / "index"
    settings_ = child_settings(root).replace(rate_limit_per_s=0, max_batch_documents=20)

    def factory(s: Any) -> QAService:
        service = QAService(s, FakeEncoder())
        service.ingest(corpus(30))
        return service

    with serve_in_thread(create_app(settings_, factory)) as url:
        yield schemathesis.openapi.from_url(f"{url}/schema/openapi.json")


def _fuzz(operation: Any, mode: GenerationMode) -> str | None:
    """Run one operation's generated cases; the shrunk failure, if any, as text."""
    excluded = []
    if mode is GenerationMode.NEGATIVE and operation.label in QUERY_ONLY_STRINGS:
        # A "non-string" query value (false, 0) arrives as the string "false", and a repeated
        # single-valued parameter as one of its values: both valid input on the wire.
        excluded = [negative_data_rejection]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck), phases=[Phase.generate, Phase.shrink])
    def run(case: Any) -> None:
        case.call_and_validate(checks=CHECKS, excluded_checks=excluded, timeout=30)

    try:
        run()
    except Unsatisfiable:
        # No invalid input exists (no parameters, or only a free-form string path parameter).
        assert mode is GenerationMode.NEGATIVE, f"{operation.label}: no valid input generated"
    except (Exception, BaseExceptionGroup) as exc:  # collected: one run reports every failure
        return f"{operation.label} ({mode.value}): {exc}"
    return None


def test_every_operation_answers_within_its_schema(api_schema: Any) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    labels = {op.label for op in operations}
    assert {"POST /v1/ask", "GET /v1/search", "POST /v1/documents", "GET /v1/documents/{doc_id}",
            "DELETE /v1/documents/{doc_id}", "GET /metrics", "GET /readyz"} <= labels
    failures = [failure for op in operations
                for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
                if (failure := _fuzz(op, mode)) is not None]
    assert not failures, "\n\n".join(failures)


# -- hostile input the schema cannot describe ---------------------------------------------

HOSTILE_EXAMPLES = 10  # per kind: the spaces below are small, so each value comes up
DEPTHS = st.sampled_from([17, 64, 1_000, 5_000, 50_000])
DATES = st.sampled_from([
    "9999-12-31", "9999-12-31T23:59:59-23:59", "9999-12-31T23:59:59.999999+00:00", "0001-01-01",
    "0001-01-01T00:00:00+23:59", "10000-01-01", "0000-01-01", "-0001-01-01", "2024-02-30",
    "2024-13-01", "", "9" * 400,
])
SIZES = st.sampled_from([0, 1, 101, 1_001, 40_000, 300_000])
QUESTION = '{"question": "How many troops are in Iraq?", '


def _nested(depth: int, opener: bytes, closer: bytes) -> bytes:
    return opener * depth + b"1" + closer * depth


@st.composite
def _deep(draw: st.DrawFn, prefix: str, suffix: str) -> bytes:
    """A JSON body with objects, arrays or both nested ``DEPTHS`` deep between prefix and suffix."""
    opener, closer = draw(st.sampled_from([(b'{"a":', b"}"), (b"[", b"]"), (b'[{"a":', b"}]")]))
    return prefix.encode() + _nested(draw(DEPTHS), opener, closer) + suffix.encode()


def _sources(n: int) -> list[str]:
    return [f"s{i}" for i in range(n)]


# (method, path, where the value goes, strategy): each kind is fuzzed on its own, so that
# every kind of failure is reported, not only the first one found.
HOSTILE: dict[str, tuple[str, str, str, st.SearchStrategy[Any]]] = {
    "ask-deep-filters": ("POST", "/v1/ask", "body", _deep(QUESTION + '"filters": ', "}")),
    "ask-deep-sources": ("POST", "/v1/ask", "body", _deep(QUESTION + '"filters": {"source": ', "}}")),
    "ask-deep-history": ("POST", "/v1/ask", "body", _deep(QUESTION + '"history": ', "}")),
    "ask-extreme-dates": ("POST", "/v1/ask", "body", st.builds(
        lambda a, b: {"question": "troops?", "filters": {"published_after": a, "published_before": b}},
        DATES, DATES)),
    "ask-huge-sources": ("POST", "/v1/ask", "body", st.builds(
        lambda n: {"question": "troops?", "filters": {"source": _sources(n)}}, SIZES)),
    "ask-huge-history": ("POST", "/v1/ask", "body", st.builds(
        lambda n: {"question": "troops?", "history": [{"role": "user", "content": "x"}] * n}, SIZES)),
    "ask-huge-question": ("POST", "/v1/ask", "body", st.builds(
        lambda n: {"question": "troops? " * n}, SIZES)),
    "documents-deep-metadata": ("POST", "/v1/documents", "body",
                                _deep('{"text": "A note.", "metadata": ', "}")),
    "documents-deep-in-a-list": ("POST", "/v1/documents", "body",
                                 _deep('[{"text": "A note."}, {"text": "B.", "metadata": {"x": ', "}}]")),
    "documents-extreme-dates": ("POST", "/v1/documents", "body", st.builds(
        lambda d: {"text": "A dated note.", "published_at": d}, DATES)),
    "documents-huge-list": ("POST", "/v1/documents", "body", st.builds(
        lambda n: [{"text": f"note {i}"} for i in range(n)], SIZES)),
    "documents-huge-metadata": ("POST", "/v1/documents", "body", st.builds(
        lambda n: {"text": "A tagged note.", "metadata": {"tags": list(range(n))}}, SIZES)),
    "search-extreme-dates": ("GET", "/v1/search", "query", st.builds(
        lambda a, b: {"q": "troops", "published_after": a, "published_before": b}, DATES, DATES)),
    # Query strings stay under the 16 KiB request line uvicorn reads (it answers 400 above).
    "search-many-sources": ("GET", "/v1/search", "query", st.builds(
        lambda n: {"q": "troops", "source": _sources(min(n, 500))}, SIZES)),
    "search-deep-brackets": ("GET", "/v1/search", "query", st.builds(
        lambda d: {"q": "[" * min(d, 4_000)}, DEPTHS)),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_input_answers_4xx_within_the_schema(api_schema: Any, kind: str) -> None:
    method, path, where, values = HOSTILE[kind]
    operation = api_schema[path][method]
    if where == "body":
        cases = values.map(lambda body: operation.Case(body=body, media_type="application/json"))
    else:
        cases = values.map(lambda query: operation.Case(query=query))

    @given(case=cases)
    @settings(max_examples=HOSTILE_EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck), phases=[Phase.generate, Phase.shrink])
    def run(case: Any) -> None:
        case.call_and_validate(checks=CHECKS, excluded_checks=[negative_data_rejection], timeout=60)

    run()
