"""Issue 10, item 20: `papersift serve` exits promptly on SIGTERM while its background thread embeds with the real
packaged MiniLM model, and keeps the vectors embedded so far (a restart does not embed them again).

The one timed assertion of the suite, because the issue's requirement is a time: exit within 2 s of SIGTERM
(it took ~35 s). The bound asserted is generous (shared, noisy machine); the measured figure is printed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from papersift.index.embed import make_embedder
from papersift.index.vectors import VectorIndex
from papersift.ingest import ingest
from papersift.search import SearchEngine
from papersift.settings import Settings
from papersift.store import Store
from papersift.store.vectors import VectorStore

from .conftest import SAMPLE
from .pgserver import free_port
from .test_embed import needs_ort as needs_model

EXIT_BOUND_S = 5.0  # the spec is 2 s; before the fix it was ~35 s


def _get(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=30) as r:  # loopback only
        return dict(json.loads(r.read()))


@needs_model
def test_serve_stops_within_seconds_of_sigterm_and_keeps_its_vectors(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = Settings(home=home, embedder="minilm-onnx-int8", secret_key="s")
    store = Store.open(settings.store_url)
    ingest(store, str(SAMPLE / "hf_featured_sample.jsonl.gz"))
    total = store.count()
    SearchEngine.open(store, settings.model_copy(update={"embedder": "none"}))  # BM25 as `ingest` leaves it
    store.close()
    port = free_port()
    log = tmp_path / "serve.log"
    env = {**os.environ, "PAPERSIFT_HOME": str(home), "PAPERSIFT_EMBEDDER": "minilm-onnx-int8"}
    env["PAPERSIFT_SECRET_KEY"] = "s"
    server = subprocess.Popen(
        [sys.executable, "-m", "papersift.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),  # a file, not a pipe: a full pipe would block the server's logging
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                _get(f"{base}/api/papers/search?q=diffusion")  # the index thread is up and starts embedding
                health = _get(f"{base}/healthz")
                embedding = health.get("embedding")  # the model loaded and the first batch has its vectors
                if isinstance(embedding, dict) and embedding["phase"] == "embedding" and embedding["embedded"]:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        else:
            pytest.fail("the server never reported embedding progress")
        time.sleep(0.5)  # let the embedder get into the corpus (all of it takes several seconds here)
        assert _get(f"{base}/healthz")["vectors_pending"], "embedding finished before the signal: test is moot"
        sent = time.monotonic()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        took = time.monotonic() - sent
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    stderr = log.read_text(errors="replace")
    print(f"serve exited {took:.2f}s after SIGTERM (spec 2 s)")
    assert took < EXIT_BOUND_S, f"serve took {took:.1f}s to exit on SIGTERM\n{stderr[-2000:]}"
    assert "Traceback" not in stderr, stderr[-2000:]
    # Vectors are kept where every later start looks first: in the store, written batch by batch before they
    # enter the index (the index file itself is saved only when the worker finishes a round, which a loaded
    # machine may not reach within the shutdown wait). A restart copies them instead of embedding again.
    store = Store.open(settings.store_url)
    embedder = make_embedder("minilm-onnx-int8", cache_dir=home / "models")
    kept = VectorStore(store, embedder.name, embedder.dim).count()
    assert 0 < kept < total, (
        f"the vectors embedded before the signal were not kept ({kept} of {total})\n{stderr[-2000:]}"
    )
    restarted = VectorIndex.open(settings.index_dir / "dense", store, embedder, should_stop=lambda: True)
    assert len(restarted) >= kept and restarted.embedded == 0, (len(restarted), restarted.embedded)
    store.close()
