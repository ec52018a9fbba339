"""The widget against a scripted API: streaming, citations, history, failures and hostile input.

The scripted API (tests/e2e/sites.py) sends what the real service never would — a stream
that pauses, a 429, a dropped connection, javascript: links — so the widget's own handling
is what is tested here. The pages run under a strict CSP with Trusted Types enforced.
"""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("playwright.sync_api", reason="browser tests need Playwright for Python: "
                    "pip install -e '.[dev]'")

from playwright.sync_api import expect

from tests.e2e.conftest import ARTIFACTS, BrowserPage
from tests.e2e.sites import (
    ABSTAINED,
    HOSTILE_OUTLET,
    HOSTILE_TITLE,
    LONG_QUOTE,
    RETRY_AFTER_S,
    SAFE_HOSTILE_HREF,
    STORY_URL,
    TestSite,
)
from tests.e2e.widget_driver import BIDI_CONTROLS, ask, chat, focused, in_shadow, screenshot, wait_done

pytestmark = pytest.mark.e2e


def _open_inline(new_page: Any, site: TestSite, lang: str = "en") -> BrowserPage:
    watched: BrowserPage = new_page()
    watched.page.goto(f"{site.url}/inline.html?lang={lang}")
    expect(chat(watched.page).locator("textarea")).to_be_visible()
    return watched


def test_answer_appears_while_it_streams(new_page: Any, scripted: TestSite) -> None:
    watched = _open_inline(new_page, scripted)
    answer = ask(watched.page, "slow: how many troops?")
    # Half the answer has arrived and the stream is paused: the reader already sees it.
    expect(answer.locator(".answer-text")).to_contain_text("About 2,500")
    expect(answer).to_have_attribute("aria-busy", "true")
    assert "[1]" not in answer.inner_text() and answer.locator(".source").count() == 0
    live = in_shadow(watched.page, "root.querySelector('.answer').closest('[aria-live]').ariaLive")
    assert live == "polite"
    scripted.release.set()
    wait_done(answer)
    expect(answer.locator(".cite")).to_have_count(1)
    expect(answer.locator(".source")).to_have_count(1)
    assert scripted.log.accept == ["text/event-stream"]
    assert watched.problems() == []


def test_citation_marker_highlights_its_source_and_opens_the_article_on_request(
        new_page: Any, context: Any, scripted: TestSite) -> None:
    context.route("https://news.example/**", lambda route: route.fulfill(
        status=200, content_type="text/html", body="<title>The story</title><p>The story</p>"))
    watched = _open_inline(new_page, scripted)
    page = watched.page
    answer = wait_done(ask(page, "How many US troops are in Iraq?"))
    source = answer.locator(".source").first
    assert "active" not in (source.get_attribute("class") or "")
    assert "as of January 25, 2024" in source.inner_text() and "News Example" in source.inner_text()

    answer.locator(".cite").first.click()
    expect(source).to_have_class("source active")
    assert focused(page) == "li.source.active"
    assert len(context.pages) == 1  # highlighting never opens anything by itself

    # The long quote starts folded and unfolds on request.
    fold = source.locator(".fold")
    expect(fold).to_have_attribute("aria-expanded", "false")
    folded = source.locator(".quote").inner_text()
    assert folded.endswith("…") and len(folded) < len(LONG_QUOTE)
    fold.click()
    expect(fold).to_have_attribute("aria-expanded", "true")
    expect(source.locator(".quote")).to_have_text(LONG_QUOTE, use_inner_text=True)

    link = source.locator("a.open")
    assert link.get_attribute("target") == "_blank" and "noopener" in (link.get_attribute("rel") or "")
    with context.expect_page() as opened:
        link.click()
    assert opened.value.url == STORY_URL
    assert watched.problems() == []


def test_a_footnote_mark_inside_a_quote_is_text_not_a_citation_button(new_page: Any,
                                                                       scripted: TestSite) -> None:
    watched = _open_inline(new_page, scripted)
    answer = wait_done(ask(watched.page, "When was the university founded (footnote)?"))
    expect(answer.locator(".cite")).to_have_count(2)
    assert "1990.[2]" in answer.locator(".answer-text").inner_text()
    assert watched.problems() == []


def test_follow_up_sends_history_and_the_conversation_survives_reload(new_page: Any,
                                                                      scripted: TestSite) -> None:
    watched = _open_inline(new_page, scripted)
    page = watched.page
    first = wait_done(ask(page, "How many US troops are in Iraq?"))
    first_text = first.locator(".answer-text").inner_text()
    wait_done(ask(page, "And since when?"))
    assert scripted.log.bodies[0]["history"] == []
    history = scripted.log.bodies[1]["history"]
    assert [m["role"] for m in history] == ["user", "assistant"]
    assert history[0]["content"] == "How many US troops are in Iraq?"
    assert history[1]["content"].startswith("About 2,500 US troops remain in Iraq")
    assert "[1]" in history[1]["content"]

    page.reload()
    turns = chat(page).locator(".turn")
    expect(turns).to_have_count(2)
    assert turns.first.locator(".answer-text").inner_text() == first_text
    expect(turns.first.locator(".cite")).to_have_count(1)  # citations come back too, still clickable
    turns.first.locator(".cite").click()
    expect(turns.first.locator(".source")).to_have_class("source active")

    chat(page).locator("button.new").click()
    expect(turns).to_have_count(0)
    assert focused(page) == "textarea.question-input"
    page.reload()
    expect(chat(page).locator(".intro")).to_be_visible()
    expect(turns).to_have_count(0)
    wait_done(ask(page, "A fresh question"))
    assert scripted.log.bodies[-1]["history"] == []  # the new conversation starts without history
    assert watched.problems() == []


def test_abstention_is_shown_as_such_not_as_an_error(new_page: Any, scripted: TestSite) -> None:
    watched = _open_inline(new_page, scripted)
    answer = wait_done(ask(watched.page, "nothing about this, please"))
    expect(answer).to_have_class("answer abstained")
    expect(answer.locator(".badge")).to_have_text("Not found in the sources")
    expect(answer.locator(".answer-text")).to_have_text(ABSTAINED["answer"])
    assert answer.locator(".retry").count() == 0 and answer.locator(".source").count() == 0
    assert watched.problems() == []


def test_rate_limit_and_network_failures_show_a_calm_retry(new_page: Any, scripted: TestSite) -> None:
    watched = _open_inline(new_page, scripted)
    page = watched.page
    answer = ask(page, "busy hour: how many troops?")
    expect(answer).to_have_class("answer failed")
    expect(answer.locator(".notice")).to_have_text(
        f"Many people are asking right now. Please try again in {RETRY_AFTER_S} seconds.")
    answer.locator(".retry").click()  # waits out Retry-After, then asks again
    wait_done(answer)
    expect(answer.locator(".cite")).to_have_count(1)
    assert len(scripted.log.bodies) == 2

    dropped = ask(page, "drop the line: how many troops?")
    expect(dropped.locator(".notice")).to_have_text("The answer was interrupted. Please try again.")
    expect(dropped.locator(".retry")).to_be_visible()

    page.route("**/v1/ask", lambda route: route.abort("connectionrefused"))
    offline = ask(page, "How many troops, offline?")
    expect(offline.locator(".notice")).to_have_text(
        "Couldn’t reach the service. Check your connection and try again.")
    page.unroute("**/v1/ask")
    offline.locator(".retry").click()
    wait_done(offline)
    expect(offline.locator(".cite")).to_have_count(1)
    # Failures are never kept as history for the next question.
    wait_done(ask(page, "One more"))
    roles = [m["content"] for m in scripted.log.bodies[-1]["history"] if m["role"] == "user"]
    assert roles == ["busy hour: how many troops?", "How many troops, offline?"]
    # Only expected failures were logged (the refused and the 429 request), no script errors.
    assert all("Failed to load resource" in p or "ERR_" in p for p in watched.problems())


def test_hostile_stream_renders_inert(new_page: Any, scripted: TestSite) -> None:
    watched = _open_inline(new_page, scripted)
    page = watched.page
    answer = wait_done(ask(page, "hostile: show me everything"))
    for marker in answer.locator(".cite").all():
        marker.click()
    screenshot(chat(page), ARTIFACTS / "widget-hostile.png")

    assert page.evaluate("window.__pwned") is None
    elements = in_shadow(page, "[...root.querySelectorAll('img, script, b, iframe, object')].length")
    assert elements == 0
    # Markup shows as the literal text it is; bidi controls are gone from titles and links.
    titles = answer.locator(".source-title").all_inner_texts()
    assert titles == [BIDI_CONTROLS.sub("", HOSTILE_TITLE)] * 4
    assert answer.locator(".outlet").first.inner_text() == BIDI_CONTROLS.sub("", HOSTILE_OUTLET)
    assert "<img src=x" in answer.locator(".answer-text").inner_text()
    shadow_text = in_shadow(page, "root.textContent")
    assert not BIDI_CONTROLS.search(shadow_text)
    # Only the https link survives, cleaned; javascript: and data: URLs produce no link at all.
    hrefs = in_shadow(page, "[...root.querySelectorAll('a')].map((a) => a.getAttribute('href'))")
    assert hrefs == [SAFE_HOSTILE_HREF]
    assert page.evaluate("window.__pwned") is None
    assert watched.problems() == []


def test_arabic_page_mirrors_the_panel(new_page: Any, scripted: TestSite) -> None:
    watched = _open_inline(new_page, scripted, lang="ar")
    page = watched.page
    assert in_shadow(page, "root.querySelector('.root').dir") == "rtl"
    expect(chat(page).locator("h2")).to_have_text("اسأل الأخبار")
    panel = chat(page).locator(".panel").bounding_box()
    send = chat(page).locator("button.send").bounding_box()
    assert send["x"] < panel["x"] + panel["width"] / 2  # the send button sits on the left in RTL
    # An English question switches the interface to English, left to right.
    wait_done(ask(page, "How many US troops are in Iraq?"))
    assert in_shadow(page, "root.querySelector('.root').dir") == "ltr"
    assert watched.problems() == []


# WCAG relative luminance and contrast, over every rendered element that holds text; the
# background is the nearest opaque one up the tree (crossing out of the shadow root).
TEXT_CONTRAST = """
(() => {
  const rgba = (c) => (c.match(/[\\d.]+/g) || []).map(Number).concat([1]).slice(0, 4);
  const channel = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  const luminance = ([r, g, b]) => 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  const background = (el) => {
    for (let n = el; n; n = n.parentElement || n.getRootNode().host) {
      const c = rgba(getComputedStyle(n).backgroundColor);
      if (c[3] > 0) return c;
    }
    return [255, 255, 255, 1];
  };
  const results = [];
  for (const el of root.querySelectorAll("*")) {
    const text = [...el.childNodes].some((n) => n.nodeType === Node.TEXT_NODE && n.textContent.trim());
    if (!text || !el.getClientRects().length) continue;
    const a = luminance(rgba(getComputedStyle(el).color)), b = luminance(background(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    results.push([el.tagName.toLowerCase() + "." + el.className, el.textContent.slice(0, 40), ratio]);
  }
  return results;
})()
"""


def test_text_contrast_meets_wcag_aa(new_page: Any, scripted: TestSite) -> None:
    watched = _open_inline(new_page, scripted)
    page = watched.page
    cited = wait_done(ask(page, "How many US troops are in Iraq?"))
    cited.locator(".cite").click()  # the highlighted source is checked too
    wait_done(ask(page, "nothing about this, please"))  # the abstention badge
    expect(ask(page, "drop the line").locator(".retry")).to_be_visible()  # the retry notice
    checked = in_shadow(page, TEXT_CONTRAST)
    kinds = {element for element, _, _ in checked}
    assert {"h2.title", "p.intro", "p.answer-text", "button.cite", "bdi.source-title", "bdi.outlet",
            "span.date", "blockquote.quote", "button.fold", "p.badge", "p.notice", "button.retry"} <= kinds
    failing = [(element, text, round(ratio, 2)) for element, text, ratio in checked if ratio < 4.5]
    assert failing == [], "text below WCAG AA contrast (4.5:1)"


@pytest.mark.parametrize(("lang", "questions", "lead_dir"), [
    ("en", ["layout: how many US troops are in Iraq?", "layout: and since when?", "layout: who decided it?"],
     "ltr"),
    ("ar", ["مخطط: كم عدد الجنود الأمريكيين في العراق؟", "مخطط: ومنذ متى؟", "مخطط: ومن قرر ذلك؟"], "rtl"),
])
def test_a_three_turn_conversation_lays_each_direction_out_in_its_own_block(
        new_page: Any, scripted: TestSite, lang: str, questions: list[str], lead_dir: str) -> None:
    watched = _open_inline(new_page, scripted, lang)
    page = watched.page
    answers = [wait_done(ask(page, q)) for q in questions]
    # Every follow-up carries the conversation: questions, answers and the documents they cited.
    history = scripted.log.bodies[2]["history"]
    assert [m["role"] for m in history] == ["user", "assistant"] * 2
    assert history[1]["document_ids"] == ["seed"] and history[2]["content"] == questions[1]
    for n, answer in enumerate(answers):
        lead, quote = answer.locator(".answer-lead"), answer.locator(".answer-quote")
        assert lead.get_attribute("dir") == lead_dir and quote.get_attribute("dir") == "rtl"
        assert quote.get_attribute("lang") == "ar" and "وتنشر الولايات المتحدة" in quote.inner_text()
        expect(answer.locator(".cite")).to_have_count(2)  # after the lead line and after the quote
        # The lead line reads in its own direction: the Arabic outlet is isolated inside it.
        if lang == "en":
            assert lead.inner_text().startswith("2,500 — as of 25 January 2024, Arabi Post")
        else:
            assert lead.inner_text().startswith("2500 — حتى 25 يناير 2024، عربي بوست")
            assert answer.locator("bdi", has_text="عربي بوست").count() >= 1
        # The quote is not repeated in its source card, which names the outlet in both scripts.
        assert answer.locator(".source .quote").count() == 0
        assert answer.locator(".source .outlet-latin").inner_text() == "(Arabi Post)"
        note = answer.locator(".followup-note") if n == 0 else page.locator("qa-chat .turn").nth(n).locator(
            ".followup-note")
        if n == 0:
            expect(page.locator("qa-chat .turn").first.locator(".followup-note")).to_be_hidden()
        else:
            expect(note).to_be_visible()
            assert "US troops · Iraq" in note.inner_text()
    # The quote block sits right to left: its text ends at the block's left edge.
    box = answers[0].locator(".answer-quote").bounding_box()
    assert box is not None and box["width"] > 100
    answers[0].locator(".cite").last.click()
    expect(answers[0].locator(".source").first).to_have_class("source active")
    page.reload()
    expect(chat(page).locator(".answer-quote")).to_have_count(3)  # the layout survives a reload
    screenshot(chat(page), ARTIFACTS / f"widget-scripted-conversation-{lang}.png")
    assert watched.problems() == []
