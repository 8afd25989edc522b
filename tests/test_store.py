"""Store contract: the same tests on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import text

from papersift.errors import PaperNotFound, StoreError
from papersift.models import Paper
from papersift.store import Store, migrations


def make(pid: str, **kw: object) -> Paper:
    base: dict[str, object] = dict(
        title=f"Paper {pid}",
        abstract="An abstract about transformers.",
        authors=["Ada Lovelace", "Alan Turing"],
        categories=["cs.CL", "cs.AI"],
        published=date(2025, 3, 1),
        source="jsonl",
    )
    base.update(kw)
    return Paper(id=pid, **base)  # type: ignore[arg-type]


def test_round_trip_keeps_every_field(store: Store) -> None:
    paper = make(
        "2501.00001",
        announced=date(2025, 3, 2),
        featured=date(2025, 3, 3),
        version=2,
        doi="10.1/x",
        venue="ACL",
        year=2025,
        comment="12 pages",
        abs_url="https://arxiv.org/abs/2501.00001",
        pdf_url="https://arxiv.org/pdf/2501.00001",
        upvotes=7,
        authors=["Zoë Ünicode", "B", "A"],  # order matters and survives
    )
    with store.write() as w:
        w.insert([paper])
    got = store.get("2501.00001")
    assert got.content_hash() == paper.content_hash()
    assert got.authors == ["Zoë Ünicode", "B", "A"]
    assert got.first_seen is not None and got.first_seen.tzinfo is not None
    assert got.rev == 1
    assert store.count() == 1


def test_missing_paper_raises_actionable_error(store: Store) -> None:
    with pytest.raises(PaperNotFound, match=r"no paper with id '9999\.99999'"):
        store.get("9999.99999")


def test_update_bumps_revision_and_iter_papers_sees_only_changes(store: Store) -> None:
    with store.write() as w:
        w.insert([make("a"), make("b"), make("c")])
    first = store.revision()
    with store.write() as w:
        w.update([make("b", title="Paper b, revised")])
    assert store.revision() == first + 1
    changed = list(store.iter_papers(since_rev=first))
    assert [p.id for p in changed] == ["b"]
    assert changed[0].title == "Paper b, revised"
    assert sorted(p.id for p in store.iter_papers()) == ["a", "b", "c"]


def test_iter_papers_pages_through_large_revisions(store: Store) -> None:
    with store.write() as w:
        w.insert([make(f"p{i:04d}") for i in range(2500)])
    assert len(list(store.iter_papers(batch=700))) == 2500


def test_failed_transaction_stores_nothing(store: Store) -> None:
    with store.write() as w:
        w.insert([make("keep")])
    with pytest.raises(RuntimeError), store.write() as w:
        w.insert([make("lost")])
        raise RuntimeError("boom")
    assert store.count() == 1
    assert store.get_many(["keep", "lost"]).keys() == {"keep"}


def test_duplicate_insert_is_rejected_and_rolled_back(store: Store) -> None:
    with store.write() as w:
        w.insert([make("x")])
    with pytest.raises(Exception), store.write() as w:  # noqa: B017 - backend-specific IntegrityError
        w.insert([make("y"), make("x")])
    assert store.count() == 1


def test_hide_paper(store: Store) -> None:
    with store.write() as w:
        w.insert([make("h")])
    with store.write() as w:
        w.set_hidden("h", True)
    assert store.get("h").hidden
    with pytest.raises(PaperNotFound), store.write() as w:
        w.set_hidden("nope", True)


def test_stats(store: Store) -> None:
    with store.write() as w:
        w.insert([make("a"), make("b", categories=["cs.CV"], featured=date(2025, 1, 1)), make("c", abstract="")])
    figures = store.stats()
    assert figures["papers"] == 3
    assert figures["with_abstract"] == 2
    assert figures["featured"] == 1
    assert figures["top_categories"] == {"cs.CL": 2, "cs.CV": 1}


def test_reopen_does_not_remigrate(store_url: str) -> None:
    Store.open(store_url).close()
    again = Store.open(store_url)
    with again.engine.connect() as conn:
        numbers = conn.execute(text("SELECT number FROM schema_migrations ORDER BY number")).scalars().all()
    assert numbers == [n for n, _, _ in migrations.MIGRATIONS]
    again.close()


def test_sqlite_uses_wal(sqlite_store: Store) -> None:
    with sqlite_store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_bad_urls_give_clear_errors(tmp_path: object) -> None:
    with pytest.raises(StoreError, match="unsupported database"):
        Store.open("mysql://localhost/x")
    with pytest.raises(StoreError, match="invalid database URL"):
        Store.open("not a url at all")
    with pytest.raises(StoreError, match="cannot open the store"):
        Store.open("postgresql+psycopg://nobody@127.0.0.1:1/none")
