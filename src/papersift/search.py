"""Search service: queries in, ranked papers out. The CLI and the web call this, never the index."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from papersift.index.keyword import Filters, KeywordIndex
from papersift.models import Paper
from papersift.settings import Settings
from papersift.store import Store

MAX_LIMIT = 1000


@dataclass(slots=True)
class SearchHit:
    paper: Paper
    score: float
    rank: int


def open_index(store: Store, settings: Settings) -> KeywordIndex:
    """The keyword index, brought up to date with the store (rebuilt if missing or corrupt)."""
    return KeywordIndex.open(settings.index_dir / "keyword", store)


def batch_search(
    store: Store, index: KeywordIndex, queries: Sequence[str], limit: int = 10, filters: Filters | None = None
) -> list[list[SearchHit]]:
    limit = max(1, min(limit, MAX_LIMIT))
    ranked = index.batch_search(queries, limit, filters)
    papers = store.get_many(sorted({pid for hits in ranked for pid, _ in hits}))
    return [
        [SearchHit(papers[pid], score, rank) for rank, (pid, score) in enumerate(hits, 1) if pid in papers]
        for hits in ranked
    ]


def search(
    store: Store, index: KeywordIndex, query: str, limit: int = 10, filters: Filters | None = None
) -> list[SearchHit]:
    return batch_search(store, index, [query], limit, filters)[0]
