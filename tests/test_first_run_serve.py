"""Issue 11 point 11: a CLI search with a relative `--home` beside a running `papersift serve` on the same home
answers from the server's indexes and rewrites none of them (real server process, real CLI process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from papersift.cli import main

from .conftest import SAMPLE
from .pgserver import free_port


def _get(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=30) as r:  # loopback only
        return dict(json.loads(r.read()))


def _files(directory: Path) -> dict[str, tuple[int, int, int]]:
    """Every index file with its inode, size and modification time: a rebuild or re-save changes them."""
    return {
        str(p.relative_to(directory)): (p.stat().st_ino, p.stat().st_size, p.stat().st_mtime_ns)
        for p in directory.rglob("*")
        if p.is_file() and not p.name.startswith(".")  # lock files are opened (touched) by design
    }


def test_relative_home_search_beside_a_running_server_rebuilds_nothing(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    home = checkout / ".papersift"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERSIFT_")}
    env |= {"PAPERSIFT_EMBEDDER": "hash", "PAPERSIFT_SECRET_KEY": "s"}
    sample = str(SAMPLE / "hf_featured_sample.jsonl.gz")
    ingested = CliRunner().invoke(main, ["--home", str(home), "ingest", sample, "-q"], env=env)
    assert ingested.exit_code == 0, ingested.output
    port = free_port()
    log = tmp_path / "serve.log"
    server = subprocess.Popen(  # as `make run` starts it: an absolute home, from another directory
        [sys.executable, "-m", "papersift.cli", "--home", str(home), "serve", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                health = _get(f"{base}/healthz")
                if health.get("vectors_pending") == 0 and health.get("search") == "ok":
                    break
            except OSError:
                pass
            time.sleep(0.1)
        else:
            pytest.fail("the server never finished indexing:\n" + log.read_text(errors="replace")[-2000:])
        before = _files(home / "index")
        assert any(name.startswith("keyword/") for name in before) and "dense/state.json" in before
        found = subprocess.run(
            [sys.executable, "-m", "papersift.cli", "--home", ".papersift", "search", "video", "--json", "-n", "3"],
            env=env,
            cwd=checkout,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert found.returncode == 0, found.stderr
        assert len(json.loads(found.stdout)) == 3
        assert "rebuild" not in found.stderr and "await semantic vectors" not in found.stderr, found.stderr
        assert _files(home / "index") == before, "the CLI rewrote index files the server was using"
        assert _get(f"{base}/healthz")["search"] == "ok"
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert "Traceback" not in log.read_text(errors="replace")
