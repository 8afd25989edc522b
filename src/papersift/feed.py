"""The daily list and trending: what the site's front pages show, computed from the store.

Trending is Hacker News' ranking adapted to papers: `score = votes / (age_hours + 2) ** gravity`,
where votes are the source's upvotes plus the site's own, age is measured from the start of the
paper's listing day, and gravity (PAPERSIFT_TRENDING_GRAVITY, 1.8) sets how fast a paper sinks.
The +2 hours keeps a brand-new paper with one vote from outranking everything.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

from papersift.models import Paper
from papersift.query_dates import MIN_DAY
from papersift.store import Store, listing
from papersift.store.accounts import Accounts
from papersift.store.curation import Curation

View = Literal["day", "week", "month"]
DailySort = Literal["curated", "votes"]
FEW_VOTES = 3  # a period with fewer voted papers than this is shown in curated order unless asked otherwise
VIEWS: tuple[View, ...] = ("day", "week", "month")
MAX_TRENDING_CANDIDATES = 5000


@dataclass(slots=True)
class FeedItem:
    """A paper as a list shows it: with its total votes and whether it is on the newest listing day."""

    paper: Paper
    local_votes: int = 0
    is_new: bool = False
    score: float = 0.0
    pick: bool = False  # the curation model (or an admin) picked it for its day
    pick_reason: str = ""  # one line on why

    @property
    def votes(self) -> int:
        return self.paper.upvotes + self.local_votes


@dataclass(slots=True)
class DailyPage:
    """One day, week or month of papers, most upvoted first, one page of it."""

    day: date | None
    view: View
    start: date | None
    end: date | None
    items: list[FeedItem] = field(default_factory=list)
    total: int = 0
    previous: date | None = None
    next: date | None = None
    offset: int = 0
    limit: int = 50
    sort: DailySort = "votes"


def period(day: date, view: View) -> tuple[date, date]:
    """The inclusive date range a view covers: the day, its Monday-to-Sunday week, or its month.

    Clipped to Python's dates: a stored paper dated 9999-12-31 must not crash its week view.
    """
    if view == "week":
        start = _plus_days(day, -day.weekday())
        return start, _plus_days(start, 6)
    if view == "month":
        return day.replace(day=1), day.replace(day=calendar.monthrange(day.year, day.month)[1])
    return day, day


def _plus_days(day: date, days: int) -> date:
    """`day` + `days`, clipped to date.min..date.max instead of raising OverflowError."""
    try:
        return day + timedelta(days=days)
    except OverflowError:
        return date.max if days > 0 else date.min


def listing_day(paper: Paper) -> date | None:
    """The day a paper belongs to in the daily list: announced, else featured."""
    return paper.announced or paper.featured


def daily(
    store: Store,
    accounts: Accounts,
    day: date | None = None,
    view: View = "day",
    *,
    category: str = "",
    limit: int = 50,
    offset: int = 0,
    sort: DailySort | None = None,
    curation: Curation | None = None,
) -> DailyPage:
    """Papers for `day` (default: the newest day with papers) in the chosen view.

    `sort` None means curated when the period has few votes (FEW_VOTES) and a model has scored papers, else votes.
    Without scores the curated order equals the votes order (admin picks aside)."""
    newest = listing.latest_day(store)
    day = day or newest
    if day is None:
        return DailyPage(None, view, None, None, limit=limit, offset=offset)
    start, end = period(day, view)
    if sort is None:
        few = curation is not None and curation.has_scores() and curation.votes_in(accounts, start, end) < FEW_VOTES
        sort = "curated" if few else "votes"
    # "new" is the newest listing day's papers, whenever the store received them: a mirror filled
    # yesterday, or a first run on an old snapshot, still marks the latest day and only it
    if sort == "curated" and curation is not None:
        picked, total = curation.listing(accounts, start, end, category=category, limit=limit, offset=offset)
        items = [
            FeedItem(c.paper, c.local_votes, is_new=_is_new(c.paper, newest), pick=c.pick, pick_reason=c.reason)
            for c in picked
        ]
    else:
        sort = "votes"
        rows, total = listing.papers_between(store, accounts, start, end, category=category, limit=limit, offset=offset)
        items = [FeedItem(p, n, is_new=_is_new(p, newest)) for p, n in rows]
    return DailyPage(
        day,
        view,
        start,
        end,
        items,
        total,
        previous=listing.previous_day(store, start),
        next=listing.next_day(store, end),
        offset=offset,
        limit=limit,
        sort=sort,
    )


def _is_new(paper: Paper, newest: date | None) -> bool:
    return newest is not None and listing_day(paper) == newest


def trending_score(votes: int, age_hours: float, gravity: float = 1.8) -> float:
    """HN-style decay: votes / (age_hours + 2) ** gravity; negative ages (clock skew) count as 0."""
    return votes / (max(age_hours, 0.0) + 2.0) ** gravity


def trending(
    store: Store,
    accounts: Accounts,
    *,
    gravity: float = 1.8,
    days: int = 7,
    limit: int = 30,
    now: datetime | None = None,
) -> list[FeedItem]:
    """Papers from the last `days` listing days ranked by `trending_score`, best first.

    The clock is now, or the end of the newest day that saw votes (a source's upvoted listing day or a
    local vote) when that is earlier, so a mirror that stopped updating still shows its last trend
    instead of an empty page.
    """
    clock = now or datetime.now(UTC)
    last_vote = accounts.last_vote_at()
    latest = max((d for d in (listing.latest_upvoted_day(store), last_vote and last_vote.date()) if d), default=None)
    if latest is None:
        return []
    if latest < date.max:  # stored rows may carry any date: keep the clock where date arithmetic works
        clock = min(clock, datetime.combine(latest + timedelta(days=1), time(), UTC))
    clock = max(clock, datetime.combine(MIN_DAY, time(), UTC))
    since = (clock - timedelta(days=days)).date()
    papers = {p.id: p for p in listing.upvoted_since(store, since, MAX_TRENDING_CANDIDATES)}
    recent = accounts.voted_since(clock - timedelta(days=days))
    missing = [pid for pid in recent if pid not in papers]
    papers.update({pid: p for pid, p in store.get_many(missing).items() if not p.hidden})
    local = accounts.counts(list(papers))
    items = []
    for paper in papers.values():
        item = FeedItem(paper, local.get(paper.id, 0))
        day = listing_day(paper) or paper.date
        age = (clock - datetime.combine(day, time(), UTC)).total_seconds() / 3600 if day else 24.0 * days
        item.score = trending_score(item.votes, age, gravity)
        if item.votes > 0:
            items.append(item)
    items.sort(key=lambda it: (-it.score, -it.votes, it.paper.id))
    return items[:limit]
