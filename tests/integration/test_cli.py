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


def _squad(articles: list[tuple[str, str, list[tuple[str, str, str]]]]) -> dict[str, object]:
    """SQuAD-style JSON: (title, context, [(id, question, answer)]) per article."""
    return {"version": "1.1", "data": [
        {"title": title, "paragraphs": [{"context": context, "qas": [
            {"id": qid, "question": q, "answers": [{"text": a, "answer_start": context.index(a)}]}
            for qid, q, a in qas]}]}
        for title, context, qas in articles]}


def _tiny_training_data(root: Path) -> Path:
    import gzip

    en = [(f"Article_{i}", f"The bridge in town {i} was built in {1900 + i} by {i + 3} workers.",
           [(f"en{i}a", f"When was the bridge in town {i} built?", str(1900 + i)),
            (f"en{i}b", f"How many workers built the bridge in town {i}?", str(i + 3))]) for i in range(4)]
    ar = [(f"مقالة_{i}", f"بني الجسر في المدينة {i} عام {1950 + i} على يد {i + 5} عمال.",
           [(f"ar{i}", f"متى بني الجسر في المدينة {i}؟", str(1950 + i))]) for i in range(8)]
    (root / "squad-train-en").mkdir(parents=True)
    squad = root / "squad-train-en" / "train-v1.1.reconstructed.json.gz"
    with gzip.open(squad, "wt", encoding="utf-8") as fh:
        json.dump(_squad(en), fh)
    (root / "arcd").mkdir()
    (root / "xquad").mkdir()
    for name, articles in (("arcd/arcd-train.json", ar[:2]), ("arcd/arcd-test.json", ar[2:4]),
                           ("xquad/xquad.ar.json", ar[2:])):
        (root / name).write_text(json.dumps(_squad(articles), ensure_ascii=False), encoding="utf-8")
    english = [(t, c, [(qid, f"When was bridge {qid} built?", a) for qid, _, a in qas])
               for t, c, qas in ar[2:]]
    (root / "xquad" / "xquad.en.json").write_text(json.dumps(_squad(english)), encoding="utf-8")
    return root


def test_train_reader_checkpoints_resumes_and_exports_with_a_manifest(tmp_path: Path) -> None:
    data = _tiny_training_data(tmp_path / "data")
    cache = str(tmp_path / "models")
    first = run(["model", "train-reader", "--run", "tiny", "--data", str(data), "--threads", "1",
                 "--eval-size", "4"], tmp_path / "index", QA_MODEL_CACHE=cache)
    assert first.returncode == 0, first.stderr
    run_dir = tmp_path / "models" / "reader-train" / "tiny"
    log = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] >= 1 and "xquad-ar-dev" in log[-1]["scores"]
    assert (run_dir / "best.safetensors").exists()
    assert "F1" in first.stdout and "export-reader --run tiny" in first.stdout
    again = run(["model", "train-reader", "--run", "tiny", "--data", str(data), "--threads", "1",
                 "--eval-size", "4"], tmp_path / "index", QA_MODEL_CACHE=cache)
    assert again.returncode == 0, again.stderr
    assert len((run_dir / "log.jsonl").read_text().splitlines()) == len(log)  # done: nothing re-trained

    out = tmp_path / "weights"
    exported = run(["model", "export-reader", "--run", "tiny", "--data", str(data), "--out", str(out),
                    "--sample", str(tmp_path / "sample.json")], tmp_path / "index", QA_MODEL_CACHE=cache)
    assert exported.returncode == 0, exported.stderr
    from qa_service.reader.runtime import verify_weights

    manifest = verify_weights(out).raw
    assert set(manifest["held_out"]) == {"xquad-ar-test", "xquad-en-test", "arcd-test"}
    assert manifest["recipe"]["layers"] == 8 and manifest["sample"]["questions"] > 0


def test_a_second_stage_continues_the_shipped_weights_on_unseen_examples(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from qa_service.reader.runtime import WEIGHTS_DIR, WEIGHTS_FILE, verify_weights

    data = _tiny_training_data(tmp_path / "data")
    cache = str(tmp_path / "models")
    # lr 0: the checkpoint must then be the shipped weights themselves, so they were loaded.
    stage = ["model", "train-reader", "--run", "stage2", "--data", str(data), "--threads", "1", "--eval-size",
             "4", "--set", "start_from=shipped", "--set", "skip_examples=8", "--set", "lr=0"]
    result = run(stage, tmp_path / "index", QA_MODEL_CACHE=cache)
    assert result.returncode == 0, result.stderr
    run_dir = tmp_path / "models" / "reader-train" / "stage2"
    shipped = verify_weights()
    recipe = json.loads((run_dir / "recipe.json").read_text())
    assert recipe["start_from"] == f"sha256:{shipped.sha256}" and recipe["skip_examples"] == 8
    log = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert 0 < log[-1]["examples"] <= 6  # 14 in the curriculum (8 English + 2 Arabic x 3), 8 skipped
    best, before = load_file(str(run_dir / "best.safetensors")), load_file(str(WEIGHTS_DIR / WEIGHTS_FILE))
    assert best.keys() == before.keys()
    assert all(best[k].half().equal(before[k]) for k in before)

    out = tmp_path / "weights"
    exported = run(["model", "export-reader", "--run", "stage2", "--data", str(data), "--out", str(out),
                    "--sample", str(tmp_path / "sample.json")], tmp_path / "index", QA_MODEL_CACHE=cache)
    assert exported.returncode == 0, exported.stderr
    continues = verify_weights(out).raw["continues"]
    assert continues["sha256"] == shipped.sha256 and continues["recipe"] == shipped.raw["recipe"]

    for change, message in (("start_from=sha256:0123", "other weights"), ("skip_examples=99", "holds 14")):
        bad = run([*stage[:3], "bad", *stage[4:-6], "--set", change], tmp_path / "index",
                  QA_MODEL_CACHE=cache)
        assert bad.returncode == 1 and message in bad.stderr and "Traceback" not in bad.stderr


def test_train_reader_without_the_data_names_the_option(tmp_path: Path) -> None:
    result = run(["model", "train-reader", "--data", str(tmp_path / "nowhere")], tmp_path / "index")
    assert result.returncode == 1 and "pass --data" in result.stderr and "Traceback" not in result.stderr
