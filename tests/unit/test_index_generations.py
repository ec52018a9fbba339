"""Loading an index generation: verified, and without holding the file's bytes beside the index."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import faiss
import numpy as np
import pytest

from qa_service.errors import IndexCorruptError
from qa_service.store.vector_index import GENERATIONS_DIR, INDEX_FILE, IndexDirectory

PEAK_SCRIPT = """
import sys
from pathlib import Path
from qa_service.bench.common import process_memory_mib
from qa_service.store.vector_index import IndexDirectory
Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM) restarts from now
before = process_memory_mib()["rss_mib"]
loaded = IndexDirectory(Path(sys.argv[1])).load_current()
print(process_memory_mib()["peak_rss_mib"] - before, loaded.index.ntotal)
"""

def _published(root: Path, rows: int, dim: int = 128) -> IndexDirectory:
    index = faiss.IndexFlatIP(dim)
    index.add(np.random.default_rng(0).standard_normal((rows, dim)).astype(np.float32))
    directory = IndexDirectory(root)
    with directory.writer():
        directory.publish(index, store_generation=1, model_id="m", chunker={})
    return directory


def test_a_generation_loads_without_a_second_copy_in_memory(tmp_path: Path) -> None:
    rows = 200_000  # 100 MiB of vectors
    _published(tmp_path, rows)
    out = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(tmp_path)], capture_output=True,
                         text=True, check=True).stdout.split()
    peak_mib, count = float(out[0]), int(out[1])
    assert count == rows
    # The index itself is ~98 MiB; reading the file's bytes first and deserialising them held twice that.
    assert peak_mib < 1.4 * rows * 128 * 4 / 2**20, f"loading peaked {peak_mib:.0f} MiB above the start"


def test_a_damaged_generation_is_refused(tmp_path: Path) -> None:
    directory = _published(tmp_path, 100)
    [generation] = (tmp_path / GENERATIONS_DIR).iterdir()
    data = bytearray((generation / INDEX_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (generation / INDEX_FILE).write_bytes(bytes(data))
    with pytest.raises(IndexCorruptError, match="fails its checksum"):
        directory.load_current()
