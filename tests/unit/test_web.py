"""The demo page and the widget's static files, over the Litestar test client (no browser)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from qa_service.api.app import create_app
from qa_service.api.web import SEED_DOCUMENT_ID, WEB_FILES, render_demo_page
from qa_service.models import Document
from qa_service.service import QAService
from qa_service.settings import Settings
from tests.fakes import FakeEncoder

WIDGET_JS = Path(str(WEB_FILES / "widget.js")).read_text(encoding="utf-8")
SEED_TITLE_START = "العراق يعلن توصله إلى اتفاق مع أمريكا"


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:  # type: ignore[type-arg]
    app = create_app(settings, lambda s: QAService(s, FakeEncoder()), wait_ready=True)
    with TestClient(app=app) as c:
        yield c


@pytest.mark.parametrize(("path", "media_type"), [
    ("/widget.js", "text/javascript"), ("/widget.css", "text/css"), ("/demo.css", "text/css"),
])
def test_static_files_are_typed_cached_and_revalidated(client: TestClient, path: str,  # type: ignore[type-arg]
                                                       media_type: str) -> None:
    r = client.get(path)
    assert r.status_code == 200 and r.content == (WEB_FILES / path.lstrip("/")).read_bytes()
    assert r.headers["content-type"] == f"{media_type}; charset=utf-8"
    assert r.headers["cache-control"] == "public, max-age=3600"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["access-control-allow-origin"] == "*"  # public files any site may fetch
    etag = r.headers["etag"]
    again = client.get(path, headers={"if-none-match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    assert client.get(path, headers={"if-none-match": '"stale"'}).status_code == 200


def test_demo_page_shows_the_seed_article_beside_the_widget(client: TestClient) -> None:  # type: ignore[type-arg]
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"] == "text/html; charset=utf-8"
    page = r.text
    assert SEED_TITLE_START in page and "2500 عسكري" in page
    assert "<qa-chat" in page and 'src="widget.js"' in page
    assert 'data-endpoint=&quot;http://testserver.local/&quot;&gt;' in page  # the embed snippet, escaped
    # The page itself lives under the strict CSP the widget must survive.
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp and "unsafe" not in csp
    assert "require-trusted-types-for 'script'" in csp
    assert not re.search(r"<script(?![^>]*\bsrc=)", page), "inline script"
    assert "<style" not in page and " style=" not in page, "inline style"


def test_demo_page_prefers_the_stored_seed_and_works_while_loading(settings: Settings) -> None:
    stored = Document(id=SEED_DOCUMENT_ID, title="Stored title", text="Stored body.", lang="en")
    service = QAService(settings, FakeEncoder())
    service.ingest([stored])
    service.close()
    app = create_app(settings, lambda s: QAService(s, FakeEncoder()), wait_ready=True)
    with TestClient(app=app) as c:
        assert "Stored title" in c.get("/").text

    def broken(_: Settings) -> QAService:
        raise RuntimeError("model missing")

    with TestClient(app=create_app(settings, broken, wait_ready=True)) as c:
        r = c.get("/")  # no service at all: the bundled copy of the seed article
        assert r.status_code == 200 and SEED_TITLE_START in r.text


def test_demo_page_escapes_document_text() -> None:
    doc = Document(id="x", title='<img src=x onerror="alert(1)">', source="<b>Outlet</b>",
                   text="<script>alert(2)</script>\nSecond line", url="javascript:alert(3)",
                   published_at='2024-01-01"><script>', lang="en")
    page = render_demo_page(doc, "http://example.org/qa")
    assert "<img src=x" not in page and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page
    assert "<script>alert(2)" not in page and "<b>Outlet" not in page
    assert "javascript:" not in page  # no link for a non-http(s) URL
    assert "&lt;script src=&quot;http://example.org/qa/widget.js&quot;" in page


@pytest.mark.parametrize("sink", [
    "innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
    "setAttribute(\"style\"", ".style.", "createContextualFragment", "srcdoc",
])
def test_widget_source_uses_no_html_or_inline_style_sinks(sink: str) -> None:
    """Data reaches the DOM only through textContent; styles only through widget.css."""
    assert sink not in WIDGET_JS
