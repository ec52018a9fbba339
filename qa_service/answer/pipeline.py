"""Which composer answers, what happens when it fails, and the verification every answer passes.

``mode: auto`` uses the LLM composer when one is configured, else the extractive one (the
trained span reader, or with ``QA_READER=false`` the heuristic sentence scorer);
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
from pathlib import Path

from qa_service.answer.base import ComposeInput, Composer, Composition
from qa_service.answer.crosslingual import TokenVectors
from qa_service.answer.extractive import ExtractiveComposer, abstention
from qa_service.answer.llm import LLMComposer, LLMError
from qa_service.answer.reader import LazyReader, ReaderComposer
from qa_service.answer.verify import CitationProblem, verify_citations
from qa_service.settings import DEFAULT_MODEL, Settings

log = logging.getLogger(__name__)


def default_composer(settings: Settings, *, abstain: bool = True) -> Composer:
    """The reader composer (``QA_READER``, on by default), else the heuristic extractive one."""
    return reader_composer(settings, abstain=abstain) if settings.reader else \
        extractive_composer(settings, abstain=abstain)


def reader_composer(settings: Settings, *, abstain: bool = True) -> ReaderComposer:
    """The shipped span reader over the default model's word embeddings (built when missing)."""
    from qa_service.embedding.provision import resolve_default_model
    from qa_service.embedding.sentence_transformer import cpu_has_fast_bf16
    from qa_service.reader.runtime import Reader

    reader = LazyReader(lambda: Reader(resolve_default_model(settings), settings.model_cache,
                                       threads=settings.torch_threads, bf16=cpu_has_fast_bf16()))
    if not abstain:
        return ReaderComposer(reader, -math.inf, window_chars=settings.reader_window_chars)
    return ReaderComposer(reader, settings.min_reader_score,
                          min_score_cross_lingual=settings.min_reader_score_cross_lingual,
                          window_chars=settings.reader_window_chars)


def extractive_composer(settings: Settings, *, abstain: bool = True) -> ExtractiveComposer:
    """The extractive composer, matching across languages with the embedding model's token vectors.

    ``abstain=False`` (benchmarks) never abstains, so thresholds can be calibrated afterwards.
    """
    if not abstain:
        return ExtractiveComposer(-math.inf, TokenVectors.from_model_dir(_model_dir(settings)))
    return ExtractiveComposer(settings.min_answer_score, TokenVectors.from_model_dir(_model_dir(settings)),
                              min_score_cross_lingual=settings.min_answer_score_cross_lingual)


def _model_dir(settings: Settings) -> Path:
    """The local folder of the configured embedding model (it may not exist)."""
    if settings.embedding_model == DEFAULT_MODEL:
        from qa_service.embedding.provision import default_model_dir

        return default_model_dir(settings)
    return Path(settings.embedding_model).expanduser()


class AnswerPipeline:
    """Composer selection, fallback and verification (the service's one entry point to answering)."""

    def __init__(self, extractive: Composer, llm: LLMComposer | None = None) -> None:
        self.extractive = extractive
        self.llm = llm

    @classmethod
    def from_settings(cls, settings: Settings, extractive: Composer | None = None) -> AnswerPipeline:
        llm = LLMComposer.from_settings(settings) if settings.llm_configured else None
        return cls(extractive or default_composer(settings), llm)

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
