"""FAISS index generations under the index directory, published atomically.

Layout::

    index/
      store.sqlite3            source of truth (documents, chunks, vectors)
      CURRENT                  name of the live generation, replaced atomically
      generations/g0000000042-<hex time>/   index.faiss + manifest.json
      writer.lock              flock held by the one process (or request) that writes

A generation is written to a temporary folder, each file fsynced, the folder fsynced,
renamed into place, the parent fsynced, and only then named in CURRENT (temp file, fsync,
rename, fsync of the folder). A reader therefore sees the old generation or the new one,
never a mix. Generation names are never reused, so a name always means the same bytes.
A damaged generation fails its checksum; the service then rebuilds from the store.

FAISS's own ``write_index`` overwrites a file in place with no fsync: every byte here is
written by ``_write_durably`` instead. A failed write (ENOSPC, EIO) removes its temporary
files and leaves CURRENT, and so every reader, on the previous generation.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt

from qa_service.checksums import file_sha256
from qa_service.embedding.base import Vectors
from qa_service.errors import IndexCorruptError, StorageError, StorageFullError, WriterBusyError
from qa_service.store import ann

log = logging.getLogger(__name__)

INDEX_FILE = "index.faiss"
MANIFEST_FILE = "manifest.json"
CURRENT_FILE = "CURRENT"
CURRENT_TEMP = "CURRENT.tmp"
LOCK_FILE = "writer.lock"
GENERATIONS_DIR = "generations"
TEMP_PREFIX = ".tmp-"
# The live generation and the one before it: a reader that has just read CURRENT can still
# open the previous name while a writer publishes.
GENERATIONS_TO_KEEP = 2
FORMAT_VERSION = 1
WRITER_POLL_S = 0.05
# A generation can be pruned between reading CURRENT and opening it; CURRENT has then moved on.
LOAD_ATTEMPTS = 3
_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})


@dataclass(frozen=True)
class Manifest:
    """What a generation was built from; compared with the store and configuration at start."""

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
    """One immutable, loaded generation; safe to search from many threads.

    It lives in memory: a request that holds it keeps answering from it while newer
    generations are published, and it is freed when the last such request ends.
    """

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

    def ids(self) -> npt.NDArray[np.int64]:
        """Every chunk id held, in insertion order (for consistency checks)."""
        return ann.index_ids(self.index)


class IndexDirectory:
    """Publishes and loads generations inside one index directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.generations = root / GENERATIONS_DIR
        self.current_file = root / CURRENT_FILE

    # -- writer lock -------------------------------------------------------------------

    @contextmanager
    def writer(self, wait_s: float = 0.0) -> Iterator[None]:
        """Hold the writer lock, waiting up to ``wait_s``; else fail with WriterBusyError.

        The lock is an flock on its own open file, so it excludes other processes and other
        threads of this one alike, and the kernel drops it when its holder dies (SIGKILL).
        """
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline = time.monotonic() + wait_s
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise WriterBusyError(
                            f"another process or request is writing to the index in {self.root}; "
                            "retry when it finishes"
                        ) from None
                    time.sleep(WRITER_POLL_S)
            try:
                self._remove_leftovers()
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def _remove_leftovers(self) -> None:
        """Under the lock: temporary files of a writer that died are nobody's any more."""
        leftovers = [self.root / CURRENT_TEMP] if (self.root / CURRENT_TEMP).exists() else []
        if self.generations.is_dir():
            leftovers += [p for p in self.generations.iterdir() if p.name.startswith(TEMP_PREFIX)]
        for path in leftovers:
            _remove(path)
        if leftovers:
            log.warning("removed %d temporary file(s) left in %s by an interrupted write",
                        len(leftovers), self.root)

    # -- reading -----------------------------------------------------------------------

    def current_name(self) -> str | None:
        try:
            name = self.current_file.read_text().strip()
        except FileNotFoundError:
            return None
        return name or None

    def load_current(self) -> VectorIndex | None:
        """The live generation, verified; None when none was ever published."""
        for _ in range(LOAD_ATTEMPTS - 1):
            name = self.current_name()
            if name is None:
                return None
            try:
                return self.load(name)
            except IndexCorruptError:
                if self.current_name() == name:  # not a race with a writer: really damaged
                    raise
        name = self.current_name()
        return None if name is None else self.load(name)

    def load(self, name: str) -> VectorIndex:
        """Read one generation and check it against its manifest and checksum."""
        folder = self.generations / name
        try:
            raw = json.loads((folder / MANIFEST_FILE).read_text())
            manifest = Manifest(**{f.name: raw[f.name] for f in fields(Manifest) if f.name in raw})
            # Hashed in blocks and read by FAISS from the file (generations never change), not
            # held as bytes beside the index: that tripled a 1M-chunk server's memory while loading.
            digest, size = file_sha256(folder / INDEX_FILE), (folder / INDEX_FILE).stat().st_size
        except FileNotFoundError as exc:
            raise IndexCorruptError(f"index generation {folder} is missing {Path(str(exc.filename)).name}"
                                    ) from exc
        except (OSError, ValueError, TypeError) as exc:
            raise IndexCorruptError(f"index generation {folder} is unreadable: {exc}") from exc
        if manifest.name != name or manifest.format_version != FORMAT_VERSION:
            raise IndexCorruptError(f"index generation {folder} has a foreign manifest")
        if digest != manifest.sha256:
            raise IndexCorruptError(f"index generation {folder} fails its checksum ({size} bytes on disk)")
        try:
            index = faiss.read_index(str(folder / INDEX_FILE))
        except RuntimeError as exc:
            raise IndexCorruptError(f"index generation {folder} cannot be read by FAISS: {exc}") from exc
        if index.ntotal != manifest.count or index.d != manifest.dim:
            raise IndexCorruptError(f"index generation {folder} does not match its manifest")
        return VectorIndex(index, manifest)

    # -- writing -----------------------------------------------------------------------

    def publish(self, index: faiss.Index, *, store_generation: int, model_id: str,
                chunker: Mapping[str, Any]) -> VectorIndex:
        """Write ``index`` as a new generation and make it current atomically.

        Call it while holding ``writer()``. On failure nothing new is visible, the temporary
        files are gone, and a StorageError says what happened.
        """
        data = faiss.serialize_index(index).tobytes()
        tmp: Path | None = None
        final: Path | None = None
        current_replaced = False
        try:
            self._ensure_generations_dir()
            name = self._new_name(store_generation)
            manifest = Manifest(
                name=name, store_generation=store_generation, model_id=model_id, dim=index.d,
                count=int(index.ntotal), sha256=hashlib.sha256(data).hexdigest(),
                chunker=dict(chunker), index_type=ann.kind(index),
                created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            )
            tmp = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=self.generations))
            _write_durably(tmp / INDEX_FILE, data)
            _write_durably(tmp / MANIFEST_FILE, json.dumps(asdict(manifest), indent=2).encode())
            _fsync_dir(tmp)
            final = self.generations / name
            os.rename(tmp, final)
            tmp = None
            _fsync_dir(self.generations)
            _write_durably(self.root / CURRENT_TEMP, name.encode())
            os.replace(self.root / CURRENT_TEMP, self.current_file)
            current_replaced = True
            _fsync_dir(self.root)
        except BaseException as exc:
            for path in (tmp, self.root / CURRENT_TEMP):
                if path is not None:
                    _remove(path)
            if final is not None and not current_replaced:
                _remove(final)  # complete but never current: nobody can be reading it
            if isinstance(exc, OSError):
                raise storage_error(exc, f"writing an index generation in {self.root}") from exc
            raise
        self._prune(keep=name)
        return VectorIndex(index, manifest)

    def _ensure_generations_dir(self) -> None:
        if not self.generations.is_dir():
            self.generations.mkdir(parents=True, exist_ok=True)
            _fsync_dir(self.root)

    def _new_name(self, store_generation: int) -> str:
        """Sorts by store generation, then by time; never reused, even after pruning."""
        while True:
            name = f"g{store_generation:010d}-{time.time_ns():016x}"
            if not (self.generations / name).exists():
                return name

    def _prune(self, keep: str) -> None:
        """Drop generations beyond the newest few; loaded copies live on in their readers' memory."""
        names = sorted(p.name for p in self.generations.iterdir() if p.name.startswith("g"))
        for stale in names[:-GENERATIONS_TO_KEEP]:
            if stale != keep:
                _remove(self.generations / stale)


def storage_error(exc: OSError, doing: str) -> StorageError:
    """The user-facing error for a failed disk operation."""
    reason = exc.strerror or str(exc)
    if exc.errno in _NO_SPACE:
        return StorageFullError(
            f"no space left on the device while {doing} ({reason}); free disk space and retry")
    return StorageError(f"the disk failed while {doing} ({reason}); check the device and retry")


def updated_index(base: VectorIndex | None, dim: int, removed: Sequence[int],
                  added_ids: npt.NDArray[np.int64], added: Vectors,
                  policy: ann.AnnPolicy | None = None) -> faiss.Index:
    """A copy of ``base`` with chunks removed and added; ``base`` itself is left untouched.

    The kind (exact or IVF) follows the collection's size: see ``qa_service.store.ann``.
    """
    return ann.updated(base.index if base is not None else None, dim, removed, added_ids, added,
                       policy)


def index_from_vectors(dim: int, ids: npt.NDArray[np.int64], vectors: Vectors,
                       policy: ann.AnnPolicy | None = None) -> faiss.Index:
    return ann.build(dim, ids, vectors, policy)


def _write_durably(path: Path, data: bytes) -> None:
    """Write every byte with os.write (short writes retried), then fsync the file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    """Make renames and new entries in ``path`` survive power loss."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    """Remove a file or folder of ours; a cleanup must never mask the error being reported."""
    try:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("could not remove %s: %s", path, exc)
