"""``qa-service bench encoder|ingest|ann|serve|all``: the performance suite.

Each part prints a table of figures with ratios against its baseline measured in the same run,
and writes JSON (``--json``, default ``artifacts/bench/perf-<part>.json``). ``all`` runs every
part in its own process (so memory figures are each part's own) and ends with the issue's
targets next to the figures reached. Reproduce the full-collection figures with::

    qa-service bench all --articles 31508 --sizes 10000,100000

Pools of real chunk embeddings (``artifacts/bench/news-<size>``) are built once and reused;
they are fed by the embedding cache, which the ingestion part fills without reading it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from qa_service.bench import common
from qa_service.settings import Settings

PARTS: Final = ("encoder", "ingest", "ann", "serve")
DEFAULT_SIZES: Final = "10000,100000"


def add_parsers(sub: Any, func: Callable[[argparse.Namespace, Settings], int]) -> None:
    """The suite's subcommands, added to ``qa-service bench``'s subparsers."""
    helps = {
        "encoder": "passages/s and question latency: ours vs plain SentenceTransformer.encode fp32",
        "ingest": "end-to-end ingestion chunks/s of news articles into a fresh index folder",
        "ann": "recall@10 and speed of the IVF index vs exact search (and HNSW)",
        "serve": "/v1/ask latency, answers/s with concurrent clients, cold start, RSS, over HTTP",
        "all": "every part, each in its own process, and the targets table",
    }
    for part, text in helps.items():
        p = sub.add_parser(part, help=text)
        p.add_argument("--json", type=Path, default=None,
                       help=f"write the figures here (default {common.DEFAULT_OUT}/perf-{part}.json)")
        p.add_argument("--data", type=Path, default=common.SHARED_DATA,
                       help="folder holding ant-news-ar.jsonl.gz, xquad/ and arcd/")
        p.add_argument("--out", type=Path, default=common.DEFAULT_OUT,
                       help="where pools and ingest folders live (reused between runs)")
        if part in ("encoder", "all"):
            p.add_argument("--passages", type=int, default=256, help="passages embedded per variant")
            p.add_argument("--encode-questions", type=int, default=100, help="questions embedded one by one")
        if part in ("ingest", "all"):
            p.add_argument("--articles", type=int, default=1000, help="news articles to ingest")
            p.add_argument("--baseline-articles", type=int, default=50,
                           help="articles ingested with the plain fp32 encoder (0: skip)")
        if part in ("serve", "ann", "all"):
            p.add_argument("--sizes", default=DEFAULT_SIZES,
                           help="pool sizes in chunks, comma-separated; a folder holding index/ "
                                "(e.g. an ingest run) is served as it is")
        if part in ("serve", "all"):
            p.add_argument("--sequential", type=int, default=200, help="questions asked by one client")
            p.add_argument("--clients", type=int, default=8, help="concurrent clients")
            p.add_argument("--concurrent", type=int, default=400, help="questions the clients share")
            p.add_argument("--no-baseline", action="store_true", help="skip the baseline server")
            p.add_argument("--server-env", action="append", default=[], metavar="KEY=VALUE",
                           help="extra environment for the measured server (repeatable)")
            p.add_argument("--baseline-env", action="append", default=[], metavar="KEY=VALUE",
                           help="the baseline server's environment instead of the PyTorch encoder's "
                                "(repeatable), e.g. QA_READER_PRECISION=bfloat16")
        if part in ("ann", "all"):
            p.add_argument("--ann-questions", type=int, default=300, help="questions searched")
            p.add_argument("--no-hnsw", action="store_true", help="skip the HNSW comparison")
        p.set_defaults(func=func, bench_part=part)


def run(args: argparse.Namespace, settings: Settings) -> int:
    part: str = args.bench_part
    out = args.json or common.DEFAULT_OUT / f"perf-{part}.json"
    if part == "all":
        return _run_all(args, out)
    result = _run_part(part, args, settings)
    print(_summary(part, result))
    common.write_json(out, {"machine": common.machine(), part: result})
    return 0


def _run_part(part: str, args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    from qa_service.bench import ann, encoder, ingest, serving

    if part == "encoder":
        return encoder.run(settings, args.data, args.passages, args.encode_questions)
    if part == "ingest":
        return ingest.run(settings, args.data, args.out, args.articles, args.baseline_articles)
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    if part == "ann":
        counts = [int(s) for s in sizes if s.isdigit()]
        if not counts:
            raise SystemExit("error: bench ann needs a pool size in --sizes (a number of chunks)")
        return ann.run(settings, args.data, args.out, max(counts), args.ann_questions, not args.no_hnsw)
    env = dict(_key_value(item, "--server-env") for item in args.server_env)
    baseline_env = dict(_key_value(item, "--baseline-env") for item in args.baseline_env) or None
    return serving.run(settings, args.data, args.out, sizes, args.sequential, args.clients, args.concurrent,
                       not args.no_baseline, env, baseline_env)


def _key_value(item: str, option: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise SystemExit(f"error: {option} takes KEY=VALUE, got {item!r}")
    return key, value


def _summary(part: str, result: dict[str, Any]) -> str:
    from qa_service.bench import ann, encoder, ingest, serving

    summaries: dict[str, Callable[[dict[str, Any]], str]] = {
        "encoder": encoder.summary, "ingest": ingest.summary, "ann": ann.summary, "serve": serving.summary}
    return summaries[part](result)


def _run_all(args: argparse.Namespace, out: Path) -> int:
    """Each part in its own process; then the figures against the issue's targets."""
    combined: dict[str, Any] = {"machine_at_start": common.machine()}
    failed = []
    with tempfile.TemporaryDirectory(prefix="qa-bench-") as tmp:
        for part in PARTS:
            part_json = Path(tmp) / f"{part}.json"
            cmd = [sys.executable, "-m", "qa_service.cli", "bench", part, "--json", str(part_json),
                   "--data", str(args.data), "--out", str(args.out), *_part_options(part, args)]
            common.log(f"== bench {part}: {' '.join(cmd[3:])}")
            if subprocess.run(cmd, check=False).returncode != 0 or not part_json.is_file():
                failed.append(part)
                continue
            combined[part] = json.loads(part_json.read_text())[part]
    combined["machine_at_end"] = common.machine()
    combined["targets"] = targets(combined)
    print()
    print(common.table([(t["what"], t["target"], t["reached"], t["met"]) for t in combined["targets"]],
                       ["target", "wanted", "measured", "met"]))
    common.write_json(out, combined)
    if failed:
        common.log(f"bench parts that failed: {', '.join(failed)}")
        return 1
    return 0


def _part_options(part: str, args: argparse.Namespace) -> list[str]:
    if part == "encoder":
        return ["--passages", str(args.passages), "--encode-questions", str(args.encode_questions)]
    if part == "ingest":
        return ["--articles", str(args.articles), "--baseline-articles", str(args.baseline_articles)]
    if part == "ann":
        return ["--sizes", args.sizes, "--ann-questions", str(args.ann_questions),
                *(["--no-hnsw"] if args.no_hnsw else [])]
    options = ["--sizes", args.sizes, "--sequential", str(args.sequential), "--clients", str(args.clients),
               "--concurrent", str(args.concurrent), *(["--no-baseline"] if args.no_baseline else [])]
    for option in ("server_env", "baseline_env"):
        for item in getattr(args, option):
            options += [f"--{option.replace('_', '-')}", item]
    return options


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets next to what this run measured (the largest pool for serving)."""
    rows: list[dict[str, Any]] = []

    def add(what: str, target: str, reached: float | None, met: bool | None) -> None:
        rows.append({"what": what, "target": target, "reached": reached,
                     "met": None if reached is None else met})

    ingest = results.get("ingest", {}).get("ours", {})
    rate = ingest.get("chunks_per_s")
    add("ingestion chunks/s", ">= 100", rate, rate is not None and rate >= 100)
    sizes = results.get("serve", {}).get("sizes", {})
    largest = max(sizes.values(), key=lambda r: r["ours"].get("chunks") or 0, default=None)
    ours = largest["ours"] if largest else {}
    one, many = ours.get("one_client", {}), ours.get("concurrent", {})
    label = f" ({ours.get('chunks')} chunks)" if ours else ""
    add(f"/v1/ask p50 ms{label}", "<= 25", one.get("p50_ms"), (one.get("p50_ms") or 1e9) <= 25)
    add(f"/v1/ask p95 ms{label}", "<= 60", one.get("p95_ms"), (one.get("p95_ms") or 1e9) <= 60)
    add(f"answers/s, 8 clients{label}", ">= 40", many.get("answers_per_s"),
        (many.get("answers_per_s") or 0) >= 40)
    add(f"cold start s{label}", "<= 5", ours.get("cold_start_s"), (ours.get("cold_start_s") or 1e9) <= 5)
    rss = ours.get("memory", {}).get("peak_rss_mib")
    add(f"peak RSS MiB{label}", "<= 1536", rss, (rss or 1e9) <= 1536)
    recall = results.get("ann", {}).get("indexes", {}).get("ivf", {}).get("recall", {}).get("10")
    add("IVF recall@10 vs exact", ">= 0.98", recall, (recall or 0) >= 0.98)
    cosine = (results.get("encoder", {}).get("passage_throughput", {}).get("ours", {})
              .get("cosine_vs_fp32", {}).get("min"))
    add("passage cosine vs fp32 (min)", ">= 0.999", cosine, (cosine or 0) >= 0.999)
    return rows
