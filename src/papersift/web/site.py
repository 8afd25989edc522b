"""The per-process state the web edge shares: settings, store, accounts and the search engine.

Requests only read the search engine's last finished state. One background thread does all index work:
it opens the indexes, syncs BM25 with the store (woken by this process's writes, and every few seconds
for other processes' writes, e.g. a cron ingest), rebuilds BM25 when its files are found damaged, then
embeds new papers. So no request waits for indexing, for the index lock, or for the embedding model.
"""

from __future__ import annotations

import logging
import threading
import time

from papersift.curate import CurationJob
from papersift.errors import ConfigError, SearchIndexError
from papersift.rank.for_you import Recommender
from papersift.search import SearchEngine
from papersift.settings import Settings
from papersift.store import Store
from papersift.store.accounts import Accounts
from papersift.store.comments import Comments
from papersift.store.curation import Curation
from papersift.store.library import Library
from papersift.web.warmup import Warmup, WarmupState

SYNC_EVERY = 5.0  # seconds between checks for changes made by other processes (cron ingest)
FIRST_OPEN_WAIT = 20.0  # a request waits this long for a home without any index, then hears "try again"
STOP_WAIT = 1.0  # seconds shutdown waits for the worker (it stops between small embedding batches)

log = logging.getLogger("papersift.web")


class IndexStarting(SearchIndexError):
    """No keyword index exists yet and building it takes longer than a request should wait."""

    retry_after = 30


class Site:
    """Opened once per app; `search` is the engine as the background index thread last left it."""

    def __init__(self, settings: Settings, store: Store, owns_store: bool) -> None:
        self.settings = settings
        self.store = store
        self.owns_store = owns_store
        self.accounts = Accounts(store)
        self.comments = Comments(store)
        self.library = Library(store)
        self.recommender = Recommender(store, self.accounts, self.library)  # For you: its own worker thread
        self.curation = Curation(store)
        self._curate_job = CurationJob(settings, store)
        self._engine: SearchEngine | None = None
        self._opened = threading.Event()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._start_lock = threading.Lock()
        self._rounds = threading.Condition()
        self._started = 0  # sync rounds begun / finished by the worker
        self._finished = 0
        self._worker: threading.Thread | None = None
        self._problem: str | None = None  # what keeps keyword search from working, for /healthz
        self._open_error: Exception | None = None  # why the indexes could not be opened (retried each round)
        self.warmup = Warmup()  # how far the first embedding got, for /healthz and the search page

    # -- what requests call ------------------------------------------------------------------------------

    @property
    def search(self) -> SearchEngine:
        """The search engine as last synced; never syncs here (a request must not wait for indexing)."""
        self._start()
        engine = self._engine
        if engine is None:  # a home without a usable index: it is being built
            self._opened.wait(FIRST_OPEN_WAIT)
            engine = self._engine
            if engine is None:
                failed = self._open_error
                if failed is not None:  # e.g. a configured embedder that cannot load: say why, at once
                    raise SearchIndexError(f"search is unavailable: {failed}")
                raise IndexStarting("the search index is still being built; try again in a minute")
        return engine

    def changed(self) -> None:
        """This process wrote to the store (a submitted paper): sync soon, without waiting for it."""
        self._start()
        self._wake.set()

    def search_problem(self) -> str | None:
        """Why keyword search is not working right now (damaged, rebuilding), or None when it is."""
        engine = self._engine
        if engine is None and self._open_error is not None:
            return f"unavailable: {self._open_error}"
        if self._problem:
            return self._problem
        if engine is not None and engine.keyword.damage:
            return f"rebuilding: {engine.keyword.damage}"
        return None

    def vectors_pending(self) -> int | None:
        """Papers still waiting for vectors (keyword-only ranking meanwhile); None before the index opened."""
        engine = self._engine
        return engine.vectors_pending() if engine is not None else None

    def engine_if_open(self) -> SearchEngine | None:
        """The engine as last synced, or None before the index thread opened it (never waits)."""
        return self._engine

    def warming_up(self) -> WarmupState | None:
        """Progress towards hybrid ranking while results are keyword-only; None once it is on (or off)."""
        engine = self._engine
        if engine is None or engine.dense is not None or not (engine.embeds or engine.vectors_unloaded):
            return None
        state = self.warmup.state(pending=engine.vectors_pending())
        return None if state.phase == "waiting" and not state.total else state  # an empty store has nothing to wait for

    # -- for tests and tools -----------------------------------------------------------------------------

    def sync_index(self, timeout: float = 60.0) -> bool:
        """Have the worker run a sync round that starts after this call, and wait for it (tests, tools)."""
        self._start()
        with self._rounds:
            wanted = self._started + 1
            self._wake.set()
            return self._rounds.wait_for(lambda: self._finished >= wanted, timeout)

    def wait_for_vectors(self, timeout: float) -> bool:
        """True once dense ranking is on (for tests and health checks); False after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            engine = self.search
            if engine.dense is not None or not (engine.embeds or engine.vectors_unloaded):
                return True
            self._wake.set()
            time.sleep(0.05)
        return False

    def close(self) -> None:
        """Stop the worker (it saves the vectors embedded so far) within STOP_WAIT seconds, close the store."""
        self._stop.set()
        self._wake.set()
        self.recommender.close()
        self._curate_job.stop()
        worker = self._worker
        if worker is not None:
            worker.join(timeout=STOP_WAIT)
            if worker.is_alive():
                log.warning("index worker still busy at shutdown; its unsaved batch is redone next start")
        if self.owns_store:
            self.store.close()

    # -- the worker --------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the index thread (at app startup; otherwise the first search starts it) and the curation job."""
        self._start()
        self._curate_job.start()

    def _start(self) -> None:
        if self._worker is not None or self._stop.is_set():
            return
        with self._start_lock:
            if self._worker is None:
                self._worker = threading.Thread(target=self._run, name="papersift-index", daemon=True)
                self._worker.start()

    def _run(self) -> None:
        """Sync rounds until stopped; errors are logged and retried, never fatal."""
        while not self._stop.is_set():
            with self._rounds:
                self._started += 1
            try:
                self._round()
            except Exception:
                log.exception("search index update failed; serving the last good state, retrying")
            finally:
                with self._rounds:
                    self._finished += 1
                    self._rounds.notify_all()
            self._wake.wait(SYNC_EVERY)
            self._wake.clear()

    def _round(self) -> None:
        engine = self._engine
        if engine is None:
            try:  # keyword search first; the model is loaded below, after BM25 answers
                engine = SearchEngine.open(self.store, self.settings, embed=False, sync=False, vectors=False)
            except Exception as exc:
                self._open_error = exc
                self._opened.set()  # waiting requests hear why now instead of timing out
                raise
            self._engine, self._open_error = engine, None
            self._opened.set()
            problem = engine.keyword.verify()  # reads the files once: damage a search might not touch
            if problem:
                engine.keyword.damage = problem
        if engine.keyword.damage:
            self._problem = f"rebuilding: {engine.keyword.damage}"
            log.warning("keyword index damaged (%s); rebuilding it from the store", engine.keyword.damage)
            started = time.monotonic()
            count = engine.rebuild_keyword()
            self._problem = None
            log.info("keyword index rebuilt: %d papers in %.1fs", count, time.monotonic() - started)
        try:
            engine.sync(embed=False)  # BM25 catches up; a dense index that fell behind is set aside
        except SearchIndexError as exc:
            engine.keyword.damage = str(exc)[:300]
            self._wake.set()  # rebuild in the next round, at once
            raise
        if engine.vectors_unloaded and not self._stop.is_set():  # at start: embedding begins with serve
            self.warmup.preparing(engine.vectors_pending())
            try:
                engine.attach_vectors(self.settings)  # builds the packaged ONNX model the first time (~30 s)
            except ConfigError as exc:  # a named model that cannot load: searches and /healthz say why, at once
                self._engine, self._open_error = None, exc
                raise
            finally:
                self.warmup.done()
        pending = engine.vectors_pending() if engine.embeds else 0
        if pending and not self._stop.is_set():
            started = time.monotonic()
            self.warmup.embedding(pending)
            try:
                changed = engine.sync_vectors(progress=self.warmup.advance, should_stop=self._stop.is_set)
            finally:
                self.warmup.done()
            if engine.dense is not None:
                log.info("embedded %d papers in %.1fs; hybrid ranking on", changed, time.monotonic() - started)
