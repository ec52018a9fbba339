"""The performance suite's pieces: figures, ratios, the targets table, the CLI, HTTP measuring."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from qa_service.bench import common, encoder, serving, suite
from qa_service.cli import build_parser
from qa_service.ingest.passages import passage_texts
from tests.conftest import shared_data
from tests.fakes import FakeEncoder


def test_percentiles_are_milliseconds_and_ratios_are_plain() -> None:
    figures = common.percentiles([0.010] * 98 + [0.100, 0.200])
    assert figures["p50_ms"] == 10.0 and figures["n"] == 100
    assert 10.0 < figures["p99_ms"] <= 200.0
    assert common.percentiles([]) == {"n": 0}
    assert common.ratio(30.0, 10.0) == 3.0
    assert common.ratio(None, 10.0) is None and common.ratio(5.0, 0.0) is None


def test_length_sorted_batches_pad_less_than_arrival_order() -> None:
    lengths = [160, 20, 150, 30, 140, 10, 155, 25]
    padding = encoder._padding(lengths, 2)
    assert padding["length_sorted"] < padding["arrival_order"]
    assert padding["length_sorted"] >= 1.0


def test_timed_encoder_counts_only_time_in_the_model() -> None:
    timed = common.TimedEncoder(FakeEncoder())
    vectors = timed.encode_passages(["one passage", "another"])
    assert vectors.shape == (2, timed.dim)
    assert timed.encode_s > 0 and timed.tokens_s == 0
    timed.count_tokens(["a b c"])
    assert timed.tokens_s > 0


def test_targets_table_marks_what_was_met_and_what_was_not() -> None:
    results: dict[str, Any] = {
        "ingest": {"ours": {"chunks_per_s": 120.0}},
        "serve": {"sizes": {
            "news-10000": {"ours": {"chunks": 10_000, "cold_start_s": 1.0, "memory": {"peak_rss_mib": 900},
                                    "one_client": {"p50_ms": 10, "p95_ms": 20},
                                    "concurrent": {"answers_per_s": 80}}},
            "news-100000": {"ours": {"chunks": 100_000, "cold_start_s": 6.0, "memory": {"peak_rss_mib": 1200},
                                     "one_client": {"p50_ms": 30, "p95_ms": 50},
                                     "concurrent": {"answers_per_s": 45}}}}},
        "ann": {"indexes": {"ivf": {"recall": {"10": 0.985}}}},
    }
    rows = {row["what"].split(" (")[0]: row for row in suite.targets(results)}
    assert rows["ingestion chunks/s"]["met"] is True
    assert rows["/v1/ask p50 ms"]["reached"] == 30 and rows["/v1/ask p50 ms"]["met"] is False
    assert "100000 chunks" in next(r["what"] for r in suite.targets(results) if r["what"].startswith("/v1"))
    assert rows["cold start s"]["met"] is False and rows["peak RSS MiB"]["met"] is True
    assert rows["IVF recall@10 vs exact"]["met"] is True
    assert rows["passage cosine vs fp32"]["met"] is None  # not measured: neither met nor failed


def test_cli_offers_every_part_with_its_options() -> None:
    parser = build_parser()
    args = parser.parse_args(["bench", "all", "--articles", "31508", "--sizes", "10000,100000",
                              "--server-env", "OMP_NUM_THREADS=1",
                              "--baseline-env", "QA_READER_PRECISION=bfloat16", "--json", "out.json"])
    assert args.bench_part == "all" and args.articles == 31508 and args.json == Path("out.json")
    for part in ("encoder", "ingest", "ann", "serve"):
        assert parser.parse_args(["bench", part]).bench_part == part
    assert suite._part_options("serve", args)[-4:] == ["--server-env", "OMP_NUM_THREADS=1",
                                                        "--baseline-env", "QA_READER_PRECISION=bfloat16"]
    with pytest.raises(SystemExit, match="--baseline-env takes KEY=VALUE"):
        suite._key_value("no-equals-sign", "--baseline-env")


def test_one_client_measures_latency_and_the_servers_own_breakdown() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        question = json.loads(request.content)["question"]
        if question == "bad":
            return httpx.Response(400, json={"detail": "bad"})
        return httpx.Response(200, json={"timings_ms": {"embed": 4.0, "retrieve": 2.0, "total": 7.0}})

    with httpx.Client(transport=httpx.MockTransport(handler), base_url="http://bench") as client:
        figures = serving._one_client(client, ["a", "b", "bad"])
    assert figures["n"] == 2 and figures["statuses"] == {"200": 2, "400": 1}
    assert figures["server_p50_ms"] == {"embed": 4.0, "retrieve": 2.0, "total": 7.0}


def test_the_serving_baseline_can_be_another_setting_of_the_same_server(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    served: dict[str, dict[str, str]] = {}
    figures = {"one_client": {"p50_ms": 50.0}, "concurrent": {"answers_per_s": 10.0}, "cold_start_s": 2.0,
               "memory": {"rss_mib": 900.0}}

    def measure(index: Path, warm: Any, one: Any, many: Any, clients: int, env: dict[str, str]) -> Any:
        served[env.get("QA_READER_PRECISION", env.get("QA_ENCODER_BACKEND", "default"))] = env
        return figures

    (tmp_path / "pool" / "index").mkdir(parents=True)
    monkeypatch.setattr(serving, "measure", measure)
    monkeypatch.setattr(common, "questions", lambda data, n: [f"q{i}" for i in range(n)])
    args = build_parser().parse_args(["bench", "serve", "--sizes", str(tmp_path / "pool"),
                                      "--server-env", "QA_READER_PRECISION=int8",
                                      "--baseline-env", "QA_READER_PRECISION=bfloat16"])
    result = suite._run_part("serve", args, None)  # type: ignore[arg-type]
    assert set(served) == {"int8", "bfloat16"} and "QA_ENCODER_BACKEND" not in served["bfloat16"]
    assert result["sizes"]["pool"]["ratios"]["answers_per_s"] == 1.0
    default = build_parser().parse_args(["bench", "serve", "--sizes", str(tmp_path / "pool")])
    suite._run_part("serve", default, None)  # type: ignore[arg-type]
    assert served["torch"]["QA_ENCODER_BACKEND"] == "torch"  # without --baseline-env: the PyTorch encoder


def test_a_size_that_is_neither_a_count_nor_an_index_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="neither a chunk count"):
        serving._folder(str(tmp_path), tmp_path, tmp_path, settings=None)  # type: ignore[arg-type]


def test_articles_come_in_pool_order_and_texts_as_ingestion_embeds_them() -> None:
    data = shared_data("ant-news-ar.jsonl.gz").parent
    first = list(common.news_articles(data, 3))
    assert len(first) == 3 and len({d.id for d in first}) == 3
    fake = FakeEncoder()
    texts = passage_texts(first, fake.count_tokens, 5, max_tokens=160)
    assert 1 <= len(texts) <= 5
    assert texts[0].startswith(f"{first[0].title}\n")
    assert np.all(np.asarray(fake.count_tokens(texts)) > 0)


def test_the_ingest_benchmark_cache_embeds_everything_but_leaves_vectors_for_the_next_run(
        tmp_path: Path) -> None:
    from qa_service.embedding.cache import CachedEncoder

    path = tmp_path / "cache.sqlite3"
    measuring = FakeEncoder()
    CachedEncoder(measuring, path, read_passages=False).encode_passages(["a b", "c d"])
    CachedEncoder(measuring, path, read_passages=False).encode_passages(["a b", "c d"])
    assert measuring.passages_encoded == 4  # never served from the cache while measuring
    reusing = FakeEncoder()
    CachedEncoder(reusing, path).encode_passages(["a b", "c d"])
    assert reusing.passages_encoded == 0  # ... but the vectors are there for the pools


@pytest.mark.parametrize(("env", "message"), [
    ({"QA_ENCODER_BACKEND": "onnx"}, "QA_ENCODER_BACKEND must be auto, openvino or torch"),
    ({"QA_ANN_MIN_VECTORS": "-5"}, "QA_ANN_MIN_VECTORS must not be negative"),
])
def test_speed_settings_say_what_to_fix(env: dict[str, str], message: str) -> None:
    from qa_service.errors import BadInputError
    from qa_service.settings import Settings

    with pytest.raises(BadInputError, match=message):
        Settings.from_env(env)
