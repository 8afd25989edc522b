"""Ingest throughput on the real arXiv daily listings (74,728 papers) into a fresh SQLite store.

Prints one line per phase and a JSON summary last:
    python benchmarks/ingest_bench.py [--data ../shared/data/arxiv_daily/arxiv_daily_2025-2026.jsonl.gz]
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

from papersift.index.keyword import KeywordIndex
from papersift.ingest import ingest
from papersift.store import Store

DEFAULT = Path(__file__).resolve().parents[2] / "shared/data/arxiv_daily/arxiv_daily_2025-2026.jsonl.gz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT)
    parser.add_argument("--db", default="", help="store URL (default: SQLite in a temp dir)")
    args = parser.parse_args()
    summary: dict[str, float | int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(args.db or f"sqlite:///{tmp}/bench.db")
        first = ingest(store, str(args.data))
        print(f"first ingest:  {first.summary()}")
        again = ingest(store, str(args.data))
        print(f"re-ingest:     {again.summary()}")
        started = time.perf_counter()
        index = KeywordIndex.open(Path(tmp) / "index", store)
        index_s = time.perf_counter() - started
        print(f"keyword index: {index.num_docs} docs in {index_s:.1f}s ({index.num_docs / index_s:,.0f} docs/s)")
        summary = {
            "papers": store.count(),
            "ingest_papers_per_s": round(first.total / first.seconds),
            "reingest_papers_per_s": round(again.total / again.seconds),
            "reingest_changed": again.added + again.updated,
            "index_docs_per_s": round(index.num_docs / index_s),
            "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        }
        store.close()
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
