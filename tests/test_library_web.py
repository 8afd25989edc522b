"""Collections, saving, "not interested" and For you over the web: JSON API and pages in-process over a real
SQLite store holding the bundled sample, then the pages in real Chromium at phone and desktop widths."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import feedparser
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from papersift import feed
from papersift.ingest import ingest
from papersift.settings import Settings
from papersift.store import Store
from papersift.store.accounts import Accounts
from papersift.web import create_app

from .conftest import SAMPLE
from .live_server import DESKTOP, PHONE, live_server
from .test_reader_pages import _check_header


@pytest.fixture(scope="module")
def site_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Store]]:
    home = tmp_path_factory.mktemp("library-web")
    settings = Settings(home=home, secret_key="library-secret")
    store = Store.open(settings.store_url)
    for path in sorted(SAMPLE.iterdir()):
        ingest(store, str(path))
    yield settings, store
    store.close()


@pytest.fixture(scope="module")
def app(site_store: tuple[Settings, Store]) -> FastAPI:
    return create_app(*site_store)


def _reader(app: FastAPI, name: str) -> tuple[TestClient, dict[str, str]]:
    client = TestClient(app, raise_server_exceptions=False)
    r = client.post("/api/auth/signup", json={"username": name, "password": "correct horse"})
    assert r.status_code == 201, r.text
    return client, {"X-CSRF-Token": r.json()["csrf_token"]}


def _ranked(client: TestClient, url: str) -> dict[str, Any]:
    """The recommendations once ready: the first ranking after a library change is computed off the request."""
    deadline = time.monotonic() + 90
    while True:
        got: dict[str, Any] = client.get(url).json()
        if got["ready"] or time.monotonic() > deadline:
            return got
        time.sleep(0.3)


@pytest.fixture(scope="module")
def day_ids(site_store: tuple[Settings, Store]) -> list[str]:
    _, store = site_store
    page = feed.daily(store, Accounts(store), limit=100)
    return [it.paper.id for it in page.items]


def test_collections_api_crud_privacy_bibtex_and_feeds(app: FastAPI, day_ids: list[str]) -> None:
    ada, ada_h = _reader(app, "ada_lib")
    bob, bob_h = _reader(app, "bob_lib")
    anon = TestClient(app, raise_server_exceptions=False)

    assert ada.post("/api/collections", json={"name": "x"}).status_code == 403  # no CSRF token
    assert anon.post("/api/collections", json={"name": "x"}).json()["error"]["code"] == "auth_required"
    bad = ada.post("/api/collections", json={"name": "   "}, headers=ada_h)
    assert bad.status_code == 422 and "collection name" in bad.json()["error"]["message"]
    made = ada.post("/api/collections", json={"name": "Vision"}, headers=ada_h)
    assert made.status_code == 201
    cid = made.json()["id"]
    again = ada.post("/api/collections", json={"name": "VISION"}, headers=ada_h)
    assert again.status_code == 422 and again.json()["error"]["code"] == "invalid_request"

    for pid in day_ids[:3]:
        r = ada.put(f"/api/collections/{cid}/papers/{pid}", headers=ada_h)
        assert r.status_code == 200 and r.json() == {"id": pid, "saved": True, "collections": [cid]}
    assert ada.put(f"/api/collections/{cid}/papers/2401.99999", headers=ada_h).status_code == 404
    page = ada.get(f"/api/collections/{cid}").json()
    assert page["papers"] == 3 and {p["id"] for p in page["items"]} == set(day_ids[:3])

    # private: not found for another reader, for nobody signed in, and in its BibTeX and feeds
    for client in (bob, anon):
        for path in (f"/api/collections/{cid}", f"/collections/{cid}", f"/collections/{cid}/bibtex"):
            assert client.get(path).status_code == 404, path
    assert ada.get(f"/feeds/collections/{cid}.rss").status_code == 404  # feed readers have no session
    assert bob.put(f"/api/collections/{cid}/papers/{day_ids[4]}", headers=bob_h).status_code == 404
    assert bob.delete(f"/api/collections/{cid}", headers=bob_h).status_code == 404
    assert ada.get(f"/api/collections/{cid}").json()["papers"] == 3  # nothing lost

    shared = ada.patch(f"/api/collections/{cid}", json={"public": True}, headers=ada_h)
    assert shared.status_code == 200 and shared.json()["public"] is True
    assert bob.get(f"/api/collections/{cid}").json()["owner"] == "ada_lib"
    bib = anon.get(f"/collections/{cid}/bibtex")
    assert bib.status_code == 200 and bib.text.count("@") == 3
    rss = feedparser.parse(anon.get(f"/feeds/collections/{cid}.rss").content)
    assert len(rss.entries) == 3 and "Vision" in rss.feed.title
    assert anon.get(f"/collections/{cid}").status_code == 200

    r = ada.delete(f"/api/collections/{cid}/papers/{day_ids[0]}", headers=ada_h)
    assert r.json() == {"id": day_ids[0], "saved": False, "collections": []}
    assert ada.delete(f"/api/collections/{cid}", headers=ada_h).status_code == 204
    assert ada.get(f"/api/collections/{cid}").status_code == 404
    assert ada.get("/api/collections/0").status_code == 422
    assert ada.get(f"/api/collections/{cid}/papers/x").status_code in (404, 405)


def test_save_from_a_card_and_for_you_explains_each_pick(app: FastAPI, day_ids: list[str]) -> None:
    cleo, h = _reader(app, "cleo_lib")
    anon = TestClient(app, raise_server_exceptions=False)
    assert anon.get("/api/recommendations").status_code == 401
    empty = _ranked(cleo, "/api/recommendations?window=week")
    assert empty["ready"] is True and empty["library"] == 0 and empty["items"] == []

    liked = day_ids[:4]
    for pid in liked:
        r = cleo.post(f"/api/papers/{pid}/save", headers=h)
        assert r.status_code == 200 and r.json()["saved"] is True
    default = cleo.get("/api/collections").json()
    assert [c["name"] for c in default] == ["Saved"] and default[0]["public"] is False
    got = _ranked(cleo, "/api/recommendations?window=week&limit=30")
    assert got["ready"] and got["library"] == 4 and len(got["items"]) == 30
    picks = [it["paper"]["id"] for it in got["items"]]
    assert not set(picks) & set(liked)  # what the reader already has is never recommended
    assert {it["because"] for it in got["items"]} <= set(liked)
    scores = [it["score"] for it in got["items"]]
    assert scores == sorted(scores, reverse=True) and scores[0] > 0

    # "not interested" drops the paper, and the next ranking (a new library revision) knows it at once
    first = picks[0]
    assert cleo.post(f"/api/papers/{first}/not-interested", headers=h).json()["not_interested"] is True
    after = _ranked(cleo, "/api/recommendations?window=week&limit=30")
    assert after["negatives"] == 1 and first not in [it["paper"]["id"] for it in after["items"]]
    assert cleo.delete(f"/api/papers/{first}/save", headers=h).json()["saved"] is False

    # per collection: a collection of its own learns from its papers only
    other = cleo.post("/api/collections", json={"name": "One paper"}, headers=h).json()["id"]
    cleo.put(f"/api/collections/{other}/papers/{day_ids[10]}", headers=h)
    one = _ranked(cleo, f"/api/recommendations?window=week&collection={other}")
    assert one["library"] == 1 and {it["because"] for it in one["items"]} == {day_ids[10]}
    dan, _ = _reader(app, "dan_lib")
    assert dan.get(f"/api/recommendations?collection={other}").status_code == 404  # private to cleo

    # the page: each card says which saved paper it is close to; a form save works without JavaScript
    _ranked(cleo, "/api/recommendations?window=week")
    html = cleo.get("/for-you?window=week").text
    assert html.count("Close to your") >= 10
    assert "<title>For you · papersift</title>" in html and html.count('action="/for-you/subscribe"') == 1
    token = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert token
    r = cleo.post(
        f"/papers/{picks[5]}/save",
        data={"csrf_token": token.group(1), "action": "save", "next": "/for-you"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"].endswith("/for-you")
    assert picks[5] in {p["id"] for p in cleo.get(f"/api/collections/{default[0]['id']}").json()["items"]}
    assert cleo.post(f"/papers/{picks[6]}/save", data={"action": "save"}).status_code == 403  # no token


def test_library_writes_are_rate_limited_per_reader(app: FastAPI, day_ids: list[str]) -> None:
    eve, h = _reader(app, "eve_lib")
    statuses = [eve.post(f"/api/papers/{day_ids[0]}/not-interested", headers=h).status_code for _ in range(125)]
    assert statuses[:120] == [200] * 120 and statuses[-1] == 429
    limited = eve.post(f"/api/papers/{day_ids[0]}/save", headers=h)
    assert limited.json()["error"]["code"] == "rate_limited" and int(limited.headers["retry-after"]) >= 1


# ---- real Chromium at phone and desktop widths ---------------------------------------------------------


@pytest.fixture(scope="module")
def server(site_store: tuple[Settings, Store], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    _, store = site_store
    settings = Settings(home=tmp_path_factory.mktemp("library-e2e"), secret_key="library-e2e")
    with live_server(settings, store) as url:
        yield url


@pytest.mark.parametrize(("name", "device"), [("phone", PHONE), ("desktop", DESKTOP)])
def test_save_from_cards_and_read_for_you_in_chromium(
    chromium: object, server: str, name: str, device: dict[str, object], tmp_path: Path
) -> None:
    context = chromium.new_context(**device)  # type: ignore[attr-defined]
    page = context.new_page()
    width = int(device["viewport"]["width"])  # type: ignore[index]
    try:
        page.goto(server + "/signup")
        page.fill("input[name=username]", f"{name}_library_reader")
        page.fill("input[name=password]", "a long password")
        page.locator("button[type=submit]", has_text="Sign up").click()
        page.wait_for_load_state()
        page.goto(server + "/")
        _check_header(page, width)
        cards = page.locator("article.card")
        assert cards.count() > 5
        cards.nth(0).locator("button.save-btn").click()  # the button: saved without a reload
        page.wait_for_selector("article.card >> nth=0 >> button.save-btn.on")
        if name == "desktop":  # the keyboard: j moves to the next card, s saves it
            page.keyboard.press("j")
            page.keyboard.press("j")
            page.keyboard.press("s")
            page.wait_for_selector("article.card >> nth=1 >> button.save-btn.on")
        else:
            cards.nth(1).locator("button.save-btn").tap()
            page.wait_for_selector("article.card >> nth=1 >> button.save-btn.on")
        # reached from the header on desktops, from the footer on phones (the header row is full there)
        link = (
            page.locator("header a", has_text="For you")
            if name == "desktop"
            else page.locator("footer a", has_text="For you")
        )
        link.click()
        page.wait_for_url("**/for-you")
        page.goto(server + "/for-you?window=week")
        for _ in range(60):  # the first ranking after a library change is computed off the request
            if not page.locator("#preparing").count():
                break
            page.wait_for_timeout(1000)
            page.reload()
        _check_header(page, width)
        assert page.locator("article.card").count() >= 10
        because = page.locator("article.card >> nth=0 >> .because")
        assert because.is_visible() and "Close to your" in because.inner_text()
        assert page.evaluate("document.documentElement.scrollWidth") <= width  # nothing scrolls sideways
        page.screenshot(path=str(tmp_path / f"for_you_{name}.png"))
        first_title = page.locator("article.card >> nth=0 >> h2.title a").inner_text()
        page.locator("article.card >> nth=0 >> button.not-interested").click()
        page.wait_for_load_state()
        assert first_title not in page.locator("section.list").inner_text()
        page.goto(server + "/collections")
        page.locator("a", has_text="Saved").click()
        page.wait_for_load_state()
        assert page.locator("article.card").count() == 2
        _check_header(page, width)
    finally:
        context.close()
