"""Consistency checks of an index folder, shared by the reliability tests."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa_service.errors import IndexCorruptError
from qa_service.service import QAService
from qa_service.store.vector_index import TEMP_PREFIX, IndexDirectory
from tests.fakes import FakeEncoder
from tests.reliability.workload import child_settings


@dataclass
class FolderState:
    """What a folder held after a crash, before and after the service opened it."""

    documents: list[str]
    published_behind: bool  # the published generation lagged the store (crash before publish)
    temp_leftovers: int


def stored_ids(root: Path) -> list[str]:
    with sqlite3.connect(root / "store.sqlite3") as db:
        return [str(r[0]) for r in db.execute("SELECT id FROM documents ORDER BY id")]


def temp_leftovers(root: Path) -> int:
    gens = root / "generations"
    count = int((root / "CURRENT.tmp").exists())
    return count + (sum(1 for p in gens.iterdir() if p.name.startswith(TEMP_PREFIX))
                    if gens.is_dir() else 0)


def open_and_check(root: Path, sample_queries: int = 3, *, damaged_ok: bool = False) -> FolderState:
    """Open the folder as the service does and assert the index agrees exactly with the store.

    - the published generation, if any, loads and passes its checksum (publishing is atomic)
      unless ``damaged_ok`` (a test damaged it);
    - the index opened by the service holds exactly the store's chunk ids, each once;
    - every stored chunk is found by its own vector, and answers quote the stored text.
    """
    leftovers = temp_leftovers(root)
    store_path = root / "store.sqlite3"
    published = None
    try:
        published = IndexDirectory(root).load_current() if store_path.exists() else None
    except IndexCorruptError:
        if not damaged_ok:
            raise
    with sqlite3.connect(store_path) as db:
        store_generation = int(db.execute(
            "SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])
    behind = published is None or published.manifest.store_generation != store_generation
    service = QAService(child_settings(root), FakeEncoder())
    try:
        generation, chunk_ids, vectors = service.store.all_vectors(service.encoder.dim)
        index = service.index
        held = index.ids()
        assert index.manifest.store_generation == generation
        assert len(np.unique(held)) == len(held), "duplicate chunk ids in the index"
        assert np.array_equal(np.sort(held), np.sort(chunk_ids)), \
            "the index and the store disagree on chunk ids (vectors without chunks, or chunks lost)"
        if len(chunk_ids):
            _, found = index.search(vectors, 1)
            assert np.array_equal(found[:, 0], chunk_ids), "a stored chunk is not retrievable"
        documents = stored_ids(root)
        for doc_id in documents[:: max(1, len(documents) // sample_queries)][:sample_queries]:
            doc = service.store.get_document(doc_id)
            assert doc is not None
            passages, _ = service.search(doc.text, 3)
            assert passages and passages[0].document_id == doc_id
            for p in passages:
                text = service.store.get_document(p.document_id)
                assert text is not None and text.text[p.start:p.end] == p.text
    finally:
        service.close()
    return FolderState(documents, behind, leftovers)
