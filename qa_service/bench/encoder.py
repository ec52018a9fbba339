"""Encoder benchmark: our passage and question embedding against plain ``SentenceTransformer.encode``.

Same texts, same process, rounds interleaved so that a busy machine slows every variant alike:

- baseline: ``SentenceTransformer.encode`` in fp32, batch 32 (the call everyone starts from);
- torch bf16: the same call under bf16 autocast (the previous default for passages);
- ours: the encoder the service loads (``QA_ENCODER_BACKEND``), without the embedding cache.

Passages are real news chunks, chunked and titled exactly as ingestion embeds them. Questions
are real XQuAD/ARCD questions, embedded one at a time as ``/v1/ask`` does. Quality: cosine of
every vector against the fp32 baseline (the bar is 0.999). Also printed: how much padding
length-sorted batches leave, against batches in arrival order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

import numpy as np

from qa_service.bench import common
from qa_service.embedding.base import Vectors
from qa_service.ingest.passages import passage_texts
from qa_service.settings import Settings

BASELINE_BATCH: Final = 32
DEFAULT_PASSAGES: Final = 256
DEFAULT_QUESTIONS: Final = 100
DEFAULT_ROUNDS: Final = 2
QUALITY_BAR: Final = 0.999
SETTLE_S: Final = 0.5  # lets the other runtime's worker threads go idle between blocks


def run(settings: Settings, data: Path, passages: int = DEFAULT_PASSAGES,
        n_questions: int = DEFAULT_QUESTIONS, rounds: int = DEFAULT_ROUNDS) -> dict[str, Any]:
    import torch
    from sentence_transformers import SentenceTransformer

    from qa_service.embedding.provision import load_model_encoder, resolve_model_path

    started = time.perf_counter()
    ours = load_model_encoder(settings)
    ours_load_s = time.perf_counter() - started
    name, _ = resolve_model_path(settings)
    plain = SentenceTransformer(name, device="cpu")
    texts = passage_texts(common.news_articles(data), ours.count_tokens, passages,
                                   settings.chunk_max_tokens)
    asked = common.questions(data, n_questions)
    tokens = ours.count_tokens(texts)
    common.log(f"encoder: {len(texts)} passages (mean {np.mean(tokens):.0f} tokens), "
               f"{len(asked)} questions, {rounds} rounds")

    def baseline(batch: Sequence[str]) -> Vectors:
        return np.asarray(plain.encode(list(batch), prompt_name="document", batch_size=BASELINE_BATCH,
                                       normalize_embeddings=True, show_progress_bar=False))

    def torch_bf16(batch: Sequence[str]) -> Vectors:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return baseline(batch)

    variants: dict[str, Callable[[Sequence[str]], Vectors]] = {
        "baseline fp32": baseline, "torch bf16": torch_bf16, "ours": ours.encode_passages}
    if getattr(ours, "passage_int8", False):  # the int8 lever on its own: same runtime, no int8
        float_precision = "bfloat16" if ours.passage_bf16 else "float32"
        unquantized = load_model_encoder(replace(settings, passage_precision=float_precision))
        variants[f"ours, {float_precision} not int8"] = unquantized.encode_passages
    for encode in variants.values():  # first calls allocate; keep them out of the timing
        encode(texts[:2])
    rates: dict[str, list[float]] = {k: [] for k in variants}
    vectors: dict[str, Vectors] = {}
    for _ in range(rounds):
        for key, encode in variants.items():
            t0 = time.perf_counter()
            vectors[key] = encode(texts)
            rates[key].append(len(texts) / (time.perf_counter() - t0))
    reference = vectors["baseline fp32"]
    base_rate = common.median(rates["baseline fp32"])
    passage_rows = {key: {"passages_per_s": round(common.median(r), 2), "rounds": [round(x, 2) for x in r],
                          "ratio": common.ratio(common.median(r), base_rate),
                          "cosine_vs_fp32": common.cosines(vectors[key], reference)}
                    for key, r in rates.items()}

    query_rows = _questions(asked, plain, ours.encode_queries)
    return {
        "backend": type(ours).__name__, "passage_variant": ours.passage_variant,
        "load_s": round(ours_load_s, 2), "passages": len(texts),
        "mean_tokens": round(float(np.mean(tokens)), 1),
        "padding": _padding(tokens, BASELINE_BATCH),
        "passage_throughput": passage_rows, "question_latency": query_rows,
        "quality_bar_cosine": QUALITY_BAR,
    }


def _questions(asked: Sequence[str], plain: Any, ours: Callable[[Sequence[str]], Vectors]) -> dict[str, Any]:
    """One question per call, in blocks: baseline, ours, baseline, ours.

    Not alternating call by call: each runtime's worker threads spin for a moment after a
    call, and the other's next call would pay for it (PERF-NOTES: about twice the latency).
    """

    def baseline(batch: Sequence[str]) -> Vectors:
        return np.asarray(plain.encode(list(batch), prompt_name="query", normalize_embeddings=True,
                                       show_progress_bar=False))

    times: dict[str, list[float]] = {"baseline fp32": [], "ours": []}
    vecs: dict[str, list[Vectors]] = {"baseline fp32": [], "ours": []}
    baseline(asked[:1])
    ours(asked[:1])
    half = len(asked) // 2
    for block in (asked[:half], asked[half:]):
        for key, encode in (("baseline fp32", baseline), ("ours", ours)):
            time.sleep(SETTLE_S)
            for question in block:
                t0 = time.perf_counter()
                vecs[key].append(encode([question]))
                times[key].append(time.perf_counter() - t0)
    rows: dict[str, Any] = {k: common.percentiles(v) for k, v in times.items()}
    rows["ours"]["cosine_vs_fp32"] = common.cosines(np.concatenate(vecs["ours"]),
                                                     np.concatenate(vecs["baseline fp32"]))
    rows["speedup_p50"] = common.ratio(rows["baseline fp32"]["p50_ms"], rows["ours"]["p50_ms"])
    return rows


def _padding(tokens: Sequence[int], batch: int) -> dict[str, float]:
    """Padded / real tokens: batches in arrival order against batches sorted by length."""
    def waste(lengths: Sequence[int]) -> float:
        padded = sum(max(lengths[i:i + batch]) * len(lengths[i:i + batch])
                     for i in range(0, len(lengths), batch))
        return round(padded / max(sum(lengths), 1), 3)

    return {"arrival_order": waste(list(tokens)), "length_sorted": waste(sorted(tokens, reverse=True))}


def summary(result: dict[str, Any]) -> str:
    rows = [(key, row["passages_per_s"], row["ratio"], f"{row['cosine_vs_fp32']['min']:.6f}")
            for key, row in result["passage_throughput"].items()]
    text = [f"Encoder ({result['backend']} {result['passage_variant']}, {result['passages']} passages of "
            f"{result['mean_tokens']:.0f} tokens; padding x{result['padding']['arrival_order']} "
            f"in arrival order, x{result['padding']['length_sorted']} sorted)",
            common.table(rows, ["passages", "per s", "x baseline", "min cosine"])]
    q = result["question_latency"]
    text.append(common.table(
        [(key, q[key]["p50_ms"], q[key]["p95_ms"]) for key in ("baseline fp32", "ours")],
        ["one question", "p50 ms", "p95 ms"]))
    text.append(f"question speed-up at p50: x{q['speedup_p50']}; "
                f"min cosine {q['ours']['cosine_vs_fp32']['min']}")
    return "\n".join(text)
