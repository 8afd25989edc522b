"""Rebuild the bundled sample corpus from the public listings in ../shared/data.

The sample is the last five arXiv listing days of the daily-listing snapshot (arXiv metadata is
CC0) plus the papers featured on the community daily-papers page in December 2025, so that a fresh
install has a daily feed, featured papers and enough text to search. Run from the repo root:
    python tools/make_sample.py
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

SHARED = Path("../shared/data")
OUT = Path("src/papersift/data/sample")
DAYS = 5


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with gzip.open(SHARED / "arxiv_daily/arxiv_daily_2025-2026.jsonl.gz", "rt") as f:
        rows = [json.loads(line) for line in f]
    last_days = sorted({r["listing_date"] for r in rows})[-DAYS:]
    kept = [r for r in rows if r["listing_date"] in last_days]
    with gzip.open(OUT / "arxiv_daily_sample.jsonl.gz", "wt", compresslevel=9) as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in kept)
    with gzip.open(SHARED / "hf_daily_papers/hf_daily_featured_papers.jsonl.gz", "rt") as f:
        featured = [json.loads(line) for line in f]
    december = [r for r in featured if r["date"].startswith("2025-12")]
    with gzip.open(OUT / "hf_featured_sample.jsonl.gz", "wt", compresslevel=9) as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in december)
    print(f"{len(kept)} listed papers ({last_days[0]}..{last_days[-1]}), {len(december)} featured papers")


if __name__ == "__main__":
    main()
