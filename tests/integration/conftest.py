"""A real `qa-service serve` process on loopback over the bundled sample, with the real model."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from qa_service.bench.server import served

READY_TIMEOUT_S = 600.0


@dataclass
class LiveServer:
    url: str
    index_dir: Path
    log: Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(index_dir: Path, log: Path, extra_env: dict[str, str] | None = None,
                 sample: bool = True) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "QA_INDEX_DIR": str(index_dir), "HF_HUB_OFFLINE": "1", **(extra_env or {})}
    cmd = [sys.executable, "-m", "qa_service.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    if sample:
        cmd.append("--sample")
    proc = subprocess.Popen(cmd, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"server not ready in {READY_TIMEOUT_S}s: {log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("live")
    with served(root / "index", root / "server.log", sample=True) as live:
        yield LiveServer(live.url, root / "index", live.log)
