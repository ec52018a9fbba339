"""LLM composer: a cited answer from any OpenAI-compatible chat-completions server, checked.

Works with vLLM, llama.cpp server, Ollama and OpenAI (``QA_LLM_BASE_URL`` is the API root,
e.g. ``http://127.0.0.1:8080/v1``). The model sees the passages fenced as data (a random
fence per request, so a document cannot close its own fence) and replies with one JSON
object ``{"answer", "short_answer", "abstain"}``. Nothing it says is trusted as is:

* every ``[n]`` marker must name a passage that was actually sent; invented numbers are
  removed, and a sentence left with no valid marker is dropped;
* each claim is cited by the sentence of its passage that best holds the claim's numbers
  and names, quoted verbatim with document offsets; a claim whose numbers appear in none
  of its passages' sentences is dropped, and names that do not appear lower the
  citation's ``support`` score;
* a short answer whose numbers no citation holds is withheld.

HTTP: one total deadline per answer (``llm_timeout_s``) covering every attempt and wait;
429, 5xx and connection failures are retried (``llm_max_retries``) with jittered
exponential backoff, honouring ``Retry-After`` when it fits the deadline. Any failure
raises ``LLMError``; the answer pipeline then falls back to the extractive composer.
"""

from __future__ import annotations

import json
import logging
import random
import re
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final

import httpx

from qa_service.answer.base import ComposeInput, Composition
from qa_service.answer.injection import addresses_a_model
from qa_service.answer.prompts import PromptTemplate, load_prompt
from qa_service.answer.question import stemmed_terms
from qa_service.answer.render import abstention
from qa_service.answer.support import Facts, claim_facts, numbers_supported, support
from qa_service.models import Citation, Passage
from qa_service.settings import Settings
from qa_service.text import split_sentences

log = logging.getLogger(__name__)

RETRYABLE_STATUS: Final = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
BACKOFF_CAP_S: Final = 8.0
MAX_SHORT_ANSWER_CHARS: Final = 120
LANGUAGE_NAMES: Final = {"ar": "Arabic", "en": "English"}
_MARKER_RE: Final = re.compile(r"\[(\d+)\]")
_MARKERS_RUN_RE: Final = re.compile(r"\s*(?:\[\d+\]\s*)+")
_JSON_OBJECT_RE: Final = re.compile(r"\{.*\}", re.DOTALL)
_TERMINAL_RE: Final = re.compile(r"[.!?؟。…]+$")


class LLMError(Exception):
    """The LLM gave no usable answer (unreachable, too slow, refused, or invalid reply)."""


@dataclass(frozen=True)
class LLMConfig:
    """Connection and retry policy (see Settings for the documented defaults)."""

    base_url: str
    model: str
    api_key: str | None = None
    timeout_s: float = 30.0
    max_retries: int = 2
    backoff_s: float = 0.5
    max_tokens: int = 600


@dataclass
class _Claim:
    text: str  # without markers
    cited: list[int] = field(default_factory=list)  # passage numbers as sent (1-based)


class LLMComposer:
    """Composer backed by an OpenAI-compatible chat-completions server (see the module docstring)."""

    name = "llm"

    def __init__(self, config: LLMConfig, prompt: PromptTemplate, *,
                 transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 rng: random.Random | None = None) -> None:
        if config.timeout_s <= 0 or config.max_retries < 0 or config.backoff_s < 0:
            raise ValueError("LLM timeout must be > 0, retries and backoff >= 0")
        self.config = config
        self.prompt = prompt
        self._transport = transport
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._client: httpx.Client | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> LLMComposer:
        if not (settings.llm_base_url and settings.llm_model):
            raise ValueError("the LLM composer needs QA_LLM_BASE_URL and QA_LLM_MODEL")
        config = LLMConfig(
            base_url=settings.llm_base_url, model=settings.llm_model, api_key=settings.llm_api_key,
            timeout_s=settings.llm_timeout_s, max_retries=settings.llm_max_retries,
            backoff_s=settings.llm_backoff_s, max_tokens=settings.llm_max_tokens)
        return cls(config, load_prompt(settings.llm_prompt))

    # -- composing -----------------------------------------------------------------------

    def compose(self, request: ComposeInput) -> Composition:
        lang = "ar" if request.question_lang == "ar" else "en"
        passages = list(request.passages)
        if not passages:
            composition = abstention(lang, confidence=None)
            composition.mode = self.name
            return composition
        messages = self.prompt.render(
            question=request.question, answer_language=LANGUAGE_NAMES[lang],
            today=datetime.now(UTC).date().isoformat(), documents=fence_documents(passages))
        history = [{"role": t.role, "content": t.content} for t in request.history]
        reply = parse_reply(self.complete([messages[0], *history, *messages[1:]]))
        if reply.get("abstain") is True:
            composition = abstention(lang, confidence=None)
            composition.mode = self.name
            return composition
        return build_composition(reply, passages, lang)

    # -- HTTP ------------------------------------------------------------------------------

    def complete(self, messages: list[dict[str, str]]) -> str:
        """The assistant message content, within the deadline, retrying what is worth retrying."""
        cfg = self.config
        url = f"{cfg.base_url.rstrip('/')}/chat/completions"
        body = {"model": cfg.model, "messages": messages, "temperature": 0,
                "max_tokens": cfg.max_tokens, "response_format": {"type": "json_object"}}
        deadline = time.monotonic() + cfg.timeout_s
        problem = "no attempt made"
        for attempt in range(cfg.max_retries + 1):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                response = self._http().post(url, json=body, timeout=remaining)
            except httpx.TimeoutException:
                raise LLMError(f"{url} gave no answer within the {cfg.timeout_s:g}s deadline") from None
            except httpx.TransportError as exc:
                problem, delay = f"cannot reach {url}: {exc}", self._backoff(attempt)
            else:
                if response.status_code == httpx.codes.OK:
                    return _content(response)
                snippet = response.text[:200].strip()
                if response.status_code not in RETRYABLE_STATUS:
                    raise LLMError(f"{url} answered {response.status_code}: {snippet}")
                problem = f"{url} answered {response.status_code}: {snippet}"
                delay = _retry_after(response) or self._backoff(attempt)
            if attempt == cfg.max_retries:
                break
            if time.monotonic() + delay >= deadline:
                raise LLMError(f"{problem}; waiting {delay:.1f}s to retry would pass the deadline")
            log.info("LLM attempt %d failed (%s); retrying in %.2fs", attempt + 1, problem, delay)
            self._sleep(delay)
        raise LLMError(f"{problem} (gave up after {attempt + 1} attempt(s))")

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with equal jitter: half fixed, half random."""
        base = min(BACKOFF_CAP_S, self.config.backoff_s * 2.0 ** attempt)
        return base / 2 + self._rng.uniform(0, base / 2)

    def _http(self) -> httpx.Client:
        if self._client is None:
            headers = {"Authorization": f"Bearer {self.config.api_key}"} if self.config.api_key else {}
            self._client = httpx.Client(headers=headers, transport=self._transport)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


# -- prompt side ---------------------------------------------------------------------------


def fence_documents(passages: Sequence[Passage], fence: str | None = None) -> str:
    """Passages as numbered data blocks between fences a document cannot forge."""
    code = fence or secrets.token_hex(8)
    blocks = []
    for n, p in enumerate(passages, start=1):
        meta = "; ".join(f"{k}: {v}" for k, v in (
            ("source", p.source), ("published", (p.published_at or "")[:10]), ("title", p.title)) if v)
        blocks.append(f"<<<DOCUMENT {n} {code}>>>\n{meta}\n\n{p.text}\n<<<END DOCUMENT {n} {code}>>>")
    return "\n\n".join(blocks)


# -- reply side ----------------------------------------------------------------------------


def _content(response: httpx.Response) -> str:
    try:
        data = response.json()
        content = data["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise LLMError(f"the LLM server's reply is not a chat completion: {response.text[:200]!r}") from None
    if not isinstance(content, str):
        raise LLMError("the LLM server's reply has no text content")
    return content


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds asked for by a Retry-After header (delta-seconds or HTTP date), if any."""
    raw = response.headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def parse_reply(content: str) -> dict[str, Any]:
    """The JSON object of the model's reply (code fences and chatter around it tolerated)."""
    m = _JSON_OBJECT_RE.search(content)
    try:
        reply = json.loads(m.group() if m else content)
    except json.JSONDecodeError as exc:
        raise LLMError(f"the model's reply is not valid JSON ({exc.msg}): {content[:200]!r}") from None
    if not isinstance(reply, dict):
        raise LLMError("the model's reply is not a JSON object")
    if reply.get("abstain") is not True and not isinstance(reply.get("answer"), str):
        raise LLMError("the model's reply has no 'answer' text")
    return reply


def split_claims(answer: str) -> list[_Claim]:
    """Sentences of the answer with the markers that follow each (a leading marker belongs before)."""
    claims: list[_Claim] = []
    for s, e in split_sentences(answer):
        sentence = answer[s:e]
        lead = _MARKERS_RUN_RE.match(sentence)
        if lead and claims:  # "... Iraq. [1]": the marker went past the full stop
            claims[-1].cited += [int(n) for n in _MARKER_RE.findall(lead.group())]
            sentence = sentence[lead.end():]
        text = _MARKERS_RUN_RE.sub(" ", sentence).strip()
        text = re.sub(r"\s+([.!?؟،,;:])", r"\1", text)
        if text:
            claims.append(_Claim(text, [int(n) for n in _MARKER_RE.findall(sentence)]))
    return claims


def build_composition(reply: dict[str, Any], passages: Sequence[Passage], lang: str) -> Composition:
    """Validate the model's claims against the passages sent and cite each verbatim."""
    citations: list[Citation] = []
    by_span: dict[tuple[str, int, int], int] = {}
    parts: list[str] = []
    length = 0
    for claim in split_claims(str(reply.get("answer", ""))):
        valid = list(dict.fromkeys(n for n in claim.cited if 1 <= n <= len(passages)))
        if len(valid) < len(claim.cited):
            log.warning("LLM cited passage(s) %s that were not sent; removed",
                        sorted(set(claim.cited) - set(valid)))
        facts = claim_facts(claim.text)
        quotes = [q for q in (_best_quote(passages[n - 1], facts, claim.text) for n in valid) if q]
        if not quotes:
            log.warning("dropping an unsupported LLM claim: %r", claim.text[:120])
            continue
        numbers: list[int] = []
        for p, s, e in quotes:
            key = (p.document_id, p.start + s, p.start + e)
            if key not in by_span:
                by_span[key] = len(citations) + 1
                citations.append(Citation(
                    n=by_span[key], document_id=p.document_id, chunk_id=p.chunk_id, title=p.title,
                    url=p.url, source=p.source, published_at=p.published_at, lang=p.lang,
                    quote=p.text[s:e], start=p.start + s, end=p.start + e, answer_start=None,
                    answer_end=None, score=round(p.score, 4),
                    support=_rounded(support(facts, p.text[s:e], p.published_at))))
            numbers.append(by_span[key])
        body, end = _TERMINAL_RE.split(claim.text)[0], _TERMINAL_RE.search(claim.text)
        start = length + (1 if parts else 0)
        for n in numbers:
            c = citations[n - 1]
            if c.answer_start is None:
                c.answer_start, c.answer_end = start, start + len(body)
        part = f"{body} " + "".join(f"[{n}]" for n in dict.fromkeys(numbers)) + (end.group() if end else "")
        parts.append(part)
        length = start + len(part)
    if not citations:
        raise LLMError("no claim of the model's answer is supported by the passages sent")
    return Composition(" ".join(parts), _checked_short_answer(reply, citations), lang,
                       abstained=False, citations=citations, mode="llm")


def _best_quote(p: Passage, facts: Facts, claim: str) -> tuple[Passage, int, int] | None:
    """The sentence of ``p`` holding all the claim's numbers, most like the claim; None if none."""
    terms = set(stemmed_terms(claim))
    best: tuple[float, int, int] | None = None
    for s, e in split_sentences(p.text):
        sentence = p.text[s:e]
        if addresses_a_model(sentence) or not numbers_supported(facts, sentence, p.published_at):
            continue
        score = (support(facts, sentence, p.published_at) or 0.0) + len(
            terms & set(stemmed_terms(sentence))) / (1 + len(terms))
        if best is None or score > best[0]:
            best = (score, s, e)
    return (p, best[1], best[2]) if best else None


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _checked_short_answer(reply: dict[str, Any], citations: list[Citation]) -> str | None:
    short = reply.get("short_answer")
    if not isinstance(short, str) or not short.strip() or len(short) > MAX_SHORT_ANSWER_CHARS:
        return None
    facts = claim_facts(short)
    if any(numbers_supported(facts, c.quote, c.published_at) for c in citations):
        return short.strip()
    return None
