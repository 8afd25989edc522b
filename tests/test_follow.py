"""Follow what you see (issue 11 point 7): every list page names its Atom and RSS feeds in <head> and shows
a follow control, the feeds hold what the page lists, and the subscribe form asks only for what the chosen
kind needs, keeps what was typed after a 422, and says before anything is typed when the site sends no mail."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import feedparser
import pytest
from fastapi.testclient import TestClient

from papersift.ingest import ingest
from papersift.settings import Settings
from papersift.store import Store
from papersift.store.accounts import Accounts
from papersift.web import create_app

from .conftest import SAMPLE

HEAD_LINK = re.compile(r'<link rel="alternate" type="application/(atom|rss)\+xml" title="([^"]*)" href="([^"]+)">')


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    store = Store.open(f"sqlite:///{tmp_path_factory.mktemp('follow') / 'store.db'}")
    for path in sorted(SAMPLE.iterdir()):
        ingest(store, str(path))
    accounts = Accounts(store)
    voter = accounts.create_user("voter", "x")
    for pid in ("2606.32040", "2606.30869"):  # trending needs votes of the newest days
        accounts.vote(voter.id, pid)
    yield store
    store.close()


def _client(store: Store, home: Path, mail: bool) -> TestClient:
    # the SMTP server is only named: these tests render forms and post ones that fail before any mail
    extra = {"smtp_host": "127.0.0.1", "smtp_port": 9, "smtp_security": "none", "smtp_from": "p <p@example.org>"}
    extra = extra if mail else {}
    settings = Settings(home=home, secret_key="follow-secret", **extra)  # type: ignore[arg-type]
    return TestClient(create_app(settings, store), raise_server_exceptions=False)


@pytest.fixture(scope="module")
def client(store: Store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with _client(store, tmp_path_factory.mktemp("mail"), mail=True) as c:
        yield c


@pytest.fixture(scope="module")
def no_mail(store: Store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with _client(store, tmp_path_factory.mktemp("nomail"), mail=False) as c:
        yield c


def _cards(page: str) -> list[str]:
    return re.findall(r'<article class="card"[^>]*data-href="/papers/([^"]+)"', page)


def _feed_ids(client: TestClient, href: str) -> list[str]:
    r = client.get(html.unescape(href))
    assert r.status_code == 200, (href, r.text[:300])
    parsed = feedparser.parse(r.content)
    assert not parsed.bozo, parsed.get("bozo_exception")
    return [e.link.split("/papers/", 1)[1] for e in parsed.entries]


LIST_PAGES = [
    "/",
    "/?date=2026-06-29&view=week&category=cs.CV",
    "/?category=cs.CL&view=month",
    "/trending",
    "/search?q=diffusion+model&sort=date",
    "/search?q=video+generation&sort=date&has_code=1",
    "/authors/Vishal%20M.%20Patel",
]


@pytest.mark.parametrize("path", LIST_PAGES)
def test_every_list_page_names_its_feeds_and_they_hold_what_it_shows(client: TestClient, path: str) -> None:
    page = client.get(path)
    assert page.status_code == 200
    shown = _cards(page.text)
    assert shown, "the sample should fill every one of these lists"
    head = HEAD_LINK.findall(page.text.split("</head>")[0])
    assert [kind for kind, _, _ in head] == ["atom", "rss"], head
    for _, title, href in head:
        assert title
        entries = _feed_ids(client, href)
        assert entries[: len(shown)] == shown, (path, href)  # the page's first screen, in its order
    # and a visible control with the same feeds
    control = re.search(r'<p class="follow">(.*?)</p>', page.text, re.S)
    assert control is not None
    assert [h for _, _, h in head] == re.findall(r'class="feed" href="([^"]+)"', control.group(1))


def test_email_digest_offered_on_list_pages_only_when_the_site_sends_mail(
    client: TestClient, no_mail: TestClient
) -> None:
    author = client.get("/authors/Vishal%20M.%20Patel").text
    email = re.search(r'<a class="email" href="([^"]+)">', author)
    assert email is not None and html.unescape(email.group(1)) == "/subscribe?kind=author&author=Vishal+M.+Patel"
    form = client.get(html.unescape(email.group(1))).text
    assert 'name="author" value="Vishal M. Patel"' in form
    assert 'class="email"' in client.get("/trending").text
    for path in ("/authors/Vishal%20M.%20Patel", "/trending", "/?category=cs.CV"):
        assert 'class="email"' not in no_mail.get(path).text
        assert 'class="feed"' in no_mail.get(path).text


FIELDS = re.compile(r'<input (?:type="(?:text|email|number)" )name="([a-z_]+)"')


@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        ("search", ["email", "q", "category", "max_papers"]),
        ("category", ["email", "category", "max_papers"]),
        ("author", ["email", "author", "max_papers"]),
        ("similar", ["email", "like", "max_papers"]),
        ("trending", ["email", "max_papers"]),
    ],
)
def test_the_form_asks_only_for_what_the_kind_needs(client: TestClient, kind: str, fields: list[str]) -> None:
    page = client.get("/subscribe", params={"kind": kind}).text
    form = page[page.index('<form method="post" action="/subscribe"') :].split("</form>")[0]
    assert FIELDS.findall(form) == fields
    assert f'name="kind" value="{kind}"' in form
    assert 'name="frequency"' in form
    # the other kinds are links (no script needed), the chosen one marked
    assert re.search(rf'href="/subscribe\?kind={kind}"[^>]*aria-current="page"', page)


def _csrf(client: TestClient) -> str:
    found = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/subscribe").text)
    assert found is not None
    return found.group(1)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"max_papers": "99"}, "1 to 50 papers"),  # was a bare error page: everything typed was lost
        ({"max_papers": "ten"}, "1 to 50 papers"),
        ({"author": "A" * 129}, "at most 128 characters"),  # likewise, over the field's bound
        ({"email": "reader@localhost"}, "does not look like an email address"),
        ({"author": "   "}, "needs an author name"),
    ],
)
def test_the_form_keeps_what_was_typed_after_a_422(client: TestClient, change: dict[str, str], message: str) -> None:
    typed = {"email": "reader@example.org", "kind": "author", "author": "Vishal M. Patel", "frequency": "weekly"}
    typed["max_papers"] = "7"
    r = client.post("/subscribe", data={**typed, **change, "csrf_token": _csrf(client)})
    assert r.status_code == 422
    assert message in html.unescape(r.text)
    form = r.text[r.text.index('<form method="post" action="/subscribe"') :].split("</form>")[0]
    for name, value in {**typed, **change}.items():
        if name == "frequency":
            assert f'<option value="{value}" selected>' in form
        elif name != "kind":
            assert f'name="{name}" value="{html.escape(value, quote=True)}"' in form, name
    assert 'name="kind" value="author"' in form


@pytest.mark.parametrize(
    ("params", "feed"),
    [
        ({"kind": "author", "author": "Vishal M. Patel"}, "/feeds/author.atom?name=Vishal+M.+Patel"),
        ({"kind": "search", "q": "diffusion"}, "/feeds/search.atom?q=diffusion"),
        ({"kind": "category", "category": "cs.CV"}, "/feeds/daily.atom?category=cs.CV"),
        ({"kind": "trending"}, "/feeds/trending.atom"),
        ({}, "/feeds/daily.atom"),
    ],
)
def test_without_smtp_the_form_says_so_first_and_offers_the_feed(
    no_mail: TestClient, params: dict[str, str], feed: str
) -> None:
    page = no_mail.get("/subscribe", params=params)
    assert page.status_code == 200
    text = page.text
    assert "This site does not send email" in text
    assert '<form method="post" action="/subscribe"' not in text  # nothing to fill in that could not work
    notice = text[text.index('id="no-mail"') :].split("</div>")[0]
    hrefs = [html.unescape(h) for h in re.findall(r'class="feed" href="([^"]+)"', notice)]
    assert feed in hrefs
    assert _feed_ids(no_mail, feed), "the feed offered instead is a working feed"
