"""Command-line options of ``qa-service eval`` (kept light: no heavy imports here)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

DEFAULT_TOP_K: Final = 10  # enough passages for a recall@k curve up to 10
DEFAULT_CONCURRENCY: Final = 4
DEFAULT_TIMEOUT_S: Final = 60.0
DEFAULT_RETRIES: Final = 3
API_KEY_ENV: Final = "QA_EVAL_API_KEY"

# --min-<name> → summary key; higher is better.
MIN_METRICS: Final = {
    "mrr": "mrr", "em": "em", "f1": "f1", "short-answer-rate": "short_answer_rate",
    "cited-accuracy": "cited_accuracy", "citation-support": "citation_support",
    "citation-validity": "citation_validity", "abstain-precision": "abstain_precision",
    "abstain-recall": "abstain_recall",
}
THRESHOLD_RECALL_KS: Final = (1, 3, 5, 10, 20, 50)
# --max-<name> → summary key; lower is better.
MAX_METRICS: Final = {"latency-p50": "latency_p50_ms", "latency-p95": "latency_p95_ms",
                      "latency-p99": "latency_p99_ms"}


@dataclass(frozen=True)
class Threshold:
    """``metric`` must be at least (``min``) or at most (``max``) ``limit``."""

    kind: str
    metric: str
    limit: float


@dataclass(frozen=True)
class EvalOptions:
    dataset: Path
    questions_from: Path | None = None
    name: str | None = None
    doc_prefix: str | None = None
    url: str | None = None
    api_key: str | None = None
    concurrency: int = DEFAULT_CONCURRENCY
    timeout_s: float = DEFAULT_TIMEOUT_S
    retries: int = DEFAULT_RETRIES
    ingest: bool = False
    index_dir: Path | None = None
    distractors: Path | None = None
    distractor_limit: int | None = None
    top_k: int = DEFAULT_TOP_K
    mode: str = "auto"
    limit: int | None = None
    seed: int | None = None
    out: Path | None = None
    compare: Path | None = None
    thresholds: tuple[Threshold, ...] = field(default_factory=tuple)


class _ThresholdAction(argparse.Action):
    """Collects every --min-X / --max-X into one list of Threshold."""

    def __init__(self, option_strings: Sequence[str], dest: str, *, kind: str, metric: str,
                 **kwargs: Any) -> None:
        super().__init__(option_strings, dest, **kwargs)
        self.kind = kind
        self.metric = metric

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        collected = list(getattr(namespace, self.dest, None) or [])
        collected.append(Threshold(self.kind, self.metric, values))
        setattr(namespace, self.dest, collected)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``qa-service eval`` (``--index-dir`` is added by the CLI)."""
    p.add_argument("dataset", type=Path,
                   help="SQuAD-style .json[.gz] (XQuAD, ARCD, MLQA, TyDi QA gold passage) or "
                        ".jsonl of {question, answers, evidence?, abstain?}")
    p.add_argument("--questions-from", type=Path, default=None, metavar="SQUAD_JSON",
                   help="ask this file's questions (same ids) over DATASET's paragraphs and answers, "
                        "e.g. xquad.en.json over xquad.ar.json for English→Arabic")
    p.add_argument("--name", default=None, help="label of the run in reports")
    p.add_argument("--doc-prefix", default=None, metavar="PREFIX",
                   help="document id prefix of the paragraphs (default: file name, e.g. xquad-ar)")
    target = p.add_argument_group("target")
    target.add_argument("--url", default=None,
                        help="evaluate a running service (http://host:port); default: in-process "
                             "over QA_INDEX_DIR / --index-dir")
    target.add_argument("--api-key", default=os.environ.get(API_KEY_ENV), metavar="KEY",
                        help=f"bearer key for --ingest over HTTP (default ${API_KEY_ENV})")
    target.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY, metavar="N",
                        help=f"HTTP requests in flight (default {DEFAULT_CONCURRENCY})")
    target.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, dest="timeout_s",
                        metavar="S", help=f"seconds per HTTP request (default {DEFAULT_TIMEOUT_S:g})")
    target.add_argument("--retries", type=int, default=DEFAULT_RETRIES, metavar="N",
                        help="retries of a failed HTTP request (connection errors, 429, 502-504)")
    target.add_argument("--ingest", action="store_true",
                        help="ingest the dataset's paragraphs first (in-process: into a fresh "
                             "--index-dir, default a new folder in the output folder)")
    target.add_argument("--distractors", type=Path, default=None, metavar="PATH",
                        help="with --ingest, also ingest these documents (file or folder)")
    target.add_argument("--distractor-limit", type=int, default=None, metavar="N",
                        help="at most N distractor documents")
    ask = p.add_argument_group("questions")
    ask.add_argument("--top-k", type=int, default=DEFAULT_TOP_K, metavar="K",
                     help=f"passages per question (default {DEFAULT_TOP_K}, for recall@1..{DEFAULT_TOP_K})")
    ask.add_argument("--mode", choices=("auto", "extractive", "llm"), default="auto")
    ask.add_argument("--limit", type=int, default=None, metavar="N", help="only N questions")
    ask.add_argument("--seed", type=int, default=None, metavar="S",
                     help="with --limit, draw the N questions at random with this seed")
    out = p.add_argument_group("output")
    out.add_argument("--out", type=Path, default=None, metavar="DIR",
                     help="output folder (default artifacts/eval/<name>-<time>)")
    out.add_argument("--compare", type=Path, default=None, metavar="RESULTS_JSON",
                     help="print changes against an earlier results.json (or its folder)")
    gates = p.add_argument_group(
        "thresholds (exit status 3 when one is missed)",
        f"--min-recall@K X (K in {', '.join(map(str, THRESHOLD_RECALL_KS))}), "
        + ", ".join(f"--min-{name} X" for name in MIN_METRICS)
        + " (X a fraction, e.g. --min-f1 0.4); "
        + ", ".join(f"--max-{name} MS" for name in MAX_METRICS) + " (milliseconds)")
    bounds = [("min", f"recall@{k}", f"recall@{k}") for k in THRESHOLD_RECALL_KS]
    bounds += [("min", name, metric) for name, metric in MIN_METRICS.items()]
    bounds += [("max", name, metric) for name, metric in MAX_METRICS.items()]
    for kind, name, metric in bounds:
        gates.add_argument(f"--{kind}-{name}", type=float, dest="thresholds", help=argparse.SUPPRESS,
                           action=_ThresholdAction, kind=kind, metric=metric)


def options_from_args(args: argparse.Namespace) -> EvalOptions:
    """Plain options from parsed arguments."""
    index_dir = getattr(args, "index_dir", None)
    return EvalOptions(
        dataset=args.dataset, questions_from=args.questions_from, name=args.name,
        doc_prefix=args.doc_prefix, url=args.url, api_key=args.api_key,
        concurrency=args.concurrency, timeout_s=args.timeout_s, retries=args.retries,
        ingest=args.ingest, index_dir=Path(index_dir) if index_dir else None,
        distractors=args.distractors, distractor_limit=args.distractor_limit, top_k=args.top_k,
        mode=args.mode, limit=args.limit, seed=args.seed, out=args.out, compare=args.compare,
        thresholds=tuple(getattr(args, "thresholds", None) or ()),
    )
