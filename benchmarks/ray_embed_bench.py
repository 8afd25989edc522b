"""Embedding throughput in one process vs on a local Ray, and the time to rebuild a home from stored vectors.

Run from the repo root:  .venv/bin/python benchmarks/ray_embed_bench.py [--papers 2000] [--rebuild-spec hash:384]

1. The first `--papers` abstracts of the arXiv listing are stored twice (two SQLite stores). One process
   embeds the first store the way `papersift index` does (VectorIndex: embed, store vectors, HNSW); a local
   Ray (started before timing: its ~10 s start is printed apart) embeds the second with `embed_on_ray`
   (one single-threaded actor per CPU, vectors stored per batch). Same model, same papers: papers/s each.
2. All 74,728 listings are stored, their vectors made once with `--rebuild-spec` and kept in the store;
   then the home's index directory is deleted and `SearchEngine.open` rebuilds BM25 and the dense index
   (HNSW + passage file) from the store: `rebuild_s`, with a check that it embedded nothing. The rebuild
   never runs the model, so its time depends on the vectors' size (dim 384, float16 passages), not on
   which model made them: `hash:384` makes 376,338 passage vectors in minutes where MiniLM needs ~40.

The last line printed is a JSON object with single_docs_per_s, ray_docs_per_s, ratio and rebuild_s.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from papersift.index.embed import make_embedder
from papersift.index.ray_embed import embed_on_ray
from papersift.index.vectors import VectorIndex
from papersift.ingest import ingest
from papersift.models import Paper
from papersift.search import SearchEngine
from papersift.settings import Settings
from papersift.store import Store
from papersift.store.vectors import VectorStore

DEFAULT_DATA = Path("../shared/data/arxiv_daily/arxiv_daily_2025-2026.jsonl.gz")


def first_papers(path: Path, n: int) -> list[Paper]:
    with gzip.open(path, "rt") as lines:
        rows = [json.loads(line) for _, line in zip(range(n), lines, strict=False)]
    return [Paper(id=r["id"], title=r["title"], abstract=r.get("abstract", ""), source="jsonl") for r in rows]


def throughput(data: Path, n: int, spec: str, work: Path, rounds: int) -> tuple[float, float]:
    """Papers/s in one process and on Ray, alternating in `rounds` slices of the papers, so a change in the
    machine's load (it is shared) weighs on both sides alike."""
    import ray

    papers = first_papers(data, n)
    models = work / "models"
    embedder = make_embedder(spec, cache_dir=models)  # threads=2: the default single-process session
    single, distributed = Store.open(f"sqlite:///{work / 'single.db'}"), Store.open(f"sqlite:///{work / 'ray.db'}")
    started = time.perf_counter()
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    print(f"ray start: {time.perf_counter() - started:.1f}s (not counted)")
    single_s = ray_s = 0.0
    index = VectorIndex.open(work / "dense", single, embedder)
    try:
        for part in range(rounds):
            chunk = papers[part * n // rounds : (part + 1) * n // rounds]
            for store in (single, distributed):
                with store.write() as w:
                    w.insert(chunk)
            started = time.perf_counter()
            index.sync(single)
            single_s += time.perf_counter() - started
            run = embed_on_ray(distributed, spec, models)
            ray_s += run.seconds
            print(f"round {part + 1}: {len(chunk)} papers, single {single_s:.1f}s, ray {ray_s:.1f}s (cumulative)")
    finally:
        ray.shutdown()
    assert index.embedded == n and VectorStore(distributed, embedder.name, embedder.dim).count() == n
    print(f"single process: {n} papers in {single_s:.1f}s = {n / single_s:.2f} papers/s")
    print(f"ray ({run.workers} workers): {n} papers in {ray_s:.1f}s = {n / ray_s:.2f} papers/s")
    return n / single_s, n / ray_s


def rebuild(data: Path, spec: str, work: Path) -> float:
    settings = Settings(home=work / "home", embedder=spec)
    store = Store.open(settings.store_url)
    started = time.perf_counter()
    ingest(store, str(data))
    print(f"ingest {store.count():,} papers: {time.perf_counter() - started:.1f}s")
    started = time.perf_counter()
    first = SearchEngine.open(store, settings)
    assert first.dense is not None
    print(f"first index with {spec} (embeds {first.dense.embedded:,}): {time.perf_counter() - started:.1f}s")
    shutil.rmtree(settings.index_dir)
    started, cpu = time.perf_counter(), time.process_time()
    again = SearchEngine.open(store, settings)
    seconds = time.perf_counter() - started
    print(f"rebuild CPU time (all threads of this process): {time.process_time() - cpu:.1f}s")
    assert again.dense is not None and again.dense.embedded == 0, "the rebuild embedded papers"
    copied = again.dense.reused
    print(f"rebuild BM25 + dense from stored vectors: {seconds:.1f}s ({copied:,} papers copied, 0 embedded)")
    return seconds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="arXiv listing (JSON lines, gzip)")
    ap.add_argument("--papers", type=int, default=2000, help="abstracts for the throughput comparison")
    ap.add_argument("--rounds", type=int, default=4, help="alternating slices of the throughput comparison")
    ap.add_argument("--spec", default="minilm-onnx-int8", help="embedder of the throughput comparison")
    ap.add_argument("--rebuild-spec", default="hash:384", help="embedder that fills the store before the rebuild")
    ap.add_argument("--skip-rebuild", action="store_true")
    ap.add_argument("--skip-throughput", action="store_true")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="papersift-ray-bench-"))
    try:
        single = ray_rate = rebuild_s = None
        if not args.skip_throughput:
            single, ray_rate = throughput(args.data, args.papers, args.spec, work, args.rounds)
        if not args.skip_rebuild:
            rebuild_s = rebuild(args.data, args.rebuild_spec, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = {
        "papers": args.papers,
        "spec": args.spec,
        "cpus": os.cpu_count(),
        "single_docs_per_s": round(single, 2) if single else None,
        "ray_docs_per_s": round(ray_rate, 2) if ray_rate else None,
        "ratio": round(ray_rate / single, 3) if single and ray_rate else None,
        "rebuild_s": round(rebuild_s, 1) if rebuild_s else None,
        "rebuild_spec": args.rebuild_spec,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
