"""A reader's library: named collections of saved papers (public or private) and papers marked "not
interested". The store side of collections and of the "For you" model's training data.

Every change raises the owner's library revision in the same transaction (`library_revs`), so a
recommendation cached for one revision is known stale the moment the library changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from papersift.errors import PaperNotFound, PapersiftError, QueryError
from papersift.store.engine import insert_ignoring_duplicates, storable
from papersift.store.migrations import name_key
from papersift.store.papers import Store

MAX_NAME = 100
MAX_COLLECTIONS = 200  # per reader: a library, not a database of its own
MAX_PAPERS = 5000  # per collection
DEFAULT_NAME = "Saved"


class CollectionNotFound(PapersiftError):
    """No such collection, or it is private and not the reader's own (never say which)."""

    def __init__(self, ref: object) -> None:
        super().__init__(f"no collection {ref!r}")


class CollectionNameTaken(QueryError):
    """The reader already has a collection of that name."""


def migrate_library(conn: Connection) -> None:
    """Migration 10: collections, their papers, "not interested" marks and a library revision per user."""
    md = MetaData()
    md.reflect(conn, only=["users", "papers"])
    collections = Table(
        "collections",
        md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        Column("name", Text, nullable=False),
        Column("name_key", Text, nullable=False),
        Column("public", Boolean, nullable=False, default=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        UniqueConstraint("user_id", "name_key", name="uq_collections_user_name"),
    )
    saved = Table(
        "collection_papers",
        md,
        Column("collection_id", Integer, ForeignKey(collections.c.id, ondelete="CASCADE"), primary_key=True),
        Column("paper_id", String(128), ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True),
        Column("added_at", DateTime(timezone=True), nullable=False),
    )
    Index("ix_collection_papers_paper", saved.c.paper_id)
    Table(
        "not_interested",
        md,
        Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        Column("paper_id", String(128), ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True),
        Column("created_at", DateTime(timezone=True), nullable=False),
    )
    Table(
        "library_revs",
        md,
        Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        Column("rev", Integer, nullable=False),
    )
    md.create_all(conn)


@dataclass(slots=True, frozen=True)
class Collection:
    id: int
    user_id: int
    owner: str
    name: str
    public: bool
    created_at: datetime
    papers: int  # how many papers it holds


def clean_name(name: str) -> str:
    """A collection name as stored: trimmed, inner whitespace collapsed; 1 to MAX_NAME characters."""
    cleaned = " ".join(name.split())
    if not cleaned or len(cleaned) > MAX_NAME or not any(ch.isalnum() for ch in cleaned):
        raise QueryError(f"a collection name needs 1 to {MAX_NAME} characters, with a letter or digit")
    return cleaned


class Library:
    """Collections and "not interested" marks over an open Store; construct once per process."""

    def __init__(self, store: Store) -> None:
        self.store = store
        md = MetaData()
        tables = ["collections", "collection_papers", "not_interested", "library_revs", "users", "votes"]
        md.reflect(store.engine, only=tables)
        self.collections: Table = md.tables["collections"]
        self.saved: Table = md.tables["collection_papers"]
        self.dismissed: Table = md.tables["not_interested"]
        self.revs: Table = md.tables["library_revs"]
        self.users: Table = md.tables["users"]
        self.votes: Table = md.tables["votes"]

    # -- reads ---------------------------------------------------------------------------------------

    def revision(self, user_id: int) -> int:
        """The user's library revision: raised by every save, removal or mark (0 before the first)."""
        with self.store.engine.connect() as conn:
            rev = conn.execute(select(self.revs.c.rev).where(self.revs.c.user_id == user_id)).scalar()
        return int(rev or 0)

    def collections_of(self, user_id: int, viewer_id: int | None) -> list[Collection]:
        """A user's collections, by name; the private ones only when the viewer is that user."""
        where = [self.collections.c.user_id == user_id]
        if viewer_id != user_id:
            where.append(self.collections.c.public.is_(True))
        return self._collections(*where)

    def get(self, collection_id: int, viewer_id: int | None) -> Collection:
        """One collection; a private one exists only for its owner (others get CollectionNotFound)."""
        found = self._collections(self.collections.c.id == collection_id)
        if not found or (not found[0].public and found[0].user_id != viewer_id):
            raise CollectionNotFound(collection_id)
        return found[0]

    def _collections(self, *where: object) -> list[Collection]:
        c, s, u = self.collections, self.saved, self.users
        count = select(func.count()).where(s.c.collection_id == c.c.id).scalar_subquery()
        query = (
            select(c.c.id, c.c.user_id, u.c.username, c.c.name, c.c.public, c.c.created_at, count.label("n"))
            .join(u, u.c.id == c.c.user_id)
            .where(*where)  # type: ignore[arg-type]
            .order_by(c.c.name_key, c.c.id)
        )
        with self.store.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            Collection(int(r.id), int(r.user_id), r.username, r.name, bool(r.public), _utc(r.created_at), int(r.n))
            for r in rows
        ]

    def paper_ids(self, collection_id: int) -> list[str]:
        """The collection's papers, most recently saved first (check access with `get` first)."""
        s = self.saved
        query = select(s.c.paper_id).where(s.c.collection_id == collection_id).order_by(s.c.added_at.desc())
        with self.store.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def saved_ids(self, user_id: int) -> list[str]:
        """Every paper in any of the user's collections (the positives of their model)."""
        c, s = self.collections, self.saved
        query = select(s.c.paper_id).join(c, c.c.id == s.c.collection_id).where(c.c.user_id == user_id).distinct()
        with self.store.engine.connect() as conn:
            return sorted(conn.execute(query).scalars())

    def saved_among(self, user_id: int, paper_ids: list[str]) -> set[str]:
        """Which of these papers the user has saved somewhere (to draw the save control filled)."""
        wanted = set(paper_ids)
        return {pid for pid in self.saved_ids(user_id) if pid in wanted}

    def upvoted_ids(self, user_id: int) -> list[str]:
        """Papers the user upvoted: positives of their model next to the saved ones."""
        v = self.votes
        with self.store.engine.connect() as conn:
            return sorted(conn.execute(select(v.c.paper_id).where(v.c.user_id == user_id)).scalars())

    def dismissed_ids(self, user_id: int) -> list[str]:
        """Papers the user marked "not interested" (negatives of their model; never recommended)."""
        d = self.dismissed
        with self.store.engine.connect() as conn:
            return sorted(conn.execute(select(d.c.paper_id).where(d.c.user_id == user_id)).scalars())

    # -- writes --------------------------------------------------------------------------------------

    def create(self, user_id: int, name: str, public: bool = False) -> Collection:
        """A new empty collection; names are unique per user case-insensitively."""
        name = clean_name(name)
        c = self.collections
        try:
            with self.store.write() as w:
                held = w.conn.execute(select(func.count()).where(c.c.user_id == user_id)).scalar_one()
                if held >= MAX_COLLECTIONS:
                    raise QueryError(f"a reader can keep at most {MAX_COLLECTIONS} collections")
                row = {"user_id": user_id, "name": name, "name_key": name_key(name), "public": public}
                new = w.conn.execute(insert(c).values(created_at=datetime.now(UTC), **row)).inserted_primary_key
                self._bump(w.conn, user_id)
        except IntegrityError:
            raise CollectionNameTaken(f"you already have a collection named {name!r}") from None
        assert new is not None
        return self.get(int(new[0]), user_id)

    def update(self, user_id: int, collection_id: int, name: str | None, public: bool | None) -> Collection:
        """Rename a collection or change who may see it (owner only)."""
        c = self.collections
        values: dict[str, object] = {}
        if name is not None:
            values.update(name=clean_name(name), name_key=name_key(clean_name(name)))
        if public is not None:
            values["public"] = public
        try:
            with self.store.write() as w:
                self._owned(w.conn, user_id, collection_id)
                if values:
                    w.conn.execute(update(c).where(c.c.id == collection_id).values(**values))
                    self._bump(w.conn, user_id)
        except IntegrityError:
            raise CollectionNameTaken(f"you already have a collection named {name!r}") from None
        return self.get(collection_id, user_id)

    def delete(self, user_id: int, collection_id: int) -> None:
        """Delete a collection and its list of papers (the papers themselves stay)."""
        with self.store.write() as w:
            self._owned(w.conn, user_id, collection_id)
            w.conn.execute(delete(self.saved).where(self.saved.c.collection_id == collection_id))
            w.conn.execute(delete(self.collections).where(self.collections.c.id == collection_id))
            self._bump(w.conn, user_id)

    def save(self, user_id: int, collection_id: int, paper_id: str, saved: bool = True) -> bool:
        """Add (or with saved=False remove) a paper; idempotent. Returns whether anything changed.

        Saving also clears a "not interested" mark on the paper: the reader changed their mind."""
        s, p = self.saved, self.store.papers
        with self.store.write() as w:
            self._owned(w.conn, user_id, collection_id)
            if saved:
                if not storable(paper_id) or w.conn.execute(select(p.c.id).where(p.c.id == paper_id)).first() is None:
                    raise PaperNotFound(paper_id)
                held = w.conn.execute(select(func.count()).where(s.c.collection_id == collection_id)).scalar_one()
                if held >= MAX_PAPERS:
                    raise QueryError(f"a collection holds at most {MAX_PAPERS} papers")
                row = {"collection_id": collection_id, "paper_id": paper_id, "added_at": datetime.now(UTC)}
                changed = _inserted(w.conn, s, row)
                d = self.dismissed
                w.conn.execute(delete(d).where(d.c.user_id == user_id, d.c.paper_id == paper_id))
            else:
                where = (s.c.collection_id == collection_id, s.c.paper_id == paper_id)
                changed = w.conn.execute(delete(s).where(*where)).rowcount > 0
            if changed:
                self._bump(w.conn, user_id)
        return bool(changed)

    def default_collection(self, user_id: int) -> Collection:
        """The reader's "Saved" collection (private), made on first use: where a card's Save button puts a paper."""
        c = self.collections
        with self.store.engine.connect() as conn:
            query = select(c.c.id).where(c.c.user_id == user_id, c.c.name_key == name_key(DEFAULT_NAME))
            found = conn.execute(query).scalar()
        if found is not None:
            return self.get(int(found), user_id)
        try:
            return self.create(user_id, DEFAULT_NAME)
        except CollectionNameTaken:  # made by a parallel request meanwhile
            return self.default_collection(user_id)

    def holding(self, user_id: int, paper_id: str) -> list[int]:
        """Ids of the user's collections that hold the paper."""
        c, s = self.collections, self.saved
        query = (
            select(c.c.id).join(s, s.c.collection_id == c.c.id).where(c.c.user_id == user_id, s.c.paper_id == paper_id)
        )
        with self.store.engine.connect() as conn:
            return sorted(int(i) for i in conn.execute(query).scalars())

    def unsave(self, user_id: int, paper_id: str) -> int:
        """Remove a paper from every collection of the user; returns from how many."""
        c, s = self.collections, self.saved
        mine = select(c.c.id).where(c.c.user_id == user_id).scalar_subquery()
        with self.store.write() as w:
            removed = len(
                w.conn.execute(
                    delete(s).where(s.c.paper_id == paper_id, s.c.collection_id.in_(mine)).returning(s.c.collection_id)
                ).all()
            )
            if removed:
                self._bump(w.conn, user_id)
        return removed

    def dismiss(self, user_id: int, paper_id: str, dismissed: bool = True) -> bool:
        """Mark (or unmark) a paper "not interested"; idempotent. Returns whether anything changed."""
        d, p = self.dismissed, self.store.papers
        with self.store.write() as w:
            if dismissed:
                if not storable(paper_id) or w.conn.execute(select(p.c.id).where(p.c.id == paper_id)).first() is None:
                    raise PaperNotFound(paper_id)
                row = {"user_id": user_id, "paper_id": paper_id, "created_at": datetime.now(UTC)}
                changed = _inserted(w.conn, d, row)
            else:
                changed = w.conn.execute(delete(d).where(d.c.user_id == user_id, d.c.paper_id == paper_id)).rowcount > 0
            if changed:
                self._bump(w.conn, user_id)
        return bool(changed)

    def _owned(self, conn: Connection, user_id: int, collection_id: int) -> None:
        c = self.collections
        found = conn.execute(select(c.c.user_id).where(c.c.id == collection_id)).scalar()
        if found is None or int(found) != user_id:
            raise CollectionNotFound(collection_id)

    def _bump(self, conn: Connection, user_id: int) -> None:
        """Raise the user's library revision inside the caller's transaction."""
        r = self.revs
        if conn.execute(update(r).where(r.c.user_id == user_id).values(rev=r.c.rev + 1)).rowcount == 0:
            conn.execute(insert_ignoring_duplicates(conn.dialect.name, r).values(user_id=user_id, rev=1))


def _inserted(conn: Connection, table: Table, row: dict[str, object]) -> bool:
    """Insert unless the row is there; whether it was new. (psycopg reports rowcount -1 for an insert
    that did nothing on conflict, so RETURNING says it instead, on both backends.)"""
    query = insert_ignoring_duplicates(conn.dialect.name, table).values(**row).returning(*table.primary_key.columns)
    return conn.execute(query).first() is not None


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
