"""Many web hosts on one PostgreSQL: each `papersift serve` has its own home (its own index replicas) and
follows the store's revision counter, so what any host or a cron process writes shows on every host.

Two real `papersift serve` processes with separate homes share one test PostgreSQL; a third process
ingests a paper; a vote, a hide and a signed-out (page-cached) listing are checked across hosts.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from papersift.ingest import ingest
from papersift.store import Store

from .conftest import REPO
from .pgserver import PostgresServer, free_port

FOLLOW_S = 30.0  # generous: hosts check the store every 5 s; the measured delay is printed
NEW = {"id": "2699.00001", "title": "Zyxquasar lensing of radio galaxies", "abstract": "We find zyxquasar arcs."}
NEW.update({"listing_date": "2025-06-02", "authors": ["A. Author"], "categories": ["astro-ph.CO"]})


def _env(url: str, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERSIFT_")}
    env.update(PYTHONPATH=str(REPO / "src"), PAPERSIFT_DATABASE_URL=url, PAPERSIFT_HOME=str(home))
    env.update(PAPERSIFT_EMBEDDER="hash:64", PAPERSIFT_SECRET_KEY="one key for every host")
    return env


@contextmanager
def serving(url: str, home: Path, log: Path) -> Iterator[str]:
    """`papersift serve` in its own process until the block ends; yields its base URL once it answers."""
    port = free_port()
    command = [sys.executable, "-m", "papersift.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen(command, env=_env(url, home), stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: httpx.get(f"{base}/healthz").json().get("vectors_pending") == 0, 60, log)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)


def wait_for(check: Callable[[], bool], timeout: float, log: Path | None = None) -> float:
    """Seconds until `check()` holds; fails after `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if check():
                return time.monotonic() - started
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.2)
    pytest.fail(f"not within {timeout}s" + (f"\n{log.read_text()[-2000:]}" if log else ""))


def found(base: str, word: str) -> list[str]:
    """Papers holding `word` (newest-first order lists only those; relevance order adds dense neighbours)."""
    params = {"q": word, "sort": "date"}
    return [p["id"] for p in httpx.get(f"{base}/api/papers/search", params=params).json()["items"]]


def votes(base: str, paper_id: str) -> int:
    return int(httpx.get(f"{base}/api/papers/{paper_id}").json()["votes"])


def test_two_hosts_on_one_postgresql_show_each_others_writes(postgres: PostgresServer, tmp_path: Path) -> None:
    url = postgres.create_database(f"multihost{os.getpid()}")
    store = Store.open(url)
    source = tmp_path / "first.jsonl"
    with source.open("w") as out:
        for i in range(30):
            out.write(json.dumps({**NEW, "id": f"2506.{i:05d}", "title": f"Paper {i} on lensing", "abstract": "Arcs."}))
            out.write("\n")
    ingest(store, str(source))
    store.close()
    with (
        serving(url, tmp_path / "a", tmp_path / "a.log") as a,
        serving(url, tmp_path / "b", tmp_path / "b.log") as b,
    ):
        # host b started after a had embedded everything: it copies a's stored vectors, embeds nothing
        assert "0 papers embedded, 30 copied from stored vectors" in (tmp_path / "b.log").read_text()
        listing = httpx.get(f"{b}/").text  # b caches its signed-out listing page now
        assert 'class="count">1<' not in listing

        # a third process (a cron ingest) adds a paper: both hosts find it
        (tmp_path / "new.jsonl").write_text(json.dumps(NEW) + "\n")
        third = [sys.executable, "-m", "papersift.cli", "ingest", str(tmp_path / "new.jsonl")]
        subprocess.run(third, env=_env(url, tmp_path / "cron"), check=True, capture_output=True)
        seen = [
            wait_for(lambda host=host: found(host, "zyxquasar") == [NEW["id"]], FOLLOW_S, tmp_path / log)  # type: ignore[misc]
            for host, log in ((a, "a.log"), (b, "b.log"))
        ]
        print(f"a paper ingested by a third process was found on host a after {seen[0]:.1f}s, b {seen[1]:.1f}s")

        # a vote cast on one host shows on the other, in the API and in the other's cached listing page
        user = httpx.Client()  # one signed session: hosts share the secret key, so the cookie works on both
        csrf = user.post(f"{a}/api/auth/signup", json={"username": "ada", "password": "correct horse"}).json()
        headers = {"X-CSRF-Token": csrf["csrf_token"]}
        assert user.post(f"{a}/api/papers/2506.00003/upvote", headers=headers).status_code == 200
        assert votes(b, "2506.00003") == 1
        assert user.post(f"{b}/api/papers/2506.00004/upvote", headers=headers).status_code == 200
        assert votes(a, "2506.00004") == 1
        assert httpx.get(f"{b}/").text.count('class="count">1<') == 2  # not the page cached before the votes

        # the admin (first account) hides the new paper on a: b stops finding it too
        hide = user.post(f"{a}/api/papers/{NEW['id']}/hide", headers=headers, json={"hidden": True})
        assert hide.status_code == 200, hide.text
        gone = wait_for(lambda: found(b, "zyxquasar") == [], FOLLOW_S)
        print(f"a paper hidden on host a left host b's search after {gone:.1f}s")
    assert re.search(r"0 papers embedded, 1 copied|1 papers embedded, 0 copied", (tmp_path / "b.log").read_text())
