"""The per-process state the web edge shares: settings, store, accounts and the search engine."""

from __future__ import annotations

import threading
import time

from papersift.search import SearchEngine
from papersift.settings import Settings
from papersift.store import Store
from papersift.store.accounts import Accounts

SYNC_EVERY = 10.0  # seconds between checks for changes made by other processes (cron ingest)


class Site:
    """Opened once per app; `search` keeps the index in step with the store, at most every few seconds."""

    def __init__(self, settings: Settings, store: Store, owns_store: bool) -> None:
        self.settings = settings
        self.store = store
        self.owns_store = owns_store
        self.accounts = Accounts(store)
        self._engine: SearchEngine | None = None
        self._lock = threading.Lock()
        self._checked = 0.0
        self._revision = -1

    @property
    def search(self) -> SearchEngine:
        """The search engine, synced with the store when it has changed since the last check."""
        now = time.monotonic()
        if self._engine is None or now - self._checked > SYNC_EVERY:
            self.sync_index()
        assert self._engine is not None
        return self._engine

    def sync_index(self) -> None:
        """Open or bring the index up to date; one thread at a time, since the index has one writer."""
        with self._lock:
            revision = self.store.revision()
            if self._engine is None:
                self._engine = SearchEngine.open(self.store, self.settings)
            elif revision != self._revision:
                self._engine.sync()
            self._revision = revision
            self._checked = time.monotonic()

    def close(self) -> None:
        if self.owns_store:
            self.store.close()
