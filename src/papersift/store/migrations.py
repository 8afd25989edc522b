"""Numbered schema migrations, applied in order and recorded in `schema_migrations`.

Hand-written rather than Alembic: an embedded app upgrades its own file on start-up with no
migration scripts directory or CLI to ship, and SQLAlchemy's DDL keeps SQLite and PostgreSQL on one
code path. Migrations are the single source of truth of the schema: the store reflects the tables
after migrating, so no second copy of the column list exists. Never edit a released migration; add one.
"""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    and_,
    bindparam,
    func,
    insert,
    inspect,
    not_,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB

from papersift.store.curation_schema import m009_curation
from papersift.store.engine import id_batches

JsonList = JSON().with_variant(JSONB(), "postgresql")

Migration = Callable[[Connection], None]


def _m001_papers(conn: Connection) -> None:
    md = MetaData()
    papers = Table(
        "papers",
        md,
        Column("id", String(128), primary_key=True),
        Column("title", Text, nullable=False),
        Column("abstract", Text, nullable=False, default=""),
        Column("authors", JsonList, nullable=False),
        Column("categories", JsonList, nullable=False),
        Column("primary_category", String(64), nullable=False, default=""),
        Column("published", Date),
        Column("updated", Date),
        Column("announced", Date),  # listing date: what the daily feed is keyed on
        Column("featured", Date),  # featured on a community daily-papers page
        Column("first_seen", DateTime(timezone=True), nullable=False),
        Column("version", Integer),
        Column("source", String(32), nullable=False),
        Column("source_id", String(256), nullable=False, default=""),
        Column("doi", String(256), nullable=False, default=""),
        Column("venue", String(128), nullable=False, default=""),
        Column("year", Integer),
        Column("comment", Text, nullable=False, default=""),
        Column("abs_url", Text, nullable=False, default=""),
        Column("pdf_url", Text, nullable=False, default=""),
        Column("upvotes", Integer, nullable=False, default=0),
        Column("hidden", Boolean, nullable=False, default=False),
        Column("content_hash", String(32), nullable=False),
        Column("rev", Integer, nullable=False),  # store revision of the last change: drives incremental indexing
    )
    Index("ix_papers_announced", papers.c.announced)
    Index("ix_papers_featured", papers.c.featured)
    Index("ix_papers_published", papers.c.published)
    Index("ix_papers_first_seen", papers.c.first_seen)
    Index("ix_papers_primary_category", papers.c.primary_category)
    Index("ix_papers_rev", papers.c.rev)
    Table(
        "meta",
        md,
        Column("key", String(64), primary_key=True),
        Column("value", Integer, nullable=False),
    )
    md.create_all(conn)
    conn.execute(insert(md.tables["meta"]).values(key="rev", value=0))


def _m002_accounts(conn: Connection) -> None:
    """Site accounts, one vote per user per paper, and who submitted what."""
    md = MetaData()
    md.reflect(conn, only=["papers"])  # so the votes foreign key resolves
    users = Table(
        "users",
        md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("username", String(64), nullable=False, unique=True),
        Column("password_hash", String(256), nullable=False),
        Column("is_admin", Boolean, nullable=False, default=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
    )
    votes = Table(
        "votes",
        md,
        Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        Column("paper_id", String(128), ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True),
        Column("created_at", DateTime(timezone=True), nullable=False),
    )
    Index("ix_votes_paper_id", votes.c.paper_id)
    Table(
        "submissions",
        md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("user_id", Integer, ForeignKey(users.c.id, ondelete="SET NULL")),
        Column("paper_id", String(128), nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
    )
    md.create_all(conn)


def _m003_subscriptions(conn: Connection) -> None:
    """Email digest subscriptions, and one row per digest sent: (subscription, period) is unique, so a
    digest can never go out twice to the same address for the same day or week."""
    md = MetaData()
    subscriptions = Table(
        "subscriptions",
        md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("email", String(320), nullable=False),
        Column("kind", String(16), nullable=False),  # trending | search | category | author | similar
        Column("query", Text, nullable=False, default=""),
        Column("filters", JsonList, nullable=False),  # {"categories": [...], "venue": "", "author": ""}
        Column("seeds", JsonList, nullable=False),  # paper ids for "papers like these"
        Column("frequency", String(8), nullable=False),  # daily | weekly
        Column("max_papers", Integer, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("confirmed_at", DateTime(timezone=True)),
        Column("unsubscribed_at", DateTime(timezone=True)),
    )
    Index("ix_subscriptions_email", subscriptions.c.email)
    Table(
        "digest_sends",
        md,
        Column("subscription_id", Integer, ForeignKey(subscriptions.c.id, ondelete="CASCADE"), primary_key=True),
        Column("period", String(16), primary_key=True),  # 2026-06-30 (daily) or 2026-W27 (weekly)
        Column("status", String(8), nullable=False),  # sending | sent | failed
        Column("papers", JsonList, nullable=False),
        Column("attempted_at", DateTime(timezone=True), nullable=False),
        Column("error", Text, nullable=False, default=""),
    )
    md.create_all(conn)


def _m004_votes_revision(conn: Connection) -> None:
    """A counter every vote change raises, so pages showing vote counts can be cached until it moves."""
    md = MetaData()
    md.reflect(conn, only=["meta"])
    conn.execute(insert(md.tables["meta"]).values(key="votes_rev", value=0))


def name_key(username: str) -> str:
    """The form two user names must not share: NFKC-normalised and case-folded ('Alice' = 'alice' = 'ａｌｉｃｅ')."""
    return unicodedata.normalize("NFKC", username).casefold()


# VARCHAR(n) columns of the first migrations: PostgreSQL enforces n (a 178-character arXiv journal-ref
# aborted a whole ingest), SQLite never did. Text everywhere: limits belong in validation, not the schema.
_BOUNDED_COLUMNS = (
    ("papers", "id"),
    ("papers", "primary_category"),
    ("papers", "source"),
    ("papers", "source_id"),
    ("papers", "doi"),
    ("papers", "venue"),
    ("votes", "paper_id"),
    ("submissions", "paper_id"),
    ("users", "username"),
    ("users", "password_hash"),
    ("subscriptions", "email"),
    ("subscriptions", "kind"),
    ("subscriptions", "frequency"),
    ("digest_sends", "period"),
    ("digest_sends", "status"),
)


def _m005_hardening(conn: Connection) -> None:
    """Unbounded text columns; per-user session versions (sign-out revokes every cookie of the user);
    user names unique case-insensitively; and a store id kept in the store, so indexes follow a home
    that is copied or moved instead of being keyed on its absolute path."""
    if conn.dialect.name == "postgresql":
        for table, column in _BOUNDED_COLUMNS:
            conn.exec_driver_sql(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE TEXT")
    conn.exec_driver_sql("ALTER TABLE users ADD COLUMN session_version INTEGER NOT NULL DEFAULT 0")
    conn.exec_driver_sql("ALTER TABLE users ADD COLUMN name_key TEXT")
    md = MetaData()
    md.reflect(conn, only=["users"])
    users = md.tables["users"]
    seen: set[str] = set()
    for uid, username in conn.execute(select(users.c.id, users.c.username).order_by(users.c.id)).all():
        key = name_key(username)
        if key in seen:  # a look-alike signed up before names were folded: keeps its exact name only
            key = f"{key}#{uid}"
        seen.add(key)
        conn.execute(update(users).where(users.c.id == uid).values(name_key=key))
    conn.exec_driver_sql("CREATE UNIQUE INDEX ux_users_name_key ON users (name_key)")
    info = Table(
        "store_info",
        MetaData(),
        Column("key", String(64), primary_key=True),
        Column("value", Text, nullable=False),
    )
    info.create(conn)
    conn.execute(insert(info).values(key="store_id", value=uuid.uuid4().hex))


def _m006_clean_records(conn: Connection) -> None:
    """Rows stored before ingest checked every record (`papersift.validate`): dates the search index and
    the pages cannot hold become NULL, links that are not http(s) become empty (a `javascript:` abs_url was
    rendered as a live href). Changed rows get a new revision so the indexes re-read them. Fixed bounds,
    not validate's, so that this migration does the same thing whenever it runs. Ids are left as they
    are: re-keying would split votes from their paper; pages and app.js encode them safely instead."""
    md = MetaData()
    md.reflect(conn, only=["papers", "meta"])
    papers, meta = md.tables["papers"], md.tables["meta"]
    low, high = date(1800, 1, 1), date(2200, 12, 31)
    changes: list[tuple[Any, Any, Any]] = []
    for name in ("published", "updated", "announced", "featured"):
        column = papers.c[name]
        changes.append((column, or_(column < low, column > high), None))
    for name in ("abs_url", "pdf_url"):
        column = papers.c[name]
        http = or_(func.lower(column).like("http://%"), func.lower(column).like("https://%"))
        changes.append((column, and_(column != "", not_(http)), ""))
    if not conn.execute(select(func.count()).where(or_(*(where for _, where, _ in changes)))).scalar_one():
        return
    conn.execute(update(meta).where(meta.c.key == "rev").values(value=meta.c.value + 1))
    rev = conn.execute(select(meta.c.value).where(meta.c.key == "rev")).scalar_one()
    for column, where, value in changes:
        conn.execute(update(papers).where(where).values({column.name: value, "rev": rev}))


_BACKFILL_BATCH = 1000


def _m007_code_links(conn: Connection) -> None:
    """A code or project link per paper (`papersift.code_links`), read from the abstract and comment of
    the papers already stored, in batches of ids; rows that get one take a new revision so the indexes
    re-read them. Uses the extractor as it is when the migration runs (it is deterministic on the text)."""
    from papersift.code_links import MARKERS, extract

    conn.exec_driver_sql("ALTER TABLE papers ADD COLUMN code_url TEXT NOT NULL DEFAULT ''")
    md = MetaData()
    md.reflect(conn, only=["papers", "meta"])
    papers, meta = md.tables["papers"], md.tables["meta"]
    text = func.lower(papers.c.abstract + " " + papers.c.comment)
    maybe = or_(*(text.like(f"%{marker}%") for marker in MARKERS))
    rev: int | None = None
    query = select(papers.c.id, papers.c.abstract, papers.c.comment).where(maybe)
    for rows in id_batches(conn, query, papers.c.id, _BACKFILL_BATCH):
        found = [(row.id, extract(row.abstract, row.comment)) for row in rows]
        found = [(pid, url) for pid, url in found if url]
        if not found:
            continue
        if rev is None:
            conn.execute(update(meta).where(meta.c.key == "rev").values(value=meta.c.value + 1))
            rev = int(conn.execute(select(meta.c.value).where(meta.c.key == "rev")).scalar_one())
        conn.execute(
            update(papers).where(papers.c.id == bindparam("pid")).values(code_url=bindparam("url"), rev=rev),
            [{"pid": pid, "url": url} for pid, url in found],
        )


def _m008_comments(conn: Connection) -> None:
    """Discussion on papers (`store/comments.py`): one level of replies (`parent_id` is always a top-level
    comment), soft deletion for comments that keep replies, an admin's hide flag; and a counter every comment
    change raises, so cached listing pages (which show comment counts) follow it."""
    md = MetaData()
    md.reflect(conn, only=["papers", "users", "meta"])
    comments = Table(
        "comments",
        md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("paper_id", Text, ForeignKey("papers.id", ondelete="CASCADE"), nullable=False),
        Column("user_id", Integer, ForeignKey("users.id", ondelete="SET NULL")),
        Column("parent_id", Integer, ForeignKey("comments.id", ondelete="CASCADE")),
        Column("body", Text, nullable=False),  # Markdown as written; rendered and sanitised when shown
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("edited_at", DateTime(timezone=True)),
        Column("deleted_at", DateTime(timezone=True)),  # deleted by its author but kept for its replies
        Column("hidden", Boolean, nullable=False, default=False),  # hidden by an admin
    )
    Index("ix_comments_paper_id", comments.c.paper_id, comments.c.id)
    Index("ix_comments_parent_id", comments.c.parent_id)
    comments.create(conn)  # with its indexes
    conn.execute(insert(md.tables["meta"]).values(key="comments_rev", value=0))


def _m010_library(conn: Connection) -> None:
    from papersift.store.library import migrate_library  # its module owns the tables; imported late (no circle)

    migrate_library(conn)


def _m011_vectors(conn: Connection) -> None:
    """Passage vectors per paper and model, so any host rebuilds its dense index without embedding (see
    store/vectors.py for why they live here). No foreign key: a vector write must not lock paper rows."""
    md = MetaData()
    Table(
        "vectors",
        md,
        Column("paper_id", String(128), primary_key=True),
        Column("model", String(128), primary_key=True),
        Column("text_hash", String(32), nullable=False),
        Column("dim", Integer, nullable=False),
        Column("count", Integer, nullable=False),
        Column("data", LargeBinary, nullable=False),  # count x dim float16, little-endian
    )
    md.create_all(conn)


def _m012_paper_authors(conn: Connection) -> None:
    """Authors as rows keyed by normalised name, for author pages and feeds (`papersift.store.authors`)."""
    from papersift.store import authors

    authors.migrate(conn)


MIGRATIONS: list[tuple[int, str, Migration]] = [
    (1, "papers", _m001_papers),
    (2, "accounts", _m002_accounts),
    (3, "subscriptions", _m003_subscriptions),
    (4, "votes revision", _m004_votes_revision),
    (5, "hardening", _m005_hardening),
    (6, "clean records", _m006_clean_records),
    (7, "code links", _m007_code_links),
    (8, "comments", _m008_comments),
    (9, "curation", m009_curation),
    (10, "library", _m010_library),
    (11, "vectors", _m011_vectors),
    (12, "paper authors", _m012_paper_authors),
]


def _ledger(conn: Connection) -> Table:
    md = MetaData()
    ledger = Table(
        "schema_migrations",
        md,
        Column("number", Integer, primary_key=True),
        Column("name", String(128), nullable=False),
        Column("applied_at", DateTime(timezone=True), nullable=False),
    )
    if not inspect(conn).has_table("schema_migrations"):
        md.create_all(conn)
    return ledger


def pending(conn: Connection) -> bool:
    """Whether any migration is still to apply: checked read-only, so opening a current store takes no lock."""
    if not inspect(conn).has_table("schema_migrations"):
        return True
    done = set(conn.execute(select(_ledger(conn).c.number)).scalars())
    return any(number not in done for number, _, _ in MIGRATIONS)


def migrate(conn: Connection) -> list[int]:
    """Apply pending migrations inside the caller's transaction; returns the numbers applied."""
    if conn.dialect.name == "postgresql":  # two processes opening a new database migrate one after the other
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7130514)")
    ledger = _ledger(conn)
    done = set(conn.execute(select(ledger.c.number)).scalars())
    applied = []
    for number, name, step in MIGRATIONS:
        if number in done:
            continue
        step(conn)
        conn.execute(insert(ledger).values(number=number, name=name, applied_at=datetime.now(UTC)))
        applied.append(number)
    return applied


def latest() -> int:
    return MIGRATIONS[-1][0]
