"""Request limits that are not about who the client is: which bodies a route accepts, how deep.

Each route handler with a body declares it in ``opt={"body": JSON}`` or ``JSON_OR_NDJSON``.
Anything else gets 415 before the body is read: a page on another origin can send
``text/plain``, form or multipart bodies without a CORS preflight, so accepting them would
let any web page write to a server that has no API keys.
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection, Request
from litestar.handlers.base import BaseRouteHandler

from qa_service.errors import BadInputError, UnsupportedMediaTypeError

BODY_OPT = "body"
JSON = "json"
JSON_OR_NDJSON = "json-or-ndjson"
TOO_DEEP = ("is nested too deeply (arrays and objects about 1,000 levels deep); "
            "send flat JSON: filters and fields are at most a few levels deep")
NDJSON_TYPES = frozenset({"application/x-ndjson", "application/ndjson", "application/jsonl",
                          "application/x-jsonlines", "application/jsonlines"})


def media_type(content_type: str | None) -> str:
    """``application/json; charset=utf-8`` → ``application/json``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_json(content_type: str | None) -> bool:
    kind = media_type(content_type)
    return kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json"))


def is_ndjson(content_type: str | None) -> bool:
    return media_type(content_type) in NDJSON_TYPES


def body_type_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Litestar guard applied app-wide: 415 unless the body's type is one the handler declares."""
    accepts = handler.opt.get(BODY_OPT)
    if accepts is None:
        return
    content_type = connection.headers.get("content-type")
    if is_json(content_type) or (accepts == JSON_OR_NDJSON and is_ndjson(content_type)):
        return
    wanted = ("'application/json' or 'application/x-ndjson'" if accepts == JSON_OR_NDJSON
              else "'application/json'")
    sent = f"'{media_type(content_type)}'" if content_type else "no Content-Type"
    raise UnsupportedMediaTypeError(f"the body must be sent with Content-Type {wanted}; got {sent}")


class QARequest(Request[Any, Any, Any]):
    """Litestar's request, with JSON too deeply nested to decode answered as 400, not 500."""

    async def json(self) -> Any:
        try:
            return await super().json()
        except RecursionError:  # msgspec recurses once per level: the stack ran out
            raise BadInputError(f"the body {TOO_DEEP}") from None
