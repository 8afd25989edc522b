"""RSS and Atom feeds, in-process over a real SQLite store holding the bundled sample, parsed with feedparser."""

from __future__ import annotations

import html
from collections.abc import Iterator
from datetime import date
from xml.etree import ElementTree as ET

import feedparser
import pytest
from fastapi.testclient import TestClient

from papersift.feed import daily
from papersift.ingest import ingest
from papersift.models import Paper
from papersift.settings import Settings
from papersift.store import Store
from papersift.store.accounts import Accounts
from papersift.web import create_app

from .conftest import SAMPLE

AWKWARD = "Q&A <b>bold</b> claims: x < y \x01 and ]]> “quotes”"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = Settings(home=tmp_path_factory.mktemp("feeds"), secret_key="test-secret")
    store = Store.open(settings.store_url)
    for path in sorted(SAMPLE.iterdir()):
        ingest(store, str(path))
    with store.write() as w:
        w.insert([Paper(id="t:awkward", title=AWKWARD, abstract="a & b <i>diffusion</i>", announced=date(2026, 7, 1))])
    accounts = Accounts(store)
    user = accounts.create_user("voter", "x")
    for pid in ("2606.32040", "2606.30869"):
        accounts.vote(user.id, pid)
    with TestClient(create_app(settings, store)) as tc:
        yield tc
    store.close()


def _parse(client: TestClient, url: str) -> feedparser.FeedParserDict:
    r = client.get(url)
    assert r.status_code == 200, r.text
    root = ET.fromstring(r.content)  # well-formed XML, not just something feedparser forgives
    assert root.tag == ("{http://www.w3.org/2005/Atom}feed" if url.split("?")[0].endswith(".atom") else "rss")
    parsed = feedparser.parse(r.content)
    assert not parsed.bozo, parsed.get("bozo_exception")
    kind = "atom10" if url.split("?")[0].endswith(".atom") else "rss20"
    assert parsed.version == kind
    assert r.headers["content-type"].startswith("application/" + ("atom" if kind == "atom10" else "rss") + "+xml")
    ids = [e.id for e in parsed.entries]
    assert len(ids) == len(set(ids)), "entry ids must be unique"
    for entry in parsed.entries:
        assert entry.link.startswith("http://testserver/papers/")
        assert entry.id == entry.link
        assert entry.title
        assert entry.published_parsed if "published" in entry else entry.updated_parsed
    return parsed


@pytest.mark.parametrize("fmt", ["atom", "rss"])
def test_daily_feed_matches_the_daily_list(client: TestClient, fmt: str) -> None:
    parsed = _parse(client, f"/feeds/daily.{fmt}")
    store = client.app.state.site.store  # type: ignore[attr-defined]
    page = daily(store, Accounts(store), limit=50)
    titles = [html.unescape(e.title) for e in parsed.entries]  # RSS titles may be HTML: feedparser keeps &amp;
    assert titles == [it.paper.title.replace("\x01", "") for it in page.items]
    assert parsed.feed.title == "papersift: daily papers, 2026-07-01"
    first = parsed.entries[0]
    assert first.summary and first.get("tags")


@pytest.mark.parametrize("fmt", ["atom", "rss"])
def test_trending_feed(client: TestClient, fmt: str) -> None:
    parsed = _parse(client, f"/feeds/trending.{fmt}")
    assert {e.link.rsplit("/", 1)[1] for e in parsed.entries} == {"2606.32040", "2606.30869"}


@pytest.mark.parametrize("fmt", ["atom", "rss"])
def test_saved_search_feed_with_filters(client: TestClient, fmt: str) -> None:
    parsed = _parse(client, f"/feeds/search.{fmt}?q=gaussian+splatting&category=cs.CV&from=2026-06-30")
    assert len(parsed.entries) >= 5
    assert all(
        "splat" in (e.title + e.summary).lower() or "gaussian" in (e.title + e.summary).lower() for e in parsed.entries
    )
    assert all("cs.CV" in {t.term for t in e.tags} for e in parsed.entries)
    if fmt == "atom":
        self_link = next(link.href for link in parsed.feed.links if link.rel == "self")
        assert self_link.startswith("http://testserver/feeds/search.atom?q=gaussian")


def test_feed_escapes_and_drops_control_characters(client: TestClient) -> None:
    for fmt in ("atom", "rss"):
        parsed = _parse(client, f"/feeds/search.{fmt}?q=claims+bold")
        entry = next(e for e in parsed.entries if e.link.endswith("/papers/t:awkward"))
        assert html.unescape(entry.title) == AWKWARD.replace("\x01", "")
        assert "a & b <i>diffusion</i>" in entry.summary or "a &amp; b" in entry.summary


@pytest.mark.parametrize("fmt", ["atom", "rss"])
def test_category_and_author_feeds(client: TestClient, fmt: str) -> None:
    cats = _parse(client, f"/feeds/category/cs.CL.{fmt}")
    assert cats.entries and all(e.tags[0].term == "cs.CL" for e in cats.entries)
    author = _parse(client, f"/feeds/author.{fmt}?name=Vishal+M.+Patel")
    assert author.entries
    assert any(e.link.endswith("/2606.32040") for e in author.entries)
    if fmt == "atom":
        assert all(any(a.name == "Vishal M. Patel" for a in e.authors) for e in author.entries)


def test_feed_errors(client: TestClient) -> None:
    assert client.get("/feeds/daily.json").status_code == 422
    assert client.get("/feeds/search.atom").status_code == 422  # a saved search needs words
    empty = _parse(client, "/feeds/author.atom?name=Nobody+Atall")
    assert empty.entries == []
