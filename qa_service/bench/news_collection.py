"""The news collection the news QA set (``tests/data/news-qa``) is asked over, built deterministically.

The collection is, in this order:

1. the seed article (``qa_service/samples/seed.jsonl``, Arabi Post, 2024-01-25);
2. every ``ant-news-ar`` article whose text contains «العراق» (1,711 articles), in file order;
3. ``DISTRACTORS`` (800) of the other articles, spread evenly over the file: of the N articles
   without «العراق», those at positions ``i * N // 800`` for ``i = 0 … 799`` (file order).
   The first 800 in file order would all be AlArabiya culture and economy pieces; the even
   spread mixes every outlet, section and month, as a real collection does.

Each line is a document ``qa-service ingest`` accepts: ``id``, ``title``, ``text`` (exactly
as in the source file, so the evidence strings of the QA set are verbatim substrings of it),
``url``, ``source``, ``published_at``, ``lang`` ("ar") and ``metadata`` (``category``,
``author``). Every record is validated with the ingestion's own validator before it is written.

    python -m qa_service.bench.news_collection artifacts/news-collection.jsonl [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from qa_service.errors import BadInputError
from qa_service.ingest.documents import document_from_mapping
from qa_service.samples import SAMPLE_DIR

NEWS_FILE: Final = "ant-news-ar.jsonl.gz"
SEED_FILE: Final = SAMPLE_DIR / "seed.jsonl"
# ../shared/data beside the project checkout, wherever the command is run from.
SHARED_DATA: Final = Path(__file__).resolve().parents[2].parent / "shared" / "data"
TOPIC: Final = "العراق"  # "Iraq"
DISTRACTORS: Final = 800
DOCUMENT_FIELDS: Final = ("id", "title", "text", "url", "source", "published_at")
METADATA_FIELDS: Final = ("category", "author")


@dataclass(frozen=True)
class CollectionStats:
    seed: int
    topic: int
    distractors: int
    scanned: int

    @property
    def total(self) -> int:
        return self.seed + self.topic + self.distractors


def spread(count: int, total: int) -> list[int]:
    """``count`` positions spread evenly over ``range(total)`` (all of them when fewer)."""
    if count >= total:
        return list(range(total))
    return [i * total // count for i in range(count)]


def _article_record(raw: dict[str, Any], where: str) -> dict[str, Any]:
    """An ``ant-news-ar`` line as an ingestible document (validated, text unchanged)."""
    record: dict[str, Any] = {name: raw.get(name) for name in DOCUMENT_FIELDS if raw.get(name)}
    record["lang"] = "ar"
    metadata = {name: raw[name] for name in METADATA_FIELDS if raw.get(name)}
    if metadata:
        record["metadata"] = metadata
    try:
        document_from_mapping(record, extra_to_metadata=False)
    except BadInputError as exc:
        raise BadInputError(f"{where}: {exc.detail}") from None
    return record


def _news_lines(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    try:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, start=1):
                if line.strip():
                    yield _news_line(line, f"{path}:{lineno}")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise BadInputError(f"{path}: cannot read: {exc}") from None


def _news_line(line: str, where: str) -> tuple[str, dict[str, Any]]:
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as exc:
        raise BadInputError(f"{where}: invalid JSON: {exc.msg}") from None
    if not isinstance(raw, dict):
        raise BadInputError(f"{where}: not a JSON object")
    return where, raw


def _seed_records(seed: Path) -> list[dict[str, Any]]:
    records = []
    for lineno, line in enumerate(seed.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            raw = json.loads(line)
            if not isinstance(raw, dict):
                raise BadInputError(f"{seed}:{lineno}: not a JSON object")
            document_from_mapping(raw, extra_to_metadata=False)
            records.append(raw)
    return records


def collection_records(news: Path, *, seed: Path = SEED_FILE, distractors: int = DISTRACTORS,
                       topic: str = TOPIC) -> tuple[list[dict[str, Any]], CollectionStats]:
    """The collection's documents in order (seed, topic articles, spread distractors) and counts."""
    if not news.is_file():
        raise BadInputError(f"{news}: no such file; pass --data with the folder holding {NEWS_FILE}")
    seeds = _seed_records(seed)
    # Two passes over the file: the spread needs the number of non-topic articles first.
    others = sum(1 for _, raw in _news_lines(news) if topic not in str(raw.get("text", "")))
    picked = set(spread(distractors, others))
    topic_records: list[dict[str, Any]] = []
    distractor_records: list[dict[str, Any]] = []
    other_index = 0
    scanned = 0
    for where, raw in _news_lines(news):
        scanned += 1
        if topic in str(raw.get("text", "")):
            topic_records.append(_article_record(raw, where))
        else:
            if other_index in picked:
                distractor_records.append(_article_record(raw, where))
            other_index += 1
    records = [*seeds, *topic_records, *distractor_records]
    ids = [r.get("id") for r in records]
    if len(set(ids)) != len(ids):
        raise BadInputError("the collection would hold two documents with the same id")
    return records, CollectionStats(len(seeds), len(topic_records), len(distractor_records), scanned)


def write_collection(out: Path, news: Path, *, seed: Path = SEED_FILE,
                     distractors: int = DISTRACTORS) -> CollectionStats:
    """Write the collection as JSONL (one document a line, UTF-8) to ``out``."""
    records, stats = collection_records(news, seed=seed, distractors=distractors)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with partial.open("w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    partial.replace(out)
    return stats


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qa_service.bench.news_collection", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path,
                        help="the JSONL file to write (e.g. artifacts/news-collection.jsonl)")
    parser.add_argument("--data", type=Path, default=SHARED_DATA,
                        help=f"folder holding {NEWS_FILE} (default: {SHARED_DATA})")
    parser.add_argument("--distractors", type=int, default=DISTRACTORS,
                        help=f"articles without «{TOPIC}» to add (default {DISTRACTORS}; "
                             "the news QA set assumes the default)")
    args = parser.parse_args(argv)
    if args.distractors < 0:
        parser.error("--distractors must be 0 or more")
    try:
        stats = write_collection(args.out, args.data / NEWS_FILE, distractors=args.distractors)
    except BadInputError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return 1
    print(f"{args.out}: {stats.total} documents (seed {stats.seed}, «{TOPIC}» {stats.topic}, "
          f"distractors {stats.distractors}; {stats.scanned} articles read)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
