"""Issue 11 points 8 and 11: the "new" badge, `stats` date ranges and where the CLI finds its home."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from papersift import feed
from papersift.cli import main
from papersift.ingest import ingest
from papersift.settings import Settings, find_home
from papersift.store import Store
from papersift.store.accounts import Accounts
from papersift.web import create_app

from .conftest import SAMPLE


def _listing(path: Path, days: dict[str, date]) -> Path:
    """A JSON-lines listing: one paper per id, listed on its day."""
    lines = [
        {"id": pid, "listing_date": day.isoformat(), "title": f"Paper {pid}", "authors": ["A. Author"]}
        for pid, day in days.items()
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


@pytest.fixture
def two_days(tmp_path: Path) -> Iterator[Store]:
    """Papers of two listing days long past, both ingested now (a first run on an older snapshot)."""
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    older, newest = date(2025, 3, 17), date(2025, 3, 18)
    days = {"2503.00001": older, "2503.00002": newest, "2503.00003": newest}
    ingest(store, str(_listing(tmp_path / "l.jsonl", days)))
    yield store
    store.close()


def test_new_badge_marks_the_newest_listing_day_not_the_wall_clock_day(two_days: Store, tmp_path: Path) -> None:
    accounts = Accounts(two_days)
    newest = feed.daily(two_days, accounts)
    assert {i.paper.id: i.is_new for i in newest.items} == {"2503.00002": True, "2503.00003": True}
    older = feed.daily(two_days, accounts, date(2025, 3, 17))
    assert [(i.paper.id, i.is_new) for i in older.items] == [("2503.00001", False)]
    # the same on the page: only the newest day's cards carry the badge
    with TestClient(create_app(Settings(home=tmp_path / "home"), two_days)) as client:
        assert client.get("/").text.count('class="badge new"') == 2
        assert client.get("/?date=2025-03-17").text.count('class="badge new"') == 0
    # a newer day arrives: yesterday's papers lose the badge
    ingest(two_days, str(_listing(tmp_path / "m.jsonl", {"2503.00004": date(2025, 3, 19)})))
    flags = {i.paper.id: i.is_new for i in feed.daily(two_days, accounts, date(2025, 3, 18), "week").items}
    assert flags == {"2503.00001": False, "2503.00002": False, "2503.00003": False, "2503.00004": True}


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def _sample_span(name: str, key: str) -> tuple[str, str]:
    import gzip

    with gzip.open(SAMPLE / name, "rt") as lines:
        days = sorted(json.loads(line)[key] for line in lines)
    return days[0], days[-1]


def test_stats_reports_the_date_ranges_of_the_store(tmp_path: Path) -> None:
    home = tmp_path / "h"
    assert _run("--home", str(home), "ingest", str(SAMPLE), "--quiet", "--no-index")[0] == 0
    announced = _sample_span("arxiv_daily_sample.jsonl.gz", "listing_date")
    featured = _sample_span("hf_featured_sample.jsonl.gz", "date")
    code, out, _ = _run("--home", str(home), "stats", "--json")
    figures = json.loads(out)
    assert code == 0
    assert (figures["announced_from"], figures["announced_to"]) == announced
    assert (figures["featured_from"], figures["featured_to"]) == featured
    assert figures["published_from"] is None and figures["published_to"] is None  # the sample carries none
    code, out, _ = _run("--home", str(home), "stats")
    assert f"announced:     {announced[0]} .. {announced[1]}" in out
    assert f"featured on:   {featured[0]} .. {featured[1]}" in out
    assert "published:     no dates recorded" in out and "None" not in out
    assert f"home:          {home.resolve()}" in out


def test_cli_finds_the_home_make_run_made_in_the_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    checkout = tmp_path / "checkout"
    made = checkout / ".papersift"  # what `make run` uses: HOME_DIR ?= $(CURDIR)/.papersift
    assert _run("--home", str(made), "ingest", str(SAMPLE / "hf_featured_sample.jsonl.gz"), "--quiet")[0] == 0
    (checkout / "src" / "deep").mkdir(parents=True)
    monkeypatch.delenv("PAPERSIFT_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))  # the default ~/.papersift, empty
    for where in (checkout, checkout / "src" / "deep"):
        monkeypatch.chdir(where)
        assert find_home(Path.cwd()) == made.resolve()
        code, out, _ = _run("search", "video", "--json", "-n", "3")
        assert code == 0 and len(json.loads(out)) == 3, f"no answer from {made} when run in {where}"
    # outside any checkout the default home is used; --home and PAPERSIFT_HOME still win over the search
    monkeypatch.chdir(tmp_path)
    assert find_home(tmp_path) is None
    assert "home:          " + str(tmp_path / "user" / ".papersift") in _run("stats")[1]
    monkeypatch.chdir(checkout)
    assert "papers:        0 " in _run("--home", str(tmp_path / "other"), "stats")[1]
    monkeypatch.setenv("PAPERSIFT_HOME", str(tmp_path / "env"))
    assert f"home:          {tmp_path / 'env'}" in _run("stats")[1]


def test_home_search_survives_a_deleted_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()  # a shell still sitting in a directory another process removed
    monkeypatch.delenv("PAPERSIFT_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    code, out, _ = _run("stats")
    assert code == 0 and f"home:          {tmp_path / 'user' / '.papersift'}" in out
