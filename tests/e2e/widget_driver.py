"""Driving the widget the way a reader does, and reading what the reader sees."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from playwright.sync_api import Locator, Page, expect

BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")


def chat(page: Page, selector: str = "qa-chat") -> Locator:
    return page.locator(selector)


def ask(page: Page, question: str, selector: str = "qa-chat") -> Locator:
    """Type the question, press Enter, and return the new answer's box."""
    before = chat(page, selector).locator(".answer").count()
    box = chat(page, selector).locator("textarea")
    box.fill(question)
    box.press("Enter")
    answer = chat(page, selector).locator(".answer").nth(before)
    expect(answer).to_be_attached()
    return answer


def wait_done(answer: Locator) -> Locator:
    expect(answer).to_have_attribute("aria-busy", "false")
    return answer


def in_shadow(page: Page, script: str, arg: Any = None, selector: str = "qa-chat") -> Any:
    """Evaluate ``script`` (a JS expression over ``root``, the shadow root, and ``arg``)."""
    function = f"(host, arg) => {{ const root = host.shadowRoot; return {script.strip()}; }}"
    return page.eval_on_selector(selector, function, arg)


def root_direction(page: Page, selector: str = "qa-chat") -> tuple[str, str]:
    """The panel's (dir, lang)."""
    dir_, lang = in_shadow(page, "[root.querySelector('.root').dir, root.querySelector('.root').lang]",
                           selector=selector)
    return dir_, lang


def focused(page: Page, selector: str = "qa-chat") -> str:
    """A short description of the element focused inside the widget ('' when focus is outside)."""
    script = """(() => { const el = root.activeElement; if (!el) return "";
        const classes = el.className ? "." + el.className.split(" ").join(".") : "";
        return el.tagName.toLowerCase() + classes; })()"""
    return str(in_shadow(page, script, selector=selector))


def screenshot(locator: Locator, path: Path) -> Path:
    locator.screenshot(path=str(path))
    assert path.stat().st_size > 1000, f"{path} is empty"
    return path
