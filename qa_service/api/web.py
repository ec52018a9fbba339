"""Browser-facing routes: the demo page at ``/`` and the embeddable widget's static files.

The widget is plain files under ``qa_service/web`` (no build step). Assets are served with
an ETag and a short public cache lifetime, so a site embedding ``widget.js`` picks up a new
version within the hour and revalidates cheaply. They are public and credential-free, so
any origin may fetch them (``widget.js`` fetches ``widget.css`` to adopt it into its Shadow
DOM). The demo page is served under the strictest Content-Security-Policy the widget is
meant to survive: no inline script or style, Trusted Types enforced.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Mapping
from importlib import resources
from typing import Any, Protocol, runtime_checkable

import msgspec
from litestar import Request, Response, get
from litestar.di import NamedDependency

from qa_service.ingest.documents import document_from_mapping
from qa_service.models import Document
from qa_service.samples import SAMPLE_DIR
from qa_service.service import QAService

SEED_DOCUMENT_ID = "arabipost-2024-01-25-iraq-coalition"
SEED_FILE = SAMPLE_DIR / "seed.jsonl"
WEB_FILES = resources.files("qa_service") / "web"
ASSET_MAX_AGE_S = 3600
JS_TYPE = "text/javascript"  # Litestar appends "; charset=utf-8" to text/* types
CSS_TYPE = "text/css"
HTML_TYPE = "text/html"

DEMO_CSP = "; ".join([
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "connect-src 'self'",
    "img-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
    "require-trusted-types-for 'script'",
    "trusted-types 'none'",
])
PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": DEMO_CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}

_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


@runtime_checkable
class ServiceHolder(Protocol):
    """What the demo page needs of the app's service holder: the service once it has loaded."""

    service: QAService | None


# -- static files -----------------------------------------------------------------------


def _read_asset(name: str) -> bytes:
    return (WEB_FILES / name).read_bytes()


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _etag_matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    candidates = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in candidates or etag in candidates


def _asset_response(request: Request[Any, Any, Any], name: str, media_type: str) -> Response[bytes]:
    body = _read_asset(name)
    etag = _etag(body)
    headers = {
        "ETag": etag,
        "Cache-Control": f"public, max-age={ASSET_MAX_AGE_S}",
        "X-Content-Type-Options": "nosniff",
        # Public, credential-free files: any site may load them (the CORS middleware narrows
        # this to the requesting origin when that origin is in QA_CORS_ORIGINS).
        "Access-Control-Allow-Origin": "*",
        "Cross-Origin-Resource-Policy": "cross-origin",
    }
    if _etag_matches(request.headers.get("if-none-match"), etag):
        return Response(b"", status_code=304, headers=headers, media_type=media_type)
    return Response(body, media_type=media_type, headers=headers)


@get("/widget.js", sync_to_thread=True, include_in_schema=False)
def widget_js(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The embeddable chat widget (a web component, no build step)."""
    return _asset_response(request, "widget.js", JS_TYPE)


@get("/widget.css", sync_to_thread=True, include_in_schema=False)
def widget_css(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The widget's stylesheet, adopted into its Shadow DOM."""
    return _asset_response(request, "widget.css", CSS_TYPE)


@get("/demo.css", sync_to_thread=True, include_in_schema=False)
def demo_css(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The demo page's own stylesheet (the page allows no inline style)."""
    return _asset_response(request, "demo.css", CSS_TYPE)


# -- demo page --------------------------------------------------------------------------


def seed_document(service: QAService | None) -> Document:
    """The seed article: from the store when the service holds it, else the bundled copy."""
    if service is not None:
        stored = service.store.get_document(SEED_DOCUMENT_ID)
        if stored is not None:
            return stored
    with SEED_FILE.open(encoding="utf-8") as fh:
        for line in fh:
            raw = msgspec.json.decode(line)
            if raw.get("id") == SEED_DOCUMENT_ID:
                return document_from_mapping(raw, extra_to_metadata=True)
    raise RuntimeError(f"the bundled sample {SEED_FILE} lacks {SEED_DOCUMENT_ID!r}; reinstall qa-service")


def render_template(template: str, text: Mapping[str, str], markup: Mapping[str, str]) -> str:
    """Fill ``{{name}}`` placeholders: ``text`` values are HTML-escaped, ``markup`` values are not."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        return markup[name] if name in markup else html.escape(text[name])

    return _PLACEHOLDER.sub(fill, template)


def _paragraphs(doc: Document) -> str:
    lines = [line.strip() for line in doc.text.split("\n") if line.strip()]
    if lines and doc.title and lines[0] == doc.title.strip():
        lines = lines[1:]  # the stored text repeats the headline shown above it
    return "\n      ".join(f'<p dir="auto">{html.escape(line)}</p>' for line in lines)


def _source_link(url: str | None) -> str:
    if not url or not url.startswith(("https://", "http://")):
        return ""
    return (f'<p><a href="{html.escape(url)}" rel="noopener noreferrer">المقال الأصلي · '
            f'<span lang="en">original article</span></a></p>')


def render_demo_page(doc: Document, base_url: str) -> str:
    """The demo page: the article beside an inline widget, and the one-line embed snippet."""
    base = base_url if base_url.endswith("/") else base_url + "/"
    template = (WEB_FILES / "index.html").read_text(encoding="utf-8")
    return render_template(
        template,
        text={
            "lang": doc.lang if doc.lang in ("ar", "en") else "ar",
            "source": doc.source or "",
            "published_at": doc.published_at or "",
            "published_date": (doc.published_at or "")[:10],
            "title": doc.title or doc.id,
            "embed_snippet": f'<script src="{base}widget.js" data-endpoint="{base}"></script>',
        },
        markup={"paragraphs": _paragraphs(doc), "source_link": _source_link(doc.url)},
    )


@get("/", sync_to_thread=True, include_in_schema=False)
def demo_page(request: Request[Any, Any, Any], holder: NamedDependency[ServiceHolder]) -> Response[str]:
    """The chat widget beside the seed article (shown even while the model is still loading).

    When reads need a key the page is open but the store is not: it shows the bundled copy.
    """
    settings = request.app.state.settings
    service = None if settings.read_requires_key else holder.service
    page = render_demo_page(seed_document(service), str(request.base_url))
    return Response(page, media_type=HTML_TYPE, headers=PAGE_HEADERS)


WEB_ROUTES = [demo_page, widget_js, widget_css, demo_css]
