"""Query latency and memory at scale: N papers (up to millions) built from the real arXiv listings.

Paper i is listing (i mod L) with its abstract's sentences rotated by i // L, so term statistics stay
those of real abstracts. Embedding millions of abstracts with the transformer takes hours on two
cores, so corpus vectors are random unit vectors (HNSW's hardest case: no cluster structure), with
five passage vectors per paper (near copies of it, as many as a real abstract gets); the query side
is real: every timed query is embedded with the configured model, then runs BM25, HNSW, passage
re-scoring, fusion and the store fetch, exactly as `papersift search` does.

Queries are timed in a fresh process that only opens the built home, as `papersift serve` would:
its peak memory is the serving footprint (indexes memory-mapped), apart from what building cost.
"""

from __future__ import annotations

import gzip
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from papersift.bench.metrics import percentile
from papersift.index.embed import l2_normalise, make_embedder
from papersift.index.keyword import KeywordIndex
from papersift.index.vectors import VectorIndex
from papersift.ingest import ingest_records
from papersift.models import Paper
from papersift.search import SearchEngine
from papersift.settings import Settings
from papersift.store import Store

QUERIES = [
    "diffusion models for video generation",
    "large language model reasoning benchmark",
    "3d gaussian splatting real-time rendering",
    "graph neural networks for molecules",
    "vision language model hallucination",
    "reinforcement learning from human feedback",
    "speech recognition low resource languages",
    "medical image segmentation transformer",
    "efficient attention long context",
    "autonomous driving trajectory prediction",
]


def _listings(path: Path) -> list[dict[str, Any]]:
    with gzip.open(path, "rb") as f:
        return [orjson.loads(line) for line in f]


def synthetic(listings: list[dict[str, Any]], n: int) -> Iterator[Paper]:
    for i in range(n):
        row = listings[i % len(listings)]
        sentences = row["abstract"].split(". ")
        turn = (i // len(listings)) % max(1, len(sentences))
        abstract = ". ".join(sentences[turn:] + sentences[:turn])
        yield Paper(
            id=f"syn:{i:08d}",
            title=row["title"] if turn == 0 else f"{row['title']} ({turn})",
            abstract=abstract,
            authors=row["authors"],
            categories=row["categories"],
            source="jsonl",
        )


PASSAGES = 5


def build(home: Path, data: Path, n: int, embedder_spec: str) -> None:
    """Store, BM25 index and (synthetic) dense index of n papers in `home`."""
    listings = _listings(data)
    settings = Settings(home=home, embedder=embedder_spec)
    store = Store.open(settings.store_url)
    started = time.perf_counter()
    ingest_records(store, synthetic(listings, n), batch_size=5000)
    print(f"store: {n:,} papers in {time.perf_counter() - started:.0f}s", flush=True)
    started = time.perf_counter()
    keyword = KeywordIndex.open(settings.index_dir / "keyword", store)
    print(f"keyword index: {keyword.num_docs:,} docs in {time.perf_counter() - started:.0f}s", flush=True)
    embedder = make_embedder(embedder_spec, cache_dir=settings.home_dir / "models")
    dense = VectorIndex.create_empty(settings.index_dir / "dense", store, embedder, settings.vector_dtype)
    started = time.perf_counter()
    rng = np.random.default_rng(0)
    batch = 50_000
    papers = synthetic(listings, n)
    for start in range(0, n, batch):
        chunk = [next(papers) for _ in range(min(batch, n - start))]
        vectors = l2_normalise(rng.standard_normal((len(chunk), embedder.dim)))
        noise = rng.standard_normal((len(chunk), PASSAGES, embedder.dim)).astype(np.float32)
        passages = l2_normalise(vectors[:, None, :] + 0.5 * noise / np.sqrt(embedder.dim))
        dense.add_vectors([p.id for p in chunk], vectors, [p.text_hash() for p in chunk], list(passages))
    dense.commit(store)
    print(f"vector index: {len(dense):,} papers in {time.perf_counter() - started:.0f}s", flush=True)
    store.close()


def measure(home: Path, embedder_spec: str, queries: int = 200) -> dict[str, Any]:
    """Open the built home as a server process would and time end-to-end searches."""
    started = time.perf_counter()
    settings = Settings(home=home, embedder=embedder_spec)
    store = Store.open(settings.store_url)
    engine = SearchEngine.open(store, settings, embed=False)
    if engine.dense is None:
        raise RuntimeError("the dense index is not current: nothing to measure hybrid search with")
    open_s = time.perf_counter() - started
    texts = [QUERIES[i % len(QUERIES)] + ("" if i < len(QUERIES) else f" {i}") for i in range(queries)]
    engine.search(texts[0], 10)
    times = []
    for text in texts:
        t0 = time.perf_counter()
        engine.search(text, 10)
        times.append((time.perf_counter() - t0) * 1000)
    store.close()
    memory = _memory_mb()
    return {
        "query_ms_p50": round(percentile(times, 50), 2),
        "query_ms_p99": round(percentile(times, 99), 2),
        "serve_open_s": round(open_s, 1),
        "serve_max_rss_mb": memory["VmHWM"],
        "serve_rss_anon_mb": memory["RssAnon"],
        "serve_rss_file_mb": memory["RssFile"],
    }


def _memory_mb() -> dict[str, int]:
    """This process's peak and current resident memory, split into its own (anonymous) pages and
    memory-mapped index files (page cache: shared between server workers, reclaimable).

    From /proc, not getrusage: after fork + exec, ru_maxrss still counts the parent's pages.
    """
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "RssAnon", "RssFile"):
            fields[key] = int(value.split()[0]) // 1024
    return fields


def run(data: Path, n: int, embedder_spec: str, home: Path | None = None) -> dict[str, Any]:
    """Build (unless `home` already holds a build of n papers), then measure in a fresh process."""
    with tempfile.TemporaryDirectory() as tmp:
        home = home or Path(tmp)
        marker = home / f"latency-bench-{n}.built"
        built = {}
        if not marker.exists():
            build(home, data, n, embedder_spec)
            marker.touch()
            built = {"build_max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
        out = subprocess.run(
            [sys.executable, "-m", "papersift.bench.latency", str(home), embedder_spec],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        measured = json.loads(out.strip().splitlines()[-1])
    return {"papers": n, "embedder": embedder_spec, **measured, **built}  # no build figure when reused


def main(data: Path, n: int, embedder: str, home: Path | None = None) -> None:
    print(json.dumps(run(data, n, embedder, home)))


if __name__ == "__main__":  # the measuring process `run` starts
    print(json.dumps(measure(Path(sys.argv[1]), sys.argv[2])))
