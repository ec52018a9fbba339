"""Loopback web sites for the browser tests: host pages that embed the widget, and a scripted API.

``TestSite`` is a tiny threaded HTTP server. It serves

- host pages under a strict Content-Security-Policy (no inline script or style, Trusted
  Types enforced): ``/inline.html`` (an inline ``<qa-chat>``), ``/plain.html`` and
  ``/hostile.html`` (the one-line embed with the floating launcher; the latter with a
  stylesheet that attacks everything it can reach);
- the widget's own files, when the pages load the widget from this site;
- a scripted ``POST /v1/ask`` whose answers are chosen by words in the question, so the
  tests can drive what the real service never sends: slow streams, 429s, dropped
  connections, abstentions, and hostile citations (``javascript:`` URLs, markup, bidi
  overrides) that the service would reject at ingestion.
"""

from __future__ import annotations

import html
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

WEB_DIR = Path(__file__).resolve().parents[2] / "qa_service" / "web"
STREAM_RELEASE_TIMEOUT_S = 15.0
DELTA_CHARS = 12
RETRY_AFTER_S = 2

STORY_URL = "https://news.example/story"
LONG_QUOTE = ("The coalition said about 2,500 US troops remain in Iraq to advise and assist local forces, "
              "a figure unchanged since the end of combat operations, while talks on a timetable for a "
              "gradual drawdown continue between Baghdad and Washington and are expected to conclude "
              "within months, officials said on Thursday.")
HOSTILE_TITLE = '<img src=x onerror="window.__pwned=1">\u202egnp.exe'
HOSTILE_OUTLET = "<b onmouseover=\"window.__pwned=2\">Outlet</b>\u2066"
HOSTILE_QUOTE = ("<script>window.__pwned=3</script> The \u202eevil\u202c quote "
                 "<img src=x onerror=window.__pwned=4>")
HOSTILE_URLS = [
    "javascript:window.__pwned=5",
    "  JaVaScRiPt:window.__pwned=6",
    "data:text/html,<script>window.__pwned=7</script>",
    "https://news.example/\u202egnp.exe",
]
SAFE_HOSTILE_HREF = "https://news.example/gnp.exe"

HOSTILE_CSS = """
* { font-size: 40px !important; color: #ff0 !important; background: #f0f !important;
    letter-spacing: 9px !important; line-height: 0.6 !important; text-transform: uppercase !important;
    font-family: "Comic Sans MS", cursive !important; box-sizing: content-box !important; }
div, section, button, textarea, form, p, ol, li, a, header, h2 { display: none !important; }
qa-chat, body > * { position: static !important; opacity: 0.05 !important; transform: scale(0.1) !important;
    pointer-events: none !important; z-index: -1 !important; width: 0 !important; height: 0 !important; }
:focus, :focus-visible { outline: none !important; }
:root { direction: rtl !important; font-size: 4px !important; }
"""


def _citation(n: int, *, title: str = "US troops stay in Iraq", url: str | None = STORY_URL,
              source: str = "News Example", quote: str = LONG_QUOTE, lang: str = "en") -> dict[str, Any]:
    return {"n": n, "document_id": f"doc-{n}", "chunk_id": f"chunk-{n}", "title": title, "url": url,
            "source": source, "published_at": "2024-01-25T15:41:00+00:00", "lang": lang, "quote": quote,
            "start": 0, "end": len(quote), "answer_start": None, "answer_end": None, "score": 0.9}


def _answer(text: str, citations: list[dict[str, Any]], *, abstained: bool = False) -> dict[str, Any]:
    return {"answer": text, "short_answer": None, "answer_language": "en", "abstained": abstained,
            "citations": citations, "passages": [],
            "timings_ms": {"embed": 1.0, "retrieve": 1.0, "compose": 1.0, "total": 3.0},
            "mode": "extractive", "fallback": False}


def footnote_answer() -> dict[str, Any]:
    """A quote carrying a Wikipedia-style footnote mark that looks like citation [2]."""
    first, second = "The university was founded in 1990.[2]", "It has 4,000 students."
    citations = [_citation(1, quote=first), _citation(2, quote=second, title="Campus news")]
    return _answer(f"1990 — News Example: “{first}” [1] Campus news: “{second}” [2]", citations)


def hostile_answer() -> dict[str, Any]:
    citations = [_citation(i + 1, title=HOSTILE_TITLE, url=url, source=HOSTILE_OUTLET, quote=HOSTILE_QUOTE)
                 for i, url in enumerate(HOSTILE_URLS)]
    markers = " ".join(f"[{c['n']}]" for c in citations)
    text = f'Hostile <img src=x onerror="window.__pwned=8"> answer \u202etxt.exe\u202c {markers}'
    return _answer(text, citations)


def normal_answer(question: str) -> dict[str, Any]:
    return _answer(f"About 2,500 US troops remain in Iraq (asked: {question}). [1]", [_citation(1)])


ARABIC_QUOTE = "وتنشر الولايات المتحدة 2500 عسكري في العراق لتقديم المشورة والمساعدة لقواته."


def layout_answer(question: str, history: list[Any]) -> dict[str, Any]:
    """An answer laid out as the service lays it out: a lead line, then the Arabic quote as a block;
    a follow-up (history sent) also says how it was read."""
    arabic = any("\u0600" <= ch <= "\u06ff" for ch in question)
    lead = ("2500 — حتى 25 يناير 2024، عربي بوست [1]" if arabic
            else "2,500 — as of 25 January 2024, Arabi Post [1]")
    quote = f"«{ARABIC_QUOTE}» [1]"
    text = f"{lead}\n\n{quote}"
    lang = "ar" if arabic else "en"
    citation = {**_citation(1, title="العراق يعلن اتفاقاً مع أمريكا", source="عربي بوست", quote=ARABIC_QUOTE,
                            lang="ar"), "document_id": "seed", "source_latin": "Arabi Post"}
    answer = _answer(text, [citation])
    answer["answer_language"] = lang
    answer["short_answer"] = "2500"
    answer["short_answer_display"] = "2500" if arabic else "2,500"
    answer["blocks"] = [
        {"kind": "lead", "text": lead, "start": 0, "end": len(lead), "lang": lang,
         "dir": "rtl" if arabic else "ltr", "citations": [1]},
        {"kind": "quote", "text": quote, "start": len(lead) + 2, "end": len(text), "lang": "ar", "dir": "rtl",
         "citations": [1]},
    ]
    if history:
        answer["followup"] = {"resolved": True, "reason": "refers back", "question": question,
                              "query": question, "carried": ["US troops", "Iraq"],
                              "prior_documents": ["seed"]}
    return answer


ABSTAINED = _answer("The collection does not contain an answer to this question.", [], abstained=True)


@dataclass
class AskLog:
    """What the scripted API received, for assertions."""

    bodies: list[dict[str, Any]] = field(default_factory=list)
    accept: list[str] = field(default_factory=list)


def csp_for(script_origin: str, connect_origin: str) -> str:
    return "; ".join([
        "default-src 'none'",
        f"script-src {script_origin}",
        "style-src 'self'",  # the widget's own stylesheet must not need a style-src allowance
        f"connect-src {connect_origin}",
        "img-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "require-trusted-types-for 'script'",
        "trusted-types 'none'",
    ])


class TestSite:
    """One loopback origin: host pages, optionally the widget's files, and the scripted API."""

    __test__ = False  # not a pytest test class

    def __init__(self, port: int = 0, widget_base: str | None = None) -> None:
        self.log = AskLog()
        self.release = threading.Event()  # lets a "slow" stream finish
        self._busy_answered = False
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        # Where host pages load widget.js from and where the widget sends questions.
        self.widget_base = (widget_base or self.url).rstrip("/")
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> TestSite:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()

    def reset(self) -> None:
        self.log = AskLog()
        self.release.clear()
        self._busy_answered = False

    # -- pages ----------------------------------------------------------------------------

    def page(self, name: str, lang: str) -> str:
        base = html.escape(self.widget_base)
        embed = f'<script src="{base}/widget.js" data-endpoint="{base}"'
        if name == "inline":
            body = (f'<main><h1>Inline chat</h1><qa-chat></qa-chat></main>\n'
                    f'{embed} data-launcher="false"></script>')
        else:
            body = ('<main><h1>A foreign news site</h1><p><a href="#top">A link before the widget</a></p>'
                    '<p>Some article text that the host page styles its own way.</p></main>\n'
                    f'{embed}></script>')
        style = '<link rel="stylesheet" href="/hostile.css">' if name == "hostile" else ""
        return (f'<!doctype html><html lang="{html.escape(lang)}"><head><meta charset="utf-8">'
                f'<title>{name}</title>{style}</head><body>{body}</body></html>')

    def csp(self) -> str:
        origin = f"{urlsplit(self.widget_base).scheme}://{urlsplit(self.widget_base).netloc}"
        return csp_for(origin, origin)

    # -- HTTP -----------------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet test output
                pass

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                name = parts.path.strip("/")
                lang = "ar" if "lang=ar" in parts.query else "en"
                if name in ("inline.html", "plain.html", "hostile.html"):
                    self._send(200, "text/html; charset=utf-8", site.page(name.removesuffix(".html"), lang)
                               .encode(), {"Content-Security-Policy": site.csp()})
                elif name == "hostile.css":
                    self._send(200, "text/css", HOSTILE_CSS.encode())
                elif name in ("widget.js", "widget.css"):
                    kind = "text/javascript" if name.endswith(".js") else "text/css"
                    self._send(200, f"{kind}; charset=utf-8", (WEB_DIR / name).read_bytes())
                else:
                    self._send(404, "text/plain", b"not found")

            def do_POST(self) -> None:
                if urlsplit(self.path).path != "/v1/ask":
                    self._send(404, "text/plain", b"not found")
                    return
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                site.log.bodies.append(body)
                site.log.accept.append(self.headers.get("Accept", ""))
                question = str(body.get("question", ""))
                if "busy" in question and not site._busy_answered:
                    site._busy_answered = True
                    problem = {"type": "about:blank", "title": "Too Many Requests", "status": 429,
                               "detail": "too many requests", "instance": "/v1/ask"}
                    self._send(429, "application/problem+json", json.dumps(problem).encode(),
                               {"Retry-After": str(RETRY_AFTER_S)})
                    return
                if "hostile" in question:
                    answer = hostile_answer()
                elif "footnote" in question:
                    answer = footnote_answer()
                elif "nothing" in question:
                    answer = ABSTAINED
                elif "layout" in question or "مخطط" in question:
                    answer = layout_answer(question, body.get("history") or [])
                else:
                    answer = normal_answer(question)
                self._stream(answer, pause="slow" in question, drop="drop" in question)

            def _stream(self, answer: dict[str, Any], *, pause: bool, drop: bool) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                self._event("passages", [])
                text = answer["answer"]
                deltas = [text[i:i + DELTA_CHARS] for i in range(0, len(text), DELTA_CHARS)]
                half = len(deltas) // 2
                for i, delta in enumerate(deltas):
                    if drop and i == half:
                        return  # the connection closes mid-answer, with no "done" event
                    if pause and i == half:
                        site.release.wait(STREAM_RELEASE_TIMEOUT_S)
                    self._event("delta", {"text": delta})
                for citation in answer["citations"]:
                    self._event("citation", citation)
                self._event("done", answer)

            def _event(self, name: str, data: Any) -> None:
                self.wfile.write(f"event: {name}\r\ndata: {json.dumps(data)}\r\n\r\n".encode())
                self.wfile.flush()

            def _send(self, status: int, content_type: str, body: bytes,
                      headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

        return Handler


def serve(port: int = 0, widget_base: str | None = None) -> Iterator[TestSite]:
    """A started site, stopped when the generator is closed (for pytest fixtures)."""
    with TestSite(port, widget_base) as site:
        yield site
