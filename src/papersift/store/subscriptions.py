"""Digest subscriptions and the ledger of digests sent: the SQL behind `papersift.digest`.

`claim` is the exactly-once guard: deciding to send a digest and recording it happen in one write
transaction, and the primary key (subscription_id, period) makes a second claim for the same period
fail even if two `digest send` runs race. A claim that failed to deliver may be claimed again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import MetaData, Table, insert, select, update
from sqlalchemy.exc import IntegrityError

from papersift.store.papers import Store

Kind = Literal["trending", "search", "category", "author", "similar"]
Frequency = Literal["daily", "weekly"]
KINDS: tuple[Kind, ...] = ("trending", "search", "category", "author", "similar")
FREQUENCIES: tuple[Frequency, ...] = ("daily", "weekly")


@dataclass(slots=True, frozen=True)
class Topic:
    """What a subscriber wants: one of KINDS with its query, filters or seed papers."""

    kind: Kind
    query: str = ""  # the search words, the category or the author name
    categories: tuple[str, ...] = ()
    venue: str = ""
    author: str = ""
    seeds: tuple[str, ...] = ()

    def describe(self) -> str:
        """A short human label, used in subjects and pages."""
        if self.kind == "trending":
            return "trending papers"
        if self.kind == "similar":
            return f"papers like {', '.join(self.seeds[:3])}" + (" …" if len(self.seeds) > 3 else "")
        if self.kind == "category":
            return f"new in {self.query}"
        if self.kind == "author":
            return f"papers by {self.query}"
        extra = [*self.categories, self.venue, self.author and f"author {self.author}"]
        suffix = ", ".join(x for x in extra if x)
        return f"“{self.query}”" + (f" ({suffix})" if suffix else "")


@dataclass(slots=True)
class Subscription:
    id: int
    email: str
    topic: Topic
    frequency: Frequency
    max_papers: int
    created_at: datetime
    confirmed: bool = False
    active: bool = True


def _utc(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)  # SQLite drops the zone; everything written is UTC
    return value


class Subscriptions:
    """Subscriptions and sent digests over an open Store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        md = MetaData()
        md.reflect(store.engine, only=["subscriptions", "digest_sends"])
        self.subs: Table = md.tables["subscriptions"]
        self.sends: Table = md.tables["digest_sends"]

    def _to_sub(self, row: Any) -> Subscription:
        filters = row.filters or {}
        topic = Topic(
            kind=row.kind,
            query=row.query,
            categories=tuple(filters.get("categories", ())),
            venue=filters.get("venue", ""),
            author=filters.get("author", ""),
            seeds=tuple(row.seeds or ()),
        )
        created = _utc(row.created_at)
        assert created is not None
        return Subscription(
            int(row.id),
            row.email,
            topic,
            row.frequency,
            int(row.max_papers),
            created,
            confirmed=row.confirmed_at is not None,
            active=row.unsubscribed_at is None,
        )

    def create(self, email: str, topic: Topic, frequency: Frequency, max_papers: int, confirmed: bool = False) -> int:
        """Insert a subscription, unconfirmed unless an admin vouches for the address; returns its id."""
        now = datetime.now(UTC)
        filters = {"categories": list(topic.categories), "venue": topic.venue, "author": topic.author}
        values = {
            "email": email,
            "kind": topic.kind,
            "query": topic.query,
            "filters": filters,
            "seeds": list(topic.seeds),
            "frequency": frequency,
            "max_papers": max_papers,
            "created_at": now,
            "confirmed_at": now if confirmed else None,
        }
        with self.store.write() as w:
            key = w.conn.execute(insert(self.subs).values(**values)).inserted_primary_key
        assert key is not None
        return int(key[0])

    def get(self, sub_id: int) -> Subscription | None:
        with self.store.engine.connect() as conn:
            row = conn.execute(select(self.subs).where(self.subs.c.id == sub_id)).first()
        return self._to_sub(row) if row else None

    def by_email(self, email: str) -> list[Subscription]:
        s = self.subs
        with self.store.engine.connect() as conn:
            rows = conn.execute(select(s).where(s.c.email == email).order_by(s.c.id)).all()
        return [self._to_sub(r) for r in rows]

    def active(self) -> list[Subscription]:
        """Confirmed subscriptions nobody has unsubscribed from: who gets a digest."""
        s = self.subs
        query = select(s).where(s.c.confirmed_at.is_not(None), s.c.unsubscribed_at.is_(None)).order_by(s.c.id)
        with self.store.engine.connect() as conn:
            return [self._to_sub(r) for r in conn.execute(query)]

    def confirm(self, sub_id: int) -> bool:
        """Mark confirmed (idempotent); False when the subscription no longer exists."""
        s = self.subs
        with self.store.write() as w:
            row = w.conn.execute(select(s.c.confirmed_at).where(s.c.id == sub_id)).first()
            if row is None:
                return False
            if row.confirmed_at is None:
                w.conn.execute(update(s).where(s.c.id == sub_id).values(confirmed_at=datetime.now(UTC)))
        return True

    def unsubscribe(self, sub_id: int) -> bool:
        """Stop a subscription (idempotent, kept for the record); False when it does not exist."""
        s = self.subs
        with self.store.write() as w:
            row = w.conn.execute(select(s.c.unsubscribed_at).where(s.c.id == sub_id)).first()
            if row is None:
                return False
            if row.unsubscribed_at is None:
                w.conn.execute(update(s).where(s.c.id == sub_id).values(unsubscribed_at=datetime.now(UTC)))
        return True

    # -- the ledger --------------------------------------------------------------------------------

    def status(self, sub_id: int, period: str) -> str | None:
        d = self.sends
        with self.store.engine.connect() as conn:
            found = conn.execute(select(d.c.status).where(d.c.subscription_id == sub_id, d.c.period == period)).scalar()
        return str(found) if found is not None else None

    def sent_papers(self, sub_id: int) -> set[str]:
        """Papers earlier digests of this subscription carried: never sent twice."""
        d = self.sends
        query = select(d.c.papers).where(d.c.subscription_id == sub_id, d.c.status != "failed")
        with self.store.engine.connect() as conn:
            return {pid for papers in conn.execute(query).scalars() for pid in papers}

    def claim(self, sub_id: int, period: str, paper_ids: list[str]) -> bool:
        """Decide to send this period's digest and record it, atomically; False when already claimed."""
        d = self.sends
        now = datetime.now(UTC)
        where = (d.c.subscription_id == sub_id, d.c.period == period)
        try:
            with self.store.write() as w:
                status = w.conn.execute(select(d.c.status).where(*where)).scalar()
                if status is None:
                    w.conn.execute(
                        insert(d).values(
                            subscription_id=sub_id,
                            period=period,
                            status="sending",
                            papers=paper_ids,
                            attempted_at=now,
                            error="",
                        )
                    )
                elif status == "failed":
                    values = {"status": "sending", "papers": paper_ids, "attempted_at": now, "error": ""}
                    w.conn.execute(update(d).where(*where).values(**values))
                else:
                    return False
        except IntegrityError:
            if self.status(sub_id, period) is None:
                raise  # not a race with another run: a real error
            return False  # another run claimed it between our read and our insert
        return True

    def finish(self, sub_id: int, period: str, ok: bool, error: str = "") -> None:
        """Record the outcome of a claimed digest; a failed one may be claimed again by a later run."""
        d = self.sends
        values = {"status": "sent" if ok else "failed", "error": error[:1000]}
        with self.store.write() as w:
            w.conn.execute(update(d).where(d.c.subscription_id == sub_id, d.c.period == period).values(**values))
