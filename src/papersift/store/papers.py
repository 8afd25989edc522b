"""Papers in the store: reads, and the batch writer that ingest uses inside one transaction."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, Engine, MetaData, Table, bindparam, func, select, update
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from papersift.errors import PaperNotFound, StoreError
from papersift.models import TRANSIENT_FIELDS, Paper
from papersift.store import authors as author_rows
from papersift.store import migrations
from papersift.store.engine import DEFAULT_BUSY_TIMEOUT, WRITE_OPTION, make_engine, storable

PAPER_FIELDS = tuple(f.name for f in fields(Paper) if f.name not in TRANSIENT_FIELDS)
DATE_RANGES = ("published", "announced", "featured")  # date columns `stats` reports the span of
_LOOKUP_CHUNK = 900  # stays under every backend's bound-parameter limit
_PAGE_REVISIONS = ("rev", "votes_rev", "comments_rev")  # meta counters that cached listing pages depend on
MIGRATION_WAIT = 3600.0  # seconds: a migration of a large store by another process can take minutes


def _to_row(paper: Paper, content_hash: str, rev: int) -> dict[str, Any]:
    row = {name: getattr(paper, name) for name in PAPER_FIELDS}
    row["primary_category"] = paper.primary_category
    row["content_hash"] = content_hash
    row["rev"] = rev
    return row


def _to_paper(row: Any) -> Paper:
    m = row._mapping
    paper = Paper(**{name: m[name] for name in PAPER_FIELDS})
    # SQLite returns naive datetimes; everything we write is UTC
    if paper.first_seen is not None and paper.first_seen.tzinfo is None:
        paper.first_seen = paper.first_seen.replace(tzinfo=UTC)
    return paper


class Store:
    """Owns the engine and the reflected tables; open it with `Store.open(url)`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        md = MetaData()
        md.reflect(engine, only=["papers", "meta", "store_info", author_rows.TABLE])
        self._tables = md.tables
        self.papers: Table = md.tables["papers"]
        self.authors: Table = md.tables[author_rows.TABLE]  # who wrote what, by normalised name
        self.meta: Table = md.tables["meta"]
        self._identity: str | None = None

    @classmethod
    def open(cls, url: str, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> Store:
        """Connect and bring the schema up to date; a store that cannot be opened says why.

        A write waits up to `busy_timeout` seconds for another process's write to finish, then raises
        StoreBusy (the web server passes a short one so requests do not hang). A pending migration waits
        as long as it takes for another process migrating the same store (two workers starting at once)."""
        engine = make_engine(url, busy_timeout)
        try:
            with engine.connect() as conn:  # read-only: a current store is opened without the write lock
                stale = migrations.pending(conn)
            if stale:
                in_memory = engine.url.get_backend_name() == "sqlite" and engine.url.database in (None, "", ":memory:")
                migrator = engine if in_memory else make_engine(url, MIGRATION_WAIT)
                try:
                    with migrator.connect().execution_options(**{WRITE_OPTION: True}) as conn, conn.begin():
                        migrations.migrate(conn)
                finally:
                    if migrator is not engine:
                        migrator.dispose()
        except OperationalError as exc:
            raise StoreError(f"cannot open the store at {engine.url!r}: {exc.orig}") from exc
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot migrate the store at {engine.url!r}: {exc}") from exc
        return cls(engine)

    def identity(self) -> str:
        """A random id made when the store was created: kept in the store itself, so indexes built for it
        stay valid when its home is copied, moved or restored elsewhere (unlike its URL)."""
        if self._identity is None:
            info = self._info
            with self.engine.connect() as conn:
                self._identity = str(conn.execute(select(info.c.value).where(info.c.key == "store_id")).scalar_one())
        return self._identity

    @property
    def _info(self) -> Table:
        return self._tables["store_info"]

    def close(self) -> None:
        self.engine.dispose()

    @property
    def backend(self) -> str:
        return self.engine.url.get_backend_name()

    # -- reads -------------------------------------------------------------------------------------

    def get(self, paper_id: str) -> Paper:
        found = self.get_many([paper_id])
        if paper_id not in found:
            raise PaperNotFound(paper_id)
        return found[paper_id]

    def get_many(self, ids: Sequence[str], conn: Connection | None = None) -> dict[str, Paper]:
        """Papers by id; missing ids are simply absent from the result (as are ids no store can hold)."""
        ids = [i for i in ids if storable(i)]
        if conn is None:
            with self.engine.connect() as own:
                return self.get_many(ids, own)
        out: dict[str, Paper] = {}
        for start in range(0, len(ids), _LOOKUP_CHUNK):
            chunk = list(ids[start : start + _LOOKUP_CHUNK])
            for row in conn.execute(select(self.papers).where(self.papers.c.id.in_(chunk))):
                paper = _to_paper(row)
                out[paper.id] = paper
        return out

    def hashes(self, ids: Sequence[str], conn: Connection) -> dict[str, str]:
        out: dict[str, str] = {}
        for start in range(0, len(ids), _LOOKUP_CHUNK):
            chunk = list(ids[start : start + _LOOKUP_CHUNK])
            query = select(self.papers.c.id, self.papers.c.content_hash).where(self.papers.c.id.in_(chunk))
            out.update({row.id: row.content_hash for row in conn.execute(query)})
        return out

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(self.papers)).scalar_one())

    def revision(self) -> int:
        """The store's change counter: any change to any paper raises it."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(self.meta.c.value).where(self.meta.c.key == "rev")).scalar_one())

    def revisions(self) -> tuple[int, ...]:
        """The paper, vote and comment change counters, read together: what a cached listing page depends on."""
        m = self.meta
        with self.engine.connect() as conn:
            values = dict(conn.execute(select(m.c.key, m.c.value).where(m.c.key.in_(_PAGE_REVISIONS))).all())
        return tuple(int(values[key]) for key in _PAGE_REVISIONS)

    def count_changed_since(self, rev: int) -> int:
        with self.engine.connect() as conn:
            query = select(func.count()).select_from(self.papers).where(self.papers.c.rev > rev)
            return int(conn.execute(query).scalar_one())

    def iter_papers(self, since_rev: int = 0, batch: int = 2000) -> Iterator[Paper]:
        """Papers changed after `since_rev`, in rev order, fetched in keyset-paged batches."""
        last_rev, last_id = since_rev, None
        p = self.papers
        while True:
            after = p.c.rev > last_rev
            if last_id is not None:  # written so that the index on rev bounds the scan
                after = (p.c.rev >= last_rev) & ((p.c.rev > last_rev) | (p.c.id > last_id))
            query = select(p).where(after).order_by(p.c.rev, p.c.id).limit(batch)
            with self.engine.connect() as conn:
                rows = [_to_paper(row) for row in conn.execute(query)]
            if not rows:
                return
            yield from rows
            last_rev, last_id = rows[-1].rev, rows[-1].id

    def latest_update(self, source: str) -> date | None:
        """The newest `updated` date among papers from `source`: where an incremental harvest resumes."""
        p = self.papers
        with self.engine.connect() as conn:
            value = conn.execute(select(func.max(p.c.updated)).where(p.c.source == source)).scalar_one()
        if isinstance(value, str):  # SQLite returns aggregates of DATE columns as text
            return date.fromisoformat(value)
        return value

    def stats(self) -> dict[str, Any]:
        p = self.papers
        with self.engine.connect() as conn:
            total, *bounds = conn.execute(
                select(
                    func.count(),
                    *(agg(p.c[name]) for name in DATE_RANGES for agg in (func.min, func.max)),
                )
            ).one()
            by_source: dict[Any, Any] = dict(conn.execute(select(p.c.source, func.count()).group_by(p.c.source)).all())
            top_cats = conn.execute(
                select(p.c.primary_category, func.count().label("n"))
                .where(p.c.primary_category != "")
                .group_by(p.c.primary_category)
                .order_by(func.count().desc())
                .limit(10)
            ).all()
            with_abstract = conn.execute(select(func.count()).where(p.c.abstract != "")).scalar_one()
            featured = conn.execute(select(func.count()).where(p.c.featured.is_not(None))).scalar_one()
            with_code = conn.execute(select(func.count()).where(p.c.code_url != "")).scalar_one()
        return {
            "papers": int(total),
            "with_abstract": int(with_abstract),
            "featured": int(featured),
            "with_code": int(with_code),
            **{
                f"{name}_{end}": _iso(bounds[2 * i + j])
                for i, name in enumerate(DATE_RANGES)
                for j, end in enumerate(("from", "to"))
            },
            "by_source": {str(k): int(v) for k, v in by_source.items()},
            "top_categories": {str(k): int(v) for k, v in top_cats},
            "revision": self.revision(),
            "backend": self.backend,
        }

    # -- writes ------------------------------------------------------------------------------------

    @contextmanager
    def write(self) -> Iterator[Writer]:
        """One write transaction: everything inside commits together or not at all."""
        with self.engine.connect().execution_options(**{WRITE_OPTION: True}) as conn, conn.begin():
            yield Writer(self, conn)


class Writer:
    """Writes inside one transaction; obtained from `Store.write()`."""

    def __init__(self, store: Store, conn: Connection) -> None:
        self.store = store
        self.conn = conn
        self._rev: int | None = None
        self._locked = False

    def get_many(self, ids: Sequence[str]) -> dict[str, Paper]:
        """Papers as they stand, read under the papers' write lock so a merge with them stays right."""
        self._lock_papers()
        return self.store.get_many(ids, self.conn)

    def hashes(self, ids: Sequence[str]) -> dict[str, str]:
        self._lock_papers()
        return self.store.hashes(ids, self.conn)

    def _lock_papers(self) -> None:
        """Serialise paper writers before they read what they will merge, as SQLite's BEGIN IMMEDIATE does.

        On PostgreSQL two ingests of one file would otherwise both find a paper missing and both insert it
        (the second failing on the primary key), or merge into a version the other is replacing. Locking the
        `rev` counter row, which every paper write updates anyway, makes the second wait and then read the
        first's committed rows (READ COMMITTED reads anew per statement)."""
        if self._locked or self.conn.dialect.name != "postgresql":
            return
        meta = self.store.meta
        self.conn.execute(select(meta.c.value).where(meta.c.key == "rev").with_for_update()).scalar_one()
        self._locked = True

    def next_rev(self) -> int:
        """One new revision for the whole transaction, taken under the row lock so writers serialise."""
        if self._rev is None:
            meta = self.store.meta
            self.conn.execute(update(meta).where(meta.c.key == "rev").values(value=meta.c.value + 1))
            self._rev = int(self.conn.execute(select(meta.c.value).where(meta.c.key == "rev")).scalar_one())
        return self._rev

    def insert(self, papers: Iterable[Paper]) -> int:
        now = datetime.now(UTC)
        papers = list(papers)
        rows = []
        for paper in papers:
            paper.first_seen = paper.first_seen or now
            rows.append(_to_row(paper, paper.content_hash(), self.next_rev()))
        if rows:
            self.conn.execute(self.store.papers.insert(), rows)
            author_rows.add(self.conn, self.store.authors, papers)
        return len(rows)

    def update(self, papers: Iterable[Paper]) -> int:
        papers = list(papers)
        rows = []
        for paper in papers:
            row = _to_row(paper, paper.content_hash(), self.next_rev())
            row["b_id"] = row.pop("id")
            del row["first_seen"]  # first sighting is history: updates never move it
            rows.append(row)
        if rows:
            p = self.store.papers
            values: dict[str, Any] = {name: bindparam(name) for name in rows[0] if name != "b_id"}
            self.conn.execute(update(p).where(p.c.id == bindparam("b_id")).values(values), rows)
            author_rows.replace(self.conn, self.store.authors, papers)
        return len(rows)

    def set_hidden(self, paper_id: str, hidden: bool) -> None:
        p = self.store.papers
        result = self.conn.execute(update(p).where(p.c.id == paper_id).values(hidden=hidden, rev=self.next_rev()))
        if result.rowcount == 0:
            raise PaperNotFound(paper_id)


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None
