"""Read documents from files and folders: .txt .md .html .json .jsonl .jsonl.gz.

Each loader yields ``Loaded`` items: a validated document or an error with its location,
so one bad record never stops the others.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from qa_service.errors import BadInputError
from qa_service.ingest.documents import document_from_mapping
from qa_service.models import Document

SUFFIXES = (".txt", ".md", ".html", ".htm", ".json", ".jsonl", ".jsonl.gz", ".ndjson")


@dataclass(frozen=True)
class Loaded:
    where: str
    document: Document | None = None
    error: str | None = None


def iter_files(paths: Iterable[Path]) -> Iterator[Path | Loaded]:
    """Files to load, folders walked recursively in sorted order; missing paths as errors."""
    for path in paths:
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and _suffix(child) in SUFFIXES:
                    yield child
        elif path.is_file():
            yield path
        else:
            yield Loaded(str(path), error="no such file or directory")


def load_paths(paths: Iterable[Path]) -> Iterator[Loaded]:
    for item in iter_files(paths):
        if isinstance(item, Loaded):
            yield item
        else:
            yield from load_file(item)


def load_file(path: Path) -> Iterator[Loaded]:
    suffix = _suffix(path)
    try:
        if suffix in (".jsonl", ".jsonl.gz", ".ndjson"):
            yield from _load_jsonl(path)
        elif suffix == ".json":
            yield from _load_json(path)
        elif suffix in (".html", ".htm"):
            yield _record(str(path), _html_record(path))
        elif suffix in (".txt", ".md"):
            yield _record(str(path), _text_record(path, markdown=suffix == ".md"))
        else:
            yield Loaded(str(path), error=f"unsupported file type; use one of {', '.join(SUFFIXES)}")
    except (OSError, UnicodeDecodeError, EOFError, gzip.BadGzipFile) as exc:
        yield Loaded(str(path), error=f"cannot read file: {exc}")


def _record(where: str, raw: Any) -> Loaded:
    try:
        return Loaded(where, document=document_from_mapping(raw, extra_to_metadata=True))
    except BadInputError as exc:
        return Loaded(where, error=exc.detail)


def _load_jsonl(path: Path) -> Iterator[Loaded]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for where, raw, error in parse_json_lines(fh, str(path)):
            yield Loaded(where, error=error) if error is not None else _record(where, raw)


def parse_json_lines(lines: Iterable[str], name: str) -> Iterator[tuple[str, Any, str | None]]:
    """(``name:lineno``, value, None) per JSON line, or (where, None, message) for a bad one.

    Blank lines are skipped; callers decide whether a bad line is skipped or fatal.
    """
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{name}:{lineno}"
        try:
            yield where, json.loads(line), None
        except json.JSONDecodeError as exc:
            yield where, None, f"invalid JSON: {exc.msg} at column {exc.colno}"


def _load_json(path: Path) -> Iterator[Loaded]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        yield Loaded(str(path), error=f"invalid JSON: {exc.msg} at line {exc.lineno}")
        return
    if isinstance(data, dict) and isinstance(data.get("documents"), list):
        data = data["documents"]
    records = data if isinstance(data, list) else [data]
    for i, raw in enumerate(records):
        yield _record(f"{path}[{i}]" if isinstance(data, list) else str(path), raw)


def _text_record(path: Path, *, markdown: bool) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    title = first.lstrip("#").strip() if markdown else first
    return {"id": path.as_posix(), "title": title or None, "text": text,
            "metadata": {"path": path.as_posix()}}


def _html_record(path: Path) -> dict[str, Any]:
    parser = _TextExtractor()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    parser.close()
    return {"id": path.as_posix(), "title": parser.title.strip() or None, "text": parser.text(),
            "metadata": {"path": path.as_posix()}}


class _TextExtractor(HTMLParser):
    """Visible text of an HTML page, one line per block element; scripts and styles dropped."""

    BLOCKS = frozenset({"p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr",
                        "section", "article", "header", "footer", "blockquote", "figcaption"})
    SKIP = frozenset({"script", "style", "noscript", "template", "head"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title = ""
        self._parts: list[str] = []
        self._skip = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in self.SKIP:
            self._skip += 1
        elif tag in self.BLOCKS:
            self._parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in self.SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag in self.BLOCKS:
            self._parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif not self._skip:
            self._parts.append(data)

    def text(self) -> str:
        lines = (" ".join(line.split()) for line in "".join(self._parts).splitlines())
        return "\n".join(line for line in lines if line)


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".jsonl.gz" if name.endswith(".jsonl.gz") else path.suffix.lower()
