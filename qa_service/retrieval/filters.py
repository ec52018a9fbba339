"""Search filters (source, lang, published_after, published_before) as validated SQL conditions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import numpy.typing as npt

from qa_service.errors import BadInputError
from qa_service.ingest.documents import SUPPORTED_LANGS, parse_datetime
from qa_service.models import Filters
from qa_service.store.sqlite_store import Store

SQL_BATCH = 500
DAY_CHARS = 10  # "2024-01-25": dates are compared by day, both bounds inclusive


@dataclass(frozen=True)
class Condition:
    """A SQL condition on ``d`` (documents) with its parameters; ``always`` when no filter."""

    sql: str = "1"
    args: tuple[object, ...] = field(default_factory=tuple)

    @property
    def always(self) -> bool:
        return not self.args

    def also(self, sql: str, *args: object) -> Condition:
        return Condition(f"{self.sql} AND {sql}" if not self.always else sql, (*self.args, *args))


def condition(filters: Filters | None) -> Condition:
    """Validate ``filters`` and turn them into a SQL condition (BadInputError when invalid)."""
    cond = Condition()
    if filters is None:
        return cond
    sources = [s for s in (filters.source or []) if s.strip()]
    if sources:
        cond = cond.also(f"d.source IN ({','.join('?' * len(sources))})", *sources)
    if filters.lang:
        if filters.lang not in SUPPORTED_LANGS:
            raise BadInputError(
                f"filter 'lang' must be one of {', '.join(sorted(SUPPORTED_LANGS))}, got {filters.lang!r}")
        cond = cond.also("d.lang = ?", filters.lang)
    after = _day(filters.published_after, "published_after")
    before = _day(filters.published_before, "published_before")
    if after and before and after > before:
        raise BadInputError(
            f"filter 'published_after' ({after}) is later than 'published_before' ({before}); "
            "no article can match")
    # ISO strings compare in date order, and plain comparisons can use the index on
    # published_at: "on or after day A" is ">= A", "on or before day B" is "< B + 1 day".
    if after:
        cond = cond.also("d.published_at >= ?", after)
    if before and before < date.max.isoformat():  # 9999-12-31 (a common "no bound") has no next day
        cond = cond.also("d.published_at < ?", (date.fromisoformat(before) + timedelta(days=1)).isoformat())
    return cond


def _day(value: str | None, name: str) -> str | None:
    parsed = parse_datetime(value, name)
    return None if parsed is None else parsed[:DAY_CHARS]


def allowed_among(store: Store, rowids: Sequence[int], cond: Condition) -> set[int]:
    """The chunk ids among ``rowids`` whose documents satisfy ``cond``."""
    if cond.always:
        return set(rowids)
    out: set[int] = set()
    conn = store.reader()
    for i in range(0, len(rowids), SQL_BATCH):
        batch = list(rowids[i:i + SQL_BATCH])
        marks = ",".join("?" * len(batch))
        out.update(int(r[0]) for r in conn.execute(
            f"SELECT c.rowid FROM chunks c JOIN documents d ON d.id = c.document_id "
            f"WHERE c.rowid IN ({marks}) AND {cond.sql}", [*batch, *cond.args]))
    return out


def all_allowed(store: Store, cond: Condition) -> npt.NDArray[np.int64]:
    """Every chunk id whose document satisfies ``cond`` (for a selective filter)."""
    rows = store.reader().execute(
        f"SELECT c.rowid FROM documents d JOIN chunks c ON c.document_id = d.id WHERE {cond.sql}",
        cond.args).fetchall()
    return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
