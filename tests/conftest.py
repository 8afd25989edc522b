"""Shared fixtures: a temp data home, real stores on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from papersift.settings import Settings
from papersift.store import Store

from .live_server import chromium_browser
from .pgserver import PostgresServer

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SAMPLE = REPO / "src" / "papersift" / "data" / "sample"

_db_counter = itertools.count()


# module- and session-scoped fixtures are built before `_isolated_env` applies: keyword-only for them too
os.environ["PAPERSIFT_EMBEDDER"] = "none"


def shared(path: str) -> Path:
    """A file under ../shared/data, or a visible skip when the checkout has none beside it."""
    full = SHARED_DATA / path
    if not full.exists():
        pytest.skip(f"{full} not present (the shared data folder sits beside the repo in CI)")
    return full


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's real ~/.papersift or settings."""
    for key in list(os.environ):
        if key.startswith("PAPERSIFT_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("PAPERSIFT_HOME", str(tmp_path / "home"))
    # keyword-only unless a test asks for a model: embedding every fixture corpus would take minutes
    monkeypatch.setenv("PAPERSIFT_EMBEDDER", "none")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    # not under pytest's tmp dir: that is private to root, and the server runs as `postgres`
    base = Path(tempfile.mkdtemp(prefix="papersift-pg-"))
    base.chmod(0o755)
    try:
        server = PostgresServer(base / "cluster")
        server.start()
    except (RuntimeError, OSError) as exc:
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(f"PostgreSQL server unavailable: {exc}")
    yield server
    server.stop()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same contract runs on both backends."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database(f"t{os.getpid()}_{next(_db_counter)}")


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = Store.open(store_url)
    yield opened
    opened.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def chromium(server: str) -> Iterator[object]:
    """One Chromium for a browser-test module, started after that module's own `server` fixture."""
    with chromium_browser() as browser:
        yield browser
