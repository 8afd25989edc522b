"""Stores as an earlier release left them: what the upgrade tests migrate from."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import Connection, insert

from papersift.store import migrations
from papersift.store.engine import WRITE_OPTION, make_engine


@contextmanager
def store_at(url: str, release: int) -> Iterator[Connection]:
    """A write transaction on a store with only migrations 1..`release` applied, for the caller to fill."""
    engine = make_engine(url)
    try:
        with engine.connect().execution_options(**{WRITE_OPTION: True}) as conn, conn.begin():
            ledger = migrations._ledger(conn)
            for number, name, step in migrations.MIGRATIONS[:release]:
                step(conn)
                conn.execute(insert(ledger).values(number=number, name=name, applied_at=datetime.now(UTC)))
            yield conn
    finally:
        engine.dispose()
