"""Who wrote what: one `paper_authors` row per (paper, author position), keyed by a normalised name.

Names are keyed by `author_key`: NFKC, case folding and collapsed whitespace of the name as written. The
same written name reaches the store in several forms (a composed "ü" from arXiv, a decomposed one from
a BibTeX export, "SMITH" from a CSV, a line break inside an OAI author list), and a link must find all of
them. Nothing looser is merged: "J. Smith" and "John Smith", or "Jurgen" and "Jürgen", may be different
people, and only the reader can tell.

A side table rather than JSON functions over `papers.authors`: an indexed equality lookup on the key is
the same SQL on SQLite and PostgreSQL, where JSON needs `json_each` (a scan of every paper's list) on one
and a GIN index with no case folding on the other (benchmarks/author_bench.py measures both; figures
in the README).
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    and_,
    delete,
    func,
    select,
)

from papersift.models import Paper
from papersift.store.engine import id_batches, storable

if TYPE_CHECKING:
    from papersift.store.papers import Store

TABLE = "paper_authors"
MAX_KEY_CHARS = 500  # NFKC can lengthen a name up to 18-fold; PostgreSQL refuses b-tree keys over ~2.7 kB
_CHUNK = 900  # ids per statement: under every backend's bound-parameter limit
_BACKFILL_BATCH = 2000


def author_key(name: str) -> str:
    """The form two written names must share to be one author on the site (see the module docstring)."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())[:MAX_KEY_CHARS]


def table(md: MetaData) -> Table:
    """The side table's definition, in `md` (which must hold `papers` for the foreign key)."""
    return Table(
        TABLE,
        md,
        Column("paper_id", Text, ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True),
        Column("position", Integer, primary_key=True, autoincrement=False),
        Column("name", Text, nullable=False),
        Column("name_key", Text, nullable=False),
        Index("ix_paper_authors_name_key", "name_key", "paper_id"),
    )


def _rows(papers: Iterable[Paper]) -> list[tuple[str, int, str, str]]:
    rows = []
    for paper in papers:
        for position, name in enumerate(paper.authors):
            key = author_key(name)
            if key:
                rows.append((paper.id, position, name, key))
    return rows


def replace(conn: Connection, authors: Table, papers: Sequence[Paper]) -> None:
    """Make the rows of `papers` match their author lists, inside the caller's transaction."""
    ids = [p.id for p in papers]
    for start in range(0, len(ids), _CHUNK):
        conn.execute(delete(authors).where(authors.c.paper_id.in_(ids[start : start + _CHUNK])))
    add(conn, authors, papers)


def add(conn: Connection, authors: Table, papers: Sequence[Paper]) -> None:
    """Rows for papers that have none yet (just inserted).

    Handed to the driver's executemany as tuples: SQLAlchemy's per-row parameter handling doubled the
    cost of these ~6 rows per paper (a first ingest of 74,728 papers writes 433,449)."""
    rows = _rows(papers)
    if rows:
        mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        columns = "paper_id, position, name, name_key"
        conn.exec_driver_sql(f"INSERT INTO {authors.name} ({columns}) VALUES ({mark}, {mark}, {mark}, {mark})", rows)


def migrate(conn: Connection) -> None:
    """Migration 12: the side table, filled from the papers already stored in batches of ids, and an index
    on who submitted what (cards show the submitter)."""
    md = MetaData()
    md.reflect(conn, only=["papers", "submissions"])
    authors = table(md)
    authors.create(conn)
    Index("ix_submissions_paper_id", md.tables["submissions"].c.paper_id).create(conn)
    papers = md.tables["papers"]
    for rows in id_batches(conn, select(papers.c.id, papers.c.authors), papers.c.id, _BACKFILL_BATCH):
        add(conn, authors, [Paper(id=r.id, title="", authors=list(r.authors or [])) for r in rows])


@dataclass(slots=True)
class AuthorPage:
    """One page of an author's papers, newest first, and how many there are in all."""

    name: str  # the display name most papers use
    key: str
    papers: list[Paper] = field(default_factory=list)
    total: int = 0


def _day(store: Store) -> ColumnElement[Any]:
    """A paper's date as readers quote it (`Paper.date`): announced, else published, updated, featured."""
    p = store.papers
    return func.coalesce(p.c.announced, p.c.published, p.c.updated, p.c.featured)


def papers_by(
    store: Store,
    name: str,
    limit: int = 50,
    offset: int = 0,
    start: date | None = None,
    end: date | None = None,
) -> AuthorPage:
    """Visible papers listing `name` (compared by `author_key`), newest first; `start`/`end` bound their date."""
    from papersift.store.papers import _to_paper

    key = author_key(name) if storable(name) else ""  # NUL or a lone surrogate: no stored name has one
    page = AuthorPage(name=" ".join(name.split()), key=key)
    if not key:
        return page
    p, a = store.papers, store.authors
    day = _day(store)
    where = and_(p.c.hidden.is_(False), p.c.id.in_(select(a.c.paper_id).where(a.c.name_key == key)))
    if start is not None:
        where = and_(where, day >= start)
    if end is not None:
        where = and_(where, day <= end)
    # one statement: the total rides along as a window count (only a page past the end needs a second)
    query = (
        select(p, func.count().over().label("total"))
        .where(where)
        .order_by(day.desc().nulls_last(), p.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
        if rows:
            page.total = int(rows[0].total)
        else:
            page.total = int(conn.execute(select(func.count()).select_from(p).where(where)).scalar_one())
    page.papers = [_to_paper(row) for row in rows]
    spellings = Counter(n for paper in page.papers for n in dict.fromkeys(paper.authors) if author_key(n) == key)
    if spellings:  # the display name: the spelling most of these papers use
        page.name = min(spellings, key=lambda n: (-spellings[n], n))
    return page


def known(store: Store, name: str) -> bool:
    """Whether any stored paper lists `name` (by key), visible or not."""
    a = store.authors
    key = author_key(name) if storable(name) else ""
    if not key:
        return False
    with store.engine.connect() as conn:
        return conn.execute(select(a.c.paper_id).where(a.c.name_key == key).limit(1)).first() is not None
