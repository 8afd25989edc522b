"""Records that poison the site (issue 10, items 1, 4, 5, 6, 22): the ingest gate, the store's second line of
defence, and the render guards for rows stored before either existed. Real stores on both backends."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import quote

import orjson
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, text

from papersift.errors import RecordError, StoreError
from papersift.ingest import ingest
from papersift.models import Paper
from papersift.search import SearchEngine
from papersift.settings import Settings
from papersift.store import Store
from papersift.urls import safe_url
from papersift.web import create_app

OK_ID = "2506.01234"
SCRIPTS = ["javascript:alert(1)", " JaVaScRiPt:alert(1)", "vbscript:msgbox(1)", "data:text/html,<script>x</script>"]
_HREF = re.compile(r'(?:href|action|src)="([^"]*)"')


def _jsonl(path: Path, records: list[dict[str, object]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return path


def _listing(arxiv: str, **extra: object) -> dict[str, object]:
    return {
        "arxiv_id": arxiv,
        "title": f"Sparse attention study {arxiv}",
        "authors": ["Ada Lovelace"],
        "abstract": "We study sparse attention in transformers.",
        "announced": "2026-06-01",
        **extra,
    }


_OPEN: list[TestClient] = []


@pytest.fixture(autouse=True)
def _close_sites() -> Iterator[None]:
    """Every site a test opened is shut down (its index worker stopped) before the next test."""
    yield
    while _OPEN:
        _OPEN.pop().__exit__(None, None, None)


def _client(store: Store, home: Path) -> TestClient:
    app = create_app(Settings(home=home, secret_key="records-secret"), store)
    client = TestClient(app, raise_server_exceptions=False).__enter__()
    _OPEN.append(client)
    return client


def _hrefs_are_safe(html: str) -> None:
    for href in _HREF.findall(html):
        assert href.startswith(("/", "http://", "https://", "?", "#")) or href == "", href


# -- item 1: impossible dates --------------------------------------------------------------------------------------


def test_an_impossible_date_is_dropped_and_never_poisons_index_search_or_pages(store_url: str, tmp_path: Path) -> None:
    store = Store.open(store_url)
    newton = {"title": "Old paper", "authors": ["I Newton"], "published": "1650-01-01"}
    future = _listing("2506.09999", announced="9999-12-31", published="2262-04-12")
    path = _jsonl(tmp_path / "old.jsonl", [newton, future, _listing(OK_ID)])
    report = ingest(store, str(path))
    settings = Settings(home=tmp_path / "home")
    engine = SearchEngine.open(store, settings, embed=False)  # crashed on the 1650 date before the gate
    hits = engine.search("Old paper Newton")
    assert hits and hits[0].paper.title == "Old paper"
    assert engine.search("sparse attention")
    # the next ingest and the pages still work
    assert ingest(store, str(_jsonl(tmp_path / "next.jsonl", [_listing("2506.05555")]))).added == 1
    client = _client(store, tmp_path / "home")
    for url in ["/", f"/papers/{hits[0].paper.id}", "/search?q=old+paper", "/api/papers/search?q=newton"]:
        assert client.get(url).status_code == 200, url
    assert client.get("/api/daily_papers").json()["date"] == "2026-06-01"  # not the year 9999
    stored = store.get_many([OK_ID, "2506.09999"])
    assert stored["2506.09999"].announced is None and stored["2506.09999"].published is None
    assert hits[0].paper.published is None
    assert (report.added, report.rejected, report.amended) == (3, 0, 2)
    assert any(a.origin == f"{path}:1" and "1650-01-01" in a.reason for a in report.amendments)
    store.close()


# -- item 5: links that are scripts --------------------------------------------------------------------------------

_SCHEMES = st.sampled_from(["javascript", "vbscript", "data", "file", "jar", "feed"])
_INVISIBLE = st.text(alphabet=st.sampled_from([" ", "\t", "\n", "\x00", "\x0b", "\x1f"]), max_size=3)


@st.composite
def _hostile_urls(draw: st.DrawFn) -> str:
    scheme = draw(_SCHEMES)
    cased = "".join(c.upper() if draw(st.booleans()) else c for c in scheme)
    cut = draw(st.integers(0, len(cased)))
    inner = draw(st.sampled_from(["", "\t", "\n", "\r"]))
    return f"{draw(_INVISIBLE)}{cased[:cut]}{inner}{cased[cut:]}:{draw(st.text(max_size=20))}"


@settings(max_examples=150, deadline=None)
@given(_hostile_urls())
def test_only_http_links_are_ever_stored(url: str) -> None:
    from papersift.validate import Accepted, normalise

    checked = normalise(Paper(id=OK_ID, title="t", abs_url=url, pdf_url=url), "f:1")
    assert isinstance(checked, Accepted)
    assert checked.paper.abs_url == "" and checked.paper.pdf_url == ""


@settings(max_examples=200, deadline=None)
@given(st.from_regex(r"\Ahttps?://[a-z0-9.\-:]{0,20}[/?#]?[!-~]{0,30}\Z") | st.text(max_size=40))
def test_the_fast_link_check_never_accepts_what_safe_url_refuses(url: str) -> None:
    from papersift.validate import _PLAIN_URL

    if _PLAIN_URL.match(url):
        assert safe_url(url) == url


def test_script_links_are_dropped_at_ingest(store_url: str, tmp_path: Path) -> None:
    store = Store.open(store_url)
    records = [_listing(f"2506.0{i}000", abs_url=u, pdf_url=u) for i, u in enumerate(SCRIPTS)]
    records.append(_listing("2506.09000", abs_url="https://arxiv.org/abs/2506.09000"))
    report = ingest(store, str(_jsonl(tmp_path / "links.jsonl", records)))
    papers = store.get_many([f"2506.0{i}000" for i in range(len(SCRIPTS))])
    assert len(papers) == len(SCRIPTS) and all(p.abs_url == "" and p.pdf_url == "" for p in papers.values())
    assert store.get("2506.09000").abs_url == "https://arxiv.org/abs/2506.09000"
    assert report.added == 5 and report.amended == 4
    store.close()


def test_pages_and_feeds_never_link_script_urls_already_stored(sqlite_store: Store, tmp_path: Path) -> None:
    """Rows written before ingest checked links: the render side must still refuse them."""
    with sqlite_store.write() as w:
        w.insert(
            [
                Paper(
                    id=f"t:old{i}",
                    title=f"Poisoned link paper {i}",
                    abs_url=u,
                    pdf_url=u,
                    announced=date(2026, 6, 1),
                    categories=["cs.CL"],
                )
                for i, u in enumerate(SCRIPTS)
            ]
        )
    client = _client(sqlite_store, tmp_path / "home")
    pages = ["/?date=2026-06-01", "/papers/t:old0", "/papers/t:old1", "/papers/t:old3", "/search?q=poisoned"]
    for url in pages:
        r = client.get(url)
        assert r.status_code == 200, url
        _hrefs_are_safe(r.text)
        assert "script:" not in r.text.lower().replace("<script", "") and "data:text" not in r.text
    atom = client.get("/feeds/search.atom", params={"q": "poisoned"})
    assert atom.status_code == 200 and b"Poisoned link paper" in atom.content
    assert b"script:" not in atom.content.lower() and b"data:text" not in atom.content
    from papersift.export import to_bibtex

    bib = "".join(to_bibtex(sqlite_store.get_many(["t:old0", "t:old3"]).values()))
    assert "javascript" not in bib.lower() and "data:" not in bib


# -- item 6: ids that leave their URL path -------------------------------------------------------------------------

HOSTILE_DOIS = [
    "10.1234/../../../api/auth/logout#",
    "10.1234/a/./b",
    "10.1234/a?next=/api",
    "10.1234/a\\..\\b",
    "10.1234/a//b",
    "10.1234/x/..",
]


def test_ids_that_would_leave_their_path_are_rejected_with_their_line(store_url: str, tmp_path: Path) -> None:
    store = Store.open(store_url)
    records = [{"doi": d, "title": f"Paper {i}", "authors": ["A B"]} for i, d in enumerate(HOSTILE_DOIS)]
    records.append({"doi": "10.1145/3292500.3330701", "title": "A fine DOI paper", "authors": ["A B"]})
    records.append(_listing("hep-th/9901001"))
    path = _jsonl(tmp_path / "ids.jsonl", records)
    report = ingest(store, str(path))
    assert (report.added, report.rejected) == (2, len(HOSTILE_DOIS))
    assert [r.origin for r in report.rejections] == [f"{path}:{n}" for n in range(1, len(HOSTILE_DOIS) + 1)]
    assert store.count() == 2
    assert set(store.get_many(["doi:10.1145/3292500.3330701", "hep-th/9901001"])) == {
        "doi:10.1145/3292500.3330701",
        "hep-th/9901001",
    }
    store.close()


_SAFE_CHAR = st.characters(whitelist_categories=("L", "N"), whitelist_characters="-_.:;()<>")


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.text(_SAFE_CHAR, min_size=1, max_size=12), min_size=1, max_size=4),
    st.sampled_from(["#", "?", "\\", " ", "\n", "\x00", "\u200b", "/../", "/./", "//"]),
    st.integers(0, 100),
)
def test_no_id_with_a_path_escape_passes(parts: list[str], bad: str, where: int) -> None:
    from papersift.validate import id_problem

    good = "/".join(p if p not in (".", "..") else "x" for p in parts)
    assert id_problem(good) is None, good
    cut = where % (len(good) + 1)
    assert id_problem(good[:cut] + bad + good[cut:]) is not None


@pytest.mark.parametrize("pid", ["2501.01234", "hep-th/9901001", "math.GT/0309136", "doi:10.1145/3292500.3330701"])
def test_real_ids_pass(pid: str) -> None:
    from papersift.ids import title_key
    from papersift.validate import id_problem

    assert id_problem(pid) is None and id_problem(title_key("A title", ["B C"])) is None


def test_vote_urls_built_with_encode_uri_component_reach_the_paper(sqlite_store: Store, tmp_path: Path) -> None:
    """app.js encodes the whole id as one path part ('/' -> %2F); the API routes must still find it."""
    ids = ["hep-th/9901001", "doi:10.1145/3292500.3330701", "doi:10.1234/../../../api/auth/logout#"]
    with sqlite_store.write() as w:  # the last one as a row stored before ids were checked
        w.insert([Paper(id=pid, title=f"Paper {pid}", announced=date(2026, 6, 1)) for pid in ids])
    client = _client(sqlite_store, tmp_path / "home")
    token = _sign_up(client)
    for pid in ids:
        r = client.post(f"/api/papers/{quote(pid, safe='')}/upvote", headers={"X-CSRF-Token": token})
        assert r.status_code == 200, (pid, r.text)
        assert r.json()["voted"] is True
    assert client.get("/api/me").json()["username"] == "voter"  # still signed in: no request reached logout
    app_js = (Path(__file__).parent.parent / "src/papersift/web/static/app.js").read_text()
    assert "encodeURI(" not in app_js and "encodeURIComponent(id)" in app_js
    page = client.get("/?date=2026-06-01").text
    actions = re.findall(r'action="([^"]*)"', page)
    assert actions and all("/../" not in a and not a.endswith("/..") for a in actions), actions


def _sign_up(client: TestClient) -> str:
    page = client.get("/signup").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    r = client.post(
        "/signup",
        data={"username": "voter", "password": "correct horse battery", "csrf_token": token.group(1), "next": "/"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return str(client.get("/api/me").json()["csrf_token"])


# -- item 4: one row the store refuses -----------------------------------------------------------------------------


def _limit_venue(store: Store) -> None:
    """The store refuses venues over 128 characters, as PostgreSQL did before migration 5 made them TEXT."""
    with store.engine.begin() as conn:
        if store.backend == "postgresql":
            conn.execute(text("ALTER TABLE papers ALTER COLUMN venue TYPE VARCHAR(128)"))
        else:
            conn.execute(
                text(
                    "CREATE TRIGGER venue_len BEFORE INSERT ON papers WHEN length(NEW.venue) > 128 "
                    "BEGIN SELECT RAISE(ABORT, 'value too long for venue'); END"
                )
            )


def test_a_row_the_store_refuses_is_rejected_and_the_batch_kept(store_url: str, tmp_path: Path) -> None:
    store = Store.open(store_url)
    _limit_venue(store)
    records = [_listing(f"2506.0000{i}") for i in range(5)]
    records[2]["journal_ref"] = "J. " + "Very Long Journal Name " * 7 + "178 (2025)"
    path = _jsonl(tmp_path / "venue.jsonl", records)
    with pytest.raises(RecordError, match=r"venue\.jsonl:3"):
        ingest(store, str(path), strict=True)
    assert store.count() == 0
    report = ingest(store, str(path))
    assert (report.added, report.rejected) == (4, 1)
    assert report.rejections[0].origin == f"{path}:3" and "2506.00002" in report.rejections[0].reason
    assert store.count() == 4
    assert ingest(store, str(path)).unchanged == 4  # re-ingest: the same one refused, nothing else changes
    assert SearchEngine.open(store, Settings(home=tmp_path / "home"), embed=False).num_docs == 4
    store.close()


# -- item 22: disk full --------------------------------------------------------------------------------------------


def test_a_full_disk_says_so_and_what_was_kept(tmp_path: Path) -> None:
    """SQLite's max_page_count makes the database file full (SQLITE_FULL) exactly as a full disk does."""
    url = f"sqlite:///{tmp_path / 'full.db'}"
    Store.open(url).close()
    store = Store.open(url)
    pages = {}

    @event.listens_for(store.engine, "connect")
    def _cap(dbapi_conn: object, _record: object) -> None:
        cur = dbapi_conn.cursor()  # type: ignore[attr-defined]
        pages.setdefault("n", cur.execute("PRAGMA page_count").fetchone()[0])
        cur.execute(f"PRAGMA max_page_count = {pages['n'] + 40}")
        cur.close()

    store.engine.dispose()
    records = [_listing(f"2506.{i:05d}", abstract="words " * 300) for i in range(400)]
    with pytest.raises(StoreError, match="disk holding the store is full") as caught:
        ingest(store, str(_jsonl(tmp_path / "big.jsonl", records)), batch_size=20)
    kept = store.count()
    assert kept > 0 and f"{kept} added" in str(caught.value)
    assert "Traceback" not in str(caught.value) and "\n" not in str(caught.value)
    store.close()


# -- the class, not the examples: any record becomes a paper or a rejection, and the store stays usable ----------

_ANY_TEXT = st.text(st.characters(), max_size=40) | st.sampled_from(["", "\x00", "\ud800x", "a\x00b", "\uffff"])
_ANY_DATE = st.none() | st.dates() | st.sampled_from([date.min, date.max, date(1650, 1, 1), date(2262, 4, 12)])
_ANY_INT = st.none() | st.integers(-(2**70), 2**70)
_ANY_ID = st.one_of(
    st.sampled_from([OK_ID, "hep-th/9901001", "doi:10.1/x", "t:0123456789abcdef"]),
    st.text(st.characters(), min_size=0, max_size=30),
    st.builds(lambda a, b: f"doi:10.1234/{a}/{b}", _ANY_TEXT, _ANY_TEXT),
)
_ANY_PAPER = st.builds(
    Paper,
    id=_ANY_ID,
    title=_ANY_TEXT,
    abstract=_ANY_TEXT,
    authors=st.lists(_ANY_TEXT, max_size=4),
    categories=st.lists(_ANY_TEXT, max_size=3),
    published=_ANY_DATE,
    updated=_ANY_DATE,
    announced=_ANY_DATE,
    featured=_ANY_DATE,
    version=_ANY_INT,
    source=st.sampled_from(["jsonl", "csv", "arxiv-oai", ""]),
    source_id=_ANY_TEXT,
    doi=_ANY_TEXT,
    venue=_ANY_TEXT,
    year=_ANY_INT,
    comment=_ANY_TEXT,
    abs_url=_ANY_TEXT | _hostile_urls() | st.just("https://arxiv.org/abs/x"),
    pdf_url=_ANY_TEXT,
    upvotes=st.integers(-(2**70), 2**70),
)


def test_any_record_becomes_a_paper_or_a_rejection_and_the_store_stays_usable(store_url: str, tmp_path: Path) -> None:
    from papersift.ingest import ingest_records
    from papersift.models import Rejected
    from papersift.validate import Accepted, normalise

    store = Store.open(store_url)
    seen: set[str] = set()

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(_ANY_PAPER, min_size=1, max_size=6))
    def run(papers: list[Paper]) -> None:
        checked = [normalise(copy.deepcopy(p), "x") for p in papers]
        accepted = {c.paper.id for c in checked if isinstance(c, Accepted)}
        report = ingest_records(store, iter(papers), batch_size=4)
        assert report.rejected == sum(isinstance(c, Rejected) for c in checked)
        kept = store.get_many(list(accepted))
        assert set(kept) == accepted
        for paper in kept.values():  # what was stored is clean
            assert paper.date is None or date(1800, 1, 1) <= paper.date
            assert paper.abs_url == "" or paper.abs_url.startswith(("http://", "https://"))
            assert "\x00" not in paper.title + paper.abstract + "".join(paper.authors)
        seen.update(kept)

    run()
    assert seen, "no generated record was ever accepted"
    settings_ = Settings(home=tmp_path / "home")
    engine = SearchEngine.open(store, settings_, embed=False)
    assert engine.num_docs == store.count() == len(seen)
    client = _client(store, tmp_path / "home")
    assert client.get("/").status_code == 200
    for pid in sorted(seen)[:40]:
        assert client.get(f"/papers/{quote(pid, safe='')}").status_code == 200, pid
        assert client.get(f"/api/papers/{quote(pid, safe='')}").status_code == 200, pid
    for query in ["paper", "a", "x"]:
        assert client.get("/search", params={"q": query}).status_code == 200
    store.close()


def test_ingest_on_a_full_disk_prints_one_line_and_keeps_earlier_batches(tmp_path: Path) -> None:
    """A real full disk: the home on a 2 MB tmpfs (needs root to mount; skipped otherwise)."""
    import os
    import shutil
    import subprocess

    from click.testing import CliRunner

    from papersift.cli import main

    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a small tmpfs needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        records = [_listing(f"2506.{i:05d}", abstract=f"paper {i} " + "words " * 200) for i in range(3000)]
        path = _jsonl(tmp_path / "many.jsonl", records)
        result = CliRunner().invoke(
            main, ["--home", str(disk), "ingest", str(path), "-q"], env={"PAPERSIFT_BATCH_SIZE": "200"}
        )
        assert result.exit_code == 1, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: the disk holding the store is full"), lines
        assert "Traceback" not in result.output
        kept = re.search(r"\((\d+) added", lines[0])
        store = Store.open(f"sqlite:///{disk / 'papersift.db'}")
        assert kept and store.count() == int(kept.group(1)) > 0
        store.close()
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_migration_6_cleans_rows_stored_before_the_gate(store_url: str, tmp_path: Path) -> None:
    store = Store.open(store_url)
    good = Paper(id=OK_ID, title="Good", abs_url="https://arxiv.org/abs/x", published=date(2025, 1, 2))
    poisoned = [
        Paper(id="t:newton", title="Old paper", published=date(1650, 1, 1), abs_url="javascript:alert(1)"),
        Paper(id="t:future", title="Far", announced=date(9999, 12, 31), pdf_url=" JaVaScRiPt:alert(1)"),
        Paper(id="t:data", title="Data", abs_url="data:text/html,x", updated=date(2262, 4, 12)),
    ]
    with store.write() as w:  # written as ingest did before it checked records
        w.insert([good, *poisoned])
    before = store.get(OK_ID).rev
    with store.engine.begin() as conn:  # the store as it was before migration 6 existed
        conn.execute(text("DELETE FROM schema_migrations WHERE number = 6"))
    store.close()
    store = Store.open(store_url)
    cleaned = store.get_many([p.id for p in poisoned])
    for paper in cleaned.values():
        assert (paper.published, paper.updated, paper.announced) == (None, None, None)
        assert paper.abs_url == paper.pdf_url == "" and paper.rev > before
    kept = store.get(OK_ID)
    assert (kept.rev, kept.abs_url, kept.published) == (before, "https://arxiv.org/abs/x", date(2025, 1, 2))
    assert SearchEngine.open(store, Settings(home=tmp_path / "home"), embed=False).num_docs == 4
    client = _client(store, tmp_path / "home")
    assert client.get("/papers/t:newton").status_code == 200 and client.get("/").status_code == 200
    store.close()


_JSON_SCALAR = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | _ANY_TEXT
    | st.sampled_from(["1650-01-01", "9999-12-31", "0001-01-01", "2262-04-12", "javascript:alert(1)", "10.1/../x#"])
)
_JSON_VALUE = st.recursive(_JSON_SCALAR, lambda inner: st.lists(inner, max_size=3), max_leaves=6)
_KEYS = st.sampled_from(
    [
        *("arxiv_id", "doi", "title", "abstract", "authors", "categories", "published", "updated", "announced"),
        *("featured", "journal_ref", "year", "version", "comment", "abs_url", "pdf_url", "upvotes", "id"),
    ]
)


_DATES = st.sampled_from(["1650-01-01", "9999-12-31", "2262-04-12", "2025-02-30", "2026-06-01"]) | st.dates().map(str)
_LINKS = _hostile_urls() | st.sampled_from(["https://arxiv.org/abs/2501.01234", "//evil.example/x", "http:/x"])
_IDS = st.sampled_from(["2501.01234", "hep-th/9901001", "2501.01234v2"]) | st.builds(
    lambda a, b: f"10.{a}/{b}", st.integers(1000, 99999), _ANY_TEXT
)
# records that look like papers, with each field drawn mostly from values that broke the site
_RECORD = st.fixed_dictionaries(
    {"title": st.text(min_size=1, max_size=30).map(lambda t: "Paper " + t)},
    optional={
        "arxiv_id": _IDS,
        "doi": _IDS,
        "authors": st.lists(_ANY_TEXT, max_size=3),
        "published": _DATES,
        "announced": _DATES,
        "featured": _DATES,
        "abs_url": _LINKS,
        "pdf_url": _LINKS,
        "journal_ref": st.text(max_size=300),
        "year": st.integers(-(2**40), 2**40),
        "version": st.integers(-(2**40), 2**40),
        "upvotes": st.integers(-(2**70), 2**70),
        "abstract": _ANY_TEXT,
    },
)


def test_any_json_lines_file_ingests_to_papers_or_rejections(store_url: str, tmp_path: Path) -> None:
    """Through the real parser and the gate: whatever the keys hold, each line is stored or reported."""
    store = Store.open(store_url)
    files = iter(range(10**6))

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(_RECORD | st.dictionaries(_KEYS, _JSON_VALUE, min_size=1, max_size=8), min_size=1, max_size=5))
    def run(records: list[dict[str, object]]) -> None:
        path = tmp_path / f"f{next(files)}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in records))  # big ints, lone surrogates as escapes
        report = ingest(store, str(path))
        assert 1 <= report.total <= len(records)
        assert all(r.origin.startswith(f"{path}:") for r in report.rejections), report.rejections

    run()
    for paper in store.iter_papers():
        assert paper.date is None or date(1800, 1, 1) <= paper.date <= date.today() + timedelta(days=731)
        assert all(safe_url(url) == url for url in (paper.abs_url, paper.pdf_url)), paper
    engine = SearchEngine.open(store, Settings(home=tmp_path / "home"), embed=False)
    assert engine.num_docs == store.count()
    client = _client(store, tmp_path / "home")
    ids = [p.id for p in store.iter_papers()][:30]
    for pid in ids:
        assert client.get(f"/api/papers/{quote(pid, safe='')}").status_code == 200, pid
        assert client.get(f"/papers/{quote(pid, safe='')}").status_code == 200, pid
    assert client.get("/").status_code == 200 and client.get("/search", params={"q": "a"}).status_code == 200
    store.close()


def test_a_full_disk_on_postgresql_says_so_and_what_was_kept(postgres: object, tmp_path: Path) -> None:
    """The papers table in a tablespace on a 1 MB tmpfs: PostgreSQL's own 'No space left on device' (53100)."""
    import os
    import shutil
    import subprocess
    import tempfile

    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a small tmpfs needs root")
    disk = Path(tempfile.mkdtemp(prefix="papersift-pgdisk-"))  # pytest's tmp dir is private to root
    disk.chmod(0o755)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    name = f"full{os.getpid()}"
    url = postgres.create_database(name)  # type: ignore[attr-defined]
    store = Store.open(url)
    try:
        shutil.chown(disk, "postgres", "postgres")
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f"CREATE TABLESPACE {name} LOCATION '{disk}'"))
            conn.execute(text(f"ALTER TABLE papers SET TABLESPACE {name}"))
        records = [_listing(f"2506.{i:05d}", abstract=f"paper {i} " + "words " * 200) for i in range(2000)]
        with pytest.raises(StoreError, match="disk holding the store is full") as caught:
            ingest(store, str(_jsonl(tmp_path / "many.jsonl", records)), batch_size=50)
        kept = re.search(r"\((\d+) added", str(caught.value))
        assert kept and store.count() == int(kept.group(1)) > 0
    finally:
        store.close()
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("DROP TABLE IF EXISTS papers CASCADE"))
            conn.execute(text(f"DROP TABLESPACE IF EXISTS {name}"))
        store.close()
        subprocess.run(["umount", "-l", str(disk)], check=False)
        shutil.rmtree(disk, ignore_errors=True)


def _browser_segments(path: str) -> list[str]:
    """Path segments as a browser sees them when it resolves dot segments (WHATWG: '%2e' counts as '.')."""
    return [seg.lower().replace("%2e", ".") for seg in path.split("/")]


@settings(max_examples=300, deadline=None)
@given(
    st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40)
    | st.lists(st.sampled_from(["..", ".", "", "%2e%2E", ".%2e", "a", "doi:10.1", "#", "?x", "\\"]), max_size=6).map(
        "/".join
    )
)
def test_a_paper_link_never_resolves_outside_its_paper(pid: str) -> None:
    """Pages build form actions and links with paper_path: whatever id a row holds, the browser's resolved
    path stays /papers/<that id>/<action>, with no '?', '#', '\\' or dot segment to move it."""
    from papersift.web.render import paper_path

    path = f"/papers/{paper_path(pid)}/upvote"
    assert not set("?#\\ \t\n") & set(path)
    assert all(seg not in (".", "..") for seg in _browser_segments(path)), path
