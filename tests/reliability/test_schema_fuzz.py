"""Schemathesis against the service's own OpenAPI schema, over real HTTP on loopback.

Every operation is called with generated valid and invalid input. Whatever comes in, the
answer must be no 5xx, a status the schema documents, the documented content type, and a
body that matches the documented schema (problem+json for errors). The number of examples
is bounded so the run stays well under a minute with the fake encoder.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
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
