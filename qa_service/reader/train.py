"""``qa-service model train-reader``: fine-tune the span reader from the default model on the CPU.

Resumable: every ``checkpoint_every`` steps the trainable weights, optimizer, data position
and RNG states go to ``<run>/state.pt`` (written atomically), the held-out F1 is measured on
fixed XQuAD dev samples and logged to ``<run>/log.jsonl``, and the best checkpoint so far is
kept as ``<run>/best.safetensors``. Running the same command again continues where it stopped.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from qa_service.eval import metrics
from qa_service.reader import data as rd
from qa_service.reader.features import (
    Encoded,
    Window,
    batch_arrays,
    best_span,
    encode_question,
    encode_text,
    windows,
)
from qa_service.reader.model import SpanReader, body_state, freeze_lower, from_encoder

log = logging.getLogger(__name__)
BUCKET_BATCHES = 8


@dataclass(frozen=True)
class Recipe:
    """Everything that decides the trained weights (recorded in the manifest)."""

    max_len: int = 192
    stride: int = 64
    batch_size: int = 32
    lr: float = 1e-4
    warmup_steps: int = 100
    epochs: float = 1.0  # the learning rate decays linearly to 0 over this many passes
    # From step ``anneal_at`` (0: never) the rate falls linearly from its value then to 0 over
    # ``anneal_steps``, where training ends: a run that must stop early still ends annealed.
    anneal_at: int = 800
    anneal_steps: int = 400
    layers: int = 8  # the encoder's lowest layers the reader keeps: x1.5 faster than 12 to train and run
    frozen_layers: int = 2  # embeddings and the lowest layers get no gradient
    negative_rate: float = 0.2  # extra no-answer windows per example: another paragraph of its article
    # extra no-answer windows per example: a paragraph of another article that shares the
    # question's words, as retrieval hands the reader (0 draws nothing: the first stage's stream)
    distractor_rate: float = 0.0
    arabic_weight: int = 3  # times each ARCD-train example is seen per epoch
    max_answer_tokens: int = 30
    seed: int = 13
    bf16_autocast: bool = True  # x1.5-2 per step on CPUs with AMX or AVX512-BF16; weights stay fp32
    # A second stage: start from shipped weights ("sha256:<hex>" of the package's file; "" starts
    # from the encoder's layers) and skip the curriculum's first examples, which the stage that
    # made them saw, so the new stage reads unseen questions.
    start_from: str = ""
    skip_examples: int = 0


def recipe_with(changes: Sequence[str]) -> Recipe:
    """The default recipe with ``FIELD=VALUE`` changes, each value read as its field's type."""
    defaults = asdict(Recipe())
    values: dict[str, Any] = {}
    for change in changes:
        name, sep, text = change.partition("=")
        if not sep or name not in defaults:
            raise ValueError(f"--set {change!r}: expected FIELD=VALUE with FIELD one of "
                             f"{', '.join(defaults)}")
        kind = type(defaults[name])
        if kind is bool:
            if text.lower() not in ("true", "false"):
                raise ValueError(f"--set {change!r}: {name} is true or false")
            values[name] = text.lower() == "true"
            continue
        try:
            values[name] = kind(text)
        except ValueError:
            raise ValueError(f"--set {change!r}: {name} is a number ({kind.__name__})") from None
    return replace(Recipe(), **values)


@dataclass(frozen=True)
class Feature:
    window: Window
    start: int  # input positions of the answer; 0, 0 for no answer
    end: int


def featurize(
    tokenizer: Any, ex: rd.Example, recipe: Recipe, rng: random.Random, negatives: dict[int, list[str]],
    distractors: rd.Distractors | None = None,
) -> list[Feature]:
    """The window holding the answer (placed at random when the context needs several), plus negatives."""
    q = encode_question(tokenizer, ex.question)
    ctx = encode_text(tokenizer, ex.context)
    wins = windows(q, ctx, max_len=recipe.max_len, stride=recipe.stride)
    end_char = ex.answer_start + len(ex.answer)
    located = [(w, w.token_range(ex.answer_start, end_char)) for w in wins]
    holding = [(w, r) for w, r in located if r is not None and _whole(w, ex.answer_start, end_char)]
    out: list[Feature] = []
    if holding:
        w, r = rng.choice(holding)
        assert r is not None
        out.append(Feature(w, r[0], r[1]))
    if rng.random() < recipe.negative_rate:
        others = [w for w, r in located if r is None]
        pool = [c for c in negatives.get(ex.article, []) if c != ex.context and ex.answer not in c]
        if others and (not pool or rng.random() < 0.5):
            out.append(Feature(rng.choice(others), 0, 0))
        elif pool:
            out.append(_no_answer(tokenizer, q, pool, recipe, rng))
    if distractors is not None and rng.random() < recipe.distractor_rate:  # built only when the rate is set
        found = distractors(ex.question, ex.article, ex.answer)
        if found:
            out.append(_no_answer(tokenizer, q, found, recipe, rng))
    return out


def _no_answer(
    tokenizer: Any, q: list[int], contexts: Sequence[str], recipe: Recipe, rng: random.Random
) -> Feature:
    """A window of one of ``contexts`` (none holds the answer), labelled no-answer."""
    neg = encode_text(tokenizer, rng.choice(contexts))
    return Feature(rng.choice(windows(q, neg, max_len=recipe.max_len, stride=recipe.stride)), 0, 0)


def _batches(
    order: Sequence[int], position: int, recipe: Recipe, featurize_one: Callable[[int], list[Feature]]
) -> Iterator[tuple[int, list[int], list[Feature]]]:
    """Batches of features from ``order[position:]``, bucketed by length within groups of eight batches.

    Bucketing cuts padding (~20% of the tokens otherwise); a resumed run restarts at a group boundary.
    """
    group = recipe.batch_size * BUCKET_BATCHES
    for start in range(position, len(order), group):
        idx = list(order[start : start + group])
        feats = sorted((f for i in idx for f in featurize_one(i)), key=lambda f: len(f.window.ids))
        n_batches = max(1, math.ceil(len(idx) / recipe.batch_size))
        per = math.ceil(len(feats) / n_batches)
        batches = [feats[b * per : (b + 1) * per] for b in range(n_batches)]
        random.Random(start).shuffle(batches)
        for b, batch in enumerate(batches):
            done = start + len(idx) if b == len(batches) - 1 else start
            if batch:
                yield done, idx[b * recipe.batch_size : (b + 1) * recipe.batch_size], batch


def _whole(w: Window, start: int, end: int) -> bool:
    return bool(w.spans) and w.spans[0][0] <= start and w.spans[-1][1] >= end


def _tensors(features: Sequence[Feature]) -> tuple[torch.Tensor, ...]:
    ids, mask, allowed = batch_arrays([f.window for f in features])
    starts = torch.tensor([f.start for f in features])
    ends = torch.tensor([f.end for f in features])
    return torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(allowed), starts, ends


# -- held-out evaluation ---------------------------------------------------------------------


def predict(
    reader: SpanReader, tokenizer: Any, items: Sequence[rd.HeldOut], recipe: Recipe, batch_size: int = 32
) -> list[str]:
    """The best span of each item's context (never abstaining: SQuAD v1.1 scoring)."""
    reader.eval()
    jobs: list[tuple[int, Window]] = []
    encoded: dict[str, Encoded] = {}
    for n, item in enumerate(items):
        ctx = encoded.setdefault(item.context, encode_text(tokenizer, item.context))
        q = encode_question(tokenizer, item.question)
        jobs.extend((n, w) for w in windows(q, ctx, max_len=recipe.max_len, stride=recipe.stride))
    best: dict[int, tuple[float, str]] = {}
    with torch.inference_mode():
        for i in range(0, len(jobs), batch_size):
            chunk = jobs[i : i + batch_size]
            ids, mask, allowed = (torch.from_numpy(a) for a in batch_arrays([w for _, w in chunk]))
            start, end = reader(ids, mask, allowed)
            for (n, w), s, e in zip(chunk, start.numpy(), end.numpy(), strict=True):
                span = best_span(w, s, e, max_answer_tokens=recipe.max_answer_tokens)
                if span is not None and (n not in best or span.span_logit > best[n][0]):
                    best[n] = (span.span_logit, items[n].context[span.start : span.end])
    reader.train()
    return [best.get(n, (0.0, ""))[1] for n in range(len(items))]


def score(predictions: Sequence[str], items: Sequence[rd.HeldOut]) -> dict[str, float]:
    em = [metrics.exact_match(p, i.answers) for p, i in zip(predictions, items, strict=True)]
    f1 = [metrics.f1_score(p, i.answers) for p, i in zip(predictions, items, strict=True)]
    return {"em": 100 * float(np.mean(em)), "f1": 100 * float(np.mean(f1))}


# -- training ----------------------------------------------------------------------------------


def run_dir(cache: Path, name: str) -> Path:
    return cache / "reader-train" / name


def shipped_start(changes: Sequence[str]) -> list[str]:
    """``start_from=shipped`` named as the package's weights file by its sha256."""
    if "start_from=shipped" not in changes:
        return list(changes)
    from qa_service.reader.runtime import verify_weights

    named = f"start_from=sha256:{verify_weights().sha256}"
    return [named if c == "start_from=shipped" else c for c in changes]


def _start_body(recipe: Recipe) -> dict[str, torch.Tensor] | None:
    """The body a second stage starts from: the package's weights, which must be the ones named."""
    if not recipe.start_from:
        return None
    from safetensors.torch import load_file

    from qa_service.reader.runtime import WEIGHTS_DIR, WEIGHTS_FILE, verify_weights

    shipped = verify_weights()  # the file is the one its manifest names
    if recipe.start_from != f"sha256:{shipped.sha256}":
        raise ValueError(f"start_from={recipe.start_from}: the package's reader weights are other "
                         "weights now (use start_from=shipped for the ones it holds)")
    if shipped.layers != recipe.layers:
        raise ValueError(f"start_from: the shipped reader has {shipped.layers} layers, "
                         f"the recipe {recipe.layers}")
    return load_file(str(WEIGHTS_DIR / WEIGHTS_FILE))


def train(
    model_dir: Path,
    data_dir: Path,
    out: Path,
    recipe: Recipe,
    *,
    threads: int,
    checkpoint_every: int,
    eval_size: int,
    max_steps: int | None = None,
    max_minutes: float | None = None,
    on_checkpoint: Callable[[dict[str, Any]], None] | None = None,
) -> Path:
    """Train (or resume) in ``out``; returns the path of the best weights."""
    from safetensors.torch import save_file
    from tokenizers import Tokenizer

    torch.set_num_threads(threads)
    start_body = _start_body(recipe)
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    examples = rd.training_examples(data_dir)
    order = rd.curriculum(examples, seed=recipe.seed, arabic_weight=recipe.arabic_weight)
    if recipe.skip_examples >= len(order):
        raise ValueError(f"skip_examples={recipe.skip_examples}: the curriculum holds {len(order)} examples")
    out.mkdir(parents=True, exist_ok=True)
    recipe_file = out / "recipe.json"
    if recipe_file.exists():
        saved = json.loads(recipe_file.read_text())
        if saved != asdict(recipe):
            raise ValueError(f"{out} holds a run with another recipe ({saved}); pass another --run name")
    else:
        recipe_file.write_text(json.dumps(asdict(recipe), indent=1))
    negatives = rd.negatives_by_article(examples)
    distractors = rd.Distractors(examples) if recipe.distractor_rate else None
    held = rd.held_out(data_dir)
    eval_sets = {
        f"xquad-{lang}-dev": rd.sample(held, lang=lang, split="dev", n=eval_size) for lang in ("ar", "en")
    }

    torch.manual_seed(recipe.seed)
    reader = from_encoder(model_dir, recipe.layers)
    if start_body is not None:
        result = reader.load_state_dict({k: v.float() for k, v in start_body.items()}, strict=False)
        if result.unexpected_keys or set(result.missing_keys) != {"bert.embeddings.word_embeddings.weight"}:
            raise ValueError(f"start_from: the shipped weights do not fit the recipe's reader ({result})")
    freeze_lower(reader, recipe.frozen_layers)
    params = [p for p in reader.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=recipe.lr, weight_decay=0.01)
    steps_per_epoch = math.ceil(len(order) / recipe.batch_size)
    decay_steps = max(1, int(recipe.epochs * steps_per_epoch))
    total_steps = recipe.anneal_at + recipe.anneal_steps if recipe.anneal_at else decay_steps

    def base(step: int) -> float:
        if step < recipe.warmup_steps:
            return (step + 1) / recipe.warmup_steps
        return max(0.0, 1 - (step - recipe.warmup_steps) / max(1, decay_steps - recipe.warmup_steps))

    def lr_at(step: int) -> float:
        if not recipe.anneal_at or step < recipe.anneal_at:
            return base(step)
        return base(recipe.anneal_at) * max(0.0, 1 - (step - recipe.anneal_at) / recipe.anneal_steps)

    sched = torch.optim.lr_scheduler.LambdaLR(optim, lr_at)
    step, position, best_f1, seen, elapsed = 0, recipe.skip_examples, -1.0, 0, 0.0
    rng = random.Random(recipe.seed)
    state_file = out / "state.pt"
    if state_file.exists():
        state = torch.load(state_file, weights_only=False)
        reader.load_state_dict(state["weights"], strict=False)
        optim.load_state_dict(state["optim"])
        sched.load_state_dict(state["sched"])
        step, position, best_f1, seen = state["step"], state["position"], state["best_f1"], state["seen"]
        elapsed = state.get("elapsed", 0.0)
        rng.setstate(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        log.info("resuming %s at step %d (%d examples seen)", out, step, seen)

    checkpointed_at = step

    def checkpoint() -> None:
        nonlocal best_f1, checkpointed_at
        checkpointed_at = step
        scores = {
            name: score(predict(reader, tokenizer, items, recipe), items) for name, items in eval_sets.items()
        }
        mean_f1 = float(np.mean([s["f1"] for s in scores.values()]))
        train_seconds = elapsed + time.monotonic() - started
        record = {
            "step": step,
            "examples": seen,
            "epoch": position / len(order),
            "time": time.time(),
            "train_seconds": round(train_seconds),
            "lr": sched.get_last_lr()[0],
            "scores": scores,
            "mean_f1": mean_f1,
        }
        if mean_f1 > best_f1:
            best_f1 = mean_f1
            tmp = out / "best.safetensors.tmp"
            save_file(
                {k: v.contiguous() for k, v in body_state(reader).items()},
                str(tmp),
                metadata={"step": str(step), "examples": str(seen), "mean_f1": f"{mean_f1:.2f}"},
            )
            os.replace(tmp, out / "best.safetensors")
            record["best"] = True
        trainable = {
            k: v
            for k, v in reader.state_dict().items()
            if k in {n for n, p in reader.named_parameters() if p.requires_grad}
        }
        tmp_state = out / "state.pt.tmp"
        torch.save(
            {
                "weights": trainable,
                "optim": optim.state_dict(),
                "sched": sched.state_dict(),
                "step": step,
                "position": position,
                "best_f1": best_f1,
                "seen": seen,
                "rng": rng.getstate(),
                "torch_rng": torch.get_rng_state(),
                "elapsed": train_seconds,
            },
            tmp_state,
        )
        os.replace(tmp_state, state_file)
        with (out / "log.jsonl").open("a") as fh:
            fh.write(json.dumps(record) + "\n")
        if on_checkpoint:
            on_checkpoint(record)

    reader.train()
    started = time.monotonic()
    bar = tqdm(total=total_steps, initial=step, desc="train-reader", unit="step", smoothing=0.05)
    loss_avg = None
    threads_file = out / "threads"

    def featurize_one(i: int) -> list[Feature]:
        return featurize(tokenizer, examples[i], recipe, rng, negatives, distractors)

    for position_next, idx, feats in _batches(order, position, recipe, featurize_one):
        if step >= total_steps:
            break
        if threads_file.exists():  # `echo 1 > threads` lends the other core back without a restart
            with contextlib.suppress(ValueError):
                torch.set_num_threads(max(1, int(threads_file.read_text())))
        ids, mask, allowed, starts, ends = _tensors(feats)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=recipe.bf16_autocast):
            s_logits, e_logits = reader(ids, mask, allowed)
        loss = (
            torch.nn.functional.cross_entropy(s_logits, starts)
            + torch.nn.functional.cross_entropy(e_logits, ends)
        ) / 2
        loss.backward()  # type: ignore[no-untyped-call]
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optim.step()
        sched.step()
        optim.zero_grad(set_to_none=True)
        step += 1
        position = position_next
        seen += len(idx)
        loss_avg = loss.item() if loss_avg is None else 0.98 * loss_avg + 0.02 * loss.item()
        bar.update(1)
        bar.set_postfix(loss=f"{loss_avg:.3f}", ex=seen)
        out_of_time = max_minutes is not None and time.monotonic() - started > max_minutes * 60
        stop = out_of_time or step >= total_steps or (max_steps is not None and step >= max_steps)
        if step % checkpoint_every == 0 or stop:
            checkpoint()
        if stop:
            break
    if step != checkpointed_at:  # the data ran out between checkpoints
        checkpoint()
    bar.close()
    return out / "best.safetensors"
