"""The `qa-service` command as a user runs it: real process, real model, exit codes and messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

SEED = Path(__file__).resolve().parents[2] / "qa_service" / "samples" / "seed.jsonl"


def run(args: list[str], index_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qa_service.cli", *args],
        env={**os.environ, "QA_INDEX_DIR": str(index_dir), "HF_HUB_OFFLINE": "1", **env},
        capture_output=True, text=True, timeout=600, check=False,
    )


def test_ingest_reports_skipped_files_and_reingest_does_no_work(tmp_path: Path) -> None:
    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "seed.jsonl").write_bytes(SEED.read_bytes())
    (folder / "broken.json").write_text("{not json", encoding="utf-8")
    index = tmp_path / "index"

    first = run(["ingest", str(folder)], index)
    assert first.returncode == 2, first.stderr
    assert "1 added" in first.stdout and "1 skipped" in first.stdout
    assert "broken.json: invalid JSON" in first.stderr
    assert "Traceback" not in first.stderr

    again = run(["ingest", str(folder / "seed.jsonl")], index)
    assert again.returncode == 0, again.stderr
    assert "0 added, 0 updated, 1 unchanged" in again.stdout and "0 chunks" in again.stdout

    answer = run(["ask", "How many US troops are in Iraq?", "--json"], index)
    assert answer.returncode == 0, answer.stderr
    body = json.loads(answer.stdout)
    assert "2500" in body["citations"][0]["quote"]


def test_bad_configuration_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    result = run(["ask", "anything"], tmp_path / "index", QA_MAX_TOP_K="many")
    assert result.returncode == 1
    assert "QA_MAX_TOP_K" in result.stderr and "Traceback" not in result.stderr
    missing = run(["ingest", str(tmp_path / "nope.jsonl")], tmp_path / "index",
                  QA_EMBEDDING_MODEL=str(tmp_path / "no-such-model"))
    assert missing.returncode == 1
    assert "cannot load embedding model" in missing.stderr and "Traceback" not in missing.stderr
