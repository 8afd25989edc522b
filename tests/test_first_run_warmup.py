"""Issue 11 points 8 and 11 with the real packaged MiniLM: `ingest` into a new home leaves the model unbuilt;
`papersift serve` prepares it and embeds at start (no search needed), reporting progress (embedded / total,
papers/s, ETA) on /healthz and as a notice on search pages that goes away when hybrid ranking is on."""

from __future__ import annotations

import gzip
import importlib.util
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
from .live_server import ARGS, CHROMIUM, DESKTOP, PHONE
from .pgserver import free_port
from .test_embed import needs_ort as needs_model

PAPERS = 120  # a few seconds of embedding on two idle cores (31 papers/s): room for readings and the page checks
NOTICE = "Semantic search is warming up"


NOTICE_BOX = """() => {
  const n = document.querySelector('.notice.warmup');
  const r = n ? n.getBoundingClientRect() : null;
  return {text: n ? n.innerText : null, left: r && r.left, right: r && r.right, height: r && r.height,
          vw: innerWidth, scroll: document.documentElement.scrollWidth};
}"""


def _notice_in_chromium(browser: object | None, url: str) -> list[dict[str, object]]:
    """The warm-up notice as Chromium lays it out at desktop and phone widths (none without a browser)."""
    boxes: list[dict[str, object]] = []
    if browser is None:
        return boxes
    for device in (DESKTOP, PHONE):
        context = browser.new_context(**device)  # type: ignore[attr-defined]
        page = context.new_page()
        page.goto(url)
        boxes.append(page.evaluate(NOTICE_BOX))
        context.close()
    return boxes


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as r:  # loopback only
        return bytes(r.read())


@needs_model
def test_ingest_skips_the_model_and_serve_embeds_at_start_showing_progress(tmp_path: Path) -> None:
    with gzip.open(SAMPLE / "arxiv_daily_sample.jsonl.gz", "rt") as lines:
        (tmp_path / "few.jsonl").write_text("".join(next(lines) for _ in range(PAPERS)))
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERSIFT_")}
    env |= {"PAPERSIFT_HOME": str(home), "PAPERSIFT_EMBEDDER": "minilm-onnx-int8", "PAPERSIFT_SECRET_KEY": "s"}
    ingested = CliRunner().invoke(main, ["ingest", str(tmp_path / "few.jsonl")], env=env)
    assert ingested.exit_code == 0, ingested.output
    assert not (home / "models").exists(), "ingest built the embedding model"
    assert not list(home.rglob("*.onnx"))
    assert f"{PAPERS:,} papers await semantic vectors" in ingested.stderr  # counted without the model

    if importlib.util.find_spec("playwright") is None or not CHROMIUM.exists():  # the rest still runs
        print("no Chromium: the notice's layout at 1280 and 390 px is not checked")
        _serve_and_watch(tmp_path, env, None)
    else:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)  # launched before warm-up starts
            try:
                _serve_and_watch(tmp_path, env, browser)
            finally:
                browser.close()
    # the CLI searches the same home with the model the server built, hybrid (no "await vectors" note)
    found = CliRunner().invoke(main, ["search", "learning", "--json", "-n", "3"], env=env)
    assert found.exit_code == 0 and len(json.loads(found.stdout)) == 3
    assert "await semantic vectors" not in found.stderr


def _serve_and_watch(tmp_path: Path, env: dict[str, str], browser: object | None) -> None:
    """Serve the home; watch /healthz and the search page until hybrid ranking is on."""
    port = free_port()
    log = tmp_path / "serve.log"
    server = subprocess.Popen(
        [sys.executable, "-m", "papersift.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )
    base = f"http://127.0.0.1:{port}"
    phases: set[str] = set()
    progress: list[dict[str, object]] = []
    notices: list[str] = []
    laid_out: list[dict[str, object]] = []
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:  # only /healthz and search pages: nothing else asks for vectors
            try:
                health = json.loads(_get(f"{base}/healthz"))
            except OSError:
                time.sleep(0.1)
                continue
            if health["semantic"] == "ok":
                break
            embedding = health["embedding"]
            if embedding is not None:
                phases.add(str(embedding["phase"]))
                if embedding["phase"] == "embedding" and embedding["embedded"]:
                    progress.append(embedding)
                    if len(notices) < 3:
                        page = _get(f"{base}/search?q=learning").decode()
                        notices += [line for line in page.splitlines() if NOTICE in line]
                    if not laid_out:
                        laid_out = _notice_in_chromium(browser, f"{base}/search?q=learning")
            time.sleep(0.1)
        else:
            pytest.fail("hybrid ranking never came on:\n" + log.read_text(errors="replace")[-2000:])
        page = _get(f"{base}/search?q=learning").decode()
        health = json.loads(_get(f"{base}/healthz"))
        after = _notice_in_chromium(browser, f"{base}/search?q=learning")
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"phases {sorted(phases)}; {len(progress)} progress readings, last {progress[-1] if progress else None}")
    # embedding began with `serve`: progress was reported before anything but /healthz was asked for
    assert progress, "no embedding progress was reported"
    embedded = [int(str(p["embedded"])) for p in progress]
    # it moved: readings part-way (an idle machine may give only one before it is done), never backwards, then
    # all embedded (checked below on the final /healthz)
    assert embedded == sorted(embedded) and 0 < embedded[0] < PAPERS, f"progress did not move: {embedded}"
    assert all(p["total"] == PAPERS and p["papers_per_s"] and p["eta_s"] is not None for p in progress)
    assert notices and all(f"of {PAPERS} papers" in n and "keyword results meanwhile" in n for n in notices)
    assert NOTICE not in page and 'class="card' in page  # hybrid now: the notice has gone, results remain
    assert health["embedding"] is None and health["vectors_pending"] == 0
    assert "Traceback" not in log.read_text(errors="replace")
    for box in laid_out:  # seen at 1280 and 390 px: on screen, inside the width, no sideways scroll
        assert NOTICE in str(box["text"]) and float(str(box["height"])) > 0, box
        assert float(str(box["left"])) >= 0 and float(str(box["right"])) <= float(str(box["vw"])), box
        assert int(str(box["scroll"])) <= int(str(box["vw"])), box
    assert browser is None or (len(laid_out) == 2 and all(box["text"] is None for box in after)), (laid_out, after)
