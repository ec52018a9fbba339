"""Loaders, document validation and the chunker."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from qa_service.errors import BadInputError
from qa_service.ingest.chunker import ChunkerConfig, chunk_spans
from qa_service.ingest.documents import document_from_mapping
from qa_service.ingest.loaders import load_paths
from tests.fakes import FakeEncoder

ARTICLE = (
    "أعلنت بغداد، الخميس 25 يناير 2024، توصلها إلى اتفاق مع واشنطن.\n\n"
    "وتنشر الولايات المتحدة 2500 عسكري في العراق لتقديم المشورة والمساعدة لقواته. "
    "ومن المتوقع أن تستغرق المحادثات عدة أشهر؟ نعم! The U.S. has 2.5 thousand troops there."
)


def test_loads_every_supported_format_and_reports_bad_records(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("عنوان الخبر\n\nنص الخبر هنا.", encoding="utf-8")
    (tmp_path / "b.md").write_text("# Title here\n\nBody text.", encoding="utf-8")
    (tmp_path / "c.html").write_text(
        "<html><head><title>صفحة</title><style>p{}</style></head><body><p>فقرة أولى.</p>"
        "<script>alert(1)</script><p>فقرة ثانية.</p></body></html>", encoding="utf-8")
    (tmp_path / "d.json").write_text(json.dumps([{"id": "j1", "text": "one"}, {"title": "no text"}]))
    lines = [json.dumps({"id": "l1", "text": "نص", "category": "news"}, ensure_ascii=False),
             "{not json", json.dumps({"id": "l3", "text": "x", "published_at": "yesterday"})]
    (tmp_path / "e.jsonl").write_text("\n".join(lines), encoding="utf-8")
    with gzip.open(tmp_path / "f.jsonl.gz", "wt", encoding="utf-8") as fh:
        fh.write(json.dumps({"id": "g1", "text": "gz text", "published_at": "2018-02-18T21:35:43+04:00"}))
    (tmp_path / "ignored.bin").write_bytes(b"\0")

    items = list(load_paths([tmp_path, tmp_path / "missing.txt"]))
    docs = {i.document.id: i.document for i in items if i.document}
    errors = [(i.where, i.error) for i in items if i.error]

    assert docs[(tmp_path / "a.txt").as_posix()].title == "عنوان الخبر"
    assert docs[(tmp_path / "b.md").as_posix()].title == "Title here"
    html = docs[(tmp_path / "c.html").as_posix()]
    assert html.title == "صفحة" and html.text == "فقرة أولى.\nفقرة ثانية." and html.lang == "ar"
    assert docs["l1"].metadata == {"category": "news"}
    assert docs["g1"].published_at == "2018-02-18T21:35:43+04:00"
    assert len(errors) == 4
    joined = " | ".join(f"{w}: {e}" for w, e in errors)
    assert "d.json[1]" in joined and "'text' is required" in joined
    assert "e.jsonl:2: invalid JSON" in joined
    assert "e.jsonl:3" in joined and "ISO 8601" in joined
    assert "missing.txt: no such file" in joined


@pytest.mark.parametrize(("raw", "message"), [
    ({"text": "   "}, "non-empty"),
    ({"text": "x", "url": "javascript:alert(1)"}, r"http\(s\) URL"),
    ({"text": "x", "lang": "klingon"}, "lang"),
    ({"text": "x", "lang": ""}, "lang"),  # what the schema's enum rejects, the server rejects
    ({"text": "x", "source": " " * 2000 + "x" * 100}, "source.*longer than"),  # counted as sent
    ({"text": "x", "txt": "typo"}, "unknown field"),
    ({"text": "x", "metadata": []}, "metadata"),
    ({"text": 5}, "text"),
])
def test_invalid_documents_are_rejected_with_a_reason(raw: dict[str, object], message: str) -> None:
    with pytest.raises(BadInputError, match=message):
        document_from_mapping(raw, extra_to_metadata=False)


def test_document_defaults_detect_language_and_hash_id() -> None:
    doc = document_from_mapping({"text": "وتنشر الولايات المتحدة 2500 عسكري"}, extra_to_metadata=False)
    assert doc.lang == "ar"
    assert doc.id.startswith("sha256:")
    again = document_from_mapping({"text": "وتنشر الولايات المتحدة 2500 عسكري"}, extra_to_metadata=False)
    assert again.id == doc.id


def test_chunks_are_sentence_aligned_within_budget_and_offsets_are_exact() -> None:
    encoder = FakeEncoder()
    config = ChunkerConfig(max_tokens=16)
    spans = chunk_spans(ARTICLE, encoder.count_tokens, config)
    assert len(spans) > 1
    assert spans == sorted(spans)
    for (s, e), nxt in zip(spans, [*spans[1:], (len(ARTICLE), len(ARTICLE))], strict=True):
        chunk = ARTICLE[s:e]
        assert chunk == chunk.strip()
        assert e <= nxt[0]
    # every sentence lies inside exactly one chunk: the 2500 sentence is never cut
    key = "وتنشر الولايات المتحدة 2500 عسكري في العراق"
    assert sum(key in ARTICLE[s:e] for s, e in spans) == 1
    # all words are covered
    covered = " ".join(ARTICLE[s:e] for s, e in spans).split()
    assert covered == ARTICLE.split()


def test_overlong_sentence_is_cut_at_words_under_budget() -> None:
    encoder = FakeEncoder()
    text = " ".join(f"كلمة{i}" for i in range(100))
    spans = chunk_spans(text, encoder.count_tokens, ChunkerConfig(max_tokens=10))
    assert len(spans) == 10
    assert all(encoder.count_tokens([text[s:e]])[0] <= 10 for s, e in spans)
    assert " ".join(text[s:e] for s, e in spans) == text
