"""The web site and JSON API, in-process over a real SQLite store holding the bundled sample."""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from papersift.feed import trending, trending_score
from papersift.ingest import ingest
from papersift.models import Paper
from papersift.settings import Settings
from papersift.store import Store
from papersift.store.accounts import Accounts
from papersift.web import create_app

from .conftest import FIXTURES, SAMPLE

HOSTILE = "<script>alert('x')</script> Hostile <b>title</b>"


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "page has no CSRF field"
    return match.group(1)


@pytest.fixture(scope="module")
def site_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Store]]:
    home = tmp_path_factory.mktemp("web")
    settings = Settings(home=home, secret_key="test-secret", arxiv_api_url="http://127.0.0.1:9/api/query")
    store = Store.open(settings.store_url)
    for path in sorted(SAMPLE.iterdir()):
        ingest(store, str(path))
    with store.write() as w:
        w.insert(
            [
                Paper(
                    id="t:hostile",
                    title=HOSTILE,
                    abstract="<img src=x onerror=alert(1)> diffusion",
                    announced=date(2026, 7, 1),
                )
            ]
        )
    yield settings, store
    store.close()


@pytest.fixture(scope="module")
def app(site_store: tuple[Settings, Store]) -> FastAPI:
    return create_app(*site_store)


@pytest.fixture
def client(app: FastAPI) -> TestClient:
    return TestClient(app, raise_server_exceptions=False)


def _signup(client: TestClient, name: str, password: str = "correct horse") -> str:
    token = _csrf(client.get("/signup").text)
    r = client.post(
        "/signup",
        data={"username": name, "password": password, "csrf_token": token, "next": "/"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return str(client.get("/api/me").json()["csrf_token"])


# -- daily --------------------------------------------------------------------------------------


def test_daily_defaults_to_the_latest_day_with_previous_link(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200
    assert "Papers of Wednesday, July 1, 2026" in r.text
    assert r.text.count('class="card"') == 50
    assert 'rel="prev" href="/?date=2026-06-30"' in r.text
    api = client.get("/api/daily_papers", params={"limit": 5}).json()
    assert api["date"] == "2026-07-01" and api["previous"] == "2026-06-30" and api["next"] is None
    assert api["total"] == 301 and len(api["items"]) == 5 and api["next_offset"] == 5
    votes = [i["votes"] for i in api["items"]]
    assert votes == sorted(votes, reverse=True)


def test_daily_week_month_category_and_pages(client: TestClient) -> None:
    day = client.get("/api/daily_papers", params={"date": "2026-06-29"}).json()
    week = client.get("/api/daily_papers", params={"date": "2026-06-29", "view": "week"}).json()
    month = client.get("/api/daily_papers", params={"date": "2026-06-29", "view": "month"}).json()
    assert (week["start"], week["end"]) == ("2026-06-29", "2026-07-05")
    assert (month["start"], month["end"]) == ("2026-06-01", "2026-06-30")
    assert day["total"] < week["total"] and day["total"] < month["total"]
    cs = client.get("/api/daily_papers", params={"date": "2026-06-29", "category": "cs.CL", "limit": 100}).json()
    assert cs["items"] and all(i["categories"][0] == "cs.CL" for i in cs["items"])
    page2 = client.get("/", params={"date": "2026-06-29", "page": 2})
    assert page2.status_code == 200 and "51–" in page2.text
    featured = client.get("/api/daily_papers", params={"date": "2025-12-01"}).json()
    assert featured["total"] > 0 and all(i["featured"] == "2025-12-01" for i in featured["items"])
    empty = client.get("/", params={"date": "1999-01-01"})
    assert empty.status_code == 200 and "No papers listed" in empty.text


@pytest.mark.parametrize(
    "url",
    ["/?date=yesterday", "/?view=year", "/?page=0", "/?page=10000", "/?date=" + "9" * 50, "/search?sort=random&q=x"],
)
def test_bad_page_parameters_are_422_pages_without_traces(client: TestClient, url: str) -> None:
    r = client.get(url)
    assert r.status_code == 422
    assert "text/html" in r.headers["content-type"] and "Traceback" not in r.text


@pytest.mark.parametrize(
    "url",
    [
        "/api/daily_papers?limit=101",
        "/api/daily_papers?date=2026-13-01",
        "/api/papers/search",
        "/api/papers/search?q=" + "x" * 600,
        "/api/papers/search?q=a&from=nope",
        "/api/papers/2606.25042/related?limit=0",
    ],
)
def test_bad_api_parameters_are_422_error_bodies(client: TestClient, url: str) -> None:
    r = client.get(url)
    assert r.status_code == 422
    body = r.json()
    assert set(body) == {"error"} and body["error"]["code"] in {"invalid_parameter", "invalid_request"}
    assert body["error"]["message"]


# -- papers, search -----------------------------------------------------------------------------


def test_paper_page_and_api(client: TestClient) -> None:
    r = client.get("/papers/2606.25042")
    assert r.status_code == 200
    assert "Information from coincidences" in r.text and "@misc{" in r.text and "Related papers" in r.text
    api = client.get("/api/papers/2606.25042").json()
    assert api["id"] == "2606.25042" and api["url"] == "/papers/2606.25042" and api["votes"] == 0
    related = client.get("/api/papers/2606.25042/related", params={"limit": 3}).json()
    assert len(related["items"]) == 3 and all(i["id"] != "2606.25042" for i in related["items"])


def test_unknown_papers_are_404(client: TestClient) -> None:
    assert client.get("/papers/9999.99999").status_code == 404
    r = client.get("/api/papers/9999.99999")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert client.get("/api/papers/9999.99999/related").status_code == 404
    assert client.get("/no/such/page").status_code == 404
    assert client.get("/api/nothing").json()["error"]["code"] == "not_found"


def test_search_highlights_and_empty_states(client: TestClient) -> None:
    r = client.get("/search", params={"q": "diffusion video"})
    assert r.status_code == 200 and "<mark>" in r.text.lower() and r.text.count('class="card"') > 5
    assert "Type a few words" in client.get("/search").text
    none = client.get("/search", params={"q": "zzqxjv", "category": "cs.CL"})
    assert "No papers match" in none.text and "search without filters" in none.text
    api = client.get("/api/papers/search", params={"q": "diffusion", "category": "cs.CV", "limit": 5}).json()
    assert len(api["items"]) == 5 and all("cs.CV" in i["categories"] for i in api["items"])
    dated = client.get("/api/papers/search", params={"q": "learning", "from": "2026-06-30", "sort": "date"}).json()
    assert dated["items"] and all(i["announced"] >= "2026-06-30" for i in dated["items"])


def test_hostile_text_is_escaped(client: TestClient) -> None:
    for url in ["/", "/papers/t:hostile", "/search?q=hostile+diffusion"]:
        html = client.get(url).text
        assert "<script>alert" not in html and "<img src=x" not in html, url
    assert "&lt;script&gt;alert" in client.get("/papers/t:hostile").text
    r = client.get("/search", params={"q": "<script>alert(1)</script>"})
    assert r.status_code == 200 and "<script>alert(1)" not in r.text


def test_crash_is_a_generic_500(app: FastAPI, client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_a: object) -> dict[str, int]:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(app.state.site.accounts, "counts", boom)
    page = client.get("/papers/2606.25042")
    assert page.status_code == 500 and "secret internals" not in page.text and "Traceback" not in page.text
    api = client.get("/api/papers/2606.25042")
    assert api.status_code == 500 and api.json()["error"]["code"] == "internal"


# -- accounts, votes, CSRF ----------------------------------------------------------------------


def test_signed_out_writes_are_refused(client: TestClient) -> None:
    r = client.post("/papers/2606.25042/upvote", data={"csrf_token": "x"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    assert client.get("/submit", follow_redirects=False).status_code == 303
    api = client.post("/api/papers/2606.25042/upvote")
    assert api.status_code == 401 and api.json()["error"]["code"] == "auth_required"


def test_forms_without_csrf_are_403(client: TestClient) -> None:
    r = client.post("/signup", data={"username": "mallory", "password": "password123"})
    assert r.status_code == 403
    assert client.post("/login", data={"username": "x", "password": "y", "csrf_token": "forged"}).status_code == 403


def test_signup_upvote_once_and_withdraw(client: TestClient) -> None:
    token = _signup(client, "alice")
    assert client.get("/api/me").json()["username"] == "alice"
    assert client.post("/api/papers/2606.25042/upvote").status_code == 403  # no X-CSRF-Token
    headers = {"X-CSRF-Token": token}
    first = client.post("/api/papers/2606.25042/upvote", headers=headers).json()
    again = client.post("/api/papers/2606.25042/upvote", headers=headers).json()
    assert first == again == {"id": "2606.25042", "voted": True, "votes": 1}
    assert client.get("/api/papers/2606.25042").json()["local_votes"] == 1
    assert 'aria-pressed="true"' in client.get("/papers/2606.25042").text
    assert (
        client.get("/api/daily_papers", params={"date": "2026-06-25", "limit": 1}).json()["items"][0]["id"]
        == "2606.25042"
    )
    down = client.delete("/api/papers/2606.25042/upvote", headers=headers).json()
    assert down["votes"] == 0 and not down["voted"]
    form = client.post(
        "/papers/2606.25042/upvote",
        data={"csrf_token": token, "action": "up", "next": "//evil.example/"},
        follow_redirects=False,
    )
    assert form.status_code == 303 and form.headers["location"] == "/"
    assert client.get("/api/papers/2606.25042").json()["votes"] == 1


def _card_votes(html: str, paper_id: str) -> int:
    match = re.search(rf'data-id="{re.escape(paper_id)}">.*?<span class="count">(\d+)</span>', html, re.S)
    assert match, f"{paper_id} is not on the page"
    return int(match.group(1))


def test_cached_listing_pages_follow_votes_ingests_and_sessions(
    app: FastAPI, site_store: tuple[Settings, Store]
) -> None:
    """Signed-out readers share a cached page, yet see every vote and new paper, with their own CSRF token."""
    reader, other, voter = (TestClient(app) for _ in range(3))
    url = "/?date=2026-06-30"
    first = reader.get(url).text
    pid = re.findall(r'data-id="([^"]+)"', first)[-1]  # the last card: a vote cannot reorder it out of the page
    hits = app.state.page_cache.hits
    second = other.get(url).text
    assert app.state.page_cache.hits == hits + 1, "the second anonymous reader should be served from the cache"
    assert _csrf(first) != _csrf(second) and _csrf(second) == other.get("/api/me").json()["csrf_token"]
    assert app.state.page_cache.placeholder not in second
    token = _signup(voter, "cachevoter")
    assert voter.post(f"/api/papers/{pid}/upvote", headers={"X-CSRF-Token": token}).json()["voted"]
    assert _card_votes(reader.get(url).text, pid) == _card_votes(first, pid) + 1
    assert 'aria-pressed="true"' in voter.get(url).text  # signed in: rendered with the user's own votes
    _, store = site_store
    with store.write() as w:
        w.insert([Paper(id="t:cached-new", title="A freshly ingested cache test paper", announced=date(2026, 6, 30))])
    assert "A freshly ingested cache test paper" in reader.get(url).text
    trending_before = reader.get("/trending").text
    assert voter.delete(f"/api/papers/{pid}/upvote", headers={"X-CSRF-Token": token}).json()["voted"] is False
    assert reader.get("/trending").text != trending_before


def test_login_logout_and_duplicate_names(client: TestClient, app: FastAPI) -> None:
    _signup(client, "bob")
    token = _csrf(client.get("/").text)
    assert client.post("/logout", data={"csrf_token": token}, follow_redirects=False).status_code == 303
    assert client.get("/api/me").json()["username"] is None
    other = TestClient(app)
    token = _csrf(other.get("/login").text)
    wrong = other.post("/login", data={"username": "bob", "password": "nope-nope", "csrf_token": token})
    assert wrong.status_code == 401 and "wrong user name or password" in wrong.text
    ok = other.post(
        "/login", data={"username": "bob", "password": "correct horse", "csrf_token": token}, follow_redirects=False
    )
    assert ok.status_code == 303
    third = TestClient(app)
    token = _csrf(third.get("/signup").text)
    dup = third.post("/signup", data={"username": "bob", "password": "another one", "csrf_token": token})
    assert dup.status_code == 409 and "taken" in dup.text
    short = third.post("/api/auth/signup", json={"username": "b!", "password": "x"})
    assert short.status_code == 422


def test_admin_hides_and_others_cannot(client: TestClient, app: FastAPI, site_store: tuple[Settings, Store]) -> None:
    accounts = Accounts(site_store[1])
    admin_name = "alice" if accounts.user_by_name("alice") else None
    if admin_name is None:  # run alone: the first account is the admin
        _signup(client, "alice")
    else:
        token = _csrf(client.get("/login").text)
        client.post("/login", data={"username": "alice", "password": "correct horse", "csrf_token": token})
    assert client.get("/api/me").json()["is_admin"]
    pid = client.get("/api/daily_papers", params={"date": "2026-06-26", "limit": 1}).json()["items"][0]["id"]
    token = client.get("/api/me").json()["csrf_token"]
    r = client.post(f"/api/papers/{pid}/hide", json={"hidden": True}, headers={"X-CSRF-Token": token})
    assert r.status_code == 200
    anon = TestClient(app)
    assert anon.get(f"/api/papers/{pid}").status_code == 404
    assert pid not in [
        i["id"]
        for i in anon.get("/api/daily_papers", params={"date": "2026-06-26", "limit": 100, "offset": 0}).json()["items"]
    ]
    user = TestClient(app)
    utoken = _signup(user, "carol")
    assert (
        user.post(f"/api/papers/{pid}/hide", json={"hidden": False}, headers={"X-CSRF-Token": utoken}).status_code
        == 403
    )
    client.post(f"/api/papers/{pid}/hide", json={"hidden": False}, headers={"X-CSRF-Token": token})
    assert anon.get(f"/api/papers/{pid}").status_code == 200


def test_one_vote_per_user_per_paper_in_the_store(store: Store) -> None:
    from sqlalchemy.exc import IntegrityError

    with store.write() as w:
        w.insert([Paper(id="2501.00001", title="A")])
    accounts = Accounts(store)
    user = accounts.create_user("dora", "hash")
    assert user.is_admin
    assert accounts.vote(user.id, "2501.00001") == 1 and accounts.vote(user.id, "2501.00001") == 1
    with pytest.raises(IntegrityError), store.write() as w:
        w.conn.execute(
            accounts.votes.insert().values(user_id=user.id, paper_id="2501.00001", created_at=datetime.now(UTC))
        )
    assert accounts.counts(["2501.00001"]) == {"2501.00001": 1}
    assert not accounts.create_user("eve", "hash").is_admin


# -- trending -----------------------------------------------------------------------------------


def test_trending_formula() -> None:
    assert trending_score(10, 0, 1.8) == pytest.approx(10 / 2**1.8)
    assert trending_score(10, 22, 1.8) == pytest.approx(10 / 24**1.8)
    assert trending_score(10, -5) == trending_score(10, 0)  # clock skew never boosts
    assert trending_score(100, 48) < trending_score(20, 0)  # fresh beats old-but-popular
    assert trending_score(0, 1) == 0


def test_trending_ranks_with_decay(sqlite_store: Store) -> None:
    with sqlite_store.write() as w:
        w.insert(
            [
                Paper(id="2601.00001", title="old favourite", featured=date(2026, 1, 1), upvotes=100),
                Paper(id="2601.00002", title="fresh", featured=date(2026, 1, 3), upvotes=20),
                Paper(id="2601.00003", title="fresh, fewer", featured=date(2026, 1, 3), upvotes=5),
                Paper(id="2601.00004", title="too old", featured=date(2025, 12, 1), upvotes=900),
            ]
        )
    now = datetime(2026, 1, 3, 12, tzinfo=UTC)
    items = trending(sqlite_store, Accounts(sqlite_store), gravity=1.8, days=7, now=now)
    # 20/14^1.8 = 0.173 > 100/62^1.8 = 0.059 > 5/14^1.8 = 0.043; the 900-vote paper is outside the window
    assert [i.paper.id for i in items] == ["2601.00002", "2601.00001", "2601.00003"]
    assert items[0].score == pytest.approx(20 / (12 + 2) ** 1.8)


# -- submit ---------------------------------------------------------------------------------------


@pytest.fixture
def arxiv_server() -> Iterator[str]:
    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            body = (FIXTURES / "arxiv" / "api_idlist.xml").read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/atom+xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(FIXTURES)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/query"
    server.shutdown()


def test_submit_fetches_from_arxiv(tmp_path: Path, arxiv_server: str) -> None:
    settings = Settings(home=tmp_path / "h", secret_key="s", arxiv_api_url=arxiv_server)
    store = Store.open(settings.store_url)
    with TestClient(create_app(settings, store)) as client:
        token = _signup(client, "sub")
        r = client.post(
            "/api/submit", json={"id": "https://arxiv.org/abs/0704.0001v2"}, headers={"X-CSRF-Token": token}
        )
        assert r.status_code == 201, r.text
        assert r.json()["added"] and r.json()["paper"]["title"].startswith("Calculation of prompt diphoton")
        again = client.post("/submit", data={"arxiv": "0704.0001", "csrf_token": token}, follow_redirects=False)
        assert again.status_code == 303 and again.headers["location"] == "/papers/0704.0001"
        bad = client.post("/submit", data={"arxiv": "not an id", "csrf_token": token})
        assert bad.status_code == 422 and "not an arXiv id" in bad.text
    store.close()


def test_submit_without_network_says_so(client: TestClient) -> None:
    token = _signup(client, "offline")
    r = client.post("/submit", data={"arxiv": "2401.99999", "csrf_token": token})
    assert r.status_code == 502 and "could not fetch 2401.99999 from arXiv" in r.text
    api = client.post("/api/submit", json={"id": "2401.99999"}, headers={"X-CSRF-Token": token})
    assert api.status_code == 502 and api.json()["error"]["code"] == "upstream_unavailable"


# -- operations -----------------------------------------------------------------------------------


def test_healthz_openapi_headers_and_access_log(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="papersift.access"):
        r = client.get("/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    record = json.loads([rec.message for rec in caplog.records if rec.name == "papersift.access"][-1])
    assert record["path"] == "/healthz" and record["status"] == 200 and record["ms"] >= 0
    assert "default-src 'self'" in r.headers["content-security-policy"]
    spec = client.get("/api/openapi.json").json()
    for path in ["/api/daily_papers", "/api/papers/search", "/api/papers/{paper_id}", "/api/submit"]:
        assert path in spec["paths"], path
    static = client.get("/static/app.css")
    assert static.status_code == 200 and "immutable" in static.headers["cache-control"]


def test_behind_a_proxy_under_a_path(site_store: tuple[Settings, Store]) -> None:
    settings = site_store[0].model_copy(update={"base_url": "https://example.org/papers"})
    client = TestClient(create_app(settings, site_store[1]), base_url="https://example.org")
    r = client.get("/papers/")
    assert r.status_code == 200
    assert 'href="/papers/static/app.css' in r.text and 'href="/papers/trending"' in r.text
    assert "secure" in r.headers["set-cookie"].lower() and "httponly" in r.headers["set-cookie"].lower()
    assert client.get("/papers/api/papers/2606.25042").json()["url"] == "/papers/papers/2606.25042"


def test_search_answers_at_once_and_turns_hybrid_when_vectors_arrive(tmp_path: Path) -> None:
    """The server never waits for embeddings: BM25 answers, a background thread embeds, fusion follows."""
    settings = Settings(home=tmp_path, secret_key="s", embedder="hash:128")
    store = Store.open(settings.store_url)
    ingest(store, str(SAMPLE / "hf_featured_sample.jsonl.gz"))
    with TestClient(create_app(settings, store)) as client:
        site = client.app.state.site  # type: ignore[attr-defined]
        first = client.get("/api/papers/search", params={"q": "diffusion", "limit": 5})
        assert first.status_code == 200 and first.json()["items"]
        assert site.wait_for_vectors(60), "the background embedder did not finish"
        assert client.get("/healthz").json()["vectors_pending"] == 0
        assert site.search.dense is not None and len(site.search.dense) == store.count()
        assert client.get("/api/papers/search", params={"q": "diffusion", "limit": 5}).json()["items"]
        with store.write() as w:
            w.insert([Paper(id="t:late", title="Late diffusion paper", announced=date(2026, 7, 1))])
        site.sync_index()
        dense = site.search.dense  # behind the store it is set aside, never fused while missing papers
        assert dense is None or dense.vector_of("t:late") is not None
        assert "t:late" in [
            i["id"] for i in client.get("/api/papers/search", params={"q": "late diffusion"}).json()["items"]
        ]
        assert site.wait_for_vectors(60) and site.search.dense is not None
        assert site.search.dense.vector_of("t:late") is not None
    store.close()
