"""Migration 5 upgrades a store made by an earlier release, on both backends, without losing anything."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, insert, inspect, select

from papersift.models import Paper
from papersift.store import Store, migrations
from papersift.store.accounts import Accounts

from .old_store import store_at


def _old_store(url: str) -> None:
    """A store as release 4 left it, with two users whose names differ only in case."""
    with store_at(url, 4) as conn:
        md = MetaData()
        md.reflect(conn, only=["users"])
        for name in ("alice", "Alice", "bob"):
            conn.execute(
                insert(md.tables["users"]).values(
                    username=name, password_hash="x", is_admin=name == "alice", created_at=datetime.now(UTC)
                )
            )


def test_upgrade_keeps_users_folds_names_and_unbounds_text(store_url: str) -> None:
    _old_store(store_url)
    store = Store.open(store_url)
    try:
        with store.engine.connect() as conn:
            assert not migrations.pending(conn)
            assert "store_info" in inspect(conn).get_table_names()
        accounts = Accounts(store)
        # the first of two look-alikes keeps the folded name; the later one keeps its exact name only
        assert accounts.user_by_name("ALICE") is not None
        assert accounts.user_by_name("ALICE").username == "alice"  # type: ignore[union-attr]
        assert accounts.user_by_name("BOB").username == "bob"  # type: ignore[union-attr]
        assert accounts.user_by_name("bob").session_version == 0  # type: ignore[union-attr]
        # a 178-character journal-ref and a 300-character id used to overflow VARCHAR(128) on PostgreSQL
        long_venue = "Proceedings of " + "a very long journal reference, " * 6
        with store.write() as w:
            w.insert([Paper(id="t:" + "a" * 300, title="Long", venue=long_venue, source="jsonl")])
        assert store.get("t:" + "a" * 300).venue == long_venue
        identity = store.identity()
        assert len(identity) == 32
    finally:
        store.close()
    reopened = Store.open(store_url)
    try:
        assert reopened.identity() == identity  # kept in the store, not derived from where it lives
    finally:
        reopened.close()


def test_opening_a_current_store_writes_nothing(store_url: str) -> None:
    Store.open(store_url).close()
    store = Store.open(store_url)
    try:
        with store.engine.connect() as conn:
            ledger = migrations._ledger(conn)
            applied = conn.execute(select(ledger.c.number)).scalars().all()
        assert sorted(applied) == [n for n, _, _ in migrations.MIGRATIONS]
    finally:
        store.close()


def _open_at_barrier(url: str, barrier: Any, results: Any) -> None:
    barrier.wait()
    try:
        Store.open(url).close()
        results.put("ok")
    except Exception as exc:  # reported to the parent, which asserts on it
        results.put(repr(exc))


def test_processes_creating_one_new_sqlite_store_at_once_all_open_it(tmp_path: Path) -> None:
    """Two ingests (or a server and an ingest) started together on a new home: SQLite refused the WAL
    switch of one of them at once, "database is locked", though nobody held the store for long."""
    # Not plain fork: the test process may run threads by now (servers and workers of earlier tests), and a child
    # forked while one of them holds a lock (logging, a pool) hangs before the barrier. The fork server is a
    # fresh single-threaded process that has imported this module once, so each child still starts quickly.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    failures = []
    for round_ in range(40):
        url = f"sqlite:///{tmp_path / f'r{round_}' / 'store.db'}"
        barrier, results = context.Barrier(4), context.Queue()
        workers = [context.Process(target=_open_at_barrier, args=(url, barrier, results)) for _ in range(4)]
        for worker in workers:
            worker.start()
        outcomes = [results.get(timeout=120) for _ in workers]
        for worker in workers:
            worker.join(timeout=60)
        failures += [outcome for outcome in outcomes if outcome != "ok"]
    assert not failures, failures[:3]
