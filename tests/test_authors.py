"""Author pages (issue 11 point 6): the store's author rows on SQLite and PostgreSQL, the page, the API,
the feed and the digest over the bundled sample, names round-tripping through URLs, submitters on cards."""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import feedparser
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import MetaData, insert

from papersift import digest
from papersift.ingest import ingest
from papersift.models import Paper
from papersift.settings import Settings
from papersift.store import Store
from papersift.store.accounts import Accounts
from papersift.store.authors import author_key, known, papers_by
from papersift.web import create_app
from papersift.web.render import author_path

from .conftest import SAMPLE
from .old_store import store_at

NFC = "Jürgen Schmidhuber"
NFD = unicodedata.normalize("NFD", "jürgen   SCHMIDHUBER")


def test_author_key_folds_unicode_form_case_and_spacing_only() -> None:
    assert NFD != NFC and author_key(NFD) == author_key(NFC) == "jürgen schmidhuber"
    assert author_key("ＡＢＣ  Def\n") == "abc def"  # full-width letters, a line break from an OAI list
    assert author_key("J. Schmidhuber") != author_key(NFC)  # initials may be somebody else
    assert author_key("Jurgen Schmidhuber") != author_key(NFC)
    assert len(author_key("ﷺ" * 500)) == 500  # NFKC lengthens this 18-fold; the key stays indexable


def _paper(pid: str, authors: list[str], **dates: date) -> Paper:
    return Paper(id=pid, title=f"paper {pid}", authors=authors, **dates)  # type: ignore[arg-type]


def test_papers_by_author_newest_first_paged_and_in_step_with_writes(store: Store) -> None:
    with store.write() as w:
        w.insert(
            [
                _paper("t:a", [NFC, "A/B Team"], announced=date(2026, 1, 3)),
                _paper("t:b", ["Someone", NFD], published=date(2026, 1, 5)),  # no listing day: its publication
                _paper("t:c", [NFC, NFC], announced=date(2026, 1, 1)),  # listed twice on one paper: once here
                _paper("t:d", ["J. Schmidhuber"], announced=date(2026, 1, 4)),
                _paper("t:e", [NFC]),  # no date at all: last
            ]
        )
    first = papers_by(store, "JÜRGEN SCHMIDHUBER", limit=2)
    assert [p.id for p in first.papers] == ["t:b", "t:a"] and first.total == 4
    assert first.name == NFC  # the spelling most of the papers use
    assert [p.id for p in papers_by(store, NFC, limit=2, offset=2).papers] == ["t:c", "t:e"]
    assert [p.id for p in papers_by(store, NFC, start=date(2026, 1, 2), end=date(2026, 1, 4)).papers] == ["t:a"]
    assert [p.id for p in papers_by(store, "a/b team").papers] == ["t:a"]
    assert papers_by(store, "Schmidhuber").total == 0  # a surname alone is not a name as written
    for unstorable in ("Jürgen\x00Schmidhuber", "\ud800"):  # PostgreSQL refuses these as parameters
        assert papers_by(store, unstorable).total == 0 and not known(store, unstorable)
    # a new version that drops the author, and a hidden paper, leave the author's page
    with store.write() as w:
        w.update([_paper("t:a", ["A/B Team"], announced=date(2026, 1, 3))])
        w.set_hidden("t:b", True)
    assert [p.id for p in papers_by(store, NFC).papers] == ["t:c", "t:e"]
    assert [p.id for p in papers_by(store, "A/B TEAM").papers] == ["t:a"]


def test_migration_12_fills_the_author_rows_of_papers_stored_before(store_url: str) -> None:
    with store_at(store_url, 7) as conn:
        md = MetaData()
        md.reflect(conn, only=["papers"])
        rows = [
            {
                "id": f"t:{n}",
                "title": "t",
                "abstract": "",
                "comment": "",
                "authors": [NFC if n % 2 else NFD, f"Author {n}"],
                "categories": [],
                "primary_category": "",
                "published": date(2025, 1, 1) + timedelta(days=n),
                "first_seen": datetime.now(UTC),
                "source": "jsonl",
                "source_id": "",
                "doi": "",
                "venue": "",
                "abs_url": "",
                "pdf_url": "",
                "upvotes": 0,
                "hidden": False,
                "content_hash": "x",
                "rev": 1,
            }
            for n in range(2500)  # more than one backfill batch
        ]
        conn.execute(insert(md.tables["papers"]), rows)
    store = Store.open(store_url)
    try:
        page = papers_by(store, "jürgen schmidhuber", limit=3)
        assert page.total == 2500 and [p.id for p in page.papers] == ["t:2499", "t:2498", "t:2497"]
        assert [p.id for p in papers_by(store, "author 2041").papers] == ["t:2041"]
    finally:
        store.close()


# -- the site, over the bundled sample ---------------------------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Store]]:
    settings = Settings(home=tmp_path_factory.mktemp("authors"), secret_key="authors-secret")
    store = Store.open(settings.store_url)
    for path in sorted(SAMPLE.iterdir()):
        ingest(store, str(path))
    with TestClient(create_app(settings, store), raise_server_exceptions=False) as client:
        yield client, store
    store.close()


def _ids(html: str) -> list[str]:
    return re.findall(r'<article class="card"[^>]*data-href="/papers/([^"]+)"', html)


def test_author_links_on_cards_and_paper_page_lead_to_all_their_papers(site: tuple[TestClient, Store]) -> None:
    client, store = site
    daily = client.get("/").text
    links = re.findall(r'<a href="(/authors/[^"?]+)">([^<]+)</a>', daily)
    assert len(links) > 50
    patel = next(href for href, name in links if name == "Vishal M. Patel")
    assert patel == "/authors/Vishal%20M.%20Patel"
    page = client.get(patel)
    assert page.status_code == 200 and "<h1>Vishal M. Patel</h1>" in page.text
    expected = sorted(
        (p for p in store.get_many([p.id for p in papers_by(store, "Vishal M. Patel", 100).papers]).values()),
        key=lambda p: (p.date or date.min, p.id),
        reverse=True,
    )
    assert _ids(page.text) == [p.id for p in expected] and len(expected) >= 2
    assert all("Vishal M. Patel" in p.authors for p in expected)
    paper_page = client.get(f"/papers/{expected[0].id}").text
    assert f'<a href="{patel}">Vishal M. Patel</a>' in paper_page
    # any spelling of the same written name finds the same page; another name finds nothing
    same = client.get("/authors/" + quote(unicodedata.normalize("NFD", "VISHAL  m. patel"), safe=""))
    assert same.status_code == 200 and _ids(same.text) == _ids(page.text)
    missing = client.get("/authors/Nobody%2FAt%20All")
    assert missing.status_code == 404 and "We have no papers by <b>Nobody/At All</b>" in missing.text


def test_author_api_is_paged_and_documented(site: tuple[TestClient, Store]) -> None:
    client, store = site
    name = "Vishal M. Patel"
    total = papers_by(store, name).total
    first = client.get(f"/api/authors/{quote(name, safe='')}/papers", params={"limit": 1}).json()
    assert first["name"] == name and first["total"] == total and len(first["items"]) == 1
    assert first["next_offset"] == 1
    rest = client.get(f"/api/authors/{quote(name, safe='')}/papers", params={"limit": 100, "offset": 1}).json()
    assert rest["next_offset"] is None and len(rest["items"]) == total - 1
    assert all(name in item["authors"] for item in first["items"] + rest["items"])
    gone = client.get("/api/authors/Nobody%20Atall/papers")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found"
    assert client.get("/api/authors/x/papers", params={"limit": 0}).status_code == 422
    operation = client.get("/api/openapi.json").json()["paths"]["/api/authors/{name}/papers"]["get"]
    assert "404" in operation["responses"] and "NFKC" in operation["description"]


def test_author_feed_and_digest_list_what_the_page_lists(site: tuple[TestClient, Store]) -> None:
    client, store = site
    page = client.get("/authors/Vishal%20M.%20Patel").text
    head = re.findall(r'<link rel="alternate" type="application/(atom|rss)\+xml" title="[^"]*" href="([^"]+)">', page)
    assert [kind for kind, _ in head] == ["atom", "rss"]
    for _, href in head:
        parsed = feedparser.parse(client.get(href.replace("&amp;", "&")).content)
        assert not parsed.bozo
        assert [e.link.split("/papers/")[1] for e in parsed.entries] == _ids(page)
    engine = client.app.state.site.search  # type: ignore[attr-defined]
    mailed = digest.author_papers(store, engine, "vishal m. PATEL", 50)
    assert [p.id for p in mailed] == _ids(page)
    # a surname alone (typed into the subscribe form) keeps matching as a substring of the names
    assert {p.id for p in digest.author_papers(store, engine, "Patel", 50)} >= set(_ids(page))


def test_cards_show_who_submitted_a_paper(site: tuple[TestClient, Store]) -> None:
    client, store = site
    accounts = Accounts(store)
    user = accounts.create_user("ann<i>", "x")
    first = _ids(client.get("/").text)[0]
    accounts.record_submission(user.id, first)
    html = client.get("/").text
    card = html[html.index(f'data-href="/papers/{first}"') :].split("</article>")[0]
    assert "submitted by ann&lt;i&gt;" in card
    assert sum("submitted by" in c for c in html.split("</article>")) == 1
    related_or_search = client.get("/search", params={"q": store.get(first).title[:60]}).text
    assert "submitted by ann&lt;i&gt;" in related_or_search


_serial = itertools.count()
NAME = st.text(st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=40).filter(str.strip)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=NAME)
def test_any_name_round_trips_through_its_url(site: tuple[TestClient, Store], name: str) -> None:
    """Slashes, dots, '%', '?', '#', unicode: the link made from a name lists that name's papers."""
    client, store = site
    n = next(_serial)
    pid = f"t:roundtrip{n}"
    with store.write() as w:  # dated after everything else, so it heads the author's first page
        w.insert([_paper(pid, ["Co Author", name], announced=date(2100, 1, 1) + timedelta(days=n))])
    page = client.get(author_path(name))
    assert page.status_code == 200, (name, page.status_code)
    assert _ids(page.text)[0] == quote(pid, safe="/:")
    api = client.get(f"/api/authors/{quote(name, safe='')}/papers", params={"limit": 1})
    assert api.status_code == 200 and api.json()["items"][0]["id"] == pid
    feed = feedparser.parse(client.get("/feeds/author.atom", params={"name": name}).content)
    assert feed.entries and feed.entries[0].link.endswith(quote(pid, safe="/:"))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.text(st.characters(exclude_categories=("Cs",)), max_size=600))
def test_no_author_address_is_a_server_error(site: tuple[TestClient, Store], raw: str) -> None:
    client, _ = site
    for url in (f"/authors/{quote(raw, safe='/')}", f"/api/authors/{quote(raw, safe='')}/papers"):
        r = client.get(url)
        assert r.status_code in (200, 404, 422), (url, r.status_code, r.text[:300])
    assert client.get("/authors", params={"name": raw[:500]}).status_code in (200, 404)
    assert client.get("/feeds/author.atom", params={"name": raw}).status_code in (200, 422)


def test_author_page_is_paged(site: tuple[TestClient, Store], tmp_path: Path) -> None:
    client, store = site
    with store.write() as w:
        w.insert(
            [
                _paper(f"t:many{n}", ["Prolific Person"], announced=date(2020, 1, 1) + timedelta(days=n))
                for n in range(60)
            ]
        )
    first = client.get("/authors/Prolific%20Person")
    assert "1–50 of 60" in first.text and len(_ids(first.text)) == 50
    assert _ids(first.text)[0] == "t:many59"
    second = client.get("/authors/Prolific%20Person", params={"page": 2})
    assert _ids(second.text) == [f"t:many{n}" for n in range(9, -1, -1)]
    assert 'href="/authors/Prolific%20Person?page=2"' in first.text
