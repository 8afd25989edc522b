"""Soak benchmark: mixed page/search/API traffic on the 74,728-paper store while papers arrive and change.

    .venv/bin/python benchmarks/soak_bench.py [--keep DIR] [--seconds 60] [--connections 8,16]
        [--held 20000] [--timeout 10] [--data FILE]

Builds (once; kept in --keep DIR) a keyword-only home (PAPERSIFT_EMBEDDER=none: embedding 75k
abstracts with the default model takes hours on two cores) holding the real arXiv listings minus the
`--held` newest ones, and writes two files beside it: the held-back papers, and the same papers as
version 2 with a changed abstract (updates). For each connection count it copies the pristine home,
starts a real `papersift serve` on a free loopback port and runs three phases of (at least) `--seconds`:

- baseline: traffic only;
- ingest:   traffic while `papersift ingest` adds the held-back papers beside it;
- update:   traffic while `papersift ingest` re-ingests them as updates.

A bulk ingest of 20,000 papers takes about 8 s, so by default they arrive in `--chunks 20` runs of
`papersift ingest` spread over the phase (a harvester's batches), which keeps the store and the
index changing for the whole phase; `--chunks 1` is one bulk ingest at the start of the phase.

The load generator (asyncio + httpx, one connection per worker, on loopback) mixes GET / (various
days), /trending, /search?q=, /api/papers/search, /api/daily_papers, /papers/ID and
/api/papers/ID/related, with query words from the corpus titles. A request that takes longer than
`--timeout` seconds counts as a timeout (and as `--timeout` in the percentiles, a lower bound); any
non-2xx/3xx answer is an error. Prints a table per phase and a JSON summary last. A 60 s phase
dilutes a short stall, so the ingest phases also report the p99 of the requests that overlapped the
ingest (its "window", plus 10 s for the server to catch up) and the count over 1 s. Target: zero
errors and timeouts, p99 under ingest (phase and window) at most 3x the baseline p99.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data" / "arxiv_daily" / "arxiv_daily_2025-2026.jsonl.gz"
BIN = Path(sys.executable).parent
PAPERSIFT = str(BIN / "papersift")
WORD = re.compile(r"[a-z]{5,}")
STOP = {"which", "their", "these", "based", "using", "towards", "through", "about", "among", "under", "while"}


# -- the store --------------------------------------------------------------------------------------


def split_listings(data: Path, held: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(base, held back): the `held` newest listings (by listing date, then id) arrive during the run."""
    with gzip.open(data, "rt", encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()]
    records.sort(key=lambda r: (str(r.get("listing_date") or ""), str(r.get("id"))))
    cut = max(0, len(records) - held)
    return records[:cut], records[cut:]


def as_update(record: dict[str, Any]) -> dict[str, Any]:
    """The same paper as a new version whose abstract changed, so the upsert must rewrite and re-index it."""
    return {**record, "version": 2, "abstract": f"{record.get('abstract') or ''} (v2: revised after review)"}


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")


def build(keep: Path, data: Path, held: int) -> dict[str, Any]:
    """The pristine home, the held-back file and the update file; reused when already in `keep`."""
    manifest_path = keep / "manifest.json"
    if manifest_path.exists():
        manifest: dict[str, Any] = json.loads(manifest_path.read_text())
        if manifest.get("held") == held and manifest.get("data") == str(data):
            return manifest
    shutil.rmtree(keep / "pristine", ignore_errors=True)
    keep.mkdir(parents=True, exist_ok=True)
    base, new = split_listings(data, held)
    write_jsonl(keep / "base.jsonl", base)
    write_jsonl(keep / "held.jsonl", new)
    write_jsonl(keep / "updates.jsonl", [as_update(r) for r in new])
    home = ["--home", str(keep / "pristine")]
    started = time.monotonic()
    subprocess.run([PAPERSIFT, *home, "ingest", "-q", str(keep / "base.jsonl")], check=True)  # and builds BM25
    manifest = {
        "data": str(data),
        "held": held,
        "base_papers": len(base),
        "held_papers": len(new),
        "build_s": round(time.monotonic() - started, 1),
        "ids": [str(r["id"]) for r in random.Random(7).sample(base, min(2000, len(base)))],
        "days": sorted({str(r["listing_date"]) for r in base if r.get("listing_date")}),
        "words": _query_words(base),
    }
    manifest_path.write_text(json.dumps(manifest))
    return manifest


def _query_words(records: list[dict[str, Any]]) -> list[str]:
    """Frequent title words: real query terms that match many papers (the expensive searches)."""
    counts: Counter[str] = Counter()
    for record in records:
        counts.update(w for w in WORD.findall(str(record.get("title") or "").lower()) if w not in STOP)
    return [w for w, _ in counts.most_common(400)]


# -- the server -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`papersift serve` on a free loopback port, over its own copy of the pristine home."""

    def __init__(self, home: Path, workers: int) -> None:
        self.home = home
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = (home.parent / f"serve-{self.port}.log").open("wb")
        args = ["--home", str(home), "serve", "--port", str(self.port), "--workers", str(workers)]
        self.proc = subprocess.Popen(
            [PAPERSIFT, *args, "--log-level", "warning"], stdout=self.log, stderr=subprocess.STDOUT
        )

    def wait_ready(self, seconds: float = 120.0) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"papersift serve exited with {self.proc.returncode}; see {self.log.name}")
            try:  # ready when a search answers: BM25 is open (a new server may answer 503 until then)
                if httpx.get(self.base + "/search?q=warm", timeout=60).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"papersift serve did not answer a search within {seconds:.0f}s; see {self.log.name}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


# -- the load generator -----------------------------------------------------------------------------


def make_paths(manifest: dict[str, Any], rng: random.Random) -> tuple[str, str]:
    """One request of the mix: (kind, path)."""
    ids, days, words = manifest["ids"], manifest["days"], manifest["words"]
    query = "+".join(rng.sample(words, rng.choice((1, 2, 3))))
    kind = rng.choices(
        ["daily", "trending", "search", "api_search", "api_daily", "paper", "api_related"],
        weights=[3, 1, 3, 3, 2, 3, 2],
    )[0]
    day = rng.choice(days[-60:])
    paper = rng.choice(ids)
    path = {
        "daily": f"/?date={day}" if rng.random() < 0.7 else "/",
        "trending": "/trending",
        "search": f"/search?q={query}",
        "api_search": f"/api/papers/search?q={query}&limit=20",
        "api_daily": f"/api/daily_papers?date={day}&limit=50",
        "paper": f"/papers/{paper}",
        "api_related": f"/api/papers/{paper}/related",
    }[kind]
    return kind, path


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    starts: list[float] = field(default_factory=list)  # monotonic start of each request in `latencies`
    kinds: dict[str, list[float]] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    timeouts: int = 0
    examples: list[str] = field(default_factory=list)
    seconds: float = 0.0


async def _worker(
    base: str, manifest: dict[str, Any], seed: int, go_on: Callable[[], bool], timeout: float, tally: Tally
) -> None:
    rng = random.Random(seed)
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(base_url=base, timeout=timeout, limits=limits) as client:
        while go_on():
            kind, path = make_paths(manifest, rng)
            started = time.monotonic()
            try:
                response = await client.get(path)
                status = response.status_code
            except httpx.TimeoutException:
                tally.timeouts += 1
                tally.latencies.append(timeout)
                tally.starts.append(started)
                tally.kinds.setdefault(kind, []).append(timeout)
                if len(tally.examples) < 10:
                    tally.examples.append(f"timeout {path}")
                continue
            except httpx.HTTPError as exc:
                tally.errors[type(exc).__name__] += 1
                if len(tally.examples) < 10:
                    tally.examples.append(f"{type(exc).__name__} {path}")
                continue
            elapsed = time.monotonic() - started
            tally.latencies.append(elapsed)
            tally.starts.append(started)
            tally.kinds.setdefault(kind, []).append(elapsed)
            if status >= 400:
                tally.errors[str(status)] += 1
                if len(tally.examples) < 10:
                    tally.examples.append(f"{status} {path}")


def drive(
    base: str,
    manifest: dict[str, Any],
    connections: int,
    seconds: float,
    timeout: float,
    seed: int,
    busy: Callable[[], bool] = lambda: False,
) -> Tally:
    """`connections` workers, each on its own keep-alive connection, for `seconds` and as long as `busy()`."""
    tally = Tally()
    started = time.monotonic()
    stop_at = started + seconds

    def go_on() -> bool:
        return time.monotonic() < stop_at or busy()

    async def run() -> None:
        await asyncio.gather(
            *(_worker(base, manifest, seed * 1000 + i, go_on, timeout, tally) for i in range(connections))
        )

    asyncio.run(run())
    tally.seconds = time.monotonic() - started
    return tally


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100), the project's definition."""
    from papersift.bench.metrics import percentile as nearest_rank

    return nearest_rank(values, q)


def summarise(name: str, connections: int, tally: Tally, ingest: dict[str, Any] | None) -> dict[str, Any]:
    lat = tally.latencies
    return {
        "phase": name,
        "connections": connections,
        "requests": len(lat) + sum(tally.errors[k] for k in tally.errors if not k.isdigit()),
        "errors": sum(tally.errors.values()),
        "error_kinds": dict(tally.errors),
        "timeouts": tally.timeouts,
        "p50_ms": round(percentile(lat, 50) * 1000, 1),
        "p99_ms": round(percentile(lat, 99) * 1000, 1),
        "max_ms": round(max(lat, default=0.0) * 1000, 1),
        "seconds": round(tally.seconds, 1),
        "rps": round(len(lat) / max(tally.seconds, 1e-9), 1),
        "p999_ms": round(percentile(lat, 99.9) * 1000, 1),
        "over_1s": sum(x > 1.0 for x in lat),
        "p99_ms_by_kind": {k: round(percentile(v, 99) * 1000, 1) for k, v in sorted(tally.kinds.items())},
        "examples": tally.examples,
        "ingest": ingest,
    }


def split_file(file: Path, chunks: int) -> list[Path]:
    """FILE cut into `chunks` files of consecutive lines (kept beside it), the batches a harvester delivers."""
    lines = file.read_text(encoding="utf-8").splitlines(keepends=True)
    size = max(1, -(-len(lines) // max(1, chunks)))
    parts = []
    for i in range(0, len(lines), size):
        part = file.with_name(f"{file.stem}.{chunks}.{i // size:03d}.jsonl")
        if not part.exists():
            part.write_text("".join(lines[i : i + size]), encoding="utf-8")
        parts.append(part)
    return parts


class Feeder:
    """Runs `papersift ingest` on each chunk in turn, chunk i starting no earlier than i * spacing seconds."""

    def __init__(self, home: Path, parts: list[Path], spacing: float, log: Path) -> None:
        self.home, self.parts, self.spacing = home, parts, spacing
        self.log = log
        self.codes: list[int] = []
        self.seconds = 0.0
        self.started = self.ended = 0.0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.started = started = time.monotonic()
        with self.log.open("wb") as log:
            for i, part in enumerate(self.parts):
                time.sleep(max(0.0, started + i * self.spacing - time.monotonic()))
                args = [PAPERSIFT, "--home", str(self.home), "ingest", "-q", str(part)]
                self.codes.append(subprocess.run(args, stdout=log, stderr=subprocess.STDOUT).returncode)
        self.ended = time.monotonic()
        self.seconds = self.ended - started


def run_ingest_phase(
    server: Server, file: Path, manifest: dict[str, Any], connections: int, args: argparse.Namespace, seed: int
) -> tuple[Tally, dict[str, Any]]:
    """Traffic while FILE is ingested beside it in `--chunks` consecutive `papersift ingest` runs spread over
    `--seconds`: for `--seconds`, and longer if the ingest is not done by then (traffic covers all of it)."""
    parts = split_file(file, args.chunks)
    spacing = args.seconds * 0.9 / len(parts) if len(parts) > 1 else 0.0
    feeder = Feeder(server.home, parts, spacing, server.home.parent / f"ingest-{file.stem}-{connections}.log")
    feeder.thread.start()
    tally = drive(server.base, manifest, connections, args.seconds, args.timeout, seed, feeder.thread.is_alive)
    feeder.thread.join()
    bad = [c for c in feeder.codes if c not in (0, 3)]
    # the requests that overlapped the ingest or the server's catching up with it (it looks every few seconds)
    window = [x for t, x in zip(tally.starts, tally.latencies, strict=True) if feeder.started <= t <= feeder.ended + 10]
    info: dict[str, Any] = {
        "window_requests": len(window),
        "window_p99_ms": round(percentile(window, 99) * 1000, 1),
        "file": file.name,
        "runs": len(parts),
        "failed_runs": len(bad),
        "seconds": round(feeder.seconds, 1),
    }
    if bad:
        info["log"] = feeder.log.read_text(errors="replace")[-2000:]
    return tally, info


HEADER = (
    f"{'phase':<9} {'conns':>5} {'requests':>8} {'errors':>6} {'timeouts':>8} {'p50 ms':>8} {'p99 ms':>8} "
    f"{'max ms':>8} {'>1s':>5} {'req/s':>6} {'win p99':>8} {'x p99':>6} {'x win':>6}"
)


def row(s: dict[str, Any]) -> str:
    """One table line; `win p99` is the p99 of requests that overlapped the ingest (+10 s for the server to
    catch up), `x p99` / `x win` the phase's and the window's p99 over the baseline p99."""
    ingest = s["ingest"] or {}
    win = f"{ingest['window_p99_ms']:>8.1f}" if ingest else f"{'':>8}"
    ratios = f" {s['p99_ratio']:>6.2f} {s['window_p99_ratio']:>6.2f}" if ingest else ""
    note = f"  ({ingest['runs']} ingest runs, {ingest['seconds']} s, {ingest['failed_runs']} failed)" if ingest else ""
    return (
        f"{s['phase']:<9} {s['connections']:>5} {s['requests']:>8} {s['errors']:>6} {s['timeouts']:>8} "
        f"{s['p50_ms']:>8.1f} {s['p99_ms']:>8.1f} {s['max_ms']:>8.1f} {s['over_1s']:>5} {s['rps']:>6.1f} "
        f"{win}{ratios}{note}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, help="build the store here once and reuse it (default: a temp dir)")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--held", type=int, default=20_000, help="papers held back, then ingested and updated")
    parser.add_argument("--seconds", type=float, default=60.0, help="duration of each phase")
    parser.add_argument("--connections", default="8,16")
    parser.add_argument(
        "--chunks",
        type=int,
        default=20,
        help="ingest runs the held papers arrive in, spread over the phase (1: one bulk ingest)",
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="client timeout; slower counts as a timeout")
    parser.add_argument("--workers", type=int, default=1, help="papersift serve --workers")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    os.environ["PAPERSIFT_EMBEDDER"] = "none"
    for key in ("PAPERSIFT_HOME", "PAPERSIFT_DATABASE_URL"):
        os.environ.pop(key, None)
    temp = None if args.keep else tempfile.TemporaryDirectory(prefix="papersift-soak-")
    keep: Path = args.keep or Path(temp.name)  # type: ignore[union-attr]
    try:
        manifest = build(keep, args.data, args.held)
        print(
            f"store: {manifest['base_papers']} papers (+{manifest['held_papers']} held back), "
            f"keyword-only; built in {manifest['build_s']}s (reused when kept)",
            flush=True,
        )
        results = [soak(keep, manifest, int(c), args) for c in args.connections.split(",")]
    finally:
        if temp is not None:
            temp.cleanup()
    phases = [p for r in results for p in r]
    print(json.dumps({"store_papers": manifest["base_papers"], "held": manifest["held_papers"], "phases": phases}))


def soak(keep: Path, manifest: dict[str, Any], connections: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    """The three phases at one connection count, on a fresh copy of the pristine home."""
    run = keep / f"run-{connections}"
    shutil.rmtree(run, ignore_errors=True)
    shutil.copytree(keep / "pristine", run / "home")
    server = Server(run / "home", args.workers)
    try:
        server.wait_ready()
        seconds, timeout = args.seconds, args.timeout
        baseline = drive(server.base, manifest, connections, seconds, timeout, args.seed)
        phases = [summarise("baseline", connections, baseline, None)]
        for name, file in (("ingest", keep / "held.jsonl"), ("update", keep / "updates.jsonl")):
            tally, info = run_ingest_phase(server, file, manifest, connections, args, args.seed + len(phases))
            phases.append(summarise(name, connections, tally, info))
    finally:
        server.stop()
    base_p99 = phases[0]["p99_ms"] or 1.0
    for p in phases[1:]:
        p["p99_ratio"] = round(p["p99_ms"] / base_p99, 2)
        p["window_p99_ratio"] = round(p["ingest"]["window_p99_ms"] / base_p99, 2)
    for p in phases:  # the target: no errors or timeouts, p99 under ingest at most 3x the baseline's
        worst = max(p.get("p99_ratio", 1.0), p.get("window_p99_ratio", 1.0))
        p["target_met"] = p["errors"] == 0 and p["timeouts"] == 0 and worst <= 3.0
    print(HEADER)
    for p in phases:
        print(row(p), flush=True)
    return phases


if __name__ == "__main__":
    main()
