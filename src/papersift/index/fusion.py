"""Fusing ranked lists from the keyword and dense retrievers into one ranking.

Two standard rules, both cheap and tuned on SciFact *train* queries only (see benchmarks/):
- reciprocal-rank fusion, Cormack, Clarke & Büttcher (SIGIR 2009): score(d) = sum_i w_i / (k + rank_i(d));
- a convex combination of per-list min-max normalised scores (Bruch, Gai & Ingber, "An Analysis of
  Fusion Functions for Hybrid Retrieval", TOIS 2023), which uses the score gaps RRF throws away.
"""

from __future__ import annotations

from collections.abc import Sequence

Ranked = Sequence[tuple[str, float]]


def rrf(lists: Sequence[Ranked], k: float = 60.0, weights: Sequence[float] | None = None) -> list[tuple[str, float]]:
    """Reciprocal-rank fusion; ranks start at 1; a document missing from a list gets nothing from it."""
    weights = weights or [1.0] * len(lists)
    scores: dict[str, float] = {}
    for ranked, weight in zip(lists, weights, strict=True):
        for rank, (doc, _score) in enumerate(ranked, 1):
            scores[doc] = scores.get(doc, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


def _minmax(ranked: Ranked) -> dict[str, float]:
    if not ranked:
        return {}
    values = [s for _, s in ranked]
    low, high = min(values), max(values)
    span = high - low
    if span <= 0:
        return {doc: 1.0 for doc, _ in ranked}
    return {doc: (score - low) / span for doc, score in ranked}


def convex(lists: Sequence[Ranked], weights: Sequence[float]) -> list[tuple[str, float]]:
    """sum_i w_i * minmax_i(score); a document missing from a list scores that list's minimum (0)."""
    scores: dict[str, float] = {}
    for ranked, weight in zip(lists, weights, strict=True):
        for doc, norm in _minmax(ranked).items():
            scores[doc] = scores.get(doc, 0.0) + weight * norm
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))
