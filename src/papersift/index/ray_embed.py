"""Embedding what is pending on a Ray cluster (`papersift index --ray [ADDRESS]`), for backfills.

Ray's own primitives do the distribution, nothing here schedules: one actor per CPU holds an embedder
(its ONNX session is loaded once per actor), `ray.util.ActorPool` hands batches to idle actors, and the
actor options `max_restarts=-1, max_task_retries=-1` make Ray restart a killed worker process and run
its batch again. The driver only reads what is pending from the store and writes each finished batch
back to it (store/vectors.py) as it arrives, so a killed driver loses at most the batches in flight: a
rerun embeds only papers without stored vectors for their current text, nothing twice. The embedding
itself is `embed_papers`, the single-process code. Afterwards `papersift index` copies the stored
vectors into the home's HNSW index without embedding anything.

Ray is an optional extra (`pip install 'papersift[ray]'`): nothing imports it unless asked to.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from papersift.errors import ConfigError
from papersift.index.embed import Embedder, make_embedder
from papersift.index.vectors import embed_papers
from papersift.models import Paper
from papersift.store import Store
from papersift.store.vectors import StoredVectors, VectorStore

RAY_BATCH = 64  # papers per task: a few seconds of one core with MiniLM int8; a killed worker redoes at most this
IN_FLIGHT = 2  # batches queued per actor: the next one is handed over the moment a result comes back
STORE_SCAN = 2000  # papers read from the store per look-up of their stored text hashes

log = logging.getLogger("papersift.index")
T = TypeVar("T")
Row = tuple[str, str, str]  # what a worker needs of a paper: id, title, abstract


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """itertools.batched, which Python 3.11 lacks."""
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


@dataclass(frozen=True, slots=True)
class RayRun:
    """What one run did: papers embedded (and stored), wall seconds, actors used."""

    embedded: int
    seconds: float
    workers: int


class EmbedWorker:
    """A Ray actor's state: one embedder, loaded once, single-threaded (Ray gives each actor one CPU)."""

    def __init__(self, spec: str, cache_dir: str) -> None:
        self.embedder = worker_embedder(spec, Path(cache_dir))

    def embed(self, rows: list[Row]) -> list[tuple[str, str, np.ndarray]]:
        """(paper id, text hash, float16 passage vectors) for each row, in order."""
        papers = [Paper(id=pid, title=title, abstract=abstract) for pid, title, abstract in rows]
        made = embed_papers(self.embedder, papers)
        return [(p.id, p.text_hash(), vectors) for p, vectors in zip(papers, made, strict=True)]

    def pid(self) -> int:
        return os.getpid()


def worker_embedder(spec: str, cache_dir: Path, threads: int = 1) -> Embedder:
    """The embedder a worker runs: ONNX models get `threads` intra-op threads (one per Ray CPU)."""
    extra: dict[str, Any] = {"threads": threads} if spec.startswith("minilm-onnx") else {}
    return make_embedder(spec, cache_dir=cache_dir, **extra)


def pending_rows(store: Store, vectors: VectorStore) -> Iterator[Row]:
    """Visible papers whose stored vectors are missing or were made from another title/abstract."""
    for chunk in batched(store.iter_papers(0, batch=STORE_SCAN), STORE_SCAN):
        have = vectors.hashes([p.id for p in chunk])
        for paper in chunk:
            if not paper.hidden and have.get(paper.id) != paper.text_hash():
                yield paper.id, paper.title, paper.abstract


def connect(address: str) -> bool:
    """Join the cluster at `address`, or start a local Ray for `auto`; True if this call started Ray.

    A process already connected (a test's cluster) keeps its connection."""
    try:
        import ray
    except ImportError as exc:
        raise ConfigError("--ray needs Ray: pip install 'papersift[ray]'") from exc
    if ray.is_initialized():
        return False
    try:
        ray.init(
            address=None if address == "auto" else address,
            include_dashboard=False,
            logging_level=logging.WARNING,
            log_to_driver=False,
        )
    except (ConnectionError, ValueError, RuntimeError) as exc:
        hint = (
            ""
            if os.environ.get("RAY_AUTH_MODE")
            else (
                "; a cluster with token authentication (Ray's default) needs RAY_AUTH_MODE=token here, and its token"
                " in ~/.ray/auth_token or RAY_AUTH_TOKEN (`ray get-auth-token` on the head prints it)"
            )
        )
        raise ConfigError(f"cannot reach the Ray cluster at {address!r}: {exc}{hint}") from exc
    return True


def embed_on_ray(
    store: Store,
    spec: str,
    cache_dir: Path,
    address: str = "auto",
    progress: Callable[[int], None] | None = None,
    total: Callable[[int], None] | None = None,
    batch: int = RAY_BATCH,
) -> RayRun:
    """Embed every paper without stored vectors for its text on Ray, storing each batch as it finishes.

    `total(n)` hears the number of papers to embed before work starts (a progress bar's length); `batch` is
    papers per task (smaller: less redone after a lost worker, more overhead per paper)."""
    import ray
    from ray.util import ActorPool

    started = time.monotonic()
    local = worker_embedder(spec, cache_dir)  # the model's name and size; builds its files once, here
    vectors = VectorStore(store, local.name, local.dim)
    count = sum(1 for _ in pending_rows(store, vectors))  # a first pass, so the driver holds no texts
    if total:
        total(count)
    if not count:
        return RayRun(0, time.monotonic() - started, 0)
    del local
    ours = connect(address)
    try:
        cpus = max(1, int(ray.available_resources().get("CPU", 1)))
        actor = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=-1)(EmbedWorker)
        workers: list[Any] = [actor.remote(spec, str(cache_dir)) for _ in range(min(cpus, -(-count // batch)))]
        pool = ActorPool(workers)
        embedded = 0

        def store_next() -> None:
            nonlocal embedded
            done = pool.get_next_unordered()  # blocks for any batch; the pool hands that actor the next one
            embedded += vectors.put(StoredVectors(pid, text_hash, v) for pid, text_hash, v in done)
            if progress:
                progress(len(done))

        for queued, rows in enumerate(batched(pending_rows(store, vectors), batch), start=1):
            pool.submit(lambda worker, papers: worker.embed.remote(papers), rows)
            if queued >= IN_FLIGHT * len(workers):
                store_next()
        while pool.has_next():
            store_next()
        for worker in workers:
            ray.kill(worker)
        seconds = time.monotonic() - started
        log.info("ray: %d papers embedded by %d workers in %.1fs", embedded, len(workers), seconds)
        return RayRun(embedded, seconds, len(workers))
    finally:
        if ours:
            ray.shutdown()
