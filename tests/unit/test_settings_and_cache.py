"""Settings parsing and the embedding caches."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from qa_service.embedding.cache import CachedEncoder
from qa_service.errors import BadInputError
from qa_service.settings import Settings
from tests.fakes import FakeEncoder


def test_environment_overrides_config_file(tmp_path: Path) -> None:
    config = tmp_path / "qa.toml"
    config.write_text('index_dir = "/data/news"\nport = 9001\napi_keys = ["k1", "k2"]\n')
    s = Settings.from_env({"QA_CONFIG": str(config), "QA_PORT": "9100", "QA_EMBEDDING_CACHE": "off"})
    assert s.index_dir == Path("/data/news") and s.port == 9100
    assert s.api_keys == ("k1", "k2") and s.embedding_cache is False


@pytest.mark.parametrize(("env", "message"), [
    ({"QA_PORT": "eighty"}, "QA_PORT"),
    ({"QA_PORT": "0"}, "QA_PORT"),
    ({"QA_EMBEDDING_CACHE": "maybe"}, "QA_EMBEDDING_CACHE"),
    ({"QA_PASSAGE_PRECISION": "fp8"}, "QA_PASSAGE_PRECISION"),
    ({"QA_PASSAGE_PRECISION": "int8", "QA_ENCODER_BACKEND": "torch"}, "int8 needs QA_ENCODER_BACKEND"),
    ({"QA_CONFIG": "/nonexistent/qa.toml"}, "does not exist"),
])
def test_bad_settings_say_what_to_fix(env: dict[str, str], message: str) -> None:
    with pytest.raises(BadInputError, match=message):
        Settings.from_env(env)


def test_unknown_config_key_is_rejected(tmp_path: Path) -> None:
    config = tmp_path / "qa.toml"
    config.write_text('idnex_dir = "typo"\n')
    with pytest.raises(BadInputError, match="unknown setting 'idnex_dir'"):
        Settings.from_env({"QA_CONFIG": str(config)})


def test_passage_cache_is_shared_across_instances_and_exact(tmp_path: Path) -> None:
    repeated = "وتنشر الولايات المتحدة 2500 عسكري"
    texts = [repeated, "The Panthers gave up 308 points.", repeated]
    first_inner = FakeEncoder()
    first = CachedEncoder(first_inner, tmp_path / "cache.sqlite3", variant="fp32")
    expected = first.encode_passages(texts)
    assert first_inner.passages_encoded == 2  # the repeated text is embedded once
    second_inner = FakeEncoder()
    second = CachedEncoder(second_inner, tmp_path / "cache.sqlite3", variant="fp32")
    again = second.encode_passages(texts)
    assert second_inner.passages_encoded == 0
    np.testing.assert_array_equal(again, expected)
    other_model = FakeEncoder(model_id="other")
    CachedEncoder(other_model, tmp_path / "cache.sqlite3").encode_passages(texts[:1])
    assert other_model.passages_encoded == 1  # keyed by model, never mixed


def test_query_cache_returns_the_same_vector_without_a_model_call() -> None:
    inner = FakeEncoder()
    enc = CachedEncoder(inner, None)
    a = enc.encode_queries(["How many US troops are in Iraq?"])
    calls = inner.calls
    b = enc.encode_queries(["How many US troops are in Iraq?"])
    assert inner.calls == calls
    np.testing.assert_array_equal(a, b)


def test_settings_of_the_removed_heuristic_composer_are_ignored_with_a_warning(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="qa_service.settings"):
        settings = Settings.from_env({"QA_READER": "false", "QA_MIN_ANSWER_SCORE": "0.5"})
    assert settings == Settings()
    assert "QA_READER is no longer read" in caplog.text and "QA_MIN_READER_SCORE" in caplog.text
