"""Encoder on OpenVINO: the same sentence-transformers model, converted once, run without PyTorch.

Why (``qa-service bench encoder`` and ``bench serve``, same texts and pool, same run, on the
busy 2-core machine): passages 2.6x the plain fp32 ``SentenceTransformer.encode`` and 1.8x
its bf16 autocast; a server answers 2x as many questions a second with 8 clients and is ready
3x sooner, because it never imports PyTorch. One question alone costs about the same as with
PyTorch inside a server, and much less in a process where PyTorch's two OpenMP threads fight
other work for the cores. On CPUs with AMX/AVX512-BF16, passages run in int8/bf16 and questions
in bf16 (one question: 13.7 -> 9.8 ms p50 on a 2-core Zen 4, cosine >= 0.99996 to f32).

The model is converted from the loaded PyTorch module (tracing the whole sentence-transformers
pipeline: transformer, pooling, normalisation) into OpenVINO IR, once per model and OpenVINO
version, under ``<model cache>/openvino/``. The PyTorch frontend is used directly rather than
``openvino.convert_model``, which reports usage over the network. Tokenisation uses the model's
own ``tokenizer.json`` through ``tokenizers``; batches are sorted by token length so padding
is small.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt

from qa_service.embedding.base import Vectors
from qa_service.errors import ModelUnavailableError
from qa_service.quiet import library_noise_silenced

if TYPE_CHECKING:
    from tokenizers import Encoding, Tokenizer

log = logging.getLogger(__name__)

IR_FOLDER: Final = "openvino"
IR_XML: Final = "model.xml"
INT8_XML: Final = "model-int8.xml"
MARKER: Final = "qa_service_openvino.json"
# Bump when the conversion or the marker changes, so older conversions are redone.
IR_FORMAT_VERSION: Final = 3
# Two texts of different lengths: a traced graph with dynamic batch and sequence axes.
_EXAMPLE_TEXTS: Final = ("hello", "a longer example text, with a few more tokens")
_WARM_UP_QUESTIONS: Final = ("?", "how many people live in the capital city of the country today")
_MODEL_FILES: Final = ("modules.json", "tokenizer.json", "config_sentence_transformers.json")
# int8 passages: activation ranges calibrated on the bundled sample, chunked as ingestion chunks
# it (~1 min, once per model). Each FFN output projection stays bf16: its input, the GELU output,
# is wide and heavy-tailed, and quantising it takes cosine to fp32 under the 0.999 bar (figures:
# docs/benchmarks.md, Performance).
# Passage batches are padded to the first of these widths that holds them (each input shape
# OpenVINO has run keeps about 1 MB), and batches wider than FULL_BATCH_WIDTH hold fewer rows,
# so no batch needs more activation memory (about 140 MB, taken once) than a full batch of
# chunks of the default 160 tokens with their title and prompt.
PASSAGE_WIDTHS: Final = (*range(8, 65, 8), 80, 96, 112, 128, *range(160, 513, 32))
FULL_BATCH_WIDTH: Final = 192
CALIBRATION_PASSAGES: Final = 192
CALIBRATION_BATCH: Final = 8
INT8_KEEP_FLOAT: Final = r".*\.output\.dense/.*"


@dataclass(frozen=True)
class ModelInfo:
    """What encoding needs besides the graph; written beside the IR."""

    query_prompt: str
    document_prompt: str
    max_seq_length: int
    pad_id: int
    dim: int
    source: str
    int8: bool = False  # whether INT8_XML exists (the conversion needs NNCF for it)
    format_version: int = IR_FORMAT_VERSION

    @classmethod
    def read(cls, ir: Path) -> ModelInfo:
        return cls(**json.loads((ir / MARKER).read_text()))


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) or 1


# -- conversion ----------------------------------------------------------------------------


def ir_folder(cache_root: Path, model_dir: Path) -> Path:
    """Where the conversion of ``model_dir`` for the installed OpenVINO lives."""
    import openvino

    digest = hashlib.sha256()
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(model_dir)}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    digest.update(f"{openvino.__version__}:{IR_FORMAT_VERSION}".encode())
    return cache_root / IR_FOLDER / f"{model_dir.name}-{digest.hexdigest()[:16]}"


def ensure_converted(model_dir: Path, cache_root: Path,
                     on_convert: Callable[[], None] | None = None) -> Path:
    """The IR folder for ``model_dir``, converting it first when missing (needs PyTorch, once).

    ``on_convert`` is called just before a conversion starts (the CLI announces it: it takes a
    minute or two)."""
    for name in _MODEL_FILES:
        if not (model_dir / name).is_file():
            raise ModelUnavailableError(
                f"{model_dir} has no {name}; the OpenVINO encoder needs a local sentence-transformers "
                "model with a fast tokenizer (set QA_ENCODER_BACKEND=torch for others)")
    target = ir_folder(cache_root, model_dir)
    if (target / MARKER).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.build-", dir=target.parent))
    try:
        started = time.perf_counter()
        if on_convert is not None:
            on_convert()
        with library_noise_silenced():  # tracer and deprecation warnings meant for library authors
            _convert(model_dir, staging)
        try:
            os.rename(staging, target)
        except OSError:
            if not (target / MARKER).is_file():  # not a concurrent converter that finished first
                raise
        log.info("converted %s to OpenVINO in %.1fs", model_dir, time.perf_counter() - started)
        _remove_stale(target)
    except OSError as exc:
        raise ModelUnavailableError(
            f"cannot write the OpenVINO conversion of the model to {target.parent}: {exc}; check "
            "write permission and free disk space (about 500 MB), or set QA_ENCODER_BACKEND=torch"
        ) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _remove_stale(current: Path) -> None:
    """Conversions of earlier versions of the same model (or OpenVINO) are never used again."""
    prefix = current.name.rsplit("-", 1)[0] + "-"
    for folder in current.parent.iterdir():
        if folder != current and folder.name.startswith(prefix) and (folder / MARKER).is_file():
            shutil.rmtree(folder, ignore_errors=True)


def _convert(model_dir: Path, out: Path) -> None:
    import torch
    from openvino import save_model
    from openvino.frontend import FrontEndManager
    from openvino.frontend.pytorch.ts_decoder import TorchScriptPythonDecoder
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir), device="cpu").eval()
    prompts: dict[str, str | None] = dict(model.prompts or {})
    tokenizer = model.tokenizer
    info = ModelInfo(
        query_prompt=prompts.get("query") or "",
        document_prompt=prompts.get("document") or prompts.get("passage") or "",
        max_seq_length=int(model.max_seq_length or tokenizer.model_max_length),
        pad_id=int(tokenizer.pad_token_id or 0),
        dim=int(model.get_embedding_dimension() or 0),
        source=str(model_dir),
    )
    example = tokenizer(list(_EXAMPLE_TEXTS), padding=True, return_tensors="pt")
    with torch.no_grad():
        decoder = TorchScriptPythonDecoder(
            _pipeline_module(model), example_input=(example["input_ids"], example["attention_mask"]))
    frontend = FrontEndManager().load_by_framework("pytorch")
    graph = frontend.convert(frontend.load(decoder))
    # fp16 weights, computed in f32 (questions) or bf16 (passages): OpenVINO then keeps them
    # compressed, so the compiled model holds ~110 MB instead of ~600 MB (measured), at the
    # same speed; embeddings stay at cosine >= 0.9999 to fp32 (tests/integration).
    save_model(graph, out / IR_XML, compress_to_fp16=True)
    if importlib.util.find_spec("nncf") is not None:
        _quantize(out, model_dir, info)
        info = replace(info, int8=True)
    else:
        log.warning("NNCF is not installed: passages will be embedded in bf16/f32, not int8")
    (out / MARKER).write_text(json.dumps(asdict(info), indent=2))


def _quantize(out: Path, model_dir: Path, info: ModelInfo) -> None:
    """Write INT8_XML: the converted model with int8 weights and activations (see above)."""
    import nncf
    import openvino

    from qa_service.embedding.tokenizer import shared_tokenizer
    from qa_service.ingest.chunker import ChunkerConfig
    from qa_service.ingest.passages import passage_texts
    from qa_service.samples import sample_documents

    tokenizer = shared_tokenizer(model_dir / "tokenizer.json")
    texts = passage_texts(sample_documents(), lambda t: _count(tokenizer, t), CALIBRATION_PASSAGES,
                          ChunkerConfig().max_tokens)
    encodings = _tokenize(tokenizer, info, [info.document_prompt + t for t in texts])
    batches = [(ids, mask) for _, ids, mask in _batches(encodings, info.pad_id, CALIBRATION_BATCH)]
    graph = openvino.Core().read_model(out / IR_XML)
    nncf.set_log_level(logging.WARNING)  # it lists every layer it leaves alone, at INFO
    quantized = nncf.quantize(
        graph, nncf.Dataset(batches, lambda b: {"input_ids": b[0], "attention_mask": b[1]}),
        model_type=nncf.ModelType.TRANSFORMER, preset=nncf.QuantizationPreset.MIXED,
        subset_size=len(batches), ignored_scope=nncf.IgnoredScope(patterns=[INT8_KEEP_FLOAT]))
    openvino.save_model(quantized, out / INT8_XML)


def _pipeline_module(model: Any) -> Any:
    """The whole sentence-transformers forward pass (any pooling), then L2 normalisation."""
    import torch

    class Pipeline(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            features = {"input_ids": input_ids, "attention_mask": attention_mask}
            embedding = self.model(features)["sentence_embedding"]
            return torch.nn.functional.normalize(embedding, dim=-1)

    return Pipeline().eval()


# -- encoding ------------------------------------------------------------------------------


class OpenVINOEncoder:
    """Encoder protocol over an OpenVINO conversion; thread-safe."""

    def __init__(self, model_dir: Path, ir: Path, *, model_id: str, batch_size: int = 32,
                 threads: int = 0, passage_bf16: bool = False, passage_int8: bool | None = False,
                 query_bf16: bool = False) -> None:
        """``passage_int8`` None: int8 passages when the conversion has an int8 model."""
        import openvino

        from qa_service.embedding.tokenizer import shared_tokenizer

        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        started = time.perf_counter()
        info = ModelInfo.read(ir)
        self.info = info
        self._model_id = model_id
        self._batch_size = batch_size
        if passage_int8 is None:
            passage_int8 = info.int8
        elif passage_int8 and not info.int8:
            raise ModelUnavailableError(
                f"{ir} has no int8 conversion (NNCF was not installed when it was made): install "
                "nncf and delete that folder to convert again, or set QA_PASSAGE_PRECISION=bfloat16")
        self.passage_bf16 = passage_bf16  # the compute precision, also of int8 models
        self.passage_int8 = passage_int8
        self.passage_variant = "int8" if passage_int8 else "bf16" if passage_bf16 else "fp32"
        # One tokenizer (loading this one takes seconds): it counts without special tokens;
        # model inputs are truncated by hand, then get their special tokens (as Hugging Face does).
        self._tokenizer = shared_tokenizer(model_dir / "tokenizer.json")
        self._core = openvino.Core()
        # No compiled-model cache (CACHE_DIR): compiling takes 0.5 s, loading a cached blob
        # 0.3 s but 220 MB more memory (measured).
        # Read once (the weights are memory-mapped): a later compile, for passages, needs no
        # files, even if a newer conversion has replaced this folder meanwhile.
        self._graph = self._core.read_model(ir / IR_XML)
        self._passage_graph = self._core.read_model(ir / INT8_XML) if passage_int8 else self._graph
        cores = usable_cores()
        # Questions: one stream per core, one thread each, so concurrent requests run side by
        # side instead of fighting over both cores (thread spinning doubles latency here).
        self._queries = _Compiled(self._core.compile_model(self._graph, "CPU", {
            "INFERENCE_PRECISION_HINT": "bf16" if query_bf16 else "f32", "NUM_STREAMS": cores,
            "INFERENCE_NUM_THREADS": cores}), streams=cores)
        self._passage_threads = threads if threads > 0 else cores
        self._passage_widths = tuple(w for w in PASSAGE_WIDTHS if w <= info.max_seq_length)
        self._passages: _Compiled | None = None  # compiled on first use: servers rarely ingest
        self._compile_lock = threading.Lock()
        self.load_seconds = time.perf_counter() - started

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dim(self) -> int:
        return self.info.dim

    def encode_queries(self, texts: Sequence[str]) -> Vectors:
        return self._encode(texts, self.info.query_prompt, self._queries)

    def encode_passages(self, texts: Sequence[str]) -> Vectors:
        return self._encode(texts, self.info.document_prompt, self._passage_model(), self._passage_widths)

    def _passage_model(self) -> _Compiled:
        with self._compile_lock:
            if self._passages is None:
                precision = "bf16" if self.passage_bf16 else "f32"
                self._passages = _Compiled(self._core.compile_model(self._passage_graph, "CPU", {
                    "INFERENCE_PRECISION_HINT": precision, "NUM_STREAMS": 1,
                    "INFERENCE_NUM_THREADS": self._passage_threads}), streams=1)
            return self._passages

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return _count(self._tokenizer, texts) if texts else []

    def warm_up(self) -> None:
        """First inferences of a shape build kernels: pay that before the first real question."""
        self.encode_queries(list(_WARM_UP_QUESTIONS))
        for question in _WARM_UP_QUESTIONS:
            self.encode_queries([question])

    def _encode(self, texts: Sequence[str], prompt: str, compiled: _Compiled,
                widths: Sequence[int] = ()) -> Vectors:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        encodings = _tokenize(self._tokenizer, self.info, [prompt + t for t in texts])
        for rows, ids, mask in _batches(encodings, self.info.pad_id, self._batch_size, widths):
            out[rows] = compiled.infer(ids, mask)[:len(rows)]
        # bf16 rounding leaves norms a hair off 1; inner products must be cosines.
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out


def _count(tokenizer: Tokenizer, texts: Sequence[str]) -> list[int]:
    return [len(e.ids) for e in tokenizer.encode_batch_fast(list(texts), add_special_tokens=False)]


def _tokenize(tokenizer: Tokenizer, info: ModelInfo, texts: Sequence[str]) -> list[Encoding]:
    """Model inputs as Hugging Face makes them: content truncated, then special tokens."""
    limit = info.max_seq_length - tokenizer.num_special_tokens_to_add(False)
    encodings = tokenizer.encode_batch_fast(list(texts), add_special_tokens=False)
    for encoding in encodings:
        encoding.truncate(limit)
    return [tokenizer.post_process(e) for e in encodings]


Batch = tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]


def _batches(encodings: Sequence[Encoding], pad_id: int, size: int,
             widths: Sequence[int] = ()) -> Iterator[Batch]:
    """(rows, ids, mask): longest first, batches of similar lengths, so padding is a few tokens;
    each batch as wide as its longest text, or, given ``widths``, as the first that holds it and
    with fewer rows past ``FULL_BATCH_WIDTH`` (attention memory grows with rows x width²). With
    ``widths`` a short batch is padded to a power of two rows by repeating its last text: every
    input shape run keeps ~0.55 MB, and 32 row counts x 14 widths had grown a server by 250 MB."""
    lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))
    order = np.argsort(-lengths, kind="stable")
    start = 0
    while start < len(order):
        longest = int(lengths[order[start]])
        width = next((w for w in widths if w >= longest), longest)
        narrow = not widths or width <= FULL_BATCH_WIDTH
        count = size if narrow else max(1, size * FULL_BATCH_WIDTH**2 // width**2)
        rows = order[start:start + count]
        start += count
        height = min(count, 1 << (len(rows) - 1).bit_length()) if widths else len(rows)
        ids = np.full((height, width), pad_id, dtype=np.int64)
        mask = np.zeros((height, width), dtype=np.int64)
        for i, row in enumerate(np.concatenate([rows, np.repeat(rows[-1:], height - len(rows))])):
            n = int(lengths[row])
            ids[i, :n] = encodings[row].ids
            mask[i, :n] = 1
        yield rows, ids, mask


class _Compiled:
    """A compiled model with a pool of infer requests (one request is not thread-safe).

    At most one request per stream: more would only queue inside OpenVINO, each with its own
    activation buffers (a server has 40 worker threads).
    """

    def __init__(self, compiled: Any, streams: int) -> None:
        self._compiled = compiled
        self._idle: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._free_slots = streams

    def infer(self, ids: npt.NDArray[np.int64], mask: npt.NDArray[np.int64]) -> Vectors:
        request = self._take()
        try:
            result = request.infer({"input_ids": ids, "attention_mask": mask})
            return np.array(result[0], dtype=np.float32)
        finally:
            self._idle.put(request)

    def _take(self) -> Any:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            create = self._free_slots > 0
            self._free_slots -= int(create)
        return self._compiled.create_infer_request() if create else self._idle.get()
