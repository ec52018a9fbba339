"""Encoder backed by any sentence-transformers model (name on a hub, or a local directory)."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qa_service.embedding.base import Vectors
from qa_service.errors import ModelUnavailableError

log = logging.getLogger(__name__)


class SentenceTransformerEncoder:
    """Wraps ``SentenceTransformer`` using its named prompts (``query`` / ``document``)."""

    def __init__(self, name_or_path: str, *, model_id: str | None = None,
                 batch_size: int = 32, threads: int = 0, passage_precision: str = "auto") -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if passage_precision not in PRECISIONS:
            raise ValueError(f"passage_precision must be one of {', '.join(PRECISIONS)}")
        self._batch_size = batch_size
        self.passage_bf16 = wants_bf16(passage_precision)
        self.passage_variant = "bf16" if self.passage_bf16 else "fp32"
        self._model_id = model_id or name_or_path
        started = time.perf_counter()
        self._model = _load(name_or_path, threads)
        self.load_seconds = time.perf_counter() - started
        # sentence-transformers 6 renamed get_sentence_embedding_dimension.
        get_dim = (getattr(self._model, "get_embedding_dimension", None)
                   or self._model.get_sentence_embedding_dimension)
        dim = get_dim()
        if not dim:
            raise ModelUnavailableError(f"model {name_or_path!r} does not report an embedding size")
        self._dim = int(dim)
        prompts = getattr(self._model, "prompts", {}) or {}
        self._query_prompt = "query" if "query" in prompts else None
        self._doc_prompt = next((p for p in ("document", "passage") if p in prompts), None)

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dim(self) -> int:
        return self._dim

    def encode_queries(self, texts: Sequence[str]) -> Vectors:
        # One question gains nothing from bf16 (measured); keep full precision.
        return self._encode(texts, self._query_prompt)

    def encode_passages(self, texts: Sequence[str]) -> Vectors:
        if not self.passage_bf16:
            return self._encode(texts, self._doc_prompt)
        import torch

        # bf16 autocast runs the matmuls on AMX/AVX512-BF16; embeddings stay within
        # cosine 0.999 of fp32 and retrieval is unchanged (see PERF-NOTES / bench).
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return self._encode(texts, self._doc_prompt)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        enc = self._model.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        return [len(ids) for ids in enc]

    def warm_up(self) -> None:
        """The first call of each kind allocates and dispatches slowly: pay that while loading."""
        self.encode_queries([WARM_UP_TEXT])
        self.encode_passages([WARM_UP_TEXT])

    def _encode(self, texts: Sequence[str], prompt_name: str | None) -> Vectors:
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        out = self._model.encode(
            list(texts),
            prompt_name=prompt_name,
            batch_size=self._batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(out, dtype=np.float32)


PRECISIONS = ("auto", "float32", "bfloat16")
_BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")
# int8 dot-product instructions; without them (AVX2 only, e.g. Zen 3) int8 passages lose accuracy
# (cosine to fp32 0.9987, under the 0.999 bar) through saturating 16-bit sums.
_INT8_CPU_FLAGS = ("amx_int8", "avx512_vnni", "avx_vnni")
WARM_UP_TEXT = "warm-up"


def wants_bf16(passage_precision: str) -> bool:
    """Whether passages are embedded in bf16 under this setting on this CPU."""
    return passage_precision == "bfloat16" or (
        passage_precision in ("auto", "int8") and cpu_has_fast_bf16())


def cpu_has_int8_dot() -> bool:
    """Whether this CPU has int8 dot-product instructions (AMX, AVX512-VNNI or AVX-VNNI)."""
    return _cpu_has(_INT8_CPU_FLAGS)


def cpu_has_amx() -> bool:
    """Whether this CPU has AMX tiles, on which bf16 passages run as fast as int8 ones."""
    return _cpu_has(("amx_bf16",))


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU runs bf16 matmuls natively (AMX or AVX512-BF16)."""
    return _cpu_has(_BF16_CPU_FLAGS)


def _cpu_has(wanted: tuple[str, ...]) -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(flag in flags for flag in wanted)


def _load(name_or_path: str, threads: int) -> Any:
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer

    transformers.utils.logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # quiet CLI
    if threads > 0:
        torch.set_num_threads(threads)
    local = Path(name_or_path).expanduser()
    offline = os.environ.get("HF_HUB_OFFLINE") == "1"
    try:
        return SentenceTransformer(str(local) if local.exists() else name_or_path, device="cpu")
    except (OSError, ValueError, RuntimeError) as exc:
        hint = (
            "It is neither a local directory nor reachable on the model hub"
            + (" (HF_HUB_OFFLINE=1 is set)" if offline else "")
            + ". Set QA_EMBEDDING_MODEL to a local sentence-transformers directory, "
            "or to 'default' and run `qa-service model build`."
        )
        raise ModelUnavailableError(f"cannot load embedding model {name_or_path!r}: {exc}. {hint}") from exc
