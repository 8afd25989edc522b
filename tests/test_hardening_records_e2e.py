"""Item 6 in a real browser: the vote button of a paper whose stored id climbs out of its path must vote for
that paper, not POST (with the CSRF token) to another endpoint such as sign-out. Real uvicorn + Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from papersift.models import Paper
from papersift.settings import Settings
from papersift.store import Store

from .live_server import live_server
from .test_web_e2e import ARGS, CHROMIUM, playwright_api

POISONED = "doi:10.1234/../../../api/auth/logout#"  # a row stored before ingest checked ids
OLD_STYLE = "hep-th/9901001"
DAY = date(2026, 5, 4)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home: Path = tmp_path_factory.mktemp("e2e-records")
    settings = Settings(home=home, secret_key="e2e-records-secret")
    store = Store.open(settings.store_url)
    with store.write() as w:
        w.insert([Paper(id=pid, title=f"Paper {pid}", announced=DAY) for pid in (POISONED, OLD_STYLE)])
    with live_server(settings, store) as url:
        yield url
    store.close()


def test_vote_buttons_post_to_their_own_paper_only(server: str) -> None:
    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page()
        page.set_default_timeout(90_000)
        posts: list[str] = []
        page.on("request", lambda r: posts.append(r.url) if r.method in ("POST", "DELETE") else None)
        page.goto(server + "/signup")
        page.fill("input[name=username]", "voter")
        page.fill("input[name=password]", "a long password")
        page.locator("button[type=submit]", has_text="Sign up").click()
        page.wait_for_url(server + "/")
        page.goto(f"{server}/?date={DAY.isoformat()}")
        for pid in (POISONED, OLD_STYLE):
            form = page.locator(f'form.vote[data-id="{pid}"]')
            with page.expect_response(lambda r: r.request.method == "POST") as response:
                form.locator(".vote-btn").click()
            assert response.value.url.endswith("/upvote") and response.value.status == 200, (pid, response.value.url)
            form.locator(".vote-btn.on").wait_for()  # a selector wait: no script for the CSP to refuse
        me = page.evaluate("fetch('/api/me').then(r => r.json())")
        browser.close()
    assert me.get("username") == "voter", me  # the poisoned id's vote did not sign us out
    votes = [u for u in posts if "/upvote" in u]
    assert len(votes) == 2 and all(u.startswith(server + "/api/papers/") for u in votes), posts
    assert not any("/auth/logout" in u for u in posts), posts
