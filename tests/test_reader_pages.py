"""A reader's site (issue 11, points 9 and 10): error pages written for readers, /docs, /favicon.ico,
405 on GET of every write-only route, and the header on phones (real Chromium at 390 and 1280 px)."""

from __future__ import annotations

import re
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from papersift import cli
from papersift.errors import (
    PaperNotFound,
    QueryError,
    RateLimited,
    SearchIndexError,
    SourceError,
    StoreBusy,
    StoreError,
)
from papersift.ingest import ingest
from papersift.mail import MailError, MailRejected
from papersift.settings import Settings
from papersift.store import Store
from papersift.web import api, create_app, docs, feeds, pages, subscriptions

from .conftest import SAMPLE
from .live_server import ARGS, CHROMIUM, DESKTOP, PHONE, chromium_browser, live_server  # noqa: F401 (others import them here)

# what a reader must never be shown: CLI commands, store URLs, operator paths, errno text, stack traces
COMMANDS = "|".join(sorted(cli.main.commands))  # type: ignore[attr-defined]
OPERATOR_TEXT = re.compile(
    rf"`papersift|papersift (?:{COMMANDS})\b|sqlite:///|postgresql|/home/|/tmp/|errno|traceback", re.IGNORECASE
)
OPERATOR_FRAGMENTS = [
    "try `papersift search` to find it",
    "run `papersift index --rebuild`",
    "sqlite:////home/ops/.papersift/store.db",
    "postgresql://papersift@db/papersift",
    "/home/ops/.papersift/index",
    "/tmp/papersift-xyz/keyword",
    "[Errno 13] Permission denied",
    "errno 111",
    "Traceback (most recent call last):",
]


def _sample_store(path: Path) -> Store:
    store = Store.open(f"sqlite:///{path}")
    for sample in sorted(SAMPLE.iterdir()):
        ingest(store, str(sample))
    return store


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("reader") / "store.db"


@pytest.fixture(scope="module")
def store(store_path: Path) -> Iterator[Store]:
    store = _sample_store(store_path)
    yield store
    store.close()


@pytest.fixture(scope="module")
def paper_id(store: Store, store_path: Path) -> str:
    with sqlite3.connect(store_path) as db:
        row = db.execute("SELECT id FROM papers ORDER BY id LIMIT 1").fetchone()
    return str(row[0])


# exceptions as the code raises them, with the operator's text their messages carry
RAISED: dict[str, Exception] = {
    "not_found": PaperNotFound("2401.99999"),
    "store": StoreError("cannot open sqlite:////home/ops/.papersift/store.db: [Errno 13] Permission denied"),
    "busy": StoreBusy("the store at /tmp/papersift/store.db is locked by another process (papersift ingest)"),
    "index": SearchIndexError("keyword index at /home/ops/.papersift/index is corrupt: run `papersift index`"),
    "source": SourceError("https://export.arxiv.org/api/query: [Errno 111] Connection refused"),
    "mail": MailError("smtp://localhost:25: [Errno 111] Connection refused"),
    "refused": MailRejected("550 5.1.1 <x@example.org>: Recipient address rejected (/var/mail)"),
    "query": QueryError("unbalanced quote in the query"),
    "limited": RateLimited("too many sign-in attempts; try again in 30 seconds", 30),
    "os": OSError(28, "No space left on device", "/home/ops/.papersift/store.db"),
    "crash": RuntimeError("Traceback (most recent call last): File /home/ops/app.py"),
}
STATUS = {
    "not_found": 404,
    "store": 503,
    "busy": 503,
    "index": 503,
    "source": 502,
    "mail": 502,
    "refused": 422,
    "query": 422,
    "limited": 429,
    "os": 500,
    "crash": 500,
}


def _with_raising_routes(app: FastAPI) -> FastAPI:
    """Routes that raise `RAISED[kind]` or a message of the test's choosing, as a page and as the API."""

    def boom(kind: str, message: str = "") -> None:
        if message:
            raise StoreError(message) if kind == "store" else QueryError(message)
        raise RAISED[kind]

    app.add_api_route("/boom/{kind}", boom, include_in_schema=False)
    app.add_api_route("/api/boom/{kind}", boom, include_in_schema=False)
    return app


@pytest.fixture(scope="module")
def client(store: Store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = Settings(home=tmp_path_factory.mktemp("reader-home"), secret_key="reader-secret")
    app = _with_raising_routes(create_app(settings, store))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _reader_page(html: str) -> None:
    found = OPERATOR_TEXT.search(html)
    assert found is None, f"operator text {found.group(0)!r} on a page"


@pytest.mark.parametrize("kind", sorted(RAISED))
def test_error_pages_speak_to_readers_and_the_api_keeps_its_errors(client: TestClient, kind: str) -> None:
    page = client.get(f"/boom/{kind}")
    assert page.status_code == STATUS[kind]
    assert page.headers["content-type"].startswith("text/html")
    _reader_page(page.text)
    assert 'role="alert"' in page.text
    if kind == "not_found":
        assert "We have no paper with that id" in page.text
    if STATUS[kind] == 503:
        assert "try again in a minute" in page.text
    if kind == "busy":
        assert page.headers["retry-after"] == str(StoreBusy.retry_after)
    if kind in ("query", "limited"):  # written for readers: kept
        assert str(RAISED[kind]) in page.text

    api = client.get(f"/api/boom/{kind}")
    assert api.status_code == STATUS[kind]
    error = api.json()["error"]
    assert set(error) == {"code", "message"}
    if STATUS[kind] < 500 or kind not in ("os", "crash"):  # the API's structured message is unchanged
        assert error["message"] == str(RAISED[kind])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    kind=st.sampled_from(["store", "query"]),
    before=st.text(max_size=40),
    fragment=st.sampled_from(OPERATOR_FRAGMENTS),
    after=st.text(max_size=40),
)
def test_no_error_page_shows_operator_text(
    client: TestClient, kind: str, before: str, fragment: str, after: str
) -> None:
    message = (before + fragment + after).strip() or fragment
    page = client.get(f"/boom/{kind}", params={"message": message})
    assert page.status_code == (503 if kind == "store" else 422)
    _reader_page(page.text)


def test_real_failures_give_reader_pages(client: TestClient, tmp_path: Path) -> None:
    # a paper that is not there, a page that is not there, a bad parameter (its message names it: kept)
    missing = client.get("/papers/2401.99999")
    assert missing.status_code == 404 and "We have no paper with that id" in missing.text
    _reader_page(missing.text)
    nowhere = client.get("/no/such/page")
    assert nowhere.status_code == 404
    _reader_page(nowhere.text)
    bad = client.get("/", params={"page": "abc"})
    assert bad.status_code == 422 and "page" in bad.text
    _reader_page(bad.text)

    # a store that lost its tables: SQLAlchemy's OperationalError carries the SQL and the file
    broken = _sample_store(tmp_path / "store.db")
    settings = Settings(home=tmp_path / "home", secret_key="reader-secret")
    with TestClient(create_app(settings, broken), raise_server_exceptions=False) as c:
        with sqlite3.connect(tmp_path / "store.db") as db:  # behind the running site's back
            db.execute("DROP TABLE papers")
        for path in ("/papers/2401.00001", "/trending", "/"):
            page = c.get(path)
            assert page.status_code >= 500, path
            _reader_page(page.text)
            assert "papers" not in page.text.split('role="alert"')[1].split("</p>")[0]  # no SQL either
            api = c.get("/api/trending")
            assert api.status_code >= 500 and set(api.json()["error"]) == {"code", "message"}
    broken.close()


def test_docs_page_documents_every_operation_offline(client: TestClient) -> None:
    spec = client.get("/api/openapi.json").json()
    page = client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    for path, item in spec["paths"].items():
        for method, op in item.items():
            assert f'id="{op["operationId"]}"' in html, (method, path)
            assert f"<code>{path}</code>" in html
            for param in op.get("parameters", []):
                assert f"<code>{param['name']}</code>" in html
            for status in op["responses"]:
                assert f"<td>{status}</td>" in html
    for name, schema in spec["components"]["schemas"].items():
        assert f'id="schema-{name}"' in html
        for prop in schema.get("properties", {}):
            assert f"<code>{prop}</code>" in html
    # nothing loaded from elsewhere: every script, stylesheet and image is the site's own
    for attr in re.findall(r'<(?:script|link|img)[^>]*(?:src|href)="([^"]+)"', html):
        assert attr.startswith("/"), attr
    # the footer of every page links to it
    assert 'href="/docs"' in client.get("/trending").text


def test_favicon(client: TestClient) -> None:
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200
    assert icon.headers["content-type"] == "image/x-icon"
    body = icon.content
    assert body[:4] == b"\x00\x00\x01\x00"  # ICONDIR: reserved 0, type 1 (icon)
    count = int.from_bytes(body[4:6], "little")
    assert count >= 1
    for i in range(count):  # each entry points at a PNG inside the file
        entry = body[6 + 16 * i : 22 + 16 * i]
        size, offset = int.from_bytes(entry[8:12], "little"), int.from_bytes(entry[12:16], "little")
        assert body[offset : offset + 8] == b"\x89PNG\r\n\x1a\n" and offset + size <= len(body)
    assert 'rel="icon" href="/favicon.ico"' in client.get("/").text


def _write_only_paths(paper_id: str) -> list[tuple[str, set[str]]]:
    """Every route of the site's routers that takes no GET, with its path parameters filled in."""
    methods: dict[str, set[str]] = {}
    for router in (api.router, pages.router, feeds.router, subscriptions.router, subscriptions.api_router, docs.router):
        for route in router.routes:
            assert isinstance(route, APIRoute)
            methods.setdefault(route.path, set()).update(route.methods)
    fill = {"{paper_id:path}": paper_id, "{token}": "sometoken", "{fmt}": "rss", "{category}": "cs.LG"}
    out = []
    for path, allowed in sorted(methods.items()):
        if "GET" not in allowed:
            for key, value in fill.items():
                path = path.replace(key, value)
            out.append((path, allowed))
    return out


def test_get_on_every_write_only_route_is_405(client: TestClient, paper_id: str) -> None:
    routes = _write_only_paths(paper_id)
    paths = {p for p, _ in routes}
    for expected in (
        "/logout",
        f"/papers/{paper_id}/upvote",
        f"/papers/{paper_id}/hide",
        "/api/auth/login",
        "/api/auth/logout",
        "/api/auth/signup",
        "/api/auth/password",
        f"/api/papers/{paper_id}/upvote",
        f"/api/papers/{paper_id}/hide",
        "/api/subscriptions/confirm",
    ):
        assert expected in paths
    for path, allowed in routes:
        answer = client.get(path)
        assert answer.status_code == 405, path
        assert set(answer.headers["allow"].split(", ")) == allowed, path
        if path.startswith("/api/"):
            assert answer.json()["error"]["code"] == "method_not_allowed"
        else:
            assert answer.headers["content-type"].startswith("text/html")
            _reader_page(answer.text)
        assert client.head(path).status_code == 405
    # the GET routes those paths sit next to still work
    assert client.get(f"/papers/{paper_id}").status_code == 200
    assert client.get(f"/api/papers/{paper_id}").status_code == 200
    assert client.get(f"/api/papers/{paper_id}/related").status_code == 200


# ---- phones and desktops, in real Chromium -------------------------------------------------------------


@pytest.fixture(scope="module")
def server(store: Store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = Settings(home=tmp_path_factory.mktemp("reader-e2e"), secret_key="reader-e2e-secret")
    with live_server(settings, store) as url:
        yield url


HEADER_BOXES = """() => {
  const box = (el) => { const r = el.getBoundingClientRect(); return {x: r.x, y: r.y, w: r.width, h: r.height,
    cls: el.className, line: parseFloat(getComputedStyle(el).lineHeight) || 22}; };
  const items = [...document.querySelectorAll('header.top nav > *')]
    .filter((el) => !el.matches('.spacer, input[type=hidden]') && getComputedStyle(el).display !== 'none');
  const q = document.querySelector('#q');
  return {items: items.map(box), search: q ? box(q) : null, vw: innerWidth, vh: innerHeight,
          scroll: document.documentElement.scrollWidth};
}"""


def _check_header(page: object, width: int) -> None:
    m = page.evaluate(HEADER_BOXES)  # type: ignore[attr-defined]
    assert m["vw"] == width
    assert m["scroll"] <= m["vw"], "the page scrolls sideways"
    search = m["search"]
    assert search is not None and search["w"] >= 150 and search["h"] > 0
    assert search["x"] >= 0 and search["x"] + search["w"] <= m["vw"]
    assert search["y"] >= 0 and search["y"] + search["h"] <= m["vh"]
    buttons = [b for b in m["items"] if "searchbox" not in b["cls"]]
    assert len(buttons) >= 4
    for b in buttons:  # one line each, inside the viewport, all on one row
        assert b["h"] <= b["line"] * 1.5 + 8, b
        assert b["x"] >= 0 and b["x"] + b["w"] <= m["vw"] + 0.5, b
    centres = [b["y"] + b["h"] / 2 for b in buttons]
    assert max(centres) - min(centres) <= 3, buttons
    row_bottom = max(b["y"] + b["h"] for b in buttons)
    if width < 640:  # the search box has the row below the buttons to itself
        assert search["y"] >= row_bottom - 1


@pytest.mark.parametrize(("name", "device"), [("phone", PHONE), ("desktop", DESKTOP)])
def test_header_and_keyboard_help_at_phone_and_desktop_widths(
    chromium: object, server: str, paper_id: str, name: str, device: dict[str, object]
) -> None:
    context = chromium.new_context(**device)  # type: ignore[attr-defined]
    page = context.new_page()
    width = int(device["viewport"]["width"])  # type: ignore[index]
    try:
        for path in ("/", "/trending", f"/papers/{paper_id}", "/docs", "/papers/2401.99999"):
            page.goto(server + path)
            _check_header(page, width)
            keys = page.locator("footer .keys")
            assert keys.count() == 1
            assert keys.is_visible() == (name == "desktop"), path  # no keyboard help on touch screens
        page.screenshot(path=f"/tmp/h1_{name}_error.png")
        page.goto(server + "/")
        page.screenshot(path=f"/tmp/h1_{name}_daily.png")

        # the search box works from the header at this width
        page.fill("#q", "diffusion")
        page.press("#q", "Enter")
        page.wait_for_url("**/search?q=diffusion**")
        assert page.locator("article.card").count() > 0

        # signed in with the longest name allowed, the header still holds on one row
        page.goto(server + "/signup")
        page.fill("input[name=username]", f"{name}_reader_with_a_long_name"[:32])
        page.fill("input[name=password]", "a long password")
        page.locator("button[type=submit]", has_text="Sign up").click()
        page.wait_for_load_state()
        assert page.locator("header .who").count() == 1
        _check_header(page, width)
        page.screenshot(path=f"/tmp/h1_{name}_signed_in.png")
    finally:
        context.close()


def _closed_port() -> int:
    """A loopback port nothing listens on: connecting is refused (errno 111)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def _alert(html: str) -> str:
    found = re.search(r'class="alert"[^>]*>([^<]*)<', html)
    assert found is not None
    return found.group(1)


def test_forms_whose_service_is_down_speak_to_readers(store: Store, tmp_path: Path) -> None:
    port = _closed_port()
    settings = Settings(
        home=tmp_path,
        secret_key="reader-secret",
        arxiv_api_url=f"http://127.0.0.1:{port}/api/query",
        arxiv_api_delay=0,
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_security="none",
        smtp_from="papersift <papers@example.org>",
    )
    with TestClient(create_app(settings, store), raise_server_exceptions=False) as c:
        csrf = _csrf(c.get("/signup").text)
        signed = c.post("/signup", data={"username": "submitter", "password": "a long password", "csrf_token": csrf})
        assert signed.status_code in (200, 303)
        csrf = _csrf(c.get("/submit").text)
        page = c.post("/submit", data={"arxiv": "2501.00001", "csrf_token": csrf})
        assert page.status_code == 502
        _reader_page(page.text)
        alert = _alert(page.text)
        assert str(port) not in alert and "could not fetch 2501.00001 from arXiv; check the network" in alert

        csrf = _csrf(c.get("/subscribe").text)
        form = {"email": "reader@example.org", "kind": "search", "q": "diffusion", "csrf_token": csrf}
        page = c.post("/subscribe", data=form)
        assert page.status_code == 422
        _reader_page(page.text)
        alert = _alert(page.text)
        assert str(port) not in alert and "reader@example.org: cannot send" in alert
