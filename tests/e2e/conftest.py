"""Browser-test fixtures: headless Debian Chromium driven by Playwright, the real service, test sites.

Chromium is the Debian package (``apt-get install chromium``; ``.ci/run`` installs it), never
a Playwright-downloaded browser. Without it, or without the ``playwright`` package, every
browser test is skipped with a reason that says what to install.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from qa_service.bench.server import free_port, served
from tests.e2e.sites import TestSite, serve

CHROMIUM = Path(os.environ.get("QA_E2E_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "e2e"
VIEWPORT = {"width": 1280, "height": 860}
TIMEOUT_MS = 30_000  # the real model answers in a few seconds, even on a busy machine
# Recorded in every page before its own scripts run: CSP violations the browser reports.
RECORD_CSP_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__cspViolations.push(e.violatedDirective + " " + e.blockedURI));
"""


@dataclass
class BrowserPage:
    """A Playwright page plus what went wrong in it (script errors, console errors)."""

    page: Any
    errors: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        """Script errors, console errors and CSP violations, excluding the missing favicon."""
        violations = self.page.evaluate("window.__cspViolations || []")
        return self.errors + [f"CSP violation: {v}" for v in violations]


@pytest.fixture(scope="session")
def chromium() -> Path:
    """The browser binary, or a visible skip saying what to install."""
    if not CHROMIUM.exists():
        pytest.skip(f"browser tests need Chromium at {CHROMIUM}: apt-get install chromium "
                    "(or set QA_E2E_CHROMIUM); .ci/run installs it")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("browser tests need Playwright for Python: pip install -e '.[dev]'")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return CHROMIUM


@pytest.fixture(scope="module")
def browser(chromium: Path) -> Iterator[Any]:
    # Module scope, not session: while started, Playwright's sync API keeps an asyncio event loop
    # running in this thread, which breaks asyncio.run() in every test collected after these.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=VIEWPORT, locale="en-US")
    context.set_default_timeout(TIMEOUT_MS)
    context.add_init_script(RECORD_CSP_VIOLATIONS)
    yield context
    context.close()


@pytest.fixture
def new_page(context: Any) -> Any:
    """Opens a page in the test's browser context, recording its errors."""

    def open_page() -> BrowserPage:
        page = context.new_page()
        watched = BrowserPage(page)
        page.on("pageerror", lambda exc: watched.errors.append(f"script error: {exc}"))

        def on_console(message: Any) -> None:
            if message.type == "error" and not message.location.get("url", "").endswith("favicon.ico"):
                watched.errors.append(f"console error: {message.text}")

        page.on("console", on_console)
        return watched

    return open_page


@dataclass
class Service:
    url: str
    foreign_origin: str
    foreign_port: int


@pytest.fixture(scope="module")
def service(chromium: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """The real service (built model, bundled sample) on loopback, allowing one foreign origin.

    Module scope: it is stopped as soon as the tests that use it are done.
    """
    foreign_port = free_port()
    foreign_origin = f"http://127.0.0.1:{foreign_port}"
    root = tmp_path_factory.mktemp("e2e-service")
    with served(root / "index", root / "server.log", {"QA_CORS_ORIGINS": foreign_origin},
                sample=True) as live:
        yield Service(live.url, foreign_origin, foreign_port)


@pytest.fixture(scope="module")
def foreign_site(service: Service) -> Iterator[TestSite]:
    """A second loopback origin whose pages embed the widget from the real service."""
    yield from serve(service.foreign_port, widget_base=service.url)


@pytest.fixture(scope="session")
def _scripted_site(chromium: Path) -> Iterator[TestSite]:
    yield from serve()


@pytest.fixture
def scripted(_scripted_site: TestSite) -> TestSite:
    """A site serving the widget and a scripted /v1/ask, reset for each test."""
    _scripted_site.reset()
    return _scripted_site
