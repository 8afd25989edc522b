"""Learned curation: no leakage in the features, the benchmark on a slice of the real data, the model in the
product (trained from a real store, versioned on disk), curated order with picks and reasons in the API,
the admin "feature" action, and the Hugging Face harvest resuming on recorded responses."""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import numpy as np
import orjson
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from papersift import curate
from papersift.bench import curation as bench
from papersift.cli import main
from papersift.ingest import ingest_records
from papersift.models import Paper
from papersift.rank.curation import Params, Recent, build_days, make_vectorizer
from papersift.rank.features import META_NAMES, Featuring, History, Listed, author_key, known_day
from papersift.settings import Settings
from papersift.store import Store
from papersift.store.accounts import Accounts
from papersift.store.curation import Curation
from papersift.web import create_app

from .conftest import FIXTURES, shared
from .live_server import ARGS, CHROMIUM, DESKTOP, PHONE, live_server

FIRST = date(2025, 3, 3)
DAYS = 12
STARS = [f"Star Author {i}" for i in range(5)]


def synthetic(days: int = DAYS, per_day: int = 30, seed: int = 3) -> list[Paper]:
    """A small listing whose featured papers follow the two signals the model should learn: a few authors
    who are featured again and again, and a topic in fashion. Noise keeps it from being separable."""
    rng = random.Random(seed)
    others = [f"Author {i}" for i in range(400)]
    hot = ["video", "diffusion", "agent", "reasoning", "benchmark", "multimodal"]
    cold = ["channel", "antenna", "estimation", "spectrum", "protocol", "decoding"]
    papers = []
    for d in range(days):
        day = FIRST + timedelta(days=d)
        for i in range(per_day):
            star = i < 5
            authors = [rng.choice(STARS), *rng.sample(others, 3)] if star else rng.sample(others, rng.randint(1, 6))
            words = hot if (star or rng.random() < 0.1) else cold
            title = f"{rng.choice(words).title()} {rng.choice(words)} study {d}-{i}"
            abstract = " ".join(rng.choice([*words, "model", "method", "results", "data"]) for _ in range(60))
            featured = day if (star and rng.random() < 0.8) or (not star and rng.random() < 0.02) else None
            papers.append(
                Paper(
                    id=f"2503.{d:02d}{i:03d}",
                    title=title,
                    abstract=abstract + (" Code: https://github.com/lab/repo" if star else ""),
                    authors=authors,
                    categories=["cs.CV" if star else "cs.IT"],
                    announced=day,
                    featured=featured,
                    upvotes=0,
                    source="jsonl",
                )
            )
    return papers


# -- no leakage --------------------------------------------------------------------------------------------------


def test_history_counts_only_what_was_known_before_the_day() -> None:
    day = date(2025, 5, 10)
    # featured two days before its own listing on `day`: it may not count for `day` (its own label)
    own = Featuring("a", known_day(day - timedelta(days=2), day) or day, ("Ada",))
    earlier = Featuring("b", date(2025, 5, 1), ("Ada", "Bo"))
    same_day = Featuring("c", day, ("Bo",))
    history = History([own, earlier, same_day], [(date(2025, 5, 1), ("Ada",)), (day, ("Ada",))])
    history.advance(day)
    assert history.featured == Counter({"ada": 1, "bo": 1})
    assert history.listed == Counter({"ada": 1})
    assert history.featured_papers(["ADA ", "bo"]) == 1
    history.advance(day + timedelta(days=1))
    assert history.featured_papers(["Ada", "Bo"]) == 3
    with pytest.raises(ValueError, match="cannot go back"):
        history.advance(day)


def test_track_record_features_of_day_d_use_only_days_before_d() -> None:
    papers = synthetic()
    listed = [Listed(p.id, p.announced, p.title, p.abstract, tuple(p.authors)) for p in papers if p.announced]
    featurings = [
        Featuring(p.id, known_day(p.featured, p.announced) or FIRST, tuple(p.authors)) for p in papers if p.featured
    ]
    by_day: dict[date, list[Listed]] = {}
    for item in listed:
        by_day.setdefault(item.day, []).append(item)
    vectorizer = make_vectorizer().fit([p.text for p in listed])
    recent = Recent([f.known for f in featurings], vectorizer.transform([p.text for p in listed[: len(featurings)]]))
    history = History(featurings, [(p.day, p.authors) for p in listed])
    days = build_days(list(by_day.items()), history, vectorizer, recent)
    column = META_NAMES.index("featured_sum")
    checked = 0
    for built in days:
        for row, paper in zip(built.meta, built.papers, strict=True):
            names = {author_key(a) for a in paper.authors}
            # brute force: every featuring whose known day is before D, by any of the paper's authors
            expected = sum(
                sum(1 for a in {author_key(x) for x in f.authors} if a in names)
                for f in featurings
                if f.known < built.day
            )
            assert row[column] == expected, (built.day, paper.id)
            checked += expected > 0
    assert checked > 20  # the star authors' papers after the first day carry a record
    assert all(d.meta[:, column].sum() == 0 for d in days[:1])  # nothing is known on the first day


# -- the benchmark -----------------------------------------------------------------------------------------------


def test_bench_on_a_slice_prints_the_json_line_and_beats_random(capsys: pytest.CaptureFixture[str]) -> None:
    listings = shared("arxiv_daily/arxiv_daily_2025-2026.jsonl.gz")
    featured = shared("hf_daily_papers/hf_daily_featured_papers.jsonl.gz")
    summary = bench.main(listings, featured, [date(2025, 4, 4)], limit_days=16, grid=(Params(rounds=40),))
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last == summary
    assert set(last["baselines"]) == {"random", "team size", "track record", "logistic tf-idf + metadata"}
    for figures in [last, *last["baselines"].values()]:
        assert 0 <= figures["p@10"] <= 1 and 0 <= figures["ndcg@20"] <= 1
    assert last["p@10"] > last["baselines"]["random"]["p@10"] + 0.1
    assert last["ndcg@20"] > last["baselines"]["random"]["ndcg@20"] + 0.1


# -- the model in the product ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Store, curate.TrainReport]]:
    settings = Settings(home=tmp_path_factory.mktemp("curate"), secret_key="curation-test", curate_every=0)
    store = Store.open(settings.store_url)
    ingest_records(store, synthetic())
    report = curate.train(settings, store, Params(rounds=80))
    _signup(TestClient(create_app(settings, store)), "editor")  # the first account: the site's admin
    yield settings, store, report
    store.close()


def test_training_saves_a_version_and_scores_every_day(trained: tuple[Settings, Store, curate.TrainReport]) -> None:
    settings, store, report = trained
    assert report.days == DAYS and report.papers == DAYS * 30 and report.scored == DAYS * 30
    assert report.seconds > 0 and report.peak_rss_mb > 0
    assert curate.current_version(settings) == report.version
    folder = curate.model_root(settings) / report.version
    assert {p.name for p in folder.iterdir()} >= {"ranker.txt", "vocabulary.json", "idf.npy", "model.json"}
    loaded = curate.load(settings)
    assert loaded is not None
    curator, meta = loaded
    assert meta["version"] == report.version and meta["positives"] > 0
    # the model read back from disk ranks exactly as the one that was saved: its stored picks
    data = curate.load_data(store, Accounts(store), Curation(store))
    last = max(data.days)
    days, _ = curate._features(data, curator.vectorizer, [last], labels=False)
    order = [days[0].papers[i].id for i in np.argsort(-curator.score(days[0]), kind="stable")]
    stored = Curation(store).listing(Accounts(store), last, last, limit=curate.PICKS_PER_DAY)[0]
    assert [c.paper.id for c in stored] == order[: curate.PICKS_PER_DAY]
    # nothing changed: refresh keeps the version and scores nothing new
    assert "scored 0 papers" in curate.refresh(settings, store)
    assert curate.current_version(settings) == report.version


def test_picks_are_the_featured_kind_with_reasons(trained: tuple[Settings, Store, curate.TrainReport]) -> None:
    _, store, _ = trained
    last = FIRST + timedelta(days=DAYS - 1)
    rows, total = Curation(store).listing(Accounts(store), last, last, limit=30)
    assert total == 30
    picks = [c for c in rows if c.pick]
    assert len(picks) == curate.PICKS_PER_DAY and rows[: len(picks)] == picks
    stars = {c.paper.id for c in rows if set(c.paper.authors) & set(STARS)}
    assert {c.paper.id for c in picks[:5]} == stars  # the five papers by often-featured authors lead
    for c in picks[:5]:
        assert c.reason.startswith("authors featured ") and " times before" in c.reason
    assert all(c.reason for c in picks) and not any(c.reason for c in rows if not c.pick)
    assert any("has code" in c.reason or "close to featured papers on" in c.reason for c in picks)


@pytest.fixture
def client(trained: tuple[Settings, Store, curate.TrainReport]) -> TestClient:
    settings, store, _ = trained
    return TestClient(create_app(settings, store), raise_server_exceptions=False)


def _signup(client: TestClient, name: str) -> str:
    r = client.post("/api/auth/signup", json={"username": name, "password": "correct horse"})
    if r.status_code == 409:
        r = client.post("/api/auth/login", json={"username": name, "password": "correct horse"})
    assert r.status_code in (200, 201), r.text
    return str(client.get("/api/me").json()["csrf_token"])


def test_api_daily_is_curated_by_default_and_votes_still_lift(
    client: TestClient, trained: tuple[Settings, Store, curate.TrainReport]
) -> None:
    day = (FIRST + timedelta(days=DAYS - 2)).isoformat()
    body = client.get("/api/daily_papers", params={"date": day, "limit": 30}).json()
    assert body["sort"] == "curated"
    items = body["items"]
    assert [i["pick"] for i in items] == [True] * curate.PICKS_PER_DAY + [False] * (30 - curate.PICKS_PER_DAY)
    assert all(i["pick_reason"] for i in items[: curate.PICKS_PER_DAY])
    assert client.get("/api/daily_papers", params={"date": day, "sort": "votes"}).json()["sort"] == "votes"
    bad = client.get("/api/daily_papers", params={"date": day, "sort": "best"})
    assert bad.status_code == 422 and bad.json()["error"]["code"]
    # a paper at the bottom of the model's order with four votes rises above every other non-pick
    last = items[-1]["id"]
    accounts = Accounts(trained[1])
    for n in range(4):
        user = accounts.create_user(f"voter{n}-{last}", "hash")
        accounts.vote(user.id, last)
    lifted = client.get("/api/daily_papers", params={"date": day, "limit": 30, "sort": "curated"}).json()["items"]
    assert lifted[curate.PICKS_PER_DAY]["id"] == last and lifted[curate.PICKS_PER_DAY]["votes"] == 4
    # the page shows the same: picks marked, each with its one-line reason
    html = client.get("/", params={"date": day}).text
    assert html.count('class="badge pick"') == curate.PICKS_PER_DAY and html.count('class="why"') == 10
    assert "picks first" in html


def test_admin_feature_needs_admin_and_csrf_and_becomes_a_training_positive(
    trained: tuple[Settings, Store, curate.TrainReport],
) -> None:
    settings, store, _ = trained
    app = create_app(settings, store)
    admin, other = TestClient(app), TestClient(app)
    admin_token = _signup(admin, "editor")
    assert admin.get("/api/me").json()["is_admin"]
    other_token = _signup(other, "reader")
    day = FIRST + timedelta(days=DAYS - 1)
    items = admin.get("/api/daily_papers", params={"date": day.isoformat(), "limit": 30}).json()["items"]
    target = items[-1]["id"]
    url = f"/api/papers/{target}/feature"
    assert other.post(url, json={"featured": True}, headers={"X-CSRF-Token": other_token}).status_code == 403
    no_csrf = admin.post(url, json={"featured": True})
    assert no_csrf.status_code == 403 and no_csrf.json()["error"]["code"]
    assert admin.post(url, json={"featured": "maybe"}, headers={"X-CSRF-Token": admin_token}).status_code == 422
    missing = admin.post("/api/papers/2503.99999/feature", json={}, headers={"X-CSRF-Token": admin_token})
    assert missing.status_code == 404 and missing.json()["error"]["code"]
    ok = admin.post(url, json={"featured": True}, headers={"X-CSRF-Token": admin_token})
    assert ok.status_code == 200 and ok.json() == {"id": target, "featured": True}
    first = admin.get("/api/daily_papers", params={"date": day.isoformat()}).json()["items"][0]
    assert first["id"] == target and first["pick"] and first["pick_reason"] == "featured by the editors"
    data = curate.load_data(store, Accounts(store), Curation(store))
    assert target in data.positives and any(f.id == target for f in data.featurings)
    # the page form: same checks, then the paper page offers to un-feature it
    page = admin.get(f"/papers/{target}")
    assert "Un-feature" in page.text
    assert admin.post(f"/papers/{target}/feature", data={"featured": "0"}).status_code == 403  # no CSRF token
    done = admin.post(
        f"/papers/{target}/feature", data={"featured": "0", "csrf_token": admin_token}, follow_redirects=False
    )
    assert done.status_code == 303 and not Curation(store).picked([target])


# -- the Hugging Face harvest ------------------------------------------------------------------------------------


@pytest.fixture
def hf_days() -> Iterator[tuple[str, list[str]]]:
    """A daily_papers API that answers each ?date= with the recorded response, re-dated to that day."""
    items = orjson.loads((FIXTURES / "files" / "hf_daily_papers_api.json").read_bytes())
    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            query = dict(parse_qsl(urlsplit(self.path).query))
            day = query.get("date", "")
            asked.append(day)
            page = [] if query.get("p", "0") != "0" else items
            body = [
                {**it, "paper": {**it["paper"], "id": it["paper"]["id"][:-2] + day[-2:], "submittedOnDailyAt": day}}
                for it in page
                if day != "2025-01-04"  # a weekend day without papers
            ]
            data = orjson.dumps(body)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/daily_papers", asked
    server.shutdown()
    server.server_close()


def _run(home: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["--home", str(home), *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_hf_harvest_resumes_from_the_newest_featured_day(tmp_path: Path, hf_days: tuple[str, list[str]]) -> None:
    endpoint, asked = hf_days
    home = tmp_path / "h"
    code, _, err = _run(home, "harvest", "--hf-daily", "--hf-endpoint", endpoint)
    assert code == 2 and "first --hf-daily harvest needs --from" in err
    code, _, err = _run(home, "harvest", "--hf-daily", "--hf-endpoint", endpoint, "--from", "2025-01-02",
                          "--until", "2025-01-03")  # fmt: skip
    assert code == 0, err
    assert asked == ["2025-01-02", "2025-01-03"]
    store = Store.open(Settings(home=home).store_url)
    try:
        featured = [p for p in store.iter_papers() if p.featured]
        assert {p.featured for p in featured} == {date(2025, 1, 2), date(2025, 1, 3)}
        assert all(p.upvotes >= 0 for p in featured) and max(p.upvotes for p in featured) > 0
    finally:
        store.close()
    asked.clear()
    code, _, err = _run(home, "harvest", "--hf-daily", "--hf-endpoint", endpoint, "--until", "2025-01-05")
    assert code == 0, err
    assert asked == ["2025-01-03", "2025-01-04", "2025-01-05"]  # the newest stored day again, then onwards
    code, _, err = _run(home, "harvest", "--hf-daily", "--hf-endpoint", endpoint, "--until", "2024-12-01")
    assert code == 2 and "before the first day" in err


# -- the daily page in Chromium ----------------------------------------------------------------------------------

PICKS_ON_PAGE = """() => {
  const box = (el) => { const r = el.getBoundingClientRect(); return {x: r.x, w: r.width, h: r.height}; };
  const cards = [...document.querySelectorAll('article.card')];
  return {vw: innerWidth, scroll: document.documentElement.scrollWidth,
          picks: cards.filter((c) => c.querySelector('.badge.pick')).length,
          first: cards.slice(0, 10).map((c) => !!c.querySelector('.badge.pick')),
          reasons: [...document.querySelectorAll('article.card .why')]
            .map((el) => ({text: el.textContent, ...box(el)}))};
}"""


@pytest.mark.parametrize(("name", "device"), [("phone", PHONE), ("desktop", DESKTOP)])
def test_daily_page_shows_picks_with_reasons_at_phone_and_desktop_widths(
    trained: tuple[Settings, Store, curate.TrainReport], name: str, device: dict[str, object]
) -> None:
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed")
    settings, store, _ = trained
    day = (FIRST + timedelta(days=DAYS - 3)).isoformat()
    with live_server(settings, store) as url, playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_context(**device).new_page()
            page.goto(f"{url}/?date={day}")
            m = page.evaluate(PICKS_ON_PAGE)
            assert m["scroll"] <= m["vw"], "the page scrolls sideways"
            assert m["picks"] == curate.PICKS_PER_DAY and all(m["first"])
            assert len(m["reasons"]) == curate.PICKS_PER_DAY
            for reason in m["reasons"]:
                assert reason["text"].strip() and reason["h"] > 0
                assert reason["x"] >= 0 and reason["x"] + reason["w"] <= m["vw"] + 0.5
            assert page.locator("article.card .why").first.is_visible()
            page.screenshot(path=f"/tmp/curation_{name}_daily.png")
            # the order switch: votes first, no picks marked
            page.locator(".sortseg a", has_text="votes").click()
            page.wait_for_url("**sort=votes**")
            assert page.locator("article.card .badge.pick").count() == 0
        finally:
            browser.close()
