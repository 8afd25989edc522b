"""Date-keyed listings for the daily feed and trending: the SQL behind `papersift.feed`.

A paper's listing day is `announced`, else `featured` (a Hugging Face pick that never appeared in an
arXiv listing we hold). Every query keeps `announced` and `featured` in separate, indexed predicates
rather than filtering on COALESCE, so both backends can use the indexes.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import ColumnElement, and_, func, or_, select

from papersift.models import Paper
from papersift.store.accounts import Accounts
from papersift.store.engine import storable
from papersift.store.papers import Store, _to_paper


def _on_days(store: Store, start: date, end: date) -> ColumnElement[bool]:
    p = store.papers
    return and_(
        p.c.hidden.is_(False),
        or_(
            p.c.announced.between(start, end),
            and_(p.c.announced.is_(None), p.c.featured.between(start, end)),
        ),
    )


def _edge(store: Store, before: date | None, after: date | None) -> date | None:
    """The nearest listing day strictly before `before` (or strictly after `after`); None when none."""
    p = store.papers
    agg = func.max if before is not None else func.min
    pivot = before if before is not None else after
    assert pivot is not None

    def cmp(column: ColumnElement[date]) -> ColumnElement[bool]:
        return column < pivot if before is not None else column > pivot

    q1 = select(agg(p.c.announced)).where(p.c.hidden.is_(False), cmp(p.c.announced))
    q2 = select(agg(p.c.featured)).where(p.c.hidden.is_(False), p.c.announced.is_(None), cmp(p.c.featured))
    with store.engine.connect() as conn:
        found: list[date] = [d for d in (conn.execute(q1).scalar(), conn.execute(q2).scalar()) if d is not None]
    if not found:
        return None
    return max(found) if before is not None else min(found)


def latest_day(store: Store) -> date | None:
    """The newest day that has any visible paper."""
    return _edge(store, before=date.max, after=None)


def previous_day(store: Store, day: date) -> date | None:
    return _edge(store, before=day, after=None)


def next_day(store: Store, day: date) -> date | None:
    return _edge(store, before=None, after=day)


def papers_between(
    store: Store,
    accounts: Accounts,
    start: date,
    end: date,
    *,
    category: str = "",
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[tuple[Paper, int]], int]:
    """Visible papers listed from `start` to `end` (inclusive), most upvoted first, with their local
    vote counts, and how many there are in all."""
    p, v = store.papers, accounts.votes
    if not storable(category):
        return [], 0  # no paper has such a category
    where = _on_days(store, start, end)
    if category:
        where = and_(where, p.c.primary_category == category)
    local = select(v.c.paper_id, func.count().label("n")).group_by(v.c.paper_id).subquery()
    n = func.coalesce(local.c.n, 0)
    query = (
        select(p, n.label("local_votes"))
        .select_from(p.outerjoin(local, local.c.paper_id == p.c.id))
        .where(where)
        .order_by((p.c.upvotes + n).desc(), func.coalesce(p.c.announced, p.c.featured).desc(), p.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    with store.engine.connect() as conn:
        total = int(conn.execute(select(func.count()).select_from(p).where(where)).scalar_one())
        rows = [(_to_paper(row), int(row.local_votes)) for row in conn.execute(query)]
    return rows, total


def upvoted_since(store: Store, since: date, limit: int) -> list[Paper]:
    """Visible papers listed on or after `since` that have source upvotes: trending candidates."""
    p = store.papers
    query = (
        select(p)
        .where(_on_days(store, since, date.max), p.c.upvotes > 0)
        .order_by(p.c.upvotes.desc(), p.c.id)
        .limit(limit)
    )
    with store.engine.connect() as conn:
        return [_to_paper(row) for row in conn.execute(query)]


def latest_upvoted_day(store: Store) -> date | None:
    """The newest listing day of a visible paper with source upvotes: where a stale corpus's trend ends."""
    p = store.papers
    base = (p.c.hidden.is_(False), p.c.upvotes > 0)
    with store.engine.connect() as conn:
        found = [
            conn.execute(select(func.max(p.c.announced)).where(*base)).scalar(),
            conn.execute(select(func.max(p.c.featured)).where(*base, p.c.announced.is_(None))).scalar(),
        ]
    days = [d for d in found if d is not None]
    return max(days) if days else None
