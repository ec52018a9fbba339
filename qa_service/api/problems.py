"""The one place that maps errors to RFC 9457 ``application/problem+json`` responses."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec

from qa_service.errors import QAError, UnauthorizedError

log = logging.getLogger(__name__)

PROBLEM_TYPE_BASE = "https://qa-service.dev/problems/"
MEDIA_TYPE = "application/problem+json"


class ProblemDetails(msgspec.Struct, kw_only=True):
    """RFC 9457 problem details: every error response has this body."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    errors: list[dict[str, Any]] | None = None  # validation failures, one per field


def problem_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the problem responses an operation can answer."""
    return {status: ResponseSpec(data_container=ProblemDetails, media_type=MEDIA_TYPE,
                                 description=_reason(status), generate_examples=False)
            for status in statuses}


def problem(status: int, title: str, detail: str, slug: str, instance: str,
            headers: dict[str, str] | None = None, **extra: Any) -> Response[dict[str, Any]]:
    body = {"type": PROBLEM_TYPE_BASE + slug, "title": title, "status": status,
            "detail": detail, "instance": instance, **extra}
    return Response(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def qa_error_handler(request: Request[Any, Any, Any], exc: QAError) -> Response[dict[str, Any]]:
    headers = {}
    if exc.retry_after_s is not None:
        headers["Retry-After"] = str(exc.retry_after_s)
    if isinstance(exc, UnauthorizedError):
        headers["WWW-Authenticate"] = 'Bearer realm="qa-service"'
    return problem(exc.status_code, exc.title, exc.detail, exc.slug, request.url.path, headers)


def validation_handler(request: Request[Any, Any, Any],
                       exc: ValidationException) -> Response[dict[str, Any]]:
    errors = exc.extra if isinstance(exc.extra, list) else []
    details = "; ".join(
        f"{e.get('key') or 'body'}: {e.get('message')}" for e in errors if isinstance(e, dict)
    ) or str(exc.detail)
    return problem(400, "Invalid request", details, "validation", request.url.path, errors=errors)


def http_error_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    slug = {404: "not-found", 405: "method-not-allowed", 413: "too-large",
            415: "unsupported-media-type"}.get(exc.status_code, "http-error")
    detail = str(exc.detail)
    if exc.status_code == 413:  # Litestar's body limit says no more than its reason phrase
        limit = request.route_handler.resolve_request_max_body_size()
        detail = (f"the body is larger than the limit of {limit} bytes (QA_MAX_BODY_BYTES); "
                  "send fewer or smaller documents per request")
    return problem(exc.status_code, _reason(exc.status_code), detail, slug,
                   request.url.path, dict(exc.headers or {}))


def internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.exception("unhandled error on %s", request.url.path, exc_info=exc)
    return problem(500, "Internal error", "the service failed unexpectedly; the error is logged",
                   "internal", request.url.path)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


EXCEPTION_HANDLERS: dict[int | type[Exception], Any] = {
    QAError: qa_error_handler,
    ValidationException: validation_handler,
    HTTPException: http_error_handler,
    Exception: internal_error_handler,
}
