"""The vector index kind follows the collection's size; IVF keeps exact-index semantics."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import numpy.typing as npt
import pytest

from qa_service.models import Document, Filters
from qa_service.service import QAService
from qa_service.settings import Settings
from qa_service.store import ann
from tests.conftest import NEVER_ABSTAIN
from tests.fakes import FakeEncoder

DIM = 32
POLICY = ann.AnnPolicy(min_vectors=1000)


def clustered(n: int, seed: int = 0) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """Unit vectors around 40 centres (ids start at 500, as chunk rowids might)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((40, DIM))
    x = centres[rng.integers(0, 40, n)] + 0.6 * rng.standard_normal((n, DIM))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return np.arange(500, 500 + n, dtype=np.int64), x.astype(np.float32)


NO_IDS = np.zeros(0, np.int64)
NO_VECTORS = np.zeros((0, DIM), np.float32)


def test_small_collections_stay_exact_and_large_ones_get_ivf_with_high_recall() -> None:
    ids, x = clustered(3000)
    assert ann.kind(ann.build(DIM, ids[:900], x[:900], POLICY)) == ann.EXACT
    ivf = ann.build(DIM, ids, x, POLICY)
    assert ann.kind(ivf) == ann.IVF
    exact = ann.build(DIM, ids, x, ann.AnnPolicy(min_vectors=0))
    queries = ann.question_like_probes(x, 200)
    _, truth = exact.search(queries, 10)
    _, found = ivf.search(queries, 10)
    assert ann.recall_at_k(found, truth, 10) >= 0.98
    assert set(ann.index_ids(ivf).tolist()) == set(ids.tolist())


def test_removed_chunks_never_come_back_and_the_rest_keep_their_ids() -> None:
    ids, x = clustered(3000)
    ivf = ann.build(DIM, ids, x, POLICY)
    removed = ids[::7]
    left = ann.updated(ivf, DIM, removed.tolist(), NO_IDS, NO_VECTORS, POLICY)
    assert ivf.ntotal == 3000  # the published generation is never touched
    assert left.ntotal == 3000 - len(removed)
    _, found = left.search(x, 1)
    assert not np.isin(found, removed).any()
    kept = ~np.isin(ids, removed)
    # A stored vector finds itself under its own id: ids were not shifted by the removal.
    assert (found[kept, 0] == ids[kept]).mean() >= 0.98


def test_the_kind_follows_the_size_as_chunks_come_and_go() -> None:
    ids, x = clustered(3000)
    index = ann.build(DIM, ids[:500], x[:500], POLICY)
    index = ann.updated(index, DIM, [], ids[500:], x[500:], POLICY)
    assert ann.kind(index) == ann.IVF and index.ntotal == 3000
    index = ann.updated(index, DIM, ids[:2500].tolist(), NO_IDS, NO_VECTORS, POLICY)
    assert ann.kind(index) == ann.EXACT
    assert sorted(ann.index_ids(index).tolist()) == ids[2500:].tolist()


def test_filtered_search_is_exact_among_the_allowed_chunks_for_every_kind() -> None:
    ids, x = clustered(3000)
    allowed = ids[::50]
    query = ann.question_like_probes(x, 1)
    want = allowed[np.argsort(-(x[::50] @ query[0]))[:5]]
    for policy in (POLICY, ann.AnnPolicy(min_vectors=0)):
        index = ann.build(DIM, ids, x, policy)
        params = ann.exact_search_parameters(index, faiss.IDSelectorBatch(allowed))
        _, found = index.search(query, 5, params=params)
        assert found[0].tolist() == want.tolist()


def test_the_calibrated_probe_count_survives_serialisation() -> None:
    ids, x = clustered(3000)
    ivf = ann.build(DIM, ids, x, POLICY)
    nprobe = faiss.downcast_index(ivf).nprobe
    assert 1 <= nprobe <= faiss.downcast_index(ivf).nlist
    again = faiss.deserialize_index(faiss.serialize_index(ivf))
    assert ann.kind(again) == ann.IVF and faiss.downcast_index(again).nprobe == nprobe


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="min_vectors"):
        ann.AnnPolicy(min_vectors=-1)


def _documents(n: int) -> list[Document]:
    topics = ["oil prices rose", "the election results", "football match scores", "troops in Iraq"]
    return [Document(id=f"d{i}", title=f"story {i}", lang="en", source="A" if i % 2 else "B",
                     text=f"{topics[i % 4]} number {i}. More words about {topics[(i + 1) % 4]} here.")
            for i in range(n)]


def test_the_service_publishes_ivf_beyond_the_threshold_and_serves_filters_and_deletes(
        tmp_path: Path) -> None:
    settings = Settings(index_dir=tmp_path / "index", model_cache=tmp_path / "models",
                        min_reader_score=NEVER_ABSTAIN, ann_min_vectors=60)
    service = QAService(settings, FakeEncoder())
    service.ingest(_documents(80))
    assert service.index.manifest.index_type == ann.IVF
    passages, _ = service.search("oil prices number 3", 5, Filters(source=["A"]))
    assert passages and all(p.source == "A" for p in passages)
    assert service.delete("d3")
    passages, _ = service.search("oil prices number 3", 20)
    assert all(p.document_id != "d3" for p in passages)
    service.close()
    reopened = QAService(settings, FakeEncoder())  # loads the published IVF generation as it is
    assert reopened.index.manifest.index_type == ann.IVF
    assert sorted(reopened.index.ids().tolist()) == sorted(
        rid for (rid,) in reopened.store.reader().execute("SELECT rowid FROM chunks"))
    reopened.close()
