"""Author links, the author page, its feed and the subscribe form in real Chromium at phone and desktop
widths (issue 11 points 6 and 7), over a real uvicorn server holding the bundled sample."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import feedparser
import pytest

from papersift.ingest import ingest
from papersift.settings import Settings
from papersift.store import Store

from .conftest import SAMPLE
from .live_server import DESKTOP, PHONE, live_server

DEVICES = [("phone", PHONE), ("desktop", DESKTOP)]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    store = Store.open(f"sqlite:///{tmp_path_factory.mktemp('authors-e2e') / 'store.db'}")
    for path in sorted(SAMPLE.iterdir()):
        ingest(store, str(path))
    yield store
    store.close()


def _server(store: Store, home: Path, mail: bool) -> Iterator[str]:
    # with mail, the SMTP server is only named: the form below fails validation before anything is mailed
    extra = {"smtp_host": "127.0.0.1", "smtp_port": 9, "smtp_security": "none", "smtp_from": "p <p@example.org>"}
    settings = Settings(home=home, secret_key="authors-e2e", **(extra if mail else {}))  # type: ignore[arg-type]
    with live_server(settings, store) as url:
        yield url


@pytest.fixture(scope="module")
def server(store: Store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _server(store, tmp_path_factory.mktemp("mail"), mail=True)


@pytest.fixture(scope="module")
def no_mail_server(store: Store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _server(store, tmp_path_factory.mktemp("nomail"), mail=False)


def _inside(page: object, selector: str) -> None:
    """The element is shown and lies within the viewport's width (nothing to scroll sideways for)."""
    box = page.locator(selector).first.bounding_box()  # type: ignore[attr-defined]
    width = page.evaluate("innerWidth")  # type: ignore[attr-defined]
    assert box is not None and box["width"] > 0 and box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")  # type: ignore[attr-defined]


def _card_ids(page: object) -> list[str]:
    hrefs = page.locator("article.card").evaluate_all("(cs) => cs.map((c) => c.dataset.href)")  # type: ignore[attr-defined]
    return [unquote(h.split("/papers/", 1)[1]) for h in hrefs]


@pytest.mark.parametrize(("name", "device"), DEVICES)
def test_author_link_to_page_feed_and_subscribe(
    chromium: object, server: str, name: str, device: dict[str, object]
) -> None:
    context = chromium.new_context(**device)  # type: ignore[attr-defined]
    page = context.new_page()
    try:
        page.goto(server + "/")
        link = page.locator("article.card .authors a").nth(1)
        author = link.inner_text()
        _inside(page, "article.card .authors a")
        link.click()
        page.wait_for_url("**/authors/**")
        assert page.locator("h1").inner_text() == author
        shown = _card_ids(page)
        api = page.request.get(server + page.url[len(server) :].replace("/authors/", "/api/authors/", 1) + "/papers")
        assert api.ok and [p["id"] for p in api.json()["items"]] == shown
        assert all(author in p["authors"] for p in api.json()["items"])
        page.screenshot(path=f"/tmp/authors_{name}_author_page.png", full_page=True)

        # the feeds in <head> and the visible follow control: the same papers as the page
        atom = page.locator('head link[rel=alternate][type="application/atom+xml"]').get_attribute("href")
        assert atom is not None
        parsed = feedparser.parse(page.request.get(server + atom).body())
        assert not parsed.bozo and [unquote(e.link.split("/papers/", 1)[1]) for e in parsed.entries] == shown
        _inside(page, ".follow a.feed")
        assert page.locator(".follow a.feed").first.get_attribute("href") == atom

        # subscribe to this author: only the author's field, kept after the server refuses the address
        page.locator(".follow a.email").click()
        page.wait_for_url("**/subscribe?kind=author**")
        visible = page.locator("form#subscribe input:visible").evaluate_all("(es) => es.map((e) => e.name)")
        assert visible == ["email", "author", "max_papers"]
        assert page.locator("form#subscribe input[name=author]").input_value() == author
        _inside(page, "form#subscribe button[type=submit]")
        page.fill("form#subscribe input[name=email]", "reader@localhost")  # the browser lets it through
        page.select_option("form#subscribe select[name=frequency]", "weekly")
        page.fill("form#subscribe input[name=max_papers]", "7")
        page.locator("form#subscribe button[type=submit]").click()
        page.wait_for_load_state()
        assert "does not look like an email address" in page.locator(".alert").inner_text()
        assert page.locator("form#subscribe input[name=email]").input_value() == "reader@localhost"
        assert page.locator("form#subscribe input[name=author]").input_value() == author
        assert page.locator("form#subscribe select[name=frequency]").input_value() == "weekly"
        assert page.locator("form#subscribe input[name=max_papers]").input_value() == "7"
        page.screenshot(path=f"/tmp/authors_{name}_subscribe_422.png", full_page=True)
    finally:
        context.close()


@pytest.mark.parametrize(("name", "device"), DEVICES)
def test_without_smtp_the_form_offers_the_feed_first(
    chromium: object, no_mail_server: str, name: str, device: dict[str, object]
) -> None:
    context = chromium.new_context(**device)  # type: ignore[attr-defined]
    page = context.new_page()
    try:
        page.goto(no_mail_server + "/authors/Vishal%20M.%20Patel")
        assert page.locator(".follow a.email").count() == 0  # no digest to offer
        _inside(page, ".follow a.feed")
        page.goto(no_mail_server + "/subscribe?kind=author&author=Vishal+M.+Patel")
        assert page.locator("#no-mail").is_visible()
        assert page.locator("form#subscribe").count() == 0
        feed = page.locator("#no-mail a.feed").first
        _inside(page, "#no-mail a.feed")
        assert feed.get_attribute("href") == "/feeds/author.atom?name=Vishal+M.+Patel"
        parsed = feedparser.parse(page.request.get(no_mail_server + str(feed.get_attribute("href"))).body())
        assert parsed.entries and not parsed.bozo
        page.screenshot(path=f"/tmp/authors_{name}_no_smtp.png", full_page=True)
    finally:
        context.close()
