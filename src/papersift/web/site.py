"""The per-process state the web edge shares: settings, store, accounts and the search engine."""

from __future__ import annotations

import logging
import threading
import time

from papersift.search import SearchEngine
from papersift.settings import Settings
from papersift.store import Store
from papersift.store.accounts import Accounts

SYNC_EVERY = 10.0  # seconds between checks for changes made by other processes (cron ingest)

log = logging.getLogger("papersift.web")


class Site:
    """Opened once per app; `search` keeps BM25 in step with the store at most every few seconds, and a
    background thread embeds new papers, so pages never wait for the (slow) embedding model."""

    def __init__(self, settings: Settings, store: Store, owns_store: bool) -> None:
        self.settings = settings
        self.store = store
        self.owns_store = owns_store
        self.accounts = Accounts(store)
        self._engine: SearchEngine | None = None
        self._lock = threading.Lock()
        self._checked = 0.0
        self._stop = threading.Event()
        self._wake = threading.Event()  # set when BM25 saw papers that have no vector yet
        self._embedder_thread: threading.Thread | None = None

    @property
    def search(self) -> SearchEngine:
        """The search engine, synced with the store when it has changed since the last check."""
        now = time.monotonic()
        if self._engine is None or now - self._checked > SYNC_EVERY:
            self.sync_index()
        assert self._engine is not None
        return self._engine

    def sync_index(self) -> None:
        """Open or bring BM25 up to date; one thread at a time, since the index has one writer."""
        with self._lock:
            if self._engine is None:
                self._engine = SearchEngine.open(self.store, self.settings, embed=False)
                if self._engine.embeds:  # not when the default model is unavailable: nothing to embed with
                    self._embedder_thread = threading.Thread(target=self._embed_loop, name="embedder", daemon=True)
                    self._embedder_thread.start()
            else:  # cheap when nothing changed; also sets aside a dense index that fell behind
                self._engine.sync(embed=False)
                if self._engine.dense is None:
                    self._wake.set()
            self._checked = time.monotonic()

    def _embed_loop(self) -> None:
        """Embed papers that lack vectors, then look again every few seconds; errors are logged, not fatal."""
        while not self._stop.is_set():
            engine = self._engine
            try:
                if engine is not None and engine.vectors_pending():
                    started = time.monotonic()
                    changed = engine.sync_vectors()
                    log.info("embedded %d papers in %.1fs; hybrid ranking on", changed, time.monotonic() - started)
            except Exception:
                log.exception("embedding new papers failed; search stays keyword-only, retrying")
            self._wake.wait(SYNC_EVERY)
            self._wake.clear()

    def vectors_pending(self) -> int | None:
        """Papers still waiting for vectors (keyword-only ranking meanwhile); None before the first search."""
        engine = self._engine
        return engine.vectors_pending() if engine is not None else None

    def wait_for_vectors(self, timeout: float) -> bool:
        """True once dense ranking is on (for tests and health checks); False after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            engine = self.search
            if engine.dense is not None or not engine.embeds:
                return True
            time.sleep(0.05)
        return False

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._embedder_thread is not None:
            self._embedder_thread.join(timeout=30)
        if self.owns_store:
            self.store.close()
