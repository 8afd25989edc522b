"""Search service: queries in, ranked papers out. The CLI and the web call this, never an index.

`SearchEngine` is the stable face of retrieval; which indexes stand behind it (BM25 today, hybrid
BM25 + dense vectors next) is its own business.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from papersift.errors import QueryError
from papersift.index.keyword import Filters, KeywordIndex
from papersift.models import Paper
from papersift.settings import Settings
from papersift.store import Store

MAX_LIMIT = 1000
Sort = Literal["relevance", "date"]

__all__ = ["MAX_LIMIT", "Filters", "SearchEngine", "SearchHit", "Sort"]


@dataclass(slots=True)
class SearchHit:
    paper: Paper
    score: float
    rank: int


class SearchEngine:
    """Open with `SearchEngine.open(store, settings)`; indexes are synced with the store on open."""

    def __init__(self, store: Store, keyword: KeywordIndex) -> None:
        self.store = store
        self.keyword = keyword

    @classmethod
    def open(cls, store: Store, settings: Settings) -> SearchEngine:
        return cls(store, KeywordIndex.open(settings.index_dir / "keyword", store))

    def sync(self) -> int:
        """Apply store changes made since the indexes were opened; returns documents changed."""
        return self.keyword.sync(self.store)

    @property
    def num_docs(self) -> int:
        return self.keyword.num_docs

    def batch_search(
        self,
        queries: Sequence[str],
        limit: int = 10,
        filters: Filters | None = None,
        sort: Sort = "relevance",
        offset: int = 0,
    ) -> list[list[SearchHit]]:
        if not 1 <= limit <= MAX_LIMIT:
            raise QueryError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
        if offset < 0 or offset + limit > 10 * MAX_LIMIT:
            raise QueryError(f"offset must be between 0 and {10 * MAX_LIMIT - limit}")
        ranked = self.keyword.batch_search(queries, limit, filters, sort=sort, offset=offset)
        return [self._hits(hits, offset) for hits in ranked]

    def search(
        self, query: str, limit: int = 10, filters: Filters | None = None, sort: Sort = "relevance", offset: int = 0
    ) -> list[SearchHit]:
        return self.batch_search([query], limit, filters, sort, offset)[0]

    def related(self, paper_id: str, limit: int = 10) -> list[SearchHit]:
        """Papers most like a stored one (raises PaperNotFound for an unknown id)."""
        paper = self.store.get(paper_id)
        return [h for h in self.like_text(f"{paper.title}\n{paper.abstract}", limit + 1) if h.paper.id != paper_id][
            :limit
        ]

    def like_text(self, text: str, limit: int = 10) -> list[SearchHit]:
        """ "More like this" for a pasted abstract."""
        return self.search(text, limit)

    def _hits(self, ranked: list[tuple[str, float]], offset: int) -> list[SearchHit]:
        papers = self.store.get_many([pid for pid, _ in ranked])
        return [
            SearchHit(papers[pid], score, offset + rank)
            for rank, (pid, score) in enumerate(ranked, 1)
            if pid in papers and not papers[pid].hidden
        ]
