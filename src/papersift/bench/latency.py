"""Query latency and memory at scale: N papers (up to millions) built from the real arXiv listings.

Paper i is listing (i mod L) with its abstract's sentences rotated by i // L, so term statistics stay
those of real abstracts. Embedding millions of abstracts with the transformer takes hours on two
cores, so corpus vectors are random unit vectors (HNSW's hardest case: no cluster structure); the
query side is real: every timed query is embedded with the configured model, then runs BM25, HNSW,
fusion and the store fetch, exactly as `papersift search` does.
"""

from __future__ import annotations

import gzip
import json
import resource
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from papersift.bench.metrics import percentile
from papersift.index.embed import make_embedder
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


def run(data: Path, n: int, embedder_spec: str, queries: int = 200) -> dict[str, Any]:
    listings = _listings(data)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(home=Path(tmp), embedder=embedder_spec)
        store = Store.open(settings.store_url)
        started = time.perf_counter()
        ingest_records(store, synthetic(listings, n), batch_size=5000)
        print(f"store: {n:,} papers in {time.perf_counter() - started:.0f}s", flush=True)
        started = time.perf_counter()
        keyword = KeywordIndex.open(settings.index_dir / "keyword", store)
        print(f"keyword index: {keyword.num_docs:,} docs in {time.perf_counter() - started:.0f}s", flush=True)
        embedder = make_embedder(embedder_spec, cache_dir=Path.home() / ".papersift" / "models")
        dense = VectorIndex.create_empty(settings.index_dir / "dense", store, embedder, settings.vector_dtype)
        started = time.perf_counter()
        rng = np.random.default_rng(0)
        batch = 50_000
        papers = synthetic(listings, n)
        for start in range(0, n, batch):
            chunk = [next(papers) for _ in range(min(batch, n - start))]
            vectors = rng.standard_normal((len(chunk), embedder.dim)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            dense.add_vectors([p.id for p in chunk], vectors, [p.text_hash() for p in chunk])
        dense.commit(store)
        print(f"vector index: {len(dense):,} vectors in {time.perf_counter() - started:.0f}s", flush=True)
        engine = SearchEngine(store, keyword, dense, settings.fusion, settings.dense_weight, settings.rrf_k)
        texts = [QUERIES[i % len(QUERIES)] + ("" if i < len(QUERIES) else f" {i}") for i in range(queries)]
        engine.search(texts[0], 10)
        times = []
        for text in texts:
            t0 = time.perf_counter()
            engine.search(text, 10)
            times.append((time.perf_counter() - t0) * 1000)
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        store.close()
    return {
        "papers": n,
        "embedder": embedder_spec,
        "query_ms_p50": round(percentile(times, 50), 2),
        "query_ms_p99": round(percentile(times, 99), 2),
        "max_rss_mb": round(rss_mb),
    }


def main(data: Path, n: int, embedder: str) -> None:
    print(json.dumps(run(data, n, embedder)))
