"""Concurrent writers on both backends, and a store another process holds locked (issue 10, items 15-18).

Threads released together by a `threading.Barrier` stand for processes (each has its own Store, so its own
engine and connections); the ingest race is also run with two real `papersift ingest` processes.
"""

from __future__ import annotations

import gzip
import itertools
import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from datetime import date
from functools import partial
from pathlib import Path
from typing import TypeVar, cast
from urllib.parse import quote

import psycopg
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select
from sqlalchemy.engine import make_url

from papersift import sources
from papersift.cli import main
from papersift.errors import PaperNotFound, QueryError, StoreBusy
from papersift.ingest import ingest, ingest_records
from papersift.models import Paper
from papersift.settings import Settings
from papersift.sources import ParsedRecord
from papersift.store import Store, listing, lock_holder
from papersift.store.accounts import Accounts
from papersift.web import create_app

from .conftest import SAMPLE, shared
from .pgserver import PostgresServer

T = TypeVar("T")
ROUNDS = 3
DAILY = "arxiv_daily/arxiv_daily_2025-2026.jsonl.gz"


def together(count: int, work: Callable[[int], T]) -> list[T]:
    """Run `work(0..count-1)` on `count` threads released at the same instant; re-raise the first error."""
    barrier = threading.Barrier(count)
    results: list[T | None] = [None] * count
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=60)
            results[i] = work(i)
        except BaseException as exc:  # handed to the test thread below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return cast(list[T], results)


@pytest.fixture(scope="module")
def daily_slices(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """ROUNDS disjoint slices of real arXiv listings, 900 records each, as plain JSONL files."""
    source = shared(DAILY)
    folder = tmp_path_factory.mktemp("slices")
    paths = [folder / f"arxiv_daily_{k}.jsonl" for k in range(ROUNDS)]
    with gzip.open(source, "rt", encoding="utf-8") as lines:
        for path in paths:
            path.write_text("".join(itertools.islice(lines, 900)), encoding="utf-8")
    return paths


@pytest.fixture(scope="module")
def overlapping(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """400 real arXiv listings, the Hugging Face daily-papers records of the same papers, and the listings
    again with DOIs."""
    listings, picks = shared(DAILY), shared("hf_daily_papers/hf_daily_featured_papers.jsonl.gz")
    with gzip.open(picks, "rt", encoding="utf-8") as lines:
        featured = {json.loads(line)["link"].rsplit("/", 1)[-1]: line for line in lines}
    chosen: dict[str, str] = {}
    with gzip.open(listings, "rt", encoding="utf-8") as lines:
        for line in lines:
            if json.loads(line)["id"] in featured:
                chosen[json.loads(line)["id"]] = line
                if len(chosen) == 400:
                    break
    folder = tmp_path_factory.mktemp("overlap")
    paths = [folder / name for name in ("arxiv_daily_overlap.jsonl", "hf_featured.jsonl", "arxiv_daily_doi.jsonl")]
    paths[0].write_text("".join(chosen.values()), encoding="utf-8")
    paths[1].write_text("".join(featured[i] for i in chosen), encoding="utf-8")
    with_doi = [json.dumps({**json.loads(line), "doi": f"10.48550/arXiv.{i}"}) + "\n" for i, line in chosen.items()]
    paths[2].write_text("".join(with_doi), encoding="utf-8")
    return paths


def parsed(path: Path) -> list[ParsedRecord]:
    with sources.open_input(path) as stream:
        source = sources.detect(sources.head_of(stream, str(path)), path.name)({})
        return list(source.parse(stream, str(path)))


def contents(store: Store) -> dict[str, str]:
    return {p.id: p.content_hash() for p in store.iter_papers()}


# -- 15: two ingests of one file at once -----------------------------------------------------------------


def test_concurrent_ingests_of_one_file_count_right_and_store_each_paper_once(
    store_url: str, daily_slices: list[Path], tmp_path: Path
) -> None:
    reference = Store.open(f"sqlite:///{tmp_path / 'reference.db'}")
    stores = [Store.open(store_url) for _ in range(2)]
    try:
        for path in daily_slices:
            alone = ingest(reference, str(path), batch_size=200)
            reports = together(2, lambda i, path=path: ingest(stores[i], str(path), batch_size=200))  # type: ignore[misc]
            for report in reports:
                assert report.rejected == 0
                assert report.added + report.updated + report.unchanged == alone.added + alone.updated + alone.unchanged
            assert sum(r.added for r in reports) == alone.added
            assert stores[0].count() == reference.count()
        assert contents(stores[0]) == contents(reference)
    finally:
        for store in (*stores, reference):
            store.close()


def test_concurrent_updates_of_the_same_papers_both_land(
    store_url: str, overlapping: list[Path], tmp_path: Path
) -> None:
    """400 real listings stored, then their Hugging Face picks (featured day, upvotes) and a file adding their
    DOIs ingested at once: every paper ends with both, as if one ran after the other (no lost update)."""
    listing, *updates = overlapping
    reference = Store.open(f"sqlite:///{tmp_path / 'reference.db'}")
    stores = [Store.open(store_url) for _ in updates]
    try:
        for path in overlapping:
            ingest(reference, str(path))
        for _ in range(ROUNDS):
            with stores[0].write() as w:
                w.conn.execute(delete(w.store.papers))
            ingest(stores[0], str(listing))
            records = [parsed(path) for path in updates]  # parsed beforehand: the two writes start together
            reports = together(2, lambda i, r=records: ingest_records(stores[i], r[i], batch_size=500))  # type: ignore[misc]
            assert [(r.added, r.updated + r.unchanged) for r in reports] == [(0, 400), (0, 400)]
            assert contents(stores[0]) == contents(reference)
        assert all(p.featured and p.doi and p.announced for p in stores[0].iter_papers())
    finally:
        for store in (*stores, reference):
            store.close()


def test_two_ingest_processes_of_one_file_both_succeed(
    store_url: str, daily_slices: list[Path], tmp_path: Path
) -> None:
    exe = Path(sys.executable).with_name("papersift")
    path = tmp_path / "arxiv_daily_all.jsonl"  # long enough that the two runs overlap
    path.write_text("".join(p.read_text(encoding="utf-8") for p in daily_slices), encoding="utf-8")
    command = [str(exe), "--home", str(tmp_path / "home"), "--db", store_url, "ingest", str(path), "-q", "--no-index"]
    env = {**os.environ, "PAPERSIFT_BATCH_SIZE": "5000"}
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for _ in "ab"]
    outcomes = [(*run.communicate(timeout=300), run.returncode) for run in runs]
    for _out, err, code in outcomes:
        assert code in (0, 3), err
        assert "Traceback" not in err
    added = [int(out.split(" added")[0].rsplit(" ", 1)[-1]) for out, _, _ in outcomes]
    store = Store.open(store_url)
    try:
        assert sum(added) == store.count() == 900 * ROUNDS
    finally:
        store.close()


# -- 16: one user's concurrent upvotes ------------------------------------------------------------------


@pytest.fixture
def voting(store_url: str) -> Iterator[tuple[Accounts, str]]:
    store = Store.open(store_url)
    with store.write() as w:
        w.insert([Paper(id="t:voted", title="A paper everyone likes", abstract="votes")])
    yield Accounts(store), "t:voted"
    store.close()


def test_sixteen_concurrent_upvotes_by_one_user_count_once(voting: tuple[Accounts, str]) -> None:
    accounts, pid = voting
    user = accounts.create_user("eager", "hash")
    for _ in range(ROUNDS):
        assert together(16, lambda _i: accounts.vote(user.id, pid, up=True)) == [1] * 16
        assert accounts.counts([pid]) == {pid: 1}
        assert together(16, lambda _i: accounts.vote(user.id, pid, up=False)) == [0] * 16
        assert accounts.counts([pid]) == {}


def test_concurrent_up_and_down_votes_stay_consistent(voting: tuple[Accounts, str]) -> None:
    accounts, pid = voting
    users = [accounts.create_user(f"voter{k}", "hash") for k in range(4)]
    me = users[0]
    for _ in range(ROUNDS):
        answers = together(16, lambda i: accounts.vote(me.id, pid, up=i % 2 == 0))
        assert set(answers) <= {0, 1}
        assert accounts.counts([pid]).get(pid, 0) == len(accounts.voted(me.id, [pid]))
        accounts.vote(me.id, pid, up=False)
    # four users, four threads each: four votes
    together(16, lambda i: accounts.vote(users[i % 4].id, pid, up=True))
    assert accounts.counts([pid]) == {pid: 4}


# -- 17: first sign-ups at once ---------------------------------------------------------------------------


def test_concurrent_first_signups_make_exactly_one_admin(store_url: str) -> None:
    store = Store.open(store_url)
    try:
        accounts = Accounts(store)
        for round_ in range(ROUNDS + 1):
            with store.write() as w:
                w.conn.execute(delete(accounts.users))
            made = together(8, lambda i, r=round_: accounts.create_user(f"early{r}-{i}", "hash"))  # type: ignore[misc]
            assert sum(user.is_admin for user in made) == 1
            with store.engine.connect() as conn:
                admins = conn.execute(select(accounts.users.c.id).where(accounts.users.c.is_admin.is_(True))).all()
            assert len(admins) == 1
    finally:
        store.close()


# -- 18: a store another process holds locked -------------------------------------------------------------

HOLD_SQLITE = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA journal_mode=WAL")
conn.execute("BEGIN IMMEDIATE")
print("held", flush=True)
sys.stdin.read()
conn.execute("ROLLBACK")
"""


@pytest.fixture
def busy_home(tmp_path: Path) -> Path:
    home = tmp_path / "busy"
    store = Store.open(Settings(home=home).store_url)
    try:
        ingest(store, str(SAMPLE / "arxiv_daily_sample.jsonl.gz"))
    finally:
        store.close()
    return home


def hold_sqlite(db: Path) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_SQLITE, str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def release(holder: subprocess.Popen[str]) -> None:
    assert holder.stdin is not None
    holder.stdin.close()
    holder.wait(timeout=30)


def test_reads_work_and_writes_say_who_holds_a_locked_sqlite_store(busy_home: Path, tmp_path: Path) -> None:
    extra = tmp_path / "extra.jsonl"
    extra.write_text('{"id": "2601.00001", "listing_date": "2026-01-02", "title": "T", "abstract": "A"}\n')
    holder = hold_sqlite(busy_home / "papersift.db")
    try:
        runner = CliRunner()
        env = {"PAPERSIFT_BUSY_TIMEOUT": "0.3"}
        for args in (["stats"], ["stats", "--json"], ["show", "2606.25042"], ["export", "-o", str(tmp_path / "out")]):
            result = runner.invoke(main, ["--home", str(busy_home), *args], env=env, catch_exceptions=False)
            assert result.exit_code == 0, (args, result.stderr)
        assert (tmp_path / "out").read_text().count("\n") > 100
        result = runner.invoke(main, ["--home", str(busy_home), "ingest", str(extra), "-q"], env=env)
        assert result.exit_code == 1, result.output
        message = result.stderr.strip()
        assert "\n" not in message and "Traceback" not in result.output
        assert "locked by another process" in message
        assert f"pid {holder.pid}" in message  # names the holder
    finally:
        release(holder)
    result = CliRunner().invoke(main, ["--home", str(busy_home), "ingest", str(extra), "-q", "--no-index"])
    assert result.exit_code == 0, result.output


def test_an_upvote_on_a_locked_sqlite_store_is_503_with_retry_after(busy_home: Path) -> None:
    settings = Settings(home=busy_home, secret_key="test-secret", busy_timeout=0.3)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        r = client.post("/api/auth/signup", json={"username": "patient", "password": "correct horse"})
        assert r.status_code in (200, 201), r.text
        token = client.get("/api/me").json()["csrf_token"]
        holder = hold_sqlite(busy_home / "papersift.db")
        try:
            busy = client.post("/api/papers/2606.25042/upvote", headers={"X-CSRF-Token": token})
            assert busy.status_code == 503, busy.text
            assert busy.json()["error"]["code"] == "store_busy"
            assert int(busy.headers["Retry-After"]) > 0
            assert client.get("/api/papers/2606.25042").status_code == 200  # reads go on
        finally:
            release(holder)
        assert client.post("/api/papers/2606.25042/upvote", headers={"X-CSRF-Token": token}).status_code == 200


def test_a_write_waiting_on_a_postgresql_lock_is_store_busy(postgres: PostgresServer, tmp_path: Path) -> None:
    url = postgres.create_database(f"busy{os.getpid()}")
    store = Store.open(url, busy_timeout=0.3)
    with store.write() as w:
        w.insert([Paper(id="t:locked", title="Locked", abstract="a")])
    accounts = Accounts(store)
    user = accounts.create_user("waiter", "hash")
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        with psycopg.connect(dsn) as holder:
            holder.execute("LOCK TABLE votes, papers IN EXCLUSIVE MODE")
            with pytest.raises(StoreBusy):
                accounts.vote(user.id, "t:locked")
            assert store.get("t:locked").title == "Locked"  # reads go on
            extra = tmp_path / "extra.jsonl"
            extra.write_text('{"id": "2601.00001", "listing_date": "2026-01-02", "title": "T", "abstract": "A"}\n')
            runner, env = CliRunner(), {"PAPERSIFT_BUSY_TIMEOUT": "0.3"}
            args = ["--home", str(tmp_path / "home"), "--db", url]
            assert runner.invoke(main, [*args, "stats"], env=env).exit_code == 0
            result = runner.invoke(main, [*args, "ingest", str(extra), "-q", "--no-index"], env=env)
            assert result.exit_code == 1, result.output
            assert "locked by another writer" in result.stderr and result.stderr.count("\n") == 1
        assert accounts.vote(user.id, "t:locked") == 1
    finally:
        store.close()


def test_opening_a_store_another_process_is_migrating_waits_for_it(store_url: str) -> None:
    """A short busy timeout (a web worker's) is for requests; opening waits out a migration however long."""
    url = make_url(store_url)
    let_go: Callable[[], object]
    if url.get_backend_name() == "sqlite":
        let_go = partial(release, hold_sqlite(Path(str(url.database))))  # a new file: nothing migrated yet
    else:
        other = psycopg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False))
        other.execute("SELECT pg_advisory_xact_lock(7130514)")  # what a migrating process holds
        let_go = other.close
    timer = threading.Timer(1.5, let_go)  # lets go while (on any machine not absurdly slow) open is waiting
    timer.start()
    try:
        store = Store.open(store_url, busy_timeout=0.2)
    finally:
        timer.join()
    try:
        assert store.count() == 0
    finally:
        store.close()


# -- naming the holder from /proc/locks -------------------------------------------------------------------

DEV, INO = os.makedev(8, 1), 393224
HOLDER_LINE = "7: POSIX  ADVISORY  WRITE {pid} 08:01:393224 {start} {end}"
other_locks = st.builds(
    "{}: {} ADVISORY {} {} {:02x}:{:02x}:{} {} {}".format,
    st.integers(1, 99),
    st.sampled_from(["POSIX", "FLOCK", "OFDLCK", "-> POSIX"]),
    st.sampled_from(["READ", "WRITE"]),
    st.integers(-1, 1 << 22),
    st.integers(0, 255),
    st.integers(0, 255),
    st.integers(0, 1 << 40).filter(lambda ino: ino != INO),  # some other file
    st.integers(0, 200),
    st.sampled_from(["EOF", "120", "127", "0"]),
)
junk = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=80).map(lambda t: t.replace("\n", " "))


@settings(max_examples=150, deadline=None)
@given(
    before=st.lists(st.one_of(other_locks, junk), max_size=8),
    after=st.lists(st.one_of(other_locks, junk), max_size=8),
    held=st.sampled_from([("120", "120"), ("0", "EOF"), ("120", "127"), ("100", "125")]),
    pid=st.integers(2, 1 << 22),
)
def test_the_write_lock_holder_is_found_among_any_other_locks(
    before: list[str], after: list[str], held: tuple[str, str], pid: int
) -> None:
    line = HOLDER_LINE.format(pid=pid, start=held[0], end=held[1])
    table = "\n".join([*before, line, *after])
    assert lock_holder.lock_owner(table, DEV, INO, 120, exclude=-7) == pid
    assert lock_holder.lock_owner(table, DEV, INO, 120, exclude=pid) is None  # our own lock is no answer
    without = "\n".join([*before, *after])
    assert lock_holder.lock_owner(without, DEV, INO, 120, exclude=-7) is None  # nothing else is taken for it


@settings(max_examples=100, deadline=None)
@given(table=st.lists(st.one_of(junk, other_locks), max_size=20).map("\n".join))
def test_a_lock_table_of_any_shape_never_breaks_the_message(table: str) -> None:
    assert lock_holder.lock_owner(table, DEV, INO, 120, exclude=os.getpid()) is None


def test_describe_names_a_live_process_and_survives_a_gone_one() -> None:
    assert lock_holder.describe(os.getpid()).startswith(f"pid {os.getpid()} (python")
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    assert lock_holder.describe(int(gone.stdout)).startswith(f"pid {gone.stdout.strip()}")


# -- ids and filters the store cannot hold (PostgreSQL refuses NUL; no encoder takes a lone surrogate) ------------

any_text = st.one_of(
    st.text(max_size=40), st.sampled_from(["\x00", "a\x00b", "\ud800", "2501.00001\x00", "cs.\udfffAI"])
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=any_text)
def test_lookups_of_any_text_find_nothing_rather_than_fail(voting: tuple[Accounts, str], text: str) -> None:
    accounts, pid = voting
    store = accounts.store
    user = accounts.user_by_name("looker") or accounts.create_user("looker", "hash")
    if text == pid:
        return
    assert store.get_many([text, pid]).keys() == {pid}
    with pytest.raises(PaperNotFound):
        store.get(text)
    with pytest.raises(PaperNotFound):
        accounts.vote(user.id, text)
    assert listing.papers_between(store, accounts, date(2000, 1, 1), date(2100, 1, 1), category=text) == ([], 0)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=any_text.filter(lambda t: t.strip("/.") != "" and "/" not in t))
def test_paper_urls_with_any_id_answer_without_a_server_error(voting: tuple[Accounts, str], text: str) -> None:
    accounts, _ = voting
    client = web_client(accounts.store)
    quoted = quote(text.encode("utf-8", "surrogatepass"), safe="")
    for path in (f"/api/papers/{quoted}", f"/papers/{quoted}", f"/api/papers/{quoted}/related"):
        assert client.get(path).status_code < 500, path
    assert client.post(f"/api/papers/{quoted}/upvote", headers={"X-CSRF-Token": client.token}).status_code < 500


_clients: dict[int, TestClient] = {}


def web_client(store: Store) -> TestClient:
    """One signed-in client per store (Hypothesis runs many examples over one fixture)."""
    if id(store) not in _clients:
        settings_ = Settings(home=Path(tempfile.mkdtemp(prefix="papersift-e-")), secret_key="test-secret")
        client = TestClient(create_app(settings_, store), raise_server_exceptions=False)
        client.post("/api/auth/signup", json={"username": "urlvoter", "password": "correct horse"})
        client.token = client.get("/api/me").json()["csrf_token"]  # type: ignore[attr-defined]
        _clients.clear()
        _clients[id(store)] = client
    return _clients[id(store)]


def test_text_no_store_can_hold_is_a_query_error_anywhere_else(store: Store) -> None:
    p = store.papers
    bad = ["\ud800"] + (["a\x00b"] if store.backend == "postgresql" else [])
    for text in bad:
        with pytest.raises(QueryError, match="NUL character or a lone surrogate"), store.engine.connect() as conn:
            conn.execute(select(p.c.id).where(p.c.title == text)).all()


# -- export to wherever the user points it ----------------------------------------------------------------


@pytest.fixture(scope="module")
def export_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("export")
    store = Store.open(Settings(home=home).store_url)
    try:
        with store.write() as w:
            w.insert([Paper(id="t:exported", title="Exported", abstract="a")])
    finally:
        store.close()
    return home


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.one_of(
        # what a shell can pass: no NUL; undecodable bytes arrive as surrogate escapes
        st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), min_size=1, max_size=20),
        st.sampled_from(["missing/dir/out.jsonl", ".", "..", "x" * 300, "existing-dir", "ok.bib", "\udcff.jsonl"]),
    )
)
def test_export_to_any_path_writes_it_or_says_why_in_one_line(export_home: Path, tmp_path: Path, name: str) -> None:
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    (folder / "existing-dir").mkdir()
    result = CliRunner().invoke(main, ["--home", str(export_home), "export", "-o", str(folder / name)])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    if result.exit_code == 0:
        assert "t:exported" in (folder / name).read_text()
    else:
        assert result.exit_code == 1 and result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert not [p for p in folder.rglob("*.part")]  # no half-written file left behind
