"""OpenAPI parts Litestar cannot infer (the documents upload body, the SSE answer stream) and the docs UI."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin, YamlRenderPlugin
from litestar.openapi.spec import (
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    RequestBody,
    Schema,
)

from qa_service.api.problems import problem_responses
from qa_service.ingest.documents import MAX_FIELD_CHARS, MAX_ID_CHARS, MAX_TEXT_CHARS, SUPPORTED_LANGS
from qa_service.models import Answer

NDJSON = "application/x-ndjson"
EVENT_STREAM = "text/event-stream"
_NULL = OpenAPIType.NULL
_STRING = OpenAPIType.STRING


def _optional_string(description: str, max_length: int) -> Schema:
    return Schema(type=[_STRING, _NULL], max_length=max_length, description=description)


DOCUMENT_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    title="DocumentIn",
    description="An article. Unknown fields are rejected: put anything else under `metadata`.",
    required=["text"],
    additional_properties=False,
    properties={
        "id": _optional_string("stable id; default: a hash of the text", MAX_ID_CHARS),
        "text": Schema(type=_STRING, min_length=1, max_length=MAX_TEXT_CHARS,
                       description="the article text (not blank); offsets refer to it"),
        "title": _optional_string("headline", MAX_FIELD_CHARS),
        "url": _optional_string("absolute http(s) URL", MAX_FIELD_CHARS),
        "source": _optional_string("outlet name", MAX_FIELD_CHARS),
        "published_at": Schema(type=[_STRING, _NULL],
                               description="ISO 8601 date (2024-01-25) or datetime"),
        "lang": Schema(type=[_STRING, _NULL], enum=[*sorted(SUPPORTED_LANGS), None],
                       description="default: detected from the text"),
        "metadata": Schema(type=[OpenAPIType.OBJECT, _NULL], description="free-form JSON object"),
    },
)

UPLOAD_BODY = RequestBody(
    required=True,
    description=("One document, a JSON list of documents, or `application/x-ndjson` (one "
                 "document per line). At most QA_MAX_BATCH_DOCUMENTS documents, "
                 "QA_MAX_DOCUMENT_CHARS characters of text per document and QA_MAX_BODY_BYTES "
                 "bytes per request (413 above)."),
    content={
        "application/json": OpenAPIMediaType(schema=Schema(one_of=[
            DOCUMENT_SCHEMA, Schema(type=OpenAPIType.ARRAY, items=DOCUMENT_SCHEMA, min_items=1)])),
        NDJSON: OpenAPIMediaType(schema=Schema(
            type=_STRING, description="one JSON document per line (DocumentIn)")),
    },
)


@dataclass
class DocumentsUpload(Operation):
    """POST /v1/documents reads its body itself (JSON or NDJSON); this documents it."""

    def __post_init__(self) -> None:
        self.request_body = UPLOAD_BODY


@dataclass
class SSEAnswer(Operation):
    """POST /v1/ask answers JSON, or an SSE stream when the client accepts text/event-stream."""

    def __post_init__(self) -> None:
        ok = (self.responses or {}).get("200")
        if isinstance(ok, OpenAPIResponse) and ok.content is not None:
            ok.content[EVENT_STREAM] = OpenAPIMediaType(schema=Schema(
                type=_STRING,
                description=("Server-Sent Events: `passages` (the passages), `delta` ({\"text\"} "
                             "pieces of the answer), `citation` (one per citation), `done` (the "
                             "complete JSON response, identical to the non-streaming one)."),
            ))


ASK_RESPONSES: dict[int, ResponseSpec] = {
    200: ResponseSpec(data_container=Answer, generate_examples=False,
                      description="The cited answer (or an SSE stream with Accept: text/event-stream)"),
    **problem_responses(400, 401, 413, 415, 429, 502, 503),
}


OFFLINE_NOTE = (b'<p style="font:14px sans-serif;margin:8px 16px">Swagger UI is loaded from '
                b'cdn.jsdelivr.net: without internet access this page stays empty. The schema itself '
                b'is served here: <a href="/schema/openapi.json">/schema/openapi.json</a> '
                b'(<a href="/schema/openapi.yaml">YAML</a>).</p>')


class SwaggerWithOfflineNote(SwaggerRenderPlugin):
    """Swagger UI (its script and styles come from a CDN), saying so where an offline user looks."""

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        return super().render(request, openapi_schema).replace(b"<body>", b"<body>" + OFFLINE_NOTE, 1)


# The docs UI at /schema and /schema/swagger; the schema as JSON and YAML (no other CDN-hosted UIs).
RENDER_PLUGINS = [SwaggerWithOfflineNote(path=["/", "/swagger"]), JsonRenderPlugin(),
                  YamlRenderPlugin(path=["/openapi.yaml", "/openapi.yml"])]
