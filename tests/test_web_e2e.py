"""End to end: a real uvicorn server on loopback, driven by a real headless Chromium (Debian's)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from papersift.ingest import ingest
from papersift.settings import Settings
from papersift.store import Store

from .conftest import REPO, SAMPLE
from .live_server import live_server

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

playwright_api = pytest.importorskip("playwright.sync_api")
if not CHROMIUM.exists():
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("e2e")
    settings = Settings(home=home, secret_key="e2e-secret")
    store = Store.open(settings.store_url)
    for path in sorted(SAMPLE.iterdir()):
        ingest(store, str(path))
    with live_server(settings, store) as url:
        yield url
    store.close()


@pytest.fixture(scope="module")
def browser(server: str) -> Iterator[object]:
    with playwright_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


def _shot(page: object, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=False)  # type: ignore[attr-defined]


def test_read_search_sign_up_upvote_and_persist(server: str, browser: object) -> None:
    context = browser.new_context(viewport={"width": 1200, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    page.set_default_timeout(90_000)  # the machine is shared and slow at times; a hang still fails
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    page.goto(server + "/")
    assert "Papers of Wednesday, July 1, 2026" in page.locator("h1").inner_text()
    assert page.locator("article.card").count() == 50
    _shot(page, "daily")

    # keyboard: j selects the first card, a opens its abstract, [ goes to the previous day
    page.keyboard.press("j")
    assert page.locator("article.card.sel").count() == 1
    page.keyboard.press("a")
    assert page.locator("article.card.sel details[open]").count() == 1
    page.keyboard.press("[")
    page.wait_for_url("**date=2026-06-30**")

    page.keyboard.press("/")
    page.keyboard.type("diffusion video generation")
    page.keyboard.press("Enter")
    page.wait_for_url("**/search?q=diffusion**")
    assert page.locator("article.card").count() > 5
    assert page.locator("mark").count() > 0
    _shot(page, "search")

    page.locator("article.card h2 a").first.click()
    page.wait_for_url("**/papers/**")
    assert page.locator("h2", has_text="Related papers").count() == 1  # the heading (abstracts may say it too)
    paper_url = page.url
    _shot(page, "paper")

    # upvoting signed out goes to sign-in, which comes back here after sign-up
    page.locator(".paperhead .vote-btn").click()
    page.wait_for_url("**/login?next=**")
    page.locator("text=Create an account").click()
    page.fill("input[name=username]", "reader")
    page.fill("input[name=password]", "a long password")
    _shot(page, "signup")
    page.locator("button[type=submit]", has_text="Sign up").click()
    page.wait_for_url(paper_url)
    button = page.locator(".paperhead .vote-btn")
    before = int(button.locator(".count").inner_text())
    button.click()
    page.locator(".paperhead .vote-btn.on").wait_for()  # a selector wait: no script for the CSP to refuse
    assert int(button.locator(".count").inner_text()) == before + 1
    _shot(page, "paper-upvoted")

    page.reload()
    assert int(page.locator(".paperhead .vote-btn .count").inner_text()) == before + 1
    assert page.locator(".paperhead .vote-btn").get_attribute("aria-pressed") == "true"

    page.goto(server + "/trending")
    assert page.locator("article.card").count() == 1
    _shot(page, "trending")
    assert not errors, errors

    dark = browser.new_context(viewport={"width": 1200, "height": 900}, color_scheme="dark")  # type: ignore[attr-defined]
    dpage = dark.new_page()
    dpage.goto(server + "/")
    _shot(dpage, "daily-dark")
    dark.close()
    context.close()
