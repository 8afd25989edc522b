"""Search latency while an attacker floods POST /api/auth/login with wrong passwords (issue 10, item 9).

    .venv/bin/python benchmarks/login_flood_bench.py [--seconds 10] [--threads 8] [--src DIR]
        [--embedder none|minilm-onnx-int8]

Loads the bundled sample (src/papersift/data/sample) into a temporary home, starts a real `papersift
serve` on a free loopback port, signs up the victim account, then for each scenario times searches from
one client for --seconds while --threads attacker threads post wrong passwords:

- quiet: no attacker;
- one address: every attempt comes from 127.0.0.1 against the victim's account;
- many addresses: each attempt claims another client address in X-Forwarded-For (the server trusts the
  loopback proxy, as PAPERSIFT_FORWARDED_ALLOW_IPS does by default) and guesses another account name,
  which is what a botnet spraying passwords looks like to the per-address and per-account limits.

Prints p50 / p99 search latency, searches done and the attacker's answers by status code.
`--src DIR` serves another checkout's sources (e.g. `git archive a9f0835 src | tar -x -C /tmp/before`
then `--src /tmp/before/src`) to compare with the code before throttling.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "src" / "papersift" / "data" / "sample"
BIN = Path(sys.executable).parent
QUERIES = ["diffusion models", "graph neural networks", "reinforcement learning", "large language model agents"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _attack(base: str, stop: threading.Event, spread: bool, codes: collections.Counter[int], seed: int) -> None:
    counter = itertools.count()
    with httpx.Client(base_url=base, timeout=60) as client:
        while not stop.is_set():
            n = next(counter)
            headers, name = {}, "victim"
            if spread:
                headers["X-Forwarded-For"] = f"10.{seed}.{n // 250 % 250}.{n % 250 + 1}"
                name = f"user{seed}x{n}"
            try:
                r = client.post("/api/auth/login", json={"username": name, "password": f"guess-{n}"}, headers=headers)
                codes[r.status_code] += 1
            except httpx.HTTPError:
                codes[0] += 1


def _scenario(base: str, seconds: float, threads: int, mode: str) -> dict[str, object]:
    stop = threading.Event()
    codes: collections.Counter[int] = collections.Counter()
    attackers = [
        threading.Thread(target=_attack, args=(base, stop, mode == "many addresses", codes, i), daemon=True)
        for i in range(threads if mode != "quiet" else 0)
    ]
    for t in attackers:
        t.start()
    times: list[float] = []
    with httpx.Client(base_url=base, timeout=60) as client:
        client.get("/api/papers/search", params={"q": "warm up"})
        end = time.monotonic() + seconds
        for q in itertools.cycle(QUERIES):
            if time.monotonic() >= end:
                break
            started = time.perf_counter()
            r = client.get("/api/papers/search", params={"q": q, "limit": 20})
            times.append((time.perf_counter() - started) * 1000)
            r.raise_for_status()
    stop.set()
    for t in attackers:
        t.join()
    times.sort()
    return {
        "p50": statistics.median(times),
        "p99": times[min(len(times) - 1, int(len(times) * 0.99))],
        "searches": len(times),
        "attacker": dict(sorted(codes.items())),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--src", type=Path, help="serve these sources instead of the installed package")
    parser.add_argument("--embedder", default="none", help="PAPERSIFT_EMBEDDER for the served site")
    args = parser.parse_args()
    env = {**os.environ, "PAPERSIFT_EMBEDDER": args.embedder, "PAPERSIFT_FORWARDED_ALLOW_IPS": "127.0.0.1"}
    if args.src:
        env["PYTHONPATH"] = str(args.src.resolve())
    papersift = str(BIN / "papersift")
    with tempfile.TemporaryDirectory(prefix="papersift-flood-") as tmp:
        home = ["--home", tmp]
        subprocess.run([papersift, *home, "ingest", str(SAMPLE)], env=env, check=True, capture_output=True)
        port = _free_port()
        cmd = [papersift, *home, "serve", "--port", str(port), "--log-level", "warning"]
        server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(600):
                try:
                    httpx.get(base + "/healthz", timeout=1)
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
            signup = httpx.post(base + "/api/auth/signup", json={"username": "victim", "password": "correct horse"})
            signup.raise_for_status()
            print(f"{'scenario':<16} {'p50 ms':>8} {'p99 ms':>8} {'searches':>9}  attacker answers by status")
            for mode in ("quiet", "one address", "many addresses"):
                got = _scenario(base, args.seconds, args.threads, mode)
                print(f"{mode:<16} {got['p50']:8.1f} {got['p99']:8.1f} {got['searches']:9d}  {got['attacker']}")
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
