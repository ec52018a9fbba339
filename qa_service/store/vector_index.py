"""FAISS index generations under the index directory, published atomically.

Layout::

    index/
      store.sqlite3            source of truth (documents, chunks, vectors)
      CURRENT                  name of the live generation, replaced atomically
      generations/g00000042/   index.faiss + manifest.json (model, dim, store generation, sha256)
      writer.lock              held by the one process that writes

A generation is written to a temporary folder, fsynced, renamed into place, and only
then named in CURRENT (temp file, fsync, rename, fsync of the folder). A reader never
sees a half-written index; a damaged one fails its checksum and is rebuilt from the store.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt

from qa_service.embedding.base import Vectors
from qa_service.errors import IndexCorruptError, WriterBusyError

log = logging.getLogger(__name__)

INDEX_FILE = "index.faiss"
MANIFEST_FILE = "manifest.json"
GENERATIONS_TO_KEEP = 2
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Manifest:
    """What a generation was built from; compared with the running configuration at start."""

    name: str
    store_generation: int
    model_id: str
    dim: int
    count: int
    sha256: str
    chunker: dict[str, Any] = field(default_factory=dict)
    index_type: str = "flat-ip"
    faiss_version: str = faiss.__version__
    format_version: int = FORMAT_VERSION
    created_at: str = ""


class VectorIndex:
    """One immutable, loaded generation; safe to search from many threads."""

    def __init__(self, index: faiss.Index, manifest: Manifest) -> None:
        self.index = index
        self.manifest = manifest

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    def search(self, queries: Vectors, k: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """Top-k inner-product scores and chunk ids (-1 where fewer than k exist)."""
        k = max(1, min(k, max(self.size, 1)))
        scores, ids = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        return scores, ids


def empty_index(dim: int) -> faiss.Index:
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))


class IndexDirectory:
    """Publishes and loads generations inside one index directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.generations = root / "generations"
        self.current_file = root / "CURRENT"

    # -- writer lock -------------------------------------------------------------------

    @contextmanager
    def writer(self) -> Iterator[None]:
        """Hold the cross-process writer lock, or fail at once with WriterBusyError."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / "writer.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise WriterBusyError(
                    f"another process is writing to {self.root}; retry when it finishes"
                ) from None
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    # -- reading -----------------------------------------------------------------------

    def current_name(self) -> str | None:
        try:
            name = self.current_file.read_text().strip()
        except FileNotFoundError:
            return None
        return name or None

    def load_current(self) -> VectorIndex | None:
        """The live generation, verified; None when there is none yet."""
        name = self.current_name()
        return None if name is None else self.load(name)

    def load(self, name: str) -> VectorIndex:
        folder = self.generations / name
        try:
            manifest = Manifest(**json.loads((folder / MANIFEST_FILE).read_text()))
            data = (folder / INDEX_FILE).read_bytes()
        except (OSError, ValueError, TypeError) as exc:
            raise IndexCorruptError(f"index generation {folder} is unreadable: {exc}") from exc
        if hashlib.sha256(data).hexdigest() != manifest.sha256:
            raise IndexCorruptError(f"index generation {folder} fails its checksum")
        try:
            index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        except RuntimeError as exc:
            raise IndexCorruptError(f"index generation {folder} cannot be read by FAISS: {exc}") from exc
        if index.ntotal != manifest.count or index.d != manifest.dim:
            raise IndexCorruptError(f"index generation {folder} does not match its manifest")
        return VectorIndex(index, manifest)

    # -- writing -----------------------------------------------------------------------

    def publish(self, index: faiss.Index, *, store_generation: int, model_id: str,
                chunker: Mapping[str, Any]) -> VectorIndex:
        """Write ``index`` as a new generation and make it current atomically."""
        self.generations.mkdir(parents=True, exist_ok=True)
        name = f"g{store_generation:010d}"
        data = faiss.serialize_index(index).tobytes()
        manifest = Manifest(
            name=name, store_generation=store_generation, model_id=model_id, dim=index.d,
            count=int(index.ntotal), sha256=hashlib.sha256(data).hexdigest(),
            chunker=dict(chunker), created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.generations))
        try:
            _write_durably(tmp / INDEX_FILE, data)
            _write_durably(tmp / MANIFEST_FILE, json.dumps(asdict(manifest), indent=2).encode())
            _fsync_dir(tmp)
            final = self.generations / name
            if final.exists():
                shutil.rmtree(final)
            os.rename(tmp, final)
            _fsync_dir(self.generations)
            _write_durably(self.root / "CURRENT.tmp", name.encode())
            os.replace(self.root / "CURRENT.tmp", self.current_file)
            _fsync_dir(self.root)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self._prune(keep=name)
        return VectorIndex(index, manifest)

    def _prune(self, keep: str) -> None:
        """Drop old generations beyond the newest few (open readers keep their in-memory copy)."""
        names = sorted(p.name for p in self.generations.iterdir() if p.name.startswith("g"))
        for stale in names[:-GENERATIONS_TO_KEEP]:
            if stale != keep:
                shutil.rmtree(self.generations / stale, ignore_errors=True)
        for tmp in self.generations.glob(".tmp-*"):
            shutil.rmtree(tmp, ignore_errors=True)


def updated_index(base: VectorIndex | None, dim: int, removed: Sequence[int],
                  added_ids: npt.NDArray[np.int64], added: Vectors) -> faiss.Index:
    """A copy of ``base`` with chunks removed and added; ``base`` itself is left untouched."""
    index = faiss.clone_index(base.index) if base is not None else empty_index(dim)
    if removed:
        index.remove_ids(np.asarray(removed, dtype=np.int64))  # type: ignore[arg-type]
    if len(added_ids):
        index.add_with_ids(np.ascontiguousarray(added, dtype=np.float32), added_ids)
    return index


def index_from_vectors(dim: int, ids: npt.NDArray[np.int64], vectors: Vectors) -> faiss.Index:
    index = empty_index(dim)
    if len(ids):
        index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)
    return index


def _write_durably(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
