"""The relevance cut-off: which ranked papers are good enough for the main list, feeds and digests.

A fused score only orders one query's candidates (it is z-scored over them), so it cannot say "nothing
matches". Two absolute signals can: the cosine between the query and the paper (all-MiniLM scores mean
the same across queries; the better of the whole-paper and best-passage cosines) and the share of the
query's words the paper holds (`index.facets.coverage`). A paper is a strong match when

    cosine + coverage_weight * coverage >= threshold,   or it holds every query word.

The second rule is the all-words rule of newest-first search, feeds and digests: a paper holding every
word a reader typed is never hidden. Without an embedder only that rule applies (relevance is then
threshold * coverage, on the same scale). Below the cut-off a paper is a "weaker match": a search page
shows it apart, the API flags it, and feeds and digests never include it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from papersift.index.facets import coverage
from papersift.index.keyword import KeywordIndex
from papersift.index.vectors import VectorIndex
from papersift.settings import Settings


@dataclass(slots=True, frozen=True)
class Verdict:
    relevance: float  # cosine + coverage_weight * coverage (threshold * coverage without vectors)
    every_word: bool  # the paper holds every plain query word
    strong: bool  # above the cut-off, or every word held


@dataclass(slots=True, frozen=True)
class Cutoff:
    """The rule above with its two numbers (PAPERSIFT_RELEVANCE_CUTOFF, PAPERSIFT_CUTOFF_COVERAGE_WEIGHT)."""

    threshold: float
    coverage_weight: float

    @classmethod
    def of(cls, settings: Settings | None = None) -> Cutoff:
        """The configured cut-off; the calibrated defaults without settings."""
        if settings is None:
            fields = Settings.model_fields
            return cls(float(fields["relevance_cutoff"].default), float(fields["cutoff_coverage_weight"].default))
        return cls(settings.relevance_cutoff, settings.cutoff_coverage_weight)

    def verdict(self, cosine: float | None, share: float) -> Verdict:
        """Judge one paper from its query cosine (None without an embedder) and its query-word coverage."""
        every = share >= 1.0
        if cosine is None:
            return Verdict(self.threshold * share, every, every)
        relevance = cosine + self.coverage_weight * share
        return Verdict(relevance, every, every or relevance >= self.threshold)

    def judge(
        self,
        keyword: KeywordIndex,
        dense: VectorIndex | None,
        vector: np.ndarray | None,
        query: str,
        ids: Sequence[str],
    ) -> dict[str, Verdict]:
        """A verdict for each of `ids` (a paper the dense index lacks is judged on its words alone)."""
        return {pid: self.verdict(*pair) for pid, pair in signals(keyword, dense, vector, query, ids).items()}


def signals(
    keyword: KeywordIndex, dense: VectorIndex | None, vector: np.ndarray | None, query: str, ids: Sequence[str]
) -> dict[str, tuple[float | None, float]]:
    """(query cosine or None, share of query words held) for each of `ids`: what a verdict weighs."""
    shares = coverage(keyword, query, ids)
    cosines: dict[str, float] = {}
    if dense is not None and vector is not None:
        whole, best = dense.scores(vector, ids)
        cosines = {pid: max(whole[pid], best.get(pid, whole[pid])) for pid in whole}
    return {pid: (cosines.get(pid), shares.get(pid, 0.0)) for pid in ids}
