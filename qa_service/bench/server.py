"""Run `qa-service serve` as a child process on loopback, for benchmarks and tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from qa_service.errors import NotReadyError

READY_TIMEOUT_S = 600.0
READY_POLL_S = 0.05  # fine enough to measure cold start
STOP_TIMEOUT_S = 20.0
LOG_TAIL_CHARS = 3000


@dataclass(frozen=True)
class Server:
    url: str
    pid: int
    cold_start_s: float  # process start → /readyz 200
    log: Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def served(index_dir: Path, log: Path, env: Mapping[str, str] | None = None, *,
           sample: bool = False, ready_timeout_s: float = READY_TIMEOUT_S) -> Iterator[Server]:
    """A ready server on a free loopback port over ``index_dir``; stopped on exit."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    full_env = {**os.environ, "QA_INDEX_DIR": str(index_dir), "HF_HUB_OFFLINE": "1", **(env or {})}
    cmd = [sys.executable, "-m", "qa_service.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    if sample:
        cmd.append("--sample")
    with log.open("wb") as log_file:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, env=full_env, stdout=log_file, stderr=subprocess.STDOUT)
        try:
            cold_start = _wait_ready(proc, url, log, started, ready_timeout_s)
            yield Server(url, proc.pid, cold_start, log)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path, started: float,
                timeout_s: float) -> float:
    deadline = started + timeout_s
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            raise NotReadyError(f"the server exited with status {proc.returncode}:\n{_tail(log)}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return time.perf_counter() - started
        except httpx.TransportError:
            pass
        time.sleep(READY_POLL_S)
    raise NotReadyError(f"the server was not ready within {timeout_s:.0f}s:\n{_tail(log)}")


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-LOG_TAIL_CHARS:]
