"""Digest subscriptions and the ledger of digests sent: the SQL behind `papersift.digest`.

`claim` is the send guard: deciding to send a digest and recording it is one atomic statement
(INSERT ... ON CONFLICT DO NOTHING, else a conditional UPDATE), so of two `digest send` runs racing on
SQLite or PostgreSQL exactly one wins. A claim is a lease: a row left at `sending` longer than the
lease (its sender was killed mid-send) is taken over by a later run and sent again, so a crash costs at
most one duplicate digest, never a lost one. A failed claim may be claimed again.

Every text field is checked here too (not only at the web edge): no control characters or line breaks
ever reach the store, so none can reach an email header built from it.
"""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Connection, MetaData, Table, and_, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from papersift.errors import QueryError, RateLimited
from papersift.store.engine import as_utc
from papersift.store.papers import Store

Kind = Literal["trending", "search", "category", "author", "similar", "foryou"]
Frequency = Literal["daily", "weekly"]
# the kinds anyone may ask for by address alone; "foryou" (query: a user id) is made only by its signed-in
# reader from the For you page (web/library.py), since it reveals what their library holds
KINDS: tuple[Kind, ...] = ("trending", "search", "category", "author", "similar")
FREQUENCIES: tuple[Frequency, ...] = ("daily", "weekly")
# control characters, surrogates and the Unicode line/paragraph separators: a header or a line break
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})


def check_text(label: str, value: str) -> None:
    """Refuse text that holds a control character or a line break (a header injection, or a NUL that
    PostgreSQL cannot store); QueryError names the field and the character."""
    for ch in value:
        if unicodedata.category(ch) in _FORBIDDEN_CATEGORIES:
            raise QueryError(f"the {label} contains a control character or line break (U+{ord(ch):04X}); remove it")


def mailbox_key(email: str) -> str:
    """The mailbox an address delivers to, for counting requests: case-folded, without a +tag."""
    local, _, domain = email.strip().lower().rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain}"


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
        if self.kind == "foryou":
            return "new papers for you"
        if self.kind == "similar":
            return f"papers like {', '.join(self.seeds[:3])}" + (" …" if len(self.seeds) > 3 else "")
        if self.kind == "category":
            return f"new in {self.query}"
        if self.kind == "author":
            return f"papers by {self.query}"
        extra = [*self.categories, self.venue, self.author and f"author {self.author}"]
        suffix = ", ".join(x for x in extra if x)
        return f"“{self.query}”" + (f" ({suffix})" if suffix else "")

    def check(self) -> None:
        """QueryError when any field holds a control character or line break."""
        for label, value in (("query", self.query), ("venue", self.venue), ("author", self.author)):
            check_text(label, value)
        for category in self.categories:
            check_text("category", category)
        for seed in self.seeds:
            check_text("paper id", seed)


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
        created = as_utc(row.created_at)
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
        values = self._values(email, topic, frequency, max_papers, confirmed)
        with self.store.write() as w:
            return self._insert(w.conn, values)

    def _values(
        self, email: str, topic: Topic, frequency: Frequency, max_papers: int, confirmed: bool
    ) -> dict[str, Any]:
        check_text("email address", email)
        topic.check()
        if topic.kind not in (*KINDS, "foryou") or frequency not in FREQUENCIES:
            raise QueryError(f"kind must be one of {', '.join(KINDS)}; frequency one of {', '.join(FREQUENCIES)}")
        now = datetime.now(UTC)
        return {
            "email": email,
            "kind": topic.kind,
            "query": topic.query,
            "filters": {"categories": list(topic.categories), "venue": topic.venue, "author": topic.author},
            "seeds": list(topic.seeds),
            "frequency": frequency,
            "max_papers": max_papers,
            "created_at": now,
            "confirmed_at": now if confirmed else None,
        }

    def _insert(self, conn: Connection, values: dict[str, Any]) -> int:
        key = conn.execute(insert(self.subs).values(**values)).inserted_primary_key
        assert key is not None
        return int(key[0])

    def request(
        self,
        email: str,
        topic: Topic,
        frequency: Frequency,
        max_papers: int,
        *,
        per_day: int,
        pending_for: timedelta,
    ) -> tuple[int, bool]:
        """A subscription asked for from outside, as (id, whether a confirmation mail is due).

        An identical one that is active, or pending and younger than `pending_for`, is returned with False:
        one pending confirmation per mailbox and subscription. A mailbox that had `per_day` requests in the
        last day raises RateLimited. Checked and inserted in one transaction (serialised per mailbox on
        PostgreSQL by an advisory lock), so the counts hold across processes and concurrent requests."""
        values = self._values(email, topic, frequency, max_papers, confirmed=False)
        key = mailbox_key(email)
        local, _, domain = key.rpartition("@")
        s, now = self.subs, values["created_at"]
        address = func.lower(s.c.email)
        same_box = or_(
            address == key,
            and_(address.startswith(local + "+", autoescape=True), address.endswith("@" + domain, autoescape=True)),
        )
        with self.store.write() as w:
            if w.conn.dialect.name == "postgresql":
                lock = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)
                w.conn.execute(select(func.pg_advisory_xact_lock(lock)))
            rows = [r for r in w.conn.execute(select(s).where(same_box)) if mailbox_key(r.email) == key]
            for row in rows:
                sub = self._to_sub(row)
                fresh = sub.confirmed or sub.created_at > now - pending_for
                if sub.active and fresh and (sub.topic, sub.frequency) == (topic, frequency):
                    return sub.id, False
            recent = sorted(
                c for c in (as_utc(r.created_at) for r in rows) if c is not None and c > now - timedelta(days=1)
            )
            if len(recent) >= per_day:
                wait = (recent[-per_day] + timedelta(days=1) - now).total_seconds()
                raise RateLimited(
                    "this address has had all the confirmation emails it may get today; try again later", int(wait) + 1
                )
            return self._insert(w.conn, values), True

    def discard(self, sub_id: int) -> None:
        """Forget a subscription that was never confirmed (its confirmation mail could not be sent)."""
        s = self.subs
        with self.store.write() as w:
            w.conn.execute(delete(s).where(s.c.id == sub_id, s.c.confirmed_at.is_(None)))

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

    def claim(self, sub_id: int, period: str, paper_ids: list[str], lease: timedelta) -> datetime | None:
        """Decide to send this period's digest and record it, atomically. Returns the claim's time (hand it
        to `finish`), or None when another run holds a claim younger than `lease` or already sent it."""
        d, now = self.sends, datetime.now(UTC)
        values = {"status": "sending", "papers": paper_ids, "attempted_at": now, "error": ""}
        with self.store.write() as w:
            dialect = postgresql if w.conn.dialect.name == "postgresql" else sqlite
            fresh = dialect.insert(d).values(subscription_id=sub_id, period=period, **values)
            if w.conn.execute(fresh.on_conflict_do_nothing().returning(d.c.period)).first() is not None:
                return now
            again = or_(d.c.status == "failed", and_(d.c.status == "sending", d.c.attempted_at < now - lease))
            query = update(d).where(d.c.subscription_id == sub_id, d.c.period == period, again).values(**values)
            return now if w.conn.execute(query).rowcount == 1 else None

    def take_over(self, sub_id: int, period: str, lease: timedelta) -> tuple[datetime, list[str]] | None:
        """Claim a digest whose sender vanished mid-send (at `sending` for longer than `lease`), keeping the
        papers it carried; None when another run took it first."""
        d, now = self.sends, datetime.now(UTC)
        where = (d.c.subscription_id == sub_id, d.c.period == period)
        with self.store.write() as w:
            stale = and_(*where, d.c.status == "sending", d.c.attempted_at < now - lease)
            if w.conn.execute(update(d).where(stale).values(attempted_at=now)).rowcount != 1:
                return None
            papers = w.conn.execute(select(d.c.papers).where(*where)).scalar_one()
        return now, list(papers)

    def stale_claims(self, lease: timedelta) -> list[tuple[int, str, datetime]]:
        """(subscription, period, attempted_at) of digests left at `sending` for longer than the lease, oldest
        first, for active subscriptions only: a later run sends them again."""
        d, s = self.sends, self.subs
        cutoff = datetime.now(UTC) - lease
        query = (
            select(d.c.subscription_id, d.c.period, d.c.attempted_at)
            .join(s, s.c.id == d.c.subscription_id)
            .where(d.c.status == "sending", d.c.attempted_at < cutoff, s.c.unsubscribed_at.is_(None))
            .order_by(d.c.attempted_at)
        )
        with self.store.engine.connect() as conn:
            return [(int(r[0]), str(r[1]), as_utc(r[2]) or cutoff) for r in conn.execute(query)]

    def finish(self, sub_id: int, period: str, claimed_at: datetime, ok: bool, error: str = "") -> bool:
        """Record the outcome of our claim; False (nothing written) when a later run took the claim over.
        A failed digest may be claimed again by a later run."""
        d = self.sends
        values = {"status": "sent" if ok else "failed", "error": error[:1000]}
        mine = (d.c.subscription_id == sub_id, d.c.period == period, d.c.attempted_at == claimed_at)
        with self.store.write() as w:
            return bool(w.conn.execute(update(d).where(*mine).values(**values)).rowcount == 1)
