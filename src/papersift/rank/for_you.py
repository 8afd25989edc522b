"""For you: the newest papers (the newest listing day, or the seven days up to it) ranked by a reader's
model (`rank.recommend`): their saved papers and upvotes are positives, "not interested" marks negatives;
or one collection's papers alone (per-collection recommendations, like arxiv-sanity's per tag).

Requests never compute. One worker thread fits the window's tf-idf space (once per store revision and
window) and each reader's ranking (once per library revision); results are cached under those keys, so a
library change makes the next request queue a fresh ranking. A request waits at most `wait` seconds for
it (a ranking over a week of listings takes well under a second once the space is fitted) and otherwise
hears "being prepared" and serves it on the next visit.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal

import scipy.sparse as sp

from papersift.models import Paper
from papersift.rank import recommend
from papersift.store import Store, listing
from papersift.store.accounts import Accounts
from papersift.store.library import Library

Window = Literal["day", "week"]
WINDOW_DAYS = {"day": 1, "week": 7}
MAX_CANDIDATES = 20_000  # a week of every arXiv category: more than any listing this site ingests
CACHE_SIZE = 2000
log = logging.getLogger("papersift.rank")


@dataclass(slots=True, frozen=True)
class Recommendation:
    paper: Paper
    score: float
    because: Paper  # the reader's paper it is closest to


@dataclass(slots=True)
class ForYou:
    """One reader's ranking of one window; empty `items` with `library == 0` means nothing to learn from."""

    window: Window
    start: date | None
    end: date | None
    library: int  # positives the model learned from
    negatives: int
    items: list[Recommendation] = field(default_factory=list)


@dataclass(slots=True)
class _Space:
    papers: list[Paper]
    space: recommend.TextSpace
    matrix: sp.csr_matrix


def _text(paper: Paper) -> str:
    return recommend.paper_text(paper.title, paper.abstract, paper.comment)


def window_dates(store: Store, window: Window) -> tuple[date, date] | None:
    """The newest listing day, or the seven days up to it; None when the store lists nothing."""
    end = listing.latest_day(store)
    if end is None:
        return None
    return end - timedelta(days=WINDOW_DAYS[window] - 1), end


class Recommender:
    """Cached per-reader rankings computed by one background thread; construct once per process."""

    def __init__(self, store: Store, accounts: Accounts, library: Library, wait: float = 3.0) -> None:
        self.store, self.accounts, self.library, self.wait = store, accounts, library, wait
        self._spaces: dict[tuple[object, ...], _Space] = {}
        self._results: OrderedDict[tuple[object, ...], ForYou] = OrderedDict()
        self._done = threading.Condition()
        self._queue: queue.Queue[tuple[tuple[object, ...], int, int | None, Window] | None] = queue.Queue()
        self._queued: set[tuple[object, ...]] = set()
        self._worker: threading.Thread | None = None
        self._lock = threading.Lock()

    def key(self, user_id: int, collection_id: int | None, window: Window) -> tuple[object, ...]:
        """What a ranking depends on: the reader's library revision, the store's paper and vote revisions."""
        return (user_id, collection_id, window, self.library.revision(user_id), self.store.revisions())

    def get(self, user_id: int, collection_id: int | None, window: Window) -> ForYou | None:
        """The reader's ranking if ready within `wait` seconds, else None (it is being computed)."""
        key = self.key(user_id, collection_id, window)
        with self._done:
            if key in self._results:
                self._results.move_to_end(key)
                return self._results[key]
            if key not in self._queued:
                self._queued.add(key)
                self._queue.put((key, user_id, collection_id, window))
                self._start()
            self._done.wait_for(lambda: key in self._results, self.wait)
            return self._results.get(key)

    def close(self) -> None:
        self._queue.put(None)

    def _start(self) -> None:
        with self._lock:
            if self._worker is None:
                self._worker = threading.Thread(target=self._run, name="papersift-for-you", daemon=True)
                self._worker.start()

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            key, user_id, collection_id, window = job
            try:
                result = self.compute(user_id, collection_id, window)
            except Exception:  # logged, and the next request queues it again
                log.exception("for-you ranking failed for user %s", user_id)
                with self._done:
                    self._queued.discard(key)
                continue
            with self._done:
                self._queued.discard(key)
                self._results[key] = result
                while len(self._results) > CACHE_SIZE:
                    self._results.popitem(last=False)
                self._done.notify_all()

    # -- the ranking itself (also called directly by the digest) --------------------------------------

    def compute(self, user_id: int, collection_id: int | None, window: Window, limit: int = 100) -> ForYou:
        """Rank the window's papers for the reader; the caller checks access to `collection_id`."""
        dates = window_dates(self.store, window)
        if dates is None:
            return ForYou(window, None, None, 0, 0)
        result = rank(self.store, self.library, user_id, collection_id, dates, limit, self._space)
        result.window = window
        return result

    def _space(self, start: date, end: date) -> _Space:
        """The window's papers and their tf-idf rows, fitted once per store revision."""
        key = (start, end, self.store.revision())
        found = self._spaces.get(key)
        if found is None:
            found = build_space(self.store, self.accounts, start, end)
            self._spaces = {key: found}  # only the newest: older revisions are never asked for again
        return found


def build_space(store: Store, accounts: Accounts, start: date, end: date) -> _Space:
    """The papers listed from `start` to `end` and their tf-idf rows."""
    rows, _ = listing.papers_between(store, accounts, start, end, limit=MAX_CANDIDATES)
    papers = [p for p, _ in rows]
    space, matrix = recommend.fit_space([_text(p) for p in papers] or ["empty"], min_df=1)
    return _Space(papers, space, matrix)


def rank(
    store: Store,
    library: Library,
    user_id: int,
    collection_id: int | None,
    dates: tuple[date, date],
    limit: int,
    space_for: Callable[[date, date], _Space],
    exclude: set[str] | None = None,
) -> ForYou:
    """The reader's model applied to the papers of `dates`: positives are the collection's papers, or every
    saved and upvoted paper; negatives the "not interested" ones. Papers in `exclude`, the library and the
    negatives are never returned; nor is a paper sharing no term with the profile."""
    if collection_id is not None:
        positive_ids = library.paper_ids(collection_id)
    else:
        positive_ids = sorted({*library.saved_ids(user_id), *library.upvoted_ids(user_id)})
    negative_ids = library.dismissed_ids(user_id)
    known = store.get_many([*positive_ids, *negative_ids])
    positives = [known[i] for i in positive_ids if i in known]
    negatives = [known[i] for i in negative_ids if i in known]
    start, end = dates
    result = ForYou("day", start, end, len(positives), len(negatives))
    if not positives:
        return result
    space = space_for(start, end)
    if not space.papers:
        return result
    liked = space.space.transform([_text(p) for p in positives])
    disliked = space.space.transform([_text(p) for p in negatives]) if negatives else None
    scores = recommend.score(space.matrix, recommend.profile(liked, disliked))
    skip = set(positive_ids) | set(negative_ids) | (exclude or set())
    ranked = [int(i) for i in recommend.top(scores, limit + len(skip)) if space.papers[i].id not in skip]
    ranked = [i for i in ranked if scores[i] > 0][:limit]  # no shared term at all is no recommendation
    nearest = recommend.closest(space.matrix[ranked], liked).tolist() if ranked else []
    result.items = [
        Recommendation(space.papers[i], float(scores[i]), positives[int(j)])
        for i, j in zip(ranked, nearest, strict=True)
    ]
    return result


def rank_between(
    store: Store, accounts: Accounts, user_id: int, start: date, end: date, limit: int, exclude: set[str] | None = None
) -> list[Recommendation]:
    """The reader's top papers listed from `start` to `end` (the for-you digest); empty for a user now gone."""
    library = Library(store)
    found = rank(
        store, library, user_id, None, (start, end), limit, lambda a, b: build_space(store, accounts, a, b), exclude
    )
    return found.items
