"""The shipped reader, assembled with the built default model and run on OpenVINO as served."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qa_service.embedding.provision import resolve_default_model
from qa_service.reader.export import read_sample, scores
from qa_service.reader.runtime import Manifest, Reader
from qa_service.settings import Settings

pytestmark = pytest.mark.integration

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "reader-sample.json"


@pytest.fixture(scope="module")
def reader() -> Reader:
    settings = Settings()
    return Reader(resolve_default_model(settings), settings.model_cache)


def test_the_assembled_reader_reproduces_its_recorded_held_out_f1(reader: Reader) -> None:
    recorded = Manifest.read().raw["sample"]
    got = scores(reader, read_sample(SAMPLE))
    assert got["questions"] == recorded["questions"] == 80
    assert abs(got["f1"] - recorded["f1"]) <= 1.0, (got, recorded)


def test_the_reader_finds_the_answer_in_the_seed_article(reader: Reader) -> None:
    seed = (Path(__file__).resolve().parents[2] / "qa_service" / "samples" / "seed.jsonl").read_text("utf-8")
    text = json.loads(seed.splitlines()[0])["text"]
    found = reader.read("How many US troops are in Iraq?", [text])
    assert found and "2500" in text[found[0].start:found[0].end]
    found = reader.read("كم من الوقت ستستغرق المحادثات؟", [text])
    assert found and "عدة أشهر" in text[found[0].start:found[0].end]


@pytest.mark.parametrize("precision", ["bfloat16", "int8"])
def test_each_serving_precision_keeps_the_recorded_held_out_f1(precision: str) -> None:
    """What `QA_READER_PRECISION` picks (auto: bf16 on AMX, int8 elsewhere) reads as well as float32."""
    settings = Settings()
    reader = Reader(resolve_default_model(settings), settings.model_cache, precision=precision)
    recorded = Manifest.read().raw["sample"]
    got = scores(reader, read_sample(SAMPLE))
    assert abs(got["f1"] - recorded["f1"]) <= 3.0, (precision, got, recorded)
    seed = (Path(__file__).resolve().parents[2] / "qa_service" / "samples" / "seed.jsonl").read_text("utf-8")
    text = json.loads(seed.splitlines()[0])["text"]
    found = reader.read("How many US troops are in Iraq?", [text])
    assert found and "2500" in text[found[0].start:found[0].end]
