"""The store side of curation: admin picks, the model's stored scores, and the curated listing order.

Scores are written by the background job (`papersift.curate`) and only read by requests, so a page
never waits for the model. Migration 9 (`curation_schema`) creates both tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import (
    Connection,
    MetaData,
    Table,
    and_,
    case,
    delete,
    func,
    select,
    update,
)

from papersift.errors import PaperNotFound
from papersift.models import Paper
from papersift.store.accounts import Accounts
from papersift.store.engine import insert_ignoring_duplicates, storable
from papersift.store.listing import _on_days
from papersift.store.papers import Store, _to_paper

# how much a paper's votes lift it in the curated order: a quarter of a day's model ranking per vote,
# at most one whole day-range, so four votes bring any paper to the top of the non-picks
VOTE_LIFT = 0.25
MAX_LIFT = 1.0


def _bump(store: Store, conn: Connection) -> None:
    """Raise the votes revision, which keys the cached listing pages: they show picks and reasons too."""
    meta = store.meta
    conn.execute(update(meta).where(meta.c.key == "votes_rev").values(value=meta.c.value + 1))


@dataclass(slots=True, frozen=True)
class Scored:
    paper_id: str
    score: float
    day_pct: float
    pick: bool
    reason: str


@dataclass(slots=True, frozen=True)
class Curated:
    """A listed paper in curated order: its local votes, and whether and why it is a pick."""

    paper: Paper
    local_votes: int
    pick: bool
    admin_pick: bool
    reason: str


class Curation:
    """Picks and scores over an open Store; construct once per process."""

    def __init__(self, store: Store) -> None:
        self.store = store
        md = MetaData()
        md.reflect(store.engine, only=["curation_picks", "curation_scores"])
        self.picks: Table = md.tables["curation_picks"]
        self.scores: Table = md.tables["curation_scores"]

    def set_pick(self, paper_id: str, user_id: int | None, picked: bool) -> None:
        """An admin features (or un-features) a paper; unknown ids are PaperNotFound, nothing is written."""
        with self.store.write() as w:
            if not storable(paper_id) or not w.get_many([paper_id]):
                raise PaperNotFound(paper_id)
            w.conn.execute(delete(self.picks).where(self.picks.c.paper_id == paper_id))
            if picked:
                row = {"paper_id": paper_id, "user_id": user_id, "picked_at": datetime.now(UTC)}
                w.conn.execute(insert_ignoring_duplicates(w.conn.dialect.name, self.picks).values(**row))
            _bump(self.store, w.conn)  # cached listing pages depend on picks as on votes

    def picked(self, paper_ids: Sequence[str]) -> set[str]:
        ids = [i for i in paper_ids if storable(i)]
        if not ids:
            return set()
        with self.store.engine.connect() as conn:
            return set(conn.execute(select(self.picks.c.paper_id).where(self.picks.c.paper_id.in_(ids))).scalars())

    def all_picks(self) -> dict[str, date]:
        """Every admin pick with the day it was made: training labels and history."""
        with self.store.engine.connect() as conn:
            rows = conn.execute(select(self.picks.c.paper_id, self.picks.c.picked_at)).all()
        return {pid: at.date() for pid, at in rows}

    def has_scores(self) -> bool:
        with self.store.engine.connect() as conn:
            return conn.execute(select(self.scores.c.paper_id).limit(1)).first() is not None

    def scored_ids(self, model: str) -> set[str]:
        with self.store.engine.connect() as conn:
            query = select(self.scores.c.paper_id).where(self.scores.c.model == model)
            return set(conn.execute(query).scalars())

    def save_scores(self, model: str, scored: Iterable[Scored]) -> int:
        """Replace the stored scores of these papers in one transaction."""
        rows = [
            {
                "paper_id": s.paper_id,
                "score": s.score,
                "day_pct": s.day_pct,
                "pick": s.pick,
                "reason": s.reason[:200],
                "model": model,
            }
            for s in scored
        ]
        if not rows:
            return 0
        with self.store.write() as w:
            for start in range(0, len(rows), 500):
                chunk = rows[start : start + 500]
                w.conn.execute(delete(self.scores).where(self.scores.c.paper_id.in_([r["paper_id"] for r in chunk])))
                w.conn.execute(self.scores.insert(), chunk)
            _bump(self.store, w.conn)
        return len(rows)

    def listing(
        self, accounts: Accounts, start: date, end: date, *, category: str = "", limit: int = 50, offset: int = 0
    ) -> tuple[list[Curated], int]:
        """Visible papers listed from `start` to `end` in curated order: admin picks, then the model's picks,
        then by the model's rank within its day; votes lift a paper (VOTE_LIFT per vote, at most MAX_LIFT)."""
        p, v, s, k = self.store.papers, accounts.votes, self.scores, self.picks
        if not storable(category):
            return [], 0
        where = _on_days(self.store, start, end)
        if category:
            where = and_(where, p.c.primary_category == category)
        local = select(v.c.paper_id, func.count().label("n")).group_by(v.c.paper_id).subquery()
        n = func.coalesce(local.c.n, 0)
        votes = p.c.upvotes + n
        lift = case((votes * VOTE_LIFT >= MAX_LIFT, MAX_LIFT), else_=votes * VOTE_LIFT)
        admin = k.c.paper_id.is_not(None)
        key = (
            case((admin, 3.0), else_=0.0)
            + case((s.c.pick.is_(True), 1.0), else_=0.0)
            + func.coalesce(s.c.day_pct, 0.0)
            + lift
        )
        query = (
            select(p, n.label("local_votes"), s.c.pick, s.c.reason, admin.label("admin_pick"))
            .select_from(
                p.outerjoin(local, local.c.paper_id == p.c.id)
                .outerjoin(s, s.c.paper_id == p.c.id)
                .outerjoin(k, k.c.paper_id == p.c.id)
            )
            .where(where)
            .order_by(key.desc(), votes.desc(), func.coalesce(p.c.announced, p.c.featured).desc(), p.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        with self.store.engine.connect() as conn:
            total = int(conn.execute(select(func.count()).select_from(p).where(where)).scalar_one())
            rows = [
                Curated(
                    _to_paper(row),
                    int(row.local_votes),
                    bool(row.pick) or bool(row.admin_pick),
                    bool(row.admin_pick),
                    "featured by the editors" if row.admin_pick else (row.reason or "") if row.pick else "",
                )
                for row in conn.execute(query)
            ]
        return rows, total

    def voted_papers(self, accounts: Accounts, at_least: int) -> dict[str, int]:
        """Papers with at least `at_least` local votes (a training signal of this site's readers)."""
        v = accounts.votes
        query = select(v.c.paper_id, func.count()).group_by(v.c.paper_id).having(func.count() >= at_least)
        with self.store.engine.connect() as conn:
            return {pid: int(count) for pid, count in conn.execute(query)}

    def votes_in(self, accounts: Accounts, start: date, end: date) -> int:
        """How many papers listed in the period have any vote (source or local): is it a voted day?"""
        p, v = self.store.papers, accounts.votes
        local = select(v.c.paper_id).distinct().subquery()
        query = (
            select(func.count())
            .select_from(p.outerjoin(local, local.c.paper_id == p.c.id))
            .where(_on_days(self.store, start, end), (p.c.upvotes > 0) | local.c.paper_id.is_not(None))
        )
        with self.store.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())


def latest_featured(store: Store) -> date | None:
    """The newest featured day stored: where `harvest --hf-daily` resumes."""
    with store.engine.connect() as conn:
        found: date | None = conn.execute(select(func.max(store.papers.c.featured))).scalar()
    return found
