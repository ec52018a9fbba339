"""The widget against the real service (built model, bundled sample) in headless Chromium.

The demo page at / and a foreign page on a second loopback origin (strict CSP, hostile CSS)
both get real streamed, cited answers. Screenshots land in artifacts/e2e/.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

pytest.importorskip("playwright.sync_api", reason="browser tests need Playwright for Python: "
                    "pip install -e '.[dev]'")

from playwright.sync_api import expect

from tests.e2e.conftest import ARTIFACTS, VIEWPORT, BrowserPage, Service
from tests.e2e.sites import TestSite
from tests.e2e.widget_driver import (
    BIDI_CONTROLS,
    ask,
    chat,
    focused,
    in_shadow,
    root_direction,
    screenshot,
    wait_done,
)

pytestmark = pytest.mark.e2e

TROOPS_EN = "How many US troops are in Iraq?"
TROOPS_AR = "كم عدد الجنود الأمريكيين في العراق؟"
SEED_OUTLET = "عربي بوست"
ACCENT = "rgb(29, 78, 216)"
TEXT = "rgb(17, 24, 39)"

HOSTILE_DOC = {
    "id": "e2e-hostile",
    "title": '<img src=x onerror="window.__pwned=1">\u202egnp.exe',
    "source": "<script>window.__pwned=2</script>\u2067Outlet",
    "url": "https://example.org/news/\u202egnp.exe",
    "published_at": "2024-02-01",
    "lang": "en",
    "text": ('The lighthouse of Zarqa Bay is 87 metres tall <img src=x onerror="window.__pwned=3">. '
             "It was built in 1911 by \u202ethe harbour authority\u202c."),
}


def _open(new_page: Any, url: str) -> BrowserPage:
    watched: BrowserPage = new_page()
    watched.page.goto(url)
    return watched


def _streamed_ask(page: Any, question: str, selector: str = "qa-chat") -> Any:
    """Ask, check the answer came as an SSE stream, and wait for it to finish."""
    with page.expect_response(lambda r: r.url.endswith("/v1/ask")) as response:
        answer = ask(page, question, selector)
    assert response.value.status == 200
    assert response.value.headers["content-type"].startswith("text/event-stream")
    return wait_done(answer)


def test_english_question_on_the_demo_page(new_page: Any, service: Service) -> None:
    watched = _open(new_page, f"{service.url}/")
    page = watched.page
    expect(page.locator("h1")).to_contain_text("العراق")  # the seed article beside the chat
    assert root_direction(page) == ("rtl", "ar")  # an Arabic page: the panel starts mirrored
    answer = _streamed_ask(page, TROOPS_EN)
    assert root_direction(page) == ("ltr", "en")  # the English question switches it
    # One plain English line (English figure, the outlet's Latin name), then the Arabic quote right to left.
    lead = answer.locator(".answer-lead")
    assert lead.inner_text().startswith("2,500 — as of 25 January 2024, Arabi Post")
    assert lead.get_attribute("dir") == "ltr"
    quote = answer.locator(".answer-quote").first
    assert quote.get_attribute("dir") == "rtl" and quote.get_attribute("lang") == "ar"
    assert "وتنشر الولايات المتحدة 2500 عسكري في العراق" in quote.inner_text()
    assert answer.locator(".cite").count() >= 1 and "abstained" not in (answer.get_attribute("class") or "")
    source = answer.locator(".source").first
    assert SEED_OUTLET in source.locator(".outlet").inner_text()
    assert source.locator(".outlet-latin").inner_text() == "(Arabi Post)"
    assert source.locator(".date").inner_text() == "as of January 25, 2024"
    expect(chat(page).locator(".sources h3").first).to_have_text("Sources")
    screenshot(chat(page), ARTIFACTS / "widget-en.png")
    page.screenshot(path=str(ARTIFACTS / "demo-page.png"))
    assert watched.problems() == []


def test_arabic_question_and_citation_click_on_the_demo_page(new_page: Any, service: Service) -> None:
    watched = _open(new_page, f"{service.url}/")
    page = watched.page
    answer = _streamed_ask(page, TROOPS_AR)
    assert root_direction(page) == ("rtl", "ar")
    assert answer.locator(".answer-text").get_attribute("lang") == "ar"
    assert answer.locator(".answer-lead").inner_text().startswith("2500 — حتى 25 يناير 2024، عربي بوست")
    assert answer.locator(".answer-lead").get_attribute("dir") == "rtl"
    assert "2500" in answer.locator(".answer-quote").first.inner_text()
    expect(chat(page).locator(".sources h3").first).to_have_text("المصادر")
    source = answer.locator(".source").first
    assert source.locator(".date").inner_text() == "حتى 25 يناير 2024"  # Arabic month, the article's digits
    # Mirrored: the source number badge sits at the right edge of its card.
    card, badge = source.bounding_box(), source.locator(".num").bounding_box()
    assert badge["x"] > card["x"] + card["width"] / 2
    answer.locator(".cite").first.click()
    expect(source).to_have_class("source active")
    assert in_shadow(page, "root.activeElement && root.activeElement.dataset.n") == "1"
    screenshot(chat(page), ARTIFACTS / "widget-ar.png")
    assert watched.problems() == []


def test_keyboard_only_flow_on_a_foreign_page(new_page: Any, foreign_site: TestSite) -> None:
    watched = _open(new_page, f"{foreign_site.url}/plain.html")
    page = watched.page
    launcher = chat(page).locator("button.launcher")
    expect(launcher).to_be_visible()
    page.keyboard.press("Tab")  # the host page's own link
    page.keyboard.press("Tab")
    assert focused(page) == "button.launcher"
    outline = in_shadow(page, "getComputedStyle(root.activeElement).outlineStyle")
    assert outline == "solid"  # focus is visible
    page.keyboard.press("Enter")
    expect(launcher).to_have_attribute("aria-expanded", "true")
    assert focused(page) == "textarea.question-input"
    page.keyboard.type(TROOPS_EN)
    page.keyboard.press("Enter")
    answer = wait_done(chat(page).locator(".answer").first)
    expect(answer.locator(".cite").first).to_be_visible()
    for _ in range(8):  # back from the question box to the answer's citation marker
        page.keyboard.press("Shift+Tab")
        if focused(page).startswith("button.cite"):
            break
    assert focused(page) == "button.cite"
    assert in_shadow(page, "getComputedStyle(root.activeElement).outlineStyle") == "solid"
    page.keyboard.press("Enter")
    expect(answer.locator(".source").first).to_have_class("source active")
    assert focused(page) == "li.source.active"
    page.keyboard.press("Escape")
    expect(chat(page).locator(".panel")).to_be_hidden()
    assert focused(page) == "button.launcher"
    page.keyboard.press("Enter")  # reopening keeps the conversation
    expect(chat(page).locator(".turn")).to_have_count(1)
    assert watched.problems() == []


def test_hostile_document_renders_inert(new_page: Any, service: Service) -> None:
    bad_link = httpx.post(f"{service.url}/v1/documents", timeout=60,
                          json={**HOSTILE_DOC, "id": "e2e-js-url", "url": "javascript:alert(1)"})
    assert bad_link.status_code == 400 and "http(s)" in bad_link.json()["detail"]
    r = httpx.post(f"{service.url}/v1/documents", json=HOSTILE_DOC, timeout=60)
    assert r.status_code == 201, r.text
    try:
        watched = _open(new_page, f"{service.url}/")
        page = watched.page
        answer = _streamed_ask(page, "How tall is the lighthouse of Zarqa Bay?")
        for marker in answer.locator(".cite").all():
            marker.click()
        source = answer.locator(".source").first
        assert source.locator(".source-title").inner_text() == BIDI_CONTROLS.sub("", HOSTILE_DOC["title"])
        assert source.locator(".outlet").inner_text() == BIDI_CONTROLS.sub("", HOSTILE_DOC["source"])
        assert "<img src=x" in answer.locator(".answer-quote").first.inner_text()
        assert source.locator("a.open").get_attribute("href") == "https://example.org/news/gnp.exe"
        assert in_shadow(page, "[...root.querySelectorAll('img, script, iframe, object')].length") == 0
        assert not BIDI_CONTROLS.search(in_shadow(page, "root.textContent"))
        assert page.evaluate("window.__pwned") is None
        screenshot(chat(page), ARTIFACTS / "widget-hostile-document.png")
        assert watched.problems() == []
    finally:
        httpx.delete(f"{service.url}/v1/documents/{HOSTILE_DOC['id']}", timeout=60)


def test_foreign_page_with_hostile_css_and_strict_csp(new_page: Any, service: Service,
                                                     foreign_site: TestSite) -> None:
    assert foreign_site.url == service.foreign_origin  # the one origin the service allows (CORS)
    watched = _open(new_page, f"{foreign_site.url}/hostile.html")
    page = watched.page
    launcher = chat(page).locator("button.launcher")
    expect(launcher).to_be_visible()
    box = launcher.bounding_box()
    assert box["x"] > VIEWPORT["width"] / 2 and box["y"] > VIEWPORT["height"] / 2  # bottom corner
    assert box["x"] + box["width"] <= VIEWPORT["width"] and box["y"] + box["height"] <= VIEWPORT["height"]
    assert launcher.evaluate("(el) => getComputedStyle(el).backgroundColor") == ACCENT
    assert page.evaluate("getComputedStyle(document.querySelector('qa-chat')).opacity") == "1"
    launcher.click()
    answer = _streamed_ask(page, TROOPS_EN)
    text = answer.locator(".answer-text")
    assert "2500" in text.inner_text() and answer.locator(".cite").count() >= 1
    style = text.evaluate("(el) => { const s = getComputedStyle(el); "
                          "return [s.fontSize, s.color, s.letterSpacing, s.textTransform]; }")
    assert style == ["15px", TEXT, "normal", "none"]  # the host's `* {… !important}` stays outside
    panel = chat(page).locator(".panel").bounding_box()
    assert panel["width"] > 300 and panel["height"] > 300
    answer.locator(".cite").first.click()
    expect(answer.locator(".source").first).to_have_class("source active")
    page.screenshot(path=str(ARTIFACTS / "foreign-hostile-page.png"))
    assert watched.problems() == []
    # The host page's own text did get the hostile styles: the test page really is hostile.
    assert re.match(r"40px", page.evaluate("getComputedStyle(document.querySelector('h1')).fontSize"))


CONVERSATIONS = {
    "en": [TROOPS_EN, "What is their mission?", "How long will the talks on their withdrawal take?"],
    "ar": [TROOPS_AR, "ومنذ متى تتفاوض الحكومتان على ذلك؟", "وكم ستستغرق المحادثات؟"],
}


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_a_three_turn_conversation_with_the_real_service(new_page: Any, service: Service, lang: str) -> None:
    watched = _open(new_page, f"{service.url}/")
    page = watched.page
    sent: list[Any] = []
    page.on("request", lambda r: sent.append(r.post_data_json) if r.url.endswith("/v1/ask") else None)
    answers = [_streamed_ask(page, q) for q in CONVERSATIONS[lang]]
    # The follow-ups carry the conversation, with the documents each answer cited.
    assert [len(body["history"]) for body in sent] == [0, 2, 4]
    assert any("arabipost-2024-01-25-iraq-coalition" in turn.get("document_ids", [])
               for turn in sent[2]["history"] if turn["role"] == "assistant")
    direction = "rtl" if lang == "ar" else "ltr"
    turns = chat(page).locator(".turn")
    for n, answer in enumerate(answers):
        assert "abstained" not in (answer.get_attribute("class") or ""), answer.inner_text()
        assert answer.locator(".answer-lead").get_attribute("dir") == direction
        quote = answer.locator(".answer-quote").first
        assert quote.get_attribute("dir") == "rtl" and quote.get_attribute("lang") == "ar"
        # Each answer comes from the seed article the conversation is about.
        assert "العراق يعلن توصله" in answer.locator(".source-title").first.inner_text()
        note = turns.nth(n).locator(".followup-note")
        if n == 0:
            expect(note).to_be_hidden()
        else:
            expect(note).to_be_visible()  # the service read it with the conversation
    if lang == "en":  # English forms in the lead: "several months" for «عدة أشهر»
        assert answers[2].locator(".answer-lead").inner_text().startswith("several months")
    else:
        assert "2023" in answers[1].inner_text()  # the talks began in August 2023
        assert answers[2].locator(".answer-lead").inner_text().startswith("عدة أشهر")
    screenshot(chat(page), ARTIFACTS / f"widget-conversation-{lang}.png")
    assert watched.problems() == []
