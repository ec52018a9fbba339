"""Which composer answers, what happens when it fails, and the verification every answer passes.

``mode: auto`` uses the LLM composer when one is configured, else the extractive one (the
trained span reader, answer/reader.py);
``llm`` insists on the LLM (the service refuses it when none is configured); ``extractive``
never calls out. An LLM that fails (unreachable, too slow, refusing, or replying with
nothing that survives validation) is replaced by the extractive answer, marked
``fallback: true``. Every answer of every mode passes ``verify_citations`` before it
leaves; an answer that does not is never shown (the extractive answer, or an abstention,
takes its place).
"""

from __future__ import annotations

import logging
import math

from qa_service.answer.base import ComposeInput, Composer, Composition
from qa_service.answer.llm import LLMComposer, LLMError
from qa_service.answer.reader import LazyReader, ReaderComposer, SpanReading
from qa_service.answer.render import abstention
from qa_service.answer.verify import CitationProblem, verify_citations
from qa_service.settings import Settings

log = logging.getLogger(__name__)


def load_reader(settings: Settings) -> SpanReading:
    """The shipped span reader over the default model's word embeddings (built when missing)."""
    from qa_service.embedding.provision import resolve_default_model
    from qa_service.reader.runtime import Reader

    return Reader(resolve_default_model(settings), settings.model_cache,
                  threads=settings.torch_threads, precision=settings.reader_precision)


def reader_composer(settings: Settings, *, abstain: bool = True) -> ReaderComposer:
    """The reader composer, its reader loaded on first use; ``abstain=False`` (benchmarks) never
    abstains, so thresholds can be calibrated afterwards."""
    reader = LazyReader(lambda: load_reader(settings))
    if not abstain:
        return ReaderComposer(reader, -math.inf, window_chars=settings.reader_window_chars)
    return ReaderComposer(reader, settings.min_reader_score,
                          min_score_cross_lingual=settings.min_reader_score_cross_lingual,
                          window_chars=settings.reader_window_chars)


class AnswerPipeline:
    """Composer selection, fallback and verification (the service's one entry point to answering)."""

    def __init__(self, extractive: Composer, llm: LLMComposer | None = None) -> None:
        self.extractive = extractive
        self.llm = llm

    @classmethod
    def from_settings(cls, settings: Settings, extractive: Composer | None = None) -> AnswerPipeline:
        llm = LLMComposer.from_settings(settings) if settings.llm_configured else None
        return cls(extractive or reader_composer(settings), llm)

    def compose(self, request: ComposeInput, mode: str = "auto") -> Composition:
        """The verified answer for ``request`` in ``mode`` ("auto", "extractive" or "llm")."""
        if self.llm is not None and mode in ("auto", "llm"):
            try:
                return self._verified(self.llm.compose(request), request)
            except (LLMError, CitationProblem) as exc:
                log.warning("LLM answer replaced by the extractive one: %s", exc)
                composition = self._extractive(request)
                composition.fallback = True
                return composition
        return self._extractive(request)

    def _extractive(self, request: ComposeInput) -> Composition:
        try:
            return self._verified(self.extractive.compose(request), request)
        except CitationProblem as exc:  # a composer bug must never reach a reader
            log.error("dropping an unverifiable extractive answer: %s", exc)
            composition = abstention(request.question_lang, confidence=None)
            composition.fallback = True
            return composition

    @staticmethod
    def _verified(composition: Composition, request: ComposeInput) -> Composition:
        verify_citations(composition.answer, composition.citations, [*request.passages, *request.reserve],
                         abstained=composition.abstained)
        return composition

    def warm_up(self) -> None:
        """Load what the first question would otherwise wait for (the reader)."""
        warm_up = getattr(self.extractive, "warm_up", None)
        if warm_up is not None:
            warm_up()

    def close(self) -> None:
        if self.llm is not None:
            self.llm.close()
