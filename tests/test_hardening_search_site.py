"""Issue 10, items 7 and 19: requests never wait for index work (it runs in the site's background thread), and
a keyword index damaged mid-file is detected, reported by /healthz and rebuilt, with no 500 meanwhile."""

from __future__ import annotations

import random
import re
import threading
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from papersift.cli import main
from papersift.index.keyword import IndexDamaged, KeywordIndex
from papersift.index.lock import index_lock
from papersift.ingest import ingest
from papersift.models import Paper
from papersift.settings import Settings
from papersift.store import Store
from papersift.web import create_app

from .conftest import SAMPLE

GENEROUS = 60.0  # only so a regression fails instead of hanging the suite; nothing here is timed


@pytest.fixture
def home(tmp_path: Path) -> Settings:
    """A home with the sample corpus and its keyword index built (as `papersift ingest` leaves it)."""
    settings = Settings(home=tmp_path / "home", secret_key="s", embedder="none")
    store = Store.open(settings.store_url)
    ingest(store, str(SAMPLE / "hf_featured_sample.jsonl.gz"))
    KeywordIndex.open(settings.index_dir / "keyword", store)
    store.close()
    return settings


def _damage(directory: Path, seed: int = 7, spots: int = 1) -> None:
    """Random bytes inside every .term file (the middle, or `spots` places spread over its body), written in
    place: the server maps these files. Which searches then fail depends on where the damage lands."""
    rng = random.Random(seed)
    for term in sorted(directory.glob("*.term")):
        size = term.stat().st_size
        with term.open("r+b") as handle:
            for k in range(1, spots + 1):
                at = size * k // (spots + 1)
                handle.seek(max(0, at - 100))
                handle.write(rng.randbytes(min(200, max(1, size - 200 - at))))


def _damage_until_searches_fail(directory: Path, store: Store) -> tuple[KeywordIndex, list[str]]:
    """Damage the files until some searches hit it (random bytes may land where no query reads); returns the
    index and the words whose searches raised IndexDamaged. Every other search must still succeed."""
    index = KeywordIndex.open(directory, store)
    for seed in range(20):
        _damage(directory, seed=seed, spots=4)
        hurt = []
        for word in _words(store):
            try:
                index.search(word)
            except IndexDamaged:
                hurt.append(word)
        if hurt:
            return index, hurt
    raise AssertionError("no search ever read the damaged bytes")


def _words(store: Store) -> list[str]:
    return sorted({w for p in store.iter_papers() for w in re.findall(r"[a-z]{4,}", p.title.lower())})


def _get_in_thread(client: TestClient, url: str, **params: str) -> dict[str, object]:
    out: dict[str, object] = {}

    def run() -> None:
        r = client.get(url, params=params)
        out["status"], out["body"] = r.status_code, r.json()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(GENEROUS)
    out["returned"] = not thread.is_alive()
    return out


# -- item 19: a request never waits for indexing ---------------------------------------------------------


def test_search_answers_while_another_process_holds_the_index_lock(home: Settings) -> None:
    store = Store.open(home.store_url)
    with store.write() as w:  # a cron ingest wrote papers and is indexing them, holding the lock
        w.insert([Paper(id="t:late-arrival", title="Zeppelin navigation for parcels", announced=date(2026, 7, 2))])
    with index_lock(home.index_dir / "keyword"), TestClient(create_app(home, store)) as client:
        first = _get_in_thread(client, "/api/papers/search", q="diffusion")
        assert first["returned"], "the request waited for the index lock"
        assert first["status"] == 200 and first["body"]["items"]  # type: ignore[index]
        later = _get_in_thread(client, "/api/papers/search", q="zeppelin")
        assert later["returned"] and later["status"] == 200  # the last finished state: not indexed yet
        health = _get_in_thread(client, "/healthz")
        assert health["returned"] and health["status"] == 200
    with TestClient(create_app(home, store)) as client:
        site = client.app.state.site  # type: ignore[attr-defined]
        assert site.sync_index(GENEROUS)
        ids = [i["id"] for i in client.get("/api/papers/search", params={"q": "zeppelin"}).json()["items"]]
        assert ids == ["t:late-arrival"]
    store.close()


def test_local_writes_wake_the_index_thread(home: Settings) -> None:
    store = Store.open(home.store_url)
    with TestClient(create_app(home, store)) as client:
        site = client.app.state.site  # type: ignore[attr-defined]
        assert site.sync_index(GENEROUS)
        with store.write() as w:
            w.insert([Paper(id="t:woken", title="Quokka population census", announced=date(2026, 7, 2))])
        site.changed()
        assert site.sync_index(GENEROUS)
        assert [i["id"] for i in client.get("/api/papers/search", params={"q": "quokka"}).json()["items"]] == [
            "t:woken"
        ]
    store.close()


# -- item 7: damaged keyword index files ----------------------------------------------------------------


def test_damaged_term_files_fail_searches_only_with_index_damaged(home: Settings) -> None:
    store = Store.open(home.store_url)
    assert KeywordIndex.open(home.index_dir / "keyword", store).verify() is None
    index, hurt = _damage_until_searches_fail(home.index_dir / "keyword", store)
    assert hurt and index.damage and index.verify()
    rebuilt = KeywordIndex.rebuild(index.directory, store)
    assert rebuilt.verify() is None and rebuilt.num_docs == store.count()
    assert rebuilt.search(hurt[0]) is not None
    store.close()


def test_site_reports_and_rebuilds_a_damaged_index_without_a_500(home: Settings) -> None:
    store = Store.open(home.store_url)
    _damage(home.index_dir / "keyword")
    words = _words(store)
    paper_id = next(iter(store.iter_papers())).id
    held = index_lock(home.index_dir / "keyword")
    held.__enter__()  # taken before the site starts: its rebuild then waits, so we observe the site meanwhile
    with TestClient(create_app(home, store), raise_server_exceptions=False) as client:
        site = client.app.state.site  # type: ignore[attr-defined]
        try:
            health = _get_in_thread(client, "/healthz")
            for _ in range(200):  # the worker verifies the files right after opening them
                if health["status"] == 503:
                    break
                threading.Event().wait(0.05)
                health = _get_in_thread(client, "/healthz")
            assert health["status"] == 503, health
            assert health["body"]["status"] == "degraded" and "rebuilding" in health["body"]["search"]  # type: ignore[index]
            statuses = set()
            for word in words[:400]:
                r = client.get("/api/papers/search", params={"q": word})
                statuses.add(r.status_code)
                if r.status_code != 200:
                    assert r.status_code == 503 and r.json()["error"]["code"] == "search_unavailable"
                    assert "Retry-After" in r.headers
            assert statuses <= {200, 503}
            assert client.get(f"/papers/{paper_id}").status_code == 200
            assert client.get("/search", params={"q": words[0]}).status_code in {200, 503}
        finally:
            held.__exit__(None, None, None)
        assert site.sync_index(GENEROUS)
        assert client.get("/healthz").json()["status"] == "ok"
        for word in words[:400]:
            assert client.get("/api/papers/search", params={"q": word}).status_code == 200
    assert KeywordIndex.open(home.index_dir / "keyword", store).verify() is None
    store.close()


def test_cli_search_mends_a_damaged_index_instead_of_a_traceback(home: Settings) -> None:
    store = Store.open(home.store_url)
    _index, hurt = _damage_until_searches_fail(home.index_dir / "keyword", store)
    store.close()
    runner = CliRunner()
    env = {"PAPERSIFT_HOME": str(home.home_dir), "PAPERSIFT_EMBEDDER": "none"}
    mended = runner.invoke(main, ["search", hurt[0], "--json"], env=env)
    assert mended.exit_code == 0 and mended.exception is None, mended.output
    assert "rebuilding it now" in mended.stderr and "Traceback" not in mended.output
    again = runner.invoke(main, ["search", hurt[-1], "--json"], env=env)
    assert again.exit_code == 0 and "rebuilding" not in again.stderr
    clean = runner.invoke(main, ["index"], env=env)
    assert clean.exit_code == 0 and "damaged" not in clean.stderr
    _damage(home.index_dir / "keyword", seed=8)
    repaired = runner.invoke(main, ["index"], env=env)
    assert repaired.exit_code == 0 and "damaged" in repaired.stderr
    store = Store.open(home.store_url)
    assert KeywordIndex.open(home.index_dir / "keyword", store).verify() is None
    store.close()


def test_indexes_that_cannot_open_are_reported_not_waited_for(home: Settings) -> None:
    broken = home.model_copy(update={"embedder": "hash:4"})  # a configured model that cannot load
    store = Store.open(home.store_url)
    with TestClient(create_app(broken, store), raise_server_exceptions=False) as client:
        r = _get_in_thread(client, "/api/papers/search", q="diffusion")
        assert r["returned"] and r["status"] == 503
        assert "PAPERSIFT_EMBEDDER" in r["body"]["error"]["message"]  # type: ignore[index]
        health = client.get("/healthz")
        assert health.status_code == 503 and "PAPERSIFT_EMBEDDER" in health.json()["search"]
    store.close()
