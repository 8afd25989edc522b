"""Web latency benchmark: the daily page and a search page of a 74,728-paper store, measured with wrk.

    .venv/bin/python benchmarks/web_bench.py [--home DIR] [--duration 10] [--connections 1,8]
        [--embedder none|minilm-onnx-int8] [--data FILE_OR_DIR]

Ingests ../shared/data/arxiv_daily/arxiv_daily_2025-2026.jsonl.gz (or --data) into DIR (kept between
runs), runs `papersift index` so that no embedding happens while measuring (with a model that is
about 40 papers/s on two cores: the 74,728 papers take half an hour once), starts `papersift serve`
on a free loopback port in its own process, runs wrk (Debian package `wrk`) against each URL and
prints p50 / p99 latency and requests per second. The default embedder is `none` (keyword search).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data" / "arxiv_daily" / "arxiv_daily_2025-2026.jsonl.gz"
BIN = Path(sys.executable).parent
URLS = {
    "daily (latest day)": "/",
    "daily (month view)": "/?view=month",
    "search": "/search?q=diffusion+models+for+video+generation",
    "api daily": "/api/daily_papers",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ms(value: str) -> float:
    match = re.match(r"([\d.]+)(us|ms|s|m)$", value)
    if match is None:
        raise ValueError(f"unreadable wrk latency {value!r}")
    number, unit = match.groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", type=Path, default=Path("/tmp/papersift-web-bench"))
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", default="1,8", help="comma-separated wrk connection counts")
    parser.add_argument("--workers", type=int, default=1, help="papersift serve --workers")
    parser.add_argument("--embedder", default="none", help="PAPERSIFT_EMBEDDER for the served site")
    parser.add_argument("--data", type=Path, default=DATA, help="what to ingest into a new --home")
    args = parser.parse_args()
    os.environ["PAPERSIFT_EMBEDDER"] = args.embedder
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install wrk")
    papersift = str(BIN / "papersift")
    home = ["--home", str(args.home)]
    if not (args.home / "papersift.db").exists():
        subprocess.run([papersift, *home, "ingest", "-q", str(args.data)], check=True)
    subprocess.run([papersift, *home, "index"], check=True)
    port = _free_port()
    server = subprocess.Popen(
        [papersift, *home, "serve", "--port", str(port), "--workers", str(args.workers), "--log-level", "warning"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        print(f"{'page':<22} {'conns':>5} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8}")
        for name, path in URLS.items():
            urllib.request.urlopen(base + path, timeout=30).read()  # warm caches
            for connections in (int(c) for c in args.connections.split(",")):
                print(f"{name:<22} {connections:>5} {_wrk(base + path, connections, args.duration)}")
    finally:
        server.terminate()
        server.wait(10)


def _wrk(url: str, connections: int, duration: int) -> str:
    """One wrk run; its p50, p99 and requests/s formatted as a table row."""
    threads = min(2, connections)
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "Latency Distribution" not in out:
        return f"wrk gave no latency figures:\n{out}"
    p50 = _ms(re.search(r"^\s*50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s*99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    note = f"  ({errors.group(1)} errors)" if errors else ""
    return f"{p50:>8.1f} {p99:>8.1f} {rps:>8.1f}{note}"


if __name__ == "__main__":
    main()
