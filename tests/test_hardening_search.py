"""Search hardening (issue 10, items 1-3): any query string and any filter date is either answered or
refused with a 4xx in the documented shape, on the index, the engine, the API, the pages and the feeds;
papers already stored with dates tantivy cannot represent neither break indexing nor search."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from papersift.errors import QueryError
from papersift.ingest import ingest
from papersift.models import Paper
from papersift.search import Filters, SearchEngine
from papersift.settings import Settings
from papersift.store import Store
from papersift.web import create_app

from .conftest import SAMPLE

SLOW_OK = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# papers another engineer's ingest now refuses, but that older stores may already hold
ODD_DATES = [
    Paper(id="t:ancient", title="An ancient diffusion manuscript", abstract="Old words.", announced=date(1, 1, 1)),
    Paper(id="t:far", title="A far future diffusion paper", abstract="Late words.", published=date(9999, 12, 31)),
    Paper(id="t:edge", title="Edge of tantivy dates", abstract="diffusion", published=date(1677, 9, 21)),
]

FIELDS = ["title", "id", "body", "authors", "categories", "venue", "date", "abstract", "nosuch"]
SYNTAX = [
    "*",
    ":",
    '"',
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    " TO ",
    " AND ",
    " OR ",
    " NOT ",
    "^",
    "^2",
    "~",
    "~2",
    "+",
    "-",
    " ",
    "\\",
    "/",
    "IN ",
    "2025-01-01T00:00:00Z",
    "*:*",
]
WORDS = ["diffusion", "graph", "model", "x", "1", "0001", "9999-12-31", "é", "🦀", "\x00"]
tantivy_syntax = st.lists(
    st.one_of(
        st.sampled_from(FIELDS).map(lambda f: f + ":"),
        st.sampled_from(SYNTAX),
        st.sampled_from(WORDS),
        st.text(max_size=3),
    ),
    min_size=1,
    max_size=12,
).map("".join)
queries = st.one_of(st.text(max_size=60), tantivy_syntax)
days = st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31))
day_params = st.one_of(
    days.map(date.isoformat), st.text(max_size=12), st.sampled_from(["0001-01-01", "9999-12-31", "2300-01-01", ""])
)


@pytest.fixture(scope="module")
def site_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Store]]:
    home = tmp_path_factory.mktemp("hardening")
    cfg = Settings(home=home, secret_key="test-secret", embedder="none")
    store = Store.open(cfg.store_url)
    ingest(store, str(SAMPLE / "hf_featured_sample.jsonl.gz"))
    with store.write() as w:
        w.insert(list(ODD_DATES))
    yield cfg, store
    store.close()


@pytest.fixture(scope="module")
def engine(site_store: tuple[Settings, Store]) -> SearchEngine:
    return SearchEngine.open(site_store[1], site_store[0], embed=False)


@pytest.fixture(scope="module")
def client(site_store: tuple[Settings, Store]) -> Iterator[TestClient]:
    with TestClient(create_app(*site_store), raise_server_exceptions=False) as c:
        yield c


# -- item 1 (downstream): stored rows with dates tantivy cannot represent -----------------------------------


def test_papers_dated_outside_tantivy_range_are_indexed_without_their_date(engine: SearchEngine) -> None:
    found = {h.paper.id for h in engine.search("diffusion manuscript far future edge", 50, match="any")}
    assert {"t:ancient", "t:far", "t:edge"} <= found
    by_date = engine.search("diffusion", 1000, sort="date")
    assert by_date and by_date[-1].paper.id in {"t:ancient", "t:far", "t:edge"}  # undated in the index: last
    recent = {h.paper.id for h in engine.search("diffusion", 1000, Filters(date_from=date(2000, 1, 1)))}
    assert recent and not recent & {"t:ancient", "t:far", "t:edge"}


def test_listings_and_feeds_survive_stored_odd_dates(client: TestClient) -> None:
    for url in [
        "/?date=2200-12-31&view=week",
        "/?date=1800-01-01&view=month",
        "/api/daily_papers?date=2200-12-31&view=week",
        "/feeds/daily.atom",
        "/feeds/trending.rss",
        "/feeds/search.atom?q=diffusion",
        "/feeds/search.rss?q=ancient",
        "/api/trending",
        "/trending",
    ]:
        r = client.get(url)
        assert r.status_code == 200, (url, r.status_code, r.text[:300])


# -- item 2: dates outside what the pipeline can represent ---------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/api/papers/search?q=diffusion&from=0001-01-01",
        "/api/papers/search?q=diffusion&to=2300-01-01",
        "/api/daily_papers?date=9999-12-31&view=week",
        "/api/daily_papers?date=0001-01-01&view=week",
    ],
)
def test_out_of_range_api_dates_are_422_with_a_json_error(client: TestClient, url: str) -> None:
    r = client.get(url)
    assert r.status_code == 422, r.text[:300]
    error = r.json()["error"]
    assert error["code"] == "invalid_request" and "between 1800-01-01 and 2200-12-31" in error["message"]


@pytest.mark.parametrize(
    "url",
    [
        "/?date=9999-12-31&view=week",
        "/search?q=diffusion&from=0001-01-01",
        "/search?q=diffusion&to=2300-01-01",
        "/feeds/search.atom?q=diffusion&from=0001-01-01",
        "/feeds/search.rss?q=diffusion&to=2300-01-01",
    ],
)
def test_out_of_range_page_and_feed_dates_are_4xx_pages(client: TestClient, url: str) -> None:
    r = client.get(url)
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    assert "between 1800-01-01 and 2200-12-31" in r.text


# -- item 3: query syntax tantivy parses but cannot run ------------------------------------------------------


@pytest.mark.parametrize("q", ["title:*", "id:*", "categories:*", "authors:*", "venue:* AND title:*"])
def test_field_wildcards_fall_back_to_plain_words(client: TestClient, engine: SearchEngine, q: str) -> None:
    engine.search(q, 10)  # no exception
    r = client.get("/api/papers/search", params={"q": q})
    assert r.status_code == 200, r.text[:300]
    assert client.get("/search", params={"q": q}).status_code == 200


def test_syntax_still_works_when_it_runs(engine: SearchEngine) -> None:
    phrase = engine.search('"gaussian splatting"', 20)
    assert phrase and all("gaussian splatting" in (h.paper.title + " " + h.paper.abstract).lower() for h in phrase)
    minus = engine.search("gaussian -splatting", 20)
    assert minus and all("splatting" not in (h.paper.title + " " + h.paper.abstract).lower() for h in minus)
    titled = engine.search("title:diffusion", 20)
    assert titled and all("diffusion" in h.paper.title.lower() for h in titled)


# -- the class, not the examples ---------------------------------------------------------------------------


names = st.one_of(st.text(max_size=20), tantivy_syntax, st.sampled_from(["", " ", "Smith", "cs.CL", "-", "*"]))


@SLOW_OK
@given(
    q=queries,
    start=st.none() | days,
    end=st.none() | days,
    sort=st.sampled_from(["relevance", "date"]),
    venue=names,
    author=names,
    category=names,
)
def test_engine_answers_any_query_and_filters_or_raises_query_error(
    engine: SearchEngine,
    q: str,
    start: date | None,
    end: date | None,
    sort: str,
    venue: str,
    author: str,
    category: str,
) -> None:
    cats = (category,) if category else ()
    filters = Filters(date_from=start, date_to=end, categories=cats, venue=venue, author=author)
    with contextlib.suppress(QueryError):
        engine.search(q, 10, filters, sort)  # type: ignore[arg-type]
    with contextlib.suppress(QueryError):
        engine.keyword.search(q, 10, filters)


def _check(r: object, api: bool) -> None:
    status = r.status_code  # type: ignore[attr-defined]
    assert status < 500, (status, r.text[:500])  # type: ignore[attr-defined]
    if api and status >= 400:
        body = r.json()  # type: ignore[attr-defined]
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message"} and body["error"]["message"]


@SLOW_OK
@given(
    q=queries, start=day_params, end=day_params, sort=st.sampled_from(["relevance", "date"]), venue=names, author=names
)
def test_http_search_endpoints_never_5xx(
    client: TestClient, q: str, start: str, end: str, sort: str, venue: str, author: str
) -> None:
    params = {"q": q, "from": start, "to": end, "sort": sort, "venue": venue, "author": author}
    _check(client.get("/api/papers/search", params=params), api=True)
    _check(client.get("/search", params=params), api=False)
    _check(client.get("/feeds/search.atom", params=params), api=False)


@SLOW_OK
@given(day=day_params, view=st.sampled_from(["day", "week", "month", "year"]))
def test_http_daily_endpoints_never_5xx(client: TestClient, day: str, view: str) -> None:
    _check(client.get("/api/daily_papers", params={"date": day, "view": view}), api=True)
    _check(client.get("/", params={"date": day, "view": view}), api=False)


def test_dates_at_the_edges_of_the_supported_range_work(client: TestClient, tmp_path: Path) -> None:
    for day in ["1800-01-01", "2200-12-31"]:
        for view in ["day", "week", "month"]:
            assert client.get("/api/daily_papers", params={"date": day, "view": view}).status_code == 200
        assert client.get("/api/papers/search", params={"q": "diffusion", "from": day, "to": day}).status_code == 200
