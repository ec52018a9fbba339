"""QAService: the one object that ingests, searches and answers. API and CLI are thin over it."""

from __future__ import annotations

import errno
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

import faiss
import numpy as np

from qa_service.answer.base import ComposeInput, Composer, SentenceLookup
from qa_service.answer.followup import Resolution, resolve
from qa_service.answer.layout import answer_blocks
from qa_service.answer.pipeline import AnswerPipeline
from qa_service.answer.reader import READ_DEPTH
from qa_service.embedding.base import Encoder
from qa_service.errors import BadInputError, IndexCorruptError, StorageError, WriterBusyError
from qa_service.ingest.chunker import ChunkerConfig, chunk_spans
from qa_service.ingest.passages import embedding_text
from qa_service.ingest.sentences import embed_sentences
from qa_service.models import (
    Answer,
    AskRequest,
    Chunk,
    Document,
    Filters,
    FollowUp,
    Passage,
    Timings,
)
from qa_service.retrieval import Retriever
from qa_service.retrieval.backend import EmbeddedSearch, SearchBackend
from qa_service.samples import sample_documents
from qa_service.settings import Settings
from qa_service.store.ann import AnnPolicy, use_search_threads
from qa_service.store.base import DocumentStore
from qa_service.store.sentence_vectors import SentenceVectors
from qa_service.store.sqlite_store import PreparedDocument, Store, chunk_id, content_hash
from qa_service.store.vector_index import (
    IndexDirectory,
    Manifest,
    VectorIndex,
    index_from_vectors,
    storage_error,
    updated_index,
)
from qa_service.text import detect_language, has_letters_or_digits

log = logging.getLogger(__name__)

INGEST_BATCH_DOCUMENTS = 64
# Characters of text per batch: bounds the working memory of chunking and embedding, whatever
# the size of the upload (news batches of 64 articles stay well under it).
INGEST_BATCH_CHARS = 200_000
_T = TypeVar("_T")
_R = TypeVar("_R")
RELOAD_CHECK_INTERVAL_S = 1.0
# A follow-up that points back: weight of its anchor's query vector (the earlier question that names
# the subject) added to its own.
ANCHOR_WEIGHT = 1.0


@dataclass
class IngestReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    chunks: int = 0
    sentences: int = 0  # sentences stored with vectors (QA_SENTENCE_VECTORS), backfilled ones included
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def chunks_per_second(self) -> float:
        return self.chunks / self.seconds if self.seconds else 0.0


class QAService:
    """Holds the store, encoder, current index generation and composer.

    Two backends: embedded (SQLite store + FAISS generations in ``QA_INDEX_DIR``, the default)
    and PostgreSQL + pgvector (``QA_STORE_URL``), where the database is store and index at once
    and there is no generation to publish (``self.index_dir`` is None).
    """

    def __init__(self, settings: Settings, encoder: Encoder, *,
                 composer: Composer | None = None) -> None:
        self.settings = settings
        self.encoder = encoder
        self.chunker = ChunkerConfig(max_tokens=settings.chunk_max_tokens)
        self.ann_policy = AnnPolicy(min_vectors=settings.ann_min_vectors)
        use_search_threads()
        backend: SearchBackend
        self.index_dir: IndexDirectory | None = None
        if settings.store_url:
            try:  # psycopg is an optional extra
                from qa_service.retrieval.pg import PgSearch
                from qa_service.store.pg_store import open_pg_store
            except ImportError as exc:
                raise BadInputError(f"QA_STORE_URL needs psycopg ({exc}): pip install 'qa-service[postgres]'"
                                    ) from exc

            pg = open_pg_store(settings.store_url, settings.store_read_urls)
            self.store: DocumentStore = pg
            backend = PgSearch(pg, settings.hnsw_ef_search, settings.ann_min_vectors)
        else:
            self.store = Store(settings.store_path)
            self.index_dir = IndexDirectory(settings.index_dir)
            backend = EmbeddedSearch(self.store, lambda: self.index)
        # Composer selection (auto/extractive/llm), LLM fallback and citation verification.
        self.answers = AnswerPipeline.from_settings(settings, composer)
        self._check_model()
        started = time.perf_counter()
        self._index = self._open_index() if self.index_dir is not None else None
        self.index_open_seconds = time.perf_counter() - started
        self._reload_lock = threading.Lock()
        self._last_reload_check = time.monotonic()
        self.retriever = Retriever(backend)

    # -- index lifecycle ---------------------------------------------------------------

    def _check_model(self) -> None:
        stored = self.store.get_meta("model_id")
        if stored is None:
            return
        if stored != self.encoder.model_id or self.store.get_meta("dim") != str(self.encoder.dim):
            raise IndexCorruptError(
                f"{self.collection_name} was built with model {stored!r}, but the configured "
                f"model is {self.encoder.model_id!r}. Set QA_EMBEDDING_MODEL back, or point "
                "QA_INDEX_DIR (QA_STORE_URL) at a new folder (database) and ingest again."
            )

    @property
    def collection_name(self) -> str:
        """Where the collection lives, for messages (a database URL without its password)."""
        if self.settings.store_url:
            from qa_service.store.pg_store import redacted

            return redacted(self.settings.store_url)
        return str(self.settings.index_dir)

    def index_summary(self) -> tuple[str, int, int]:
        """(name, vectors, store generation) of what serves searches now."""
        if self.index_dir is None:
            documents_chunks = self.store.counts()
            generation = self.store.generation()
            return f"pg-g{generation:010d}", documents_chunks[1], generation
        index = self.index
        return index.manifest.name, index.size, index.manifest.store_generation

    def _open_index(self) -> VectorIndex:
        """The current generation if it matches the store; else rebuilt from the store.

        The store is the source of truth: a generation that is missing, damaged, behind the
        store or built for another model is never served. Rebuilding publishes under the
        writer lock; when another process holds it (it is writing and will publish), the
        rebuilt index serves from memory until that generation appears.
        """
        assert self.index_dir is not None
        index = self._verified_current()
        if index is not None:
            return index
        try:
            with self.index_dir.writer(self.settings.writer_wait_s):
                return self._verified_current(quiet=True) or self._rebuild()
        except WriterBusyError:
            log.warning("another process is writing to %s; serving an index rebuilt in memory "
                        "until it publishes", self.settings.index_dir)
            return VectorIndex(*self._build_from_store())

    def _verified_current(self, *, quiet: bool = False) -> VectorIndex | None:
        """The published generation when it agrees with the store and configuration."""
        warn = log.debug if quiet else log.warning
        assert self.index_dir is not None
        try:
            index = self.index_dir.load_current()
        except IndexCorruptError as exc:
            warn("%s; rebuilding the index from the store", exc.detail)
            return None
        generation = self.store.generation()
        if index is None:
            if generation > 0:
                warn("no index generation in %s; building it from the store",
                     self.settings.index_dir)
            return None
        manifest = index.manifest
        chunks = self.store.counts()[1]
        problem = None
        if manifest.model_id != self.encoder.model_id or manifest.dim != self.encoder.dim:
            problem = f"was built with model {manifest.model_id!r} (dim {manifest.dim})"
        elif manifest.store_generation != generation:
            problem = f"is at store generation {manifest.store_generation}, the store at {generation}"
        elif manifest.count != chunks:
            problem = f"holds {manifest.count} vectors, the store {chunks} chunks"
        if problem is None:
            return index
        warn("index generation %s %s; rebuilding from the store", manifest.name, problem)
        return None

    def _build_from_store(self) -> tuple[faiss.Index, Manifest]:
        assert isinstance(self.store, Store)
        generation, ids, vectors = self.store.all_vectors(self.encoder.dim)
        built = index_from_vectors(self.encoder.dim, ids, vectors, self.ann_policy)
        manifest = Manifest(name=f"memory-g{generation:010d}", store_generation=generation,
                            model_id=self.encoder.model_id, dim=self.encoder.dim,
                            count=int(built.ntotal), sha256="", chunker=self.chunker.as_dict())
        return built, manifest

    def _rebuild(self) -> VectorIndex:
        """Under the writer lock: a new generation from every vector in the store."""
        built, manifest = self._build_from_store()
        assert self.index_dir is not None
        index = self.index_dir.publish(built, store_generation=manifest.store_generation,
                                       model_id=self.encoder.model_id, chunker=self.chunker.as_dict())
        log.info("published index generation %s built from the store (%d chunks)",
                 index.manifest.name, index.size)
        return index

    def _writer_base(self) -> VectorIndex:
        """Under the writer lock: the generation that matches the store, to update incrementally."""
        current = self._index
        assert current is not None and self.index_dir is not None
        if (self.index_dir.current_name() != current.manifest.name
                or self.store.generation() != current.manifest.store_generation):
            self._index = current = self._verified_current() or self._rebuild()
        return current

    @property
    def index(self) -> VectorIndex:
        """The live generation; picks up newer generations published by other processes."""
        if self._index is None or self.index_dir is None:
            raise BadInputError("a PostgreSQL store has no FAISS index generation")
        now = time.monotonic()
        if now - self._last_reload_check >= RELOAD_CHECK_INTERVAL_S:
            self._last_reload_check = now
            name = self.index_dir.current_name()
            if name is not None and name != self._index.manifest.name:
                self._reload()
        return self._index

    def _reload(self) -> None:
        with self._reload_lock:
            current = self._index
            assert current is not None and self.index_dir is not None
            try:
                loaded = self.index_dir.load_current()
            except IndexCorruptError as exc:
                log.warning("keeping generation %s: %s", current.manifest.name, exc.detail)
                return
            # Only move forward: a writer in this process may have swapped in a newer one meanwhile.
            newest = current.manifest.store_generation
            if loaded is not None and loaded.manifest.store_generation >= newest:
                self._index = loaded

    # -- ingestion ---------------------------------------------------------------------

    def ingest(self, documents: Iterable[Document], progress: Callable[[int], None] | None = None,
               stop: Callable[[], bool] | None = None) -> IngestReport:
        """Store new and changed documents durably, then publish one new index generation.

        ``stop()`` is asked between batches (the client left): when true, what is stored so
        far is published and the rest is not ingested.
        """
        report = IngestReport()
        started = time.perf_counter()
        removed: list[int] = []
        added_ids: list[np.ndarray] = []
        added_vecs: list[np.ndarray] = []
        with self._writing() as base:
            for batch in _batches(documents, INGEST_BATCH_DOCUMENTS, INGEST_BATCH_CHARS):
                if stop is not None and stop():
                    log.info("ingestion stopped before its end: the client left")
                    break
                prepared, backfill = self._prepare(batch, report)
                if prepared:
                    self._remember_model()
                    result = _storing(self.store.write, prepared)
                    removed += result.removed_ids
                    added_ids.append(result.added_ids)
                    added_vecs.append(result.added_vectors)
                if backfill:
                    _storing(self.store.add_sentences, backfill)
                if progress is not None:
                    progress(len(batch))
            if base is not None and (added_ids or removed):
                self._publish(base, removed, added_ids, added_vecs)
        report.seconds = time.perf_counter() - started
        return report

    def has_document(self, doc_id: str) -> bool:
        return bool(self.store.content_hashes([doc_id]))

    def delete(self, doc_id: str) -> bool:
        if not self.has_document(doc_id):  # unknown: no need to wait for the writer
            return False
        with self._writing() as base:
            result = _storing(self.store.delete_document, doc_id)
            if result is None:
                return False
            if base is not None:
                self._publish(base, result.removed_ids, [], [])
        return True

    @contextmanager
    def _writing(self) -> Iterator[VectorIndex | None]:
        """Embedded: hold the writer lock, yielding the generation to update. PostgreSQL: writers
        run at once in their own transactions, and the database is the index (None)."""
        if self.index_dir is None:
            yield None
            return
        with self.index_dir.writer(self.settings.writer_wait_s):
            yield self._writer_base()

    def _publish(self, base: VectorIndex, removed: list[int], added_ids: list[np.ndarray],
                 added_vecs: list[np.ndarray]) -> None:
        dim = self.encoder.dim
        ids = np.concatenate(added_ids) if added_ids else np.zeros(0, np.int64)
        vecs = np.concatenate(added_vecs) if added_vecs else np.zeros((0, dim), np.float32)
        new = updated_index(base, dim, removed, ids, vecs, self.ann_policy)
        assert self.index_dir is not None
        try:
            self._index = self.index_dir.publish(
                new, store_generation=self.store.generation(), model_id=self.encoder.model_id,
                chunker=self.chunker.as_dict())
        except StorageError as exc:
            # The store committed; the old generation keeps serving and the next write or
            # restart rebuilds the index from the store.
            raise type(exc)(f"{exc.detail}. The change is saved in the store and becomes "
                            "searchable after the next successful write or restart.") from exc

    def _remember_model(self) -> None:
        if self.store.get_meta("model_id") is None:
            self.store.set_meta("model_id", self.encoder.model_id)
            self.store.set_meta("dim", str(self.encoder.dim))

    def _prepare(self, batch: list[Document], report: IngestReport
                 ) -> tuple[list[PreparedDocument], list[tuple[int, SentenceVectors]]]:
        """New and changed documents ready to write, and sentence vectors missing from stored chunks."""
        latest = {doc.id: doc for doc in batch}  # the last version of a repeated id wins
        known = self.store.content_hashes(list(latest))
        todo: list[tuple[Document, str, list[Chunk]]] = []
        unchanged: list[Document] = []
        for doc in latest.values():
            digest = content_hash(doc)
            if known.get(doc.id) == digest:
                report.unchanged += 1
                unchanged.append(doc)
                continue
            if doc.id in known:
                report.updated += 1
            else:
                report.added += 1
            spans = chunk_spans(doc.text, self.encoder.count_tokens, self.chunker)
            chunks = [Chunk(id=chunk_id(digest, s, e), document_id=doc.id, ord=i, start=s, end=e)
                      for i, (s, e) in enumerate(spans)]
            todo.append((doc, digest, chunks))
        texts = [embedding_text(doc, c) for doc, _, chunks in todo for c in chunks]
        vectors = self.encoder.encode_passages(texts)
        sentences, backfill = self._sentence_vectors(todo, unchanged, report)
        prepared: list[PreparedDocument] = []
        offset = 0
        for doc, digest, chunks in todo:
            end = offset + len(chunks)
            prepared.append(PreparedDocument(doc, digest, chunks, vectors[offset:end],
                                             None if sentences is None else sentences[offset:end]))
            offset = end
        report.chunks += offset
        return prepared, backfill

    def _sentence_vectors(self, todo: list[tuple[Document, str, list[Chunk]]], unchanged: list[Document],
                          report: IngestReport
                          ) -> tuple[list[SentenceVectors] | None, list[tuple[int, SentenceVectors]]]:
        """With QA_SENTENCE_VECTORS: the sentence vectors of the new chunks, and of the stored
        chunks of unchanged documents that lack them (ingested while the setting was off), so
        re-ingesting a collection fills them in without rewriting it. One encoder call."""
        if not self.settings.sentence_vectors:
            return None, []
        by_id = {doc.id: doc for doc in unchanged}
        missing = self.store.chunks_without_sentences(list(by_id)) if by_id else []
        texts = [doc.text[c.start:c.end] for doc, _, chunks in todo for c in chunks]
        fresh = len(texts)
        texts += [by_id[doc_id].text[start:end] for _, doc_id, start, end in missing]
        embedded = embed_sentences(texts, self.encoder)
        report.sentences += sum(len(s.spans) for s in embedded)
        backfill = [(row[0], s) for row, s in zip(missing, embedded[fresh:], strict=True)]
        return embedded[:fresh], backfill

    # -- questions ---------------------------------------------------------------------

    def search(self, query: str, k: int, filters: Filters | None = None) -> tuple[list[Passage], Timings]:
        self._validate_question(query, k)
        self._validate_filters(filters)
        passages, timings, _ = self._search(query, k, filters)
        return passages, timings

    def _search(self, query: str, k: int, filters: Filters | None, prior: Sequence[str] = (),
                timings: Timings | None = None, anchored: tuple[str, str] | None = None
                ) -> tuple[list[Passage], Timings, np.ndarray]:
        """Passages, timings and the query vector (the reader finds its windows with it).

        ``anchored`` (question, anchor): a follow-up that points back is searched with the sum of its
        own query vector and its anchor's (cached from the earlier turn), not by embedding ``query``.
        """
        timings = timings if timings is not None else Timings()
        t0 = time.perf_counter()
        if anchored is None:
            qvec = self.encoder.encode_queries([query])
        else:
            own, anchor = self.encoder.encode_queries(list(anchored))
            mixed = own + ANCHOR_WEIGHT * anchor
            qvec = (mixed / max(float(np.linalg.norm(mixed)), 1e-12)).astype(np.float32)[None, :]
        t1 = time.perf_counter()
        passages = self.retriever.retrieve(query, qvec, k, filters, prior=prior)
        t2 = time.perf_counter()
        timings.embed = _ms(t1 - t0)
        timings.retrieve = _ms(t2 - t1)
        return passages, timings, qvec[0]

    def sentence_lookup(self) -> SentenceLookup | None:
        """Where the reader reads sentence vectors; None when QA_SENTENCE_VECTORS is off."""
        return self.store.sentences if self.settings.sentence_vectors else None

    def document_texts(self, document_ids: Sequence[str]) -> list[str]:
        """The stored text of each of ``document_ids`` that exists."""
        return [doc.text for doc in map(self.store.get_document, document_ids) if doc is not None]

    def ask(self, request: AskRequest) -> Answer:
        started = time.perf_counter()
        question = request.question.strip()
        self._validate_question(question, request.top_k)
        self._validate_filters(request.filters)
        if request.mode == "llm" and not self.settings.llm_configured:
            raise BadInputError("mode 'llm' needs an LLM: set QA_LLM_BASE_URL and QA_LLM_MODEL")
        timings = Timings()
        t_history = time.perf_counter()
        resolution = resolve(question, request.history, self.document_texts) if request.history else None
        timings.followup = _ms(time.perf_counter() - t_history)
        followup = resolution if resolution is not None and resolution.followup else None
        query = followup.query if followup else question
        prior = followup.prior_documents if followup else ()
        anchored = (question, followup.anchor) if followup and followup.anchor != followup.query else None
        # The reader may read below the top (a question about the present: answer/reader.py).
        depth = max(request.top_k, READ_DEPTH)
        found, timings, qvec = self._search(query, depth, request.filters, prior, timings, anchored)
        passages, reserve = found[:request.top_k], found[request.top_k:]
        t0 = time.perf_counter()
        lang = detect_language(question)
        composition = self.answers.compose(
            ComposeInput(question, lang, passages, request.history, query_vector=qvec,
                         sentence_vectors=self.sentence_lookup(),
                         resolved_question=followup.question if followup else None, reserve=reserve),
            request.mode)
        timings.compose = _ms(time.perf_counter() - t0)
        cited = {c.chunk_id for c in composition.citations}
        passages += [p for p in reserve if p.chunk_id in cited]  # read below the top: listed after it
        timings.total = _ms(time.perf_counter() - started)
        return Answer(
            answer=composition.answer, short_answer=composition.short_answer,
            answer_language=composition.answer_language, abstained=composition.abstained,
            citations=composition.citations, passages=passages, timings_ms=timings,
            mode=composition.mode, fallback=composition.fallback,
            blocks=answer_blocks(composition.answer, composition.citations, composition.answer_language),
            short_answer_display=composition.short_display,
            followup=_followup_info(resolution),
        )

    def _validate_question(self, question: str, k: int) -> None:
        if not question.strip():
            raise BadInputError("the question is empty")
        if not has_letters_or_digits(question):
            raise BadInputError("the question has no letters or digits (only spaces, control, "
                                "zero-width, direction or punctuation characters); ask in words")
        if len(question) > self.settings.max_question_chars:
            raise BadInputError(
                f"the question has {len(question)} characters; the limit is "
                f"{self.settings.max_question_chars}")
        if not 1 <= k <= self.settings.max_top_k:
            raise BadInputError(f"top_k must be between 1 and {self.settings.max_top_k}, got {k}")

    def _validate_filters(self, filters: Filters | None) -> None:
        sources = len(filters.source or []) if filters is not None else 0
        if sources > self.settings.max_filter_sources:
            raise BadInputError(f"the source filter has {sources} entries; the limit is "
                                f"{self.settings.max_filter_sources}")

    def close(self) -> None:
        self.answers.close()
        self.store.close()


def _followup_info(resolution: Resolution | None) -> FollowUp | None:
    if resolution is None:
        return None
    return FollowUp(resolved=resolution.followup, reason=resolution.reason, question=resolution.question,
                    query=resolution.query, carried=list(resolution.carried),
                    prior_documents=list(resolution.prior_documents))


def ingest_sample(service: QAService) -> IngestReport:
    """Ingest the bundled sample (unchanged documents are skipped, so this is cheap to repeat)."""
    return service.ingest(sample_documents())


def ingest_sample_if_empty(service: QAService) -> None:
    """The demo (``serve --sample``): fill an empty index with the bundled sample."""
    documents, _ = service.store.counts()
    if documents == 0:
        sample = sample_documents()
        log.warning("ingesting the bundled sample (%d documents) into the empty index %s: about a "
                    "minute on 2 cores, once", len(sample), service.collection_name)
        done = 0

        def progress(count: int) -> None:
            nonlocal done
            done += count
            log.warning("… %d of %d documents", done, len(sample))

        report = service.ingest(sample, progress=progress)
        log.warning("ingested the bundled sample: %d documents, %d chunks in %.1fs",
                    report.added, report.chunks, report.seconds)


def _batches(items: Iterable[Document], size: int, chars: int) -> Iterable[list[Document]]:
    """Batches of at most ``size`` documents and about ``chars`` characters (one may overflow it)."""
    batch: list[Document] = []
    batch_chars = 0
    for item in items:
        if batch and batch_chars + len(item.text) > chars:
            yield batch
            batch, batch_chars = [], 0
        batch.append(item)
        batch_chars += len(item.text)
        if len(batch) >= size:
            yield batch
            batch, batch_chars = [], 0
    if batch:
        yield batch


def _storing(write: Callable[[_T], _R], arg: _T) -> _R:
    """Run one store transaction; a full or failing disk becomes a clear StorageError."""
    try:
        return write(arg)
    except sqlite3.OperationalError as exc:
        message = str(exc)
        if "full" in message:
            raise storage_error(OSError(errno.ENOSPC, message), "writing the store") from exc
        if "I/O" in message:
            raise storage_error(OSError(errno.EIO, message), "writing the store") from exc
        raise


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


__all__ = ["IngestReport", "QAService"]
