"""A real `qa-service serve` process on loopback over the bundled sample, with the real model."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from qa_service.bench.server import served


@dataclass
class LiveServer:
    url: str
    index_dir: Path
    log: Path


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("live")
    with served(root / "index", root / "server.log", sample=True) as live:
        yield LiveServer(live.url, root / "index", live.log)
