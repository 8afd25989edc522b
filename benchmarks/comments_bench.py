"""What discussion costs a reader: rendering comment Markdown, and a paper page with many comments.

1. Renders real prose as comments (arXiv abstracts and author comments from the shared listings, each
   with a link, inline code and emphasis added) through markdown-it-py + nh3 with the cache cleared:
   microseconds per comment, p50 and p99.
2. Serves the paper page of the bundled sample in-process with 0, 50 and 200 comments (a third of them
   replies) and times it: ms p50 and p99 over the requests, signed out (the page is not cached).
Prints a JSON summary last:
    python benchmarks/comments_bench.py [--data FILE] [--comments 3000] [--requests 40]
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import statistics
import tempfile
import time
from pathlib import Path

import orjson
from fastapi.testclient import TestClient

from papersift.ingest import ingest
from papersift.settings import Settings
from papersift.store import Store
from papersift.store.accounts import Accounts
from papersift.store.comments import MAX_CHARS, Comments
from papersift.web import create_app, markdown

REPO = Path(__file__).resolve().parent.parent
DEFAULT = REPO.parent / "shared/data/arxiv_daily/arxiv_daily_2025-2026.jsonl.gz"
SAMPLE = REPO / "src/papersift/data/sample"


def texts(path: Path, count: int) -> list[str]:
    """Comment-like text: a real abstract (or author comment) with Markdown a commenter would add."""
    out = []
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            record = orjson.loads(line)
            prose = str(record.get("abstract") or record.get("comments") or "")[: MAX_CHARS - 200]
            if not prose:
                continue
            out.append(f"**Nice.** {prose}\n\nSee [the code](https://github.com/example/repo) and `train.py`.")
            if len(out) == count:
                break
    return out


def percentiles(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def bench_render(bodies: list[str]) -> dict[str, float]:
    markdown._render.cache_clear()
    times = []
    for body in bodies:
        started = time.perf_counter()
        markdown.render(body)
        times.append((time.perf_counter() - started) * 1e6)
    p50, p99 = percentiles(times)
    chars = statistics.mean(len(b) for b in bodies)
    print(f"render: {len(bodies)} comments of {chars:.0f} characters on average: p50 {p50:.0f} µs, p99 {p99:.0f} µs")
    return {"render_us_p50": round(p50, 1), "render_us_p99": round(p99, 1)}


def bench_page(bodies: list[str], requests: int) -> dict[str, float]:
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(f"sqlite:///{tmp}/bench.db")
        for sample in sorted(SAMPLE.iterdir()):
            ingest(store, str(sample))
        paper_ids = [p.id for _, p in zip(range(3), store.iter_papers(), strict=False)]
        user = Accounts(store).create_user("bencher", "x").id
        comments = Comments(store)
        app = create_app(Settings(home=Path(tmp) / "home", secret_key="bench", embedder="none"), store)
        client = TestClient(app)
        app.state.site.sync_index()
        source = itertools.cycle(bodies)
        for paper_id, count in zip(paper_ids, (0, 50, 200), strict=True):
            top = None
            for i in range(count):
                reply_to = top if i % 3 == 2 else None
                made = comments.add(paper_id, user, next(source), reply_to=reply_to)
                top = made.id if reply_to is None else top
            client.get(f"/papers/{paper_id}").raise_for_status()  # warm: templates, render cache for this page
            times = []
            for _ in range(requests):
                started = time.perf_counter()
                client.get(f"/papers/{paper_id}").raise_for_status()
                times.append((time.perf_counter() - started) * 1000)
            p50, p99 = percentiles(times)
            print(f"paper page with {count:3d} comments: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
            out[f"page_ms_p50_{count}"] = round(p50, 2)
            out[f"page_ms_p99_{count}"] = round(p99, 2)
        store.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT)
    parser.add_argument("--comments", type=int, default=3000)
    parser.add_argument("--requests", type=int, default=40)
    args = parser.parse_args()
    bodies = texts(args.data, args.comments)
    summary = {**bench_render(bodies), **bench_page(bodies, args.requests)}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
