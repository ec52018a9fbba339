"""Validation of incoming documents (from files or HTTP) into stored ``Document`` values."""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlsplit

from qa_service.errors import BadInputError
from qa_service.models import Document
from qa_service.text import detect_language, has_letters_or_digits

KNOWN_FIELDS = frozenset({"id", "title", "text", "url", "source", "published_at", "lang", "metadata"})
MAX_ID_CHARS = 256
MAX_FIELD_CHARS = 2048
MAX_TEXT_CHARS = 2_000_000
MAX_METADATA_DEPTH = 16  # levels of objects and arrays under 'metadata'; deeper is abuse, not data
SUPPORTED_LANGS = frozenset({"ar", "en", "other"})


def document_from_mapping(raw: Mapping[str, Any], *, extra_to_metadata: bool) -> Document:
    """Validate one record; unknown fields go to ``metadata`` or are rejected."""
    if not isinstance(raw, Mapping):
        raise BadInputError(f"a document must be a JSON object, got {type(raw).__name__}")
    unknown = sorted(set(raw) - KNOWN_FIELDS)
    if unknown and not extra_to_metadata:
        raise BadInputError(
            f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(KNOWN_FIELDS))} "
            "(put anything else under 'metadata')"
        )
    text = raw.get("text")
    if not isinstance(text, str) or not text.strip():
        raise BadInputError("field 'text' is required and must be a non-empty string")
    if not has_letters_or_digits(text):
        raise BadInputError("field 'text' has no letters or digits (only spaces, control, zero-width, "
                            "direction or punctuation characters): there is nothing to search")
    if len(text) > MAX_TEXT_CHARS:
        raise BadInputError(f"field 'text' has {len(text)} characters; the limit is {MAX_TEXT_CHARS}")
    metadata = raw.get("metadata")
    metadata = {} if metadata is None else metadata
    if not isinstance(metadata, Mapping):
        raise BadInputError("field 'metadata' must be a JSON object")
    if (depth := _depth(metadata, MAX_METADATA_DEPTH)) > MAX_METADATA_DEPTH:
        raise BadInputError(f"field 'metadata' is nested more than {depth - 1} levels deep; "
                            f"the limit is {MAX_METADATA_DEPTH}")
    metadata = dict(metadata)
    for key in unknown:
        metadata[key] = raw[key]
    doc_id = _optional_str(raw, "id", MAX_ID_CHARS) or _hash_id(text)
    if any(unicodedata.category(c).startswith("C") for c in doc_id):
        raise BadInputError("field 'id' must not contain control characters")
    lang = _optional_str(raw, "lang", 16)
    if raw.get("lang") is not None and lang not in SUPPORTED_LANGS:  # "" too, as the schema's enum
        raise BadInputError(f"field 'lang' must be one of {', '.join(sorted(SUPPORTED_LANGS))}")
    return Document(
        id=doc_id,
        text=text,
        title=_optional_str(raw, "title", MAX_FIELD_CHARS),
        url=_url(raw.get("url")),
        source=_optional_str(raw, "source", MAX_FIELD_CHARS),
        published_at=parse_datetime(raw.get("published_at"), "published_at"),
        lang=lang or detect_language(text),
        metadata=metadata,
    )


def parse_datetime(value: Any, name: str) -> str | None:
    """ISO 8601 date or datetime → normalised ISO string (naive times are taken as UTC)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadInputError(f"field '{name}' must be an ISO 8601 date or datetime string")
    text = value.strip().replace("Z", "+00:00")
    try:
        if len(text) == 10:
            return date.fromisoformat(text).isoformat()
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise BadInputError(
            f"field '{name}' is {value!r}, not an ISO 8601 date (2024-01-25) or datetime "
            "(2024-01-25T15:41:00Z)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.isoformat()


def _optional_str(raw: Mapping[str, Any], name: str, limit: int) -> str | None:
    value = raw.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadInputError(f"field '{name}' must be a string")
    if len(value) > limit:  # as sent, as the schema's maxLength counts it
        raise BadInputError(f"field '{name}' is longer than {limit} characters")
    return value.strip() or None


def _url(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > MAX_FIELD_CHARS:
        raise BadInputError("field 'url' must be a string of at most 2048 characters")
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BadInputError(f"field 'url' must be an absolute http(s) URL, got {value!r}")
    return value.strip()


def _depth(value: Any, limit: int) -> int:
    """Levels of nested objects and arrays in ``value``, counted up to ``limit + 1``."""
    deepest = 0
    level: list[Any] = [value]
    while level and deepest <= limit:
        deepest += 1
        level = [child for node in level
                 for child in (node.values() if isinstance(node, Mapping) else node)
                 if isinstance(child, Mapping | list)]
    return deepest


def _hash_id(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:32]
