"""Engine construction: the only place that knows SQLite and PostgreSQL differ.

SQLite runs in WAL mode so readers never block the writer; write transactions start with
`BEGIN IMMEDIATE` so two writers queue on the lock instead of failing mid-transaction. A writer waits
at most `busy_timeout` seconds for the lock (SQLite's busy timeout, PostgreSQL's lock_timeout); then
the store raises `StoreBusy`, which the web answers with 503 + Retry-After and the CLI explains.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Column, Connection, Engine, Row, Select, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.sql.dml import Insert

from papersift.errors import QueryError, StoreBusy, StoreError

WRITE_OPTION = "papersift_write"
DEFAULT_BUSY_TIMEOUT = 30.0  # seconds: a command waits out another's ingest batch
WEB_BUSY_TIMEOUT = 5.0  # a web request answers 503 rather than hang this long
_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6  # primary result codes; extended codes keep them in the low byte
_PG_LOCK_NOT_AVAILABLE = "55P03"  # lock_timeout expired
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")  # PostgreSQL text refuses NUL; UTF-8 has no lone surrogates
UNSTORABLE_MESSAGE = "the text holds a NUL character or a lone surrogate, which no store can hold; remove it"
BUSY_MESSAGE = "the store is busy: another process (an ingest or a server writing) holds its write lock; retry shortly"


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def make_engine(url: str, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> Engine:
    try:
        parsed = make_url(url)
    except Exception as exc:  # sqlalchemy raises ArgumentError with a terse message
        raise StoreError(f"invalid database URL {url!r}: {exc}") from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        engine = _sqlite_engine(url, parsed.database, busy_timeout)
    elif backend == "postgresql":
        engine = _postgresql_engine(url, busy_timeout)
    else:
        raise StoreError(f"unsupported database {backend!r}: use sqlite:///PATH or postgresql+psycopg://...")
    event.listen(engine, "handle_error", _translate)
    return engine


def is_busy(error: BaseException | None) -> bool:
    """A driver error that means "someone else holds the lock", as opposed to a broken store."""
    code = getattr(error, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)
    return getattr(error, "sqlstate", None) == _PG_LOCK_NOT_AVAILABLE


def as_utc(when: datetime | None) -> datetime | None:
    """A stored time with its zone: SQLite drops it, and everything papersift writes is UTC."""
    if when is not None and when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    return when


def storable(text: str) -> bool:
    """Whether text can be a value in the store (so a lookup of anything else can only find nothing)."""
    return _UNSTORABLE.search(text) is None


def _translate(context: ExceptionContext) -> None:
    """Errors a caller can act on instead of driver errors: a held lock, text no store can hold."""
    error = context.original_exception
    if is_busy(error):
        raise StoreBusy(BUSY_MESSAGE) from context.sqlalchemy_exception
    if isinstance(error, UnicodeEncodeError) or "cannot contain NUL (0x00)" in str(error):
        raise QueryError(UNSTORABLE_MESSAGE) from error


def id_batches(conn: Connection, query: Select[Any], id_column: Column[Any], size: int) -> Iterator[list[Row[Any]]]:
    """`query`'s rows in batches of `size`, walking `id_column` upwards (keyset paging): a backfill over a
    million papers holds one batch in memory and each batch is an index range scan, where OFFSET would rescan."""
    after = ""
    while True:
        rows = conn.execute(query.where(id_column > after).order_by(id_column).limit(size)).all()
        if not rows:
            return
        after = rows[-1]._mapping[id_column]
        yield list(rows)


def insert_ignoring_duplicates(conn_dialect: str, table: Table) -> Insert:
    """`INSERT ... ON CONFLICT DO NOTHING`: a row someone else inserted meanwhile is no error."""
    if conn_dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


def _postgresql_engine(url: str, busy_timeout: float) -> Engine:
    engine = create_engine(url, json_serializer=_dumps, json_deserializer=orjson.loads, pool_pre_ping=True, future=True)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        autocommit = dbapi_conn.autocommit
        dbapi_conn.autocommit = True
        with dbapi_conn.cursor() as cur:
            cur.execute(f"SET lock_timeout = {max(1, int(busy_timeout * 1000))}")
        dbapi_conn.autocommit = autocommit

    return engine


def _enable_wal(cur: Any, busy_timeout: float) -> None:
    """Switch to WAL, retrying while others open the same new file. Two processes creating a store at once
    both try to change its journal mode; SQLite refuses one of them at once ("database is locked") without
    calling the busy handler, since waiting could deadlock (4 processes at a barrier: 12 of 200 rounds)."""
    deadline = time.monotonic() + busy_timeout
    pause = 0.005
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or time.monotonic() + pause > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.1)


def _sqlite_engine(url: str, database: str | None, busy_timeout: float) -> Engine:
    if database and database != ":memory:":
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        json_serializer=_dumps,
        json_deserializer=orjson.loads,
        connect_args={"timeout": busy_timeout},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # let the "begin" hook below issue BEGIN itself
        cur = dbapi_conn.cursor()
        _enable_wal(cur, busy_timeout)
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={max(1, int(busy_timeout * 1000))}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        write = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine
