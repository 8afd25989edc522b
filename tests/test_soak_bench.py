"""The soak benchmark's plumbing: the held-back split, the update file, the chunks, and one tiny real run
(a real `papersift serve` and `papersift ingest` on the bundled sample) whose papers really arrive and change.
Latency figures are the benchmark's business, not asserted here."""

from __future__ import annotations

import gzip
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from papersift.store import Store

from .conftest import REPO, SAMPLE

LISTINGS = SAMPLE / "arxiv_daily_sample.jsonl.gz"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("soak_bench", REPO / "benchmarks" / "soak_bench.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_held_back_papers_are_the_newest_and_updates_are_new_versions() -> None:
    bench = _bench()
    base, held = bench.split_listings(LISTINGS, 300)
    assert len(held) == 300 and len(base) + len(held) == 1283
    assert max(r["listing_date"] for r in base) <= min(r["listing_date"] for r in held)
    assert not {r["id"] for r in base} & {r["id"] for r in held}
    update = bench.as_update(held[0])
    assert update["id"] == held[0]["id"] and update["version"] == 2
    assert update["abstract"] != held[0]["abstract"] and update["abstract"].startswith(held[0]["abstract"])


def test_chunks_cover_the_file_in_order(tmp_path: Path) -> None:
    bench = _bench()
    file = tmp_path / "held.jsonl"
    file.write_text("".join(f'{{"n": {i}}}\n' for i in range(103)))
    parts = bench.split_file(file, 10)
    assert len(parts) == 10
    lines = [line for part in parts for line in part.read_text().splitlines()]
    assert [json.loads(line)["n"] for line in lines] == list(range(103))


def test_tiny_soak_run_ingests_and_updates_under_traffic(tmp_path: Path) -> None:
    """One connection count, one-second phases: every phase got answers, none failed, and afterwards the
    store holds every paper, the held-back ones as version 2 with the changed abstract."""
    keep = tmp_path / "soak"
    flags = ["--keep", str(keep), "--data", str(LISTINGS), "--held", "200", "--seconds", "1", "--connections", "2"]
    out = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "soak_bench.py"), *flags, "--chunks", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    phases = {p["phase"]: p for p in summary["phases"]}
    assert set(phases) == {"baseline", "ingest", "update"}
    for phase in phases.values():
        assert phase["requests"] > 0
        assert phase["errors"] == 0 and phase["timeouts"] == 0, phase["examples"]
    for name in ("ingest", "update"):
        assert phases[name]["ingest"]["runs"] == 1 and phases[name]["ingest"]["failed_runs"] == 0
    with gzip.open(LISTINGS, "rt") as f:
        newest = max((json.loads(line) for line in f), key=lambda r: (r["listing_date"], r["id"]))
    store = Store.open(f"sqlite:///{keep / 'run-2' / 'home' / 'papersift.db'}")
    try:
        assert store.count() == 1283
        paper = store.get(newest["id"])
        assert paper.version == 2 and paper.abstract.endswith("(v2: revised after review)")
    finally:
        store.close()
