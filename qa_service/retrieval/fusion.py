"""Rank fusion, pseudo-relevance feedback terms, noise demotion and the recency tie policy."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

# Reciprocal rank fusion constant (Cormack et al. 2009): flattens the head of each list.
RRF_K: Final = 60


def rrf(rankings: Sequence[tuple[Sequence[int], float]], k: int = RRF_K) -> dict[int, float]:
    """Weighted reciprocal-rank fusion: ``sum(w / (k + rank))`` over the lists holding an id."""
    fused: dict[int, float] = defaultdict(float)
    for ids, weight in rankings:
        if weight <= 0:
            continue
        for rank, rid in enumerate(ids, start=1):
            fused[rid] += weight / (k + rank)
    return dict(fused)


def idf(total: int, df: int) -> float:
    """BM25's (Robertson-Sparck Jones) inverse document frequency, never negative."""
    return max(0.0, math.log((total - df + 0.5) / (df + 0.5) + 1.0))


def feedback_terms(docs: Sequence[Sequence[str]], df: Mapping[str, int], total: int,
                   limit: int, exclude: frozenset[str] = frozenset()) -> list[str]:
    """Expansion terms from pseudo-relevant passages (ranked best first).

    Each term scores ``idf * sum(tf_share / rank)`` over the passages (RM3-like, with the
    dense rank standing in for the relevance model's document weight). Terms found in a
    single passage of several are kept: a rare name in the best passage is the point.
    """
    weight: dict[str, float] = defaultdict(float)
    for rank, terms in enumerate(docs, start=1):
        if not terms:
            continue
        share = 1.0 / len(terms)
        for term in terms:
            if term not in exclude:
                weight[term] += share / rank
    scored = sorted(((w * idf(total, df.get(t, 0)), t) for t, w in weight.items()), reverse=True)
    return [t for s, t in scored[:limit] if s > 0]


@dataclass(frozen=True)
class Ranked:
    """One candidate after fusion: chunk id, fused relevance and publication date."""

    rowid: int
    relevance: float
    published_at: str | None


def recency_order(items: Sequence[Ranked], margin: float) -> list[Ranked]:
    """Relevance order, except that near-ties go to the newer passage.

    Candidates are taken best first; a run is the best remaining candidate plus every
    candidate whose relevance is within ``margin`` (relative) of it. Inside a run the
    dated passages are reordered newest day first over the places that dated passages
    held; an undated passage has no date to compare and keeps its place. Runs keep
    relevance order.
    """
    ordered = sorted(items, key=lambda r: r.relevance, reverse=True)
    out: list[Ranked] = []
    i = 0
    while i < len(ordered):
        floor = ordered[i].relevance * (1.0 - margin)
        j = i + 1
        while j < len(ordered) and ordered[j].relevance >= floor:
            j += 1
        run = ordered[i:j]
        places = [n for n, r in enumerate(run) if r.published_at]
        # Stable sort: passages of the same day keep relevance order.
        newest = sorted((run[n] for n in places), key=lambda r: (r.published_at or "")[:10],
                        reverse=True)
        for n, r in zip(places, newest, strict=True):
            run[n] = r
        out.extend(run)
        i = j
    return out
