"""Site accounts, upvotes and submissions: the store side of the web site's community features.

Counts are computed from the `votes` table rather than kept in a counter column, so a vote and its
count can never disagree; the primary key (user_id, paper_id) is what makes one vote per user per paper.
Votes do not change a paper's `rev`: nothing the search index holds depends on them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, MetaData, Table, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from papersift.errors import PaperNotFound, StoreError
from papersift.store.engine import insert_ignoring_duplicates, storable
from papersift.store.migrations import name_key
from papersift.store.papers import Store

_CHUNK = 900


class UsernameTaken(StoreError):
    """Someone already signed up with that name."""


@dataclass(slots=True, frozen=True)
class User:
    id: int
    username: str
    password_hash: str
    is_admin: bool
    session_version: int = 0  # a session cookie carries it; raising it signs out every session of the user


class Accounts:
    """Users, votes and submissions over an open Store; construct once per process."""

    def __init__(self, store: Store) -> None:
        self.store = store
        md = MetaData()
        md.reflect(store.engine, only=["users", "votes", "submissions"])
        self.users: Table = md.tables["users"]
        self.votes: Table = md.tables["votes"]
        self.submissions: Table = md.tables["submissions"]

    # -- users -------------------------------------------------------------------------------------

    def create_user(self, username: str, password_hash: str) -> User:
        """Insert a user; the very first one becomes the site's admin (whoever installs it signs up first).

        Names are unique case-insensitively and after Unicode normalisation (`name_key`). Concurrent first
        sign-ups are serialised (SQLite: the write transaction's lock; PostgreSQL: an advisory lock held to
        commit), so exactly one of them sees an empty table and becomes admin."""
        u = self.users
        try:
            with self.store.write() as w:
                if w.conn.dialect.name == "postgresql":
                    w.conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7130515)")
                first = w.conn.execute(select(func.count()).select_from(u)).scalar_one() == 0
                values = {
                    "username": username,
                    "name_key": name_key(username),
                    "password_hash": password_hash,
                    "is_admin": first,
                }
                new_id = w.conn.execute(insert(u).values(created_at=datetime.now(UTC), **values)).inserted_primary_key
        except IntegrityError:
            raise UsernameTaken(f"the name {username!r} is taken; pick another") from None
        assert new_id is not None
        return User(int(new_id[0]), username, password_hash, first)

    def user_by_name(self, username: str) -> User | None:
        """The user whose name matches case-insensitively (after Unicode normalisation)."""
        return self._user(self.users.c.name_key == name_key(username))

    def user_by_id(self, user_id: int) -> User | None:
        return self._user(self.users.c.id == user_id)

    def _user(self, where: ColumnElement[bool]) -> User | None:
        u = self.users
        with self.store.engine.connect() as conn:
            columns = (u.c.id, u.c.username, u.c.password_hash, u.c.is_admin, u.c.session_version)
            row = conn.execute(select(*columns).where(where)).first()
        if row is None:
            return None
        return User(int(row.id), row.username, row.password_hash, bool(row.is_admin), int(row.session_version))

    def revoke_sessions(self, user_id: int) -> int:
        """Invalidate every session cookie of the user (sign-out, password change); returns the new version."""
        u = self.users
        with self.store.write() as w:
            w.conn.execute(update(u).where(u.c.id == user_id).values(session_version=u.c.session_version + 1))
            return int(w.conn.execute(select(u.c.session_version).where(u.c.id == user_id)).scalar_one())

    def set_password_hash(self, user_id: int, password_hash: str) -> None:
        """Store a re-hashed password (argon2 parameters can be raised over time)."""
        u = self.users
        with self.store.write() as w:
            w.conn.execute(u.update().where(u.c.id == user_id).values(password_hash=password_hash))

    # -- votes -------------------------------------------------------------------------------------

    def vote(self, user_id: int, paper_id: str, up: bool = True) -> int:
        """Add (or with up=False withdraw) a user's vote; idempotent. Returns the paper's local vote count.

        The insert ignores a vote that is already there rather than checking first: on PostgreSQL two
        concurrent upvotes of one user would both find none and the second would fail on the primary key."""
        v, p = self.votes, self.store.papers
        if not storable(paper_id):
            raise PaperNotFound(paper_id)
        with self.store.write() as w:
            if w.conn.execute(select(p.c.id).where(p.c.id == paper_id, p.c.hidden.is_(False))).first() is None:
                raise PaperNotFound(paper_id)
            if up:
                row = {"user_id": user_id, "paper_id": paper_id, "created_at": datetime.now(UTC)}
                changed = w.conn.execute(insert_ignoring_duplicates(w.conn.dialect.name, v).values(**row)).rowcount
            else:
                changed = w.conn.execute(delete(v).where(v.c.user_id == user_id, v.c.paper_id == paper_id)).rowcount
            if changed:
                meta = self.store.meta
                w.conn.execute(update(meta).where(meta.c.key == "votes_rev").values(value=meta.c.value + 1))
            count = w.conn.execute(select(func.count()).where(v.c.paper_id == paper_id)).scalar_one()
        return int(count)

    def counts(self, paper_ids: Sequence[str]) -> dict[str, int]:
        """Local vote counts for these papers; papers nobody voted for are absent."""
        v = self.votes
        out: dict[str, int] = {}
        with self.store.engine.connect() as conn:
            for start in range(0, len(paper_ids), _CHUNK):
                chunk = list(paper_ids[start : start + _CHUNK])
                query = select(v.c.paper_id, func.count()).where(v.c.paper_id.in_(chunk)).group_by(v.c.paper_id)
                out.update({pid: int(n) for pid, n in conn.execute(query)})
        return out

    def voted(self, user_id: int, paper_ids: Sequence[str]) -> set[str]:
        """Which of these papers the user has upvoted (to draw the button pressed)."""
        v = self.votes
        out: set[str] = set()
        with self.store.engine.connect() as conn:
            for start in range(0, len(paper_ids), _CHUNK):
                chunk = list(paper_ids[start : start + _CHUNK])
                query = select(v.c.paper_id).where(v.c.user_id == user_id, v.c.paper_id.in_(chunk))
                out.update(conn.execute(query).scalars())
        return out

    def voted_since(self, since: datetime) -> dict[str, int]:
        """Papers with local votes cast since a moment, and their whole local count: trending candidates."""
        v = self.votes
        recent = select(v.c.paper_id).where(v.c.created_at >= since).distinct().scalar_subquery()
        query = select(v.c.paper_id, func.count()).where(v.c.paper_id.in_(recent)).group_by(v.c.paper_id)
        with self.store.engine.connect() as conn:
            return {pid: int(n) for pid, n in conn.execute(query)}

    def last_vote_at(self) -> datetime | None:
        with self.store.engine.connect() as conn:
            when = conn.execute(select(func.max(self.votes.c.created_at))).scalar()
        if when is not None and when.tzinfo is None:
            when = when.replace(tzinfo=UTC)  # SQLite drops the zone; everything written is UTC
        return when

    # -- submissions -------------------------------------------------------------------------------

    def record_submission(self, user_id: int | None, paper_id: str) -> None:
        """Who added a paper; raises the votes counter too, since cached cards show the submitter."""
        with self.store.write() as w:
            w.conn.execute(
                insert(self.submissions).values(user_id=user_id, paper_id=paper_id, created_at=datetime.now(UTC))
            )
            meta = self.store.meta
            w.conn.execute(update(meta).where(meta.c.key == "votes_rev").values(value=meta.c.value + 1))

    def submitters(self, paper_ids: Sequence[str]) -> dict[str, str]:
        """The user name of whoever first submitted each paper through the site (deleted users drop out)."""
        s, u = self.submissions, self.users
        ids = [i for i in paper_ids if storable(i)]
        if not ids:
            return {}
        query = (
            select(s.c.paper_id, u.c.username)
            .select_from(s.join(u, u.c.id == s.c.user_id))
            .where(s.c.paper_id.in_(ids))
            .order_by(s.c.id.desc())
        )
        with self.store.engine.connect() as conn:
            return {pid: name for pid, name in conn.execute(query)}  # the last row per paper wins: the earliest
