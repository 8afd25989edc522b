"""The CLI end to end: the installed `papersift` command on the bundled sample, then CliRunner for the rest."""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from papersift.cli import main

from .conftest import FIXTURES, SAMPLE, SHARED_DATA


def run(home: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["--home", str(home), *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def sample_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("sample-home")
    code, _, err = run(home, "ingest", str(SAMPLE), "--quiet")
    assert code == 0, err
    return home


def test_console_script_ingests_and_searches(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("papersift")
    home = tmp_path / "h"
    first = subprocess.run([str(exe), "--home", str(home), "ingest", str(SAMPLE), "-q"], capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert "1283 added" in first.stdout
    second = subprocess.run(
        [str(exe), "--home", str(home), "ingest", str(SAMPLE), "-q"], capture_output=True, text=True
    )
    assert second.returncode == 3
    assert "nothing changed" in second.stdout
    found = subprocess.run(
        [str(exe), "--home", str(home), "search", "video diffusion generation", "--json", "-n", "5"],
        capture_output=True,
        text=True,
    )
    hits = json.loads(found.stdout)
    assert len(hits) == 5
    assert all("video" in (h["title"] + h["abstract"]).lower() for h in hits)


def test_stats_json(sample_home: Path) -> None:
    code, out, _ = run(sample_home, "stats", "--json")
    figures = json.loads(out)
    assert code == 0
    # 1,283 listed + the featured papers not in those listing days
    assert figures["papers"] > 1283
    assert figures["featured"] == 529 - 0 or figures["featured"] > 500
    assert figures["by_source"]["jsonl"] >= 1283


def test_show_by_versioned_id_and_missing_id(sample_home: Path) -> None:
    code, out, _ = run(sample_home, "search", "language model", "--json", "-n", "1")
    pid = json.loads(out)[0]["id"]
    code, out, _ = run(sample_home, "show", f"{pid}v2", "--json")
    assert code == 0 and json.loads(out)["id"] == pid
    code, _, err = run(sample_home, "show", "0000.00000")
    assert code == 1
    assert "no paper with id '0000.00000'" in err and "Traceback" not in err


def test_search_filters(sample_home: Path) -> None:
    code, out, _ = run(sample_home, "search", "image", "--json", "-n", "50", "-c", "cs.CL")
    assert code == 0
    hits = json.loads(out)
    assert hits and all("cs.CL" in h["categories"] for h in hits)
    code, out, _ = run(sample_home, "search", "image", "--json", "--from", "2026-06-30", "--to", "2026-06-30")
    assert all(h["announced"] == "2026-06-30" for h in json.loads(out))
    code, _, err = run(sample_home, "search", "image", "--from", "yesterday")
    assert code == 2 and "not a date" in err


def test_search_bad_queries_never_crash(sample_home: Path) -> None:
    for query in ['title:(unclosed "quote', "AND OR NOT", "*?~^", "x" * 100_000, "caf\udce9"]:
        code, _, err = run(sample_home, "search", query, "--json")
        assert code == 0, err
    code, _, err = run(sample_home, "search", "   ")
    assert code == 1 and "empty query" in err


def test_export_round_trips(sample_home: Path, tmp_path: Path) -> None:
    out_jsonl = tmp_path / "all.jsonl"
    out_bib = tmp_path / "all.bib"
    assert run(sample_home, "export", "-o", str(out_jsonl))[0] == 0
    assert run(sample_home, "export", "--format", "bibtex", "-o", str(out_bib))[0] == 0
    count = json.loads(run(sample_home, "stats", "--json")[1])["papers"]
    assert sum(1 for _ in out_jsonl.open()) == count
    # the BibTeX export reads back into a fresh store with the same arXiv ids
    fresh = tmp_path / "fresh"
    code, out, err = run(fresh, "ingest", str(out_bib), "--json", "--no-index")
    report = json.loads(out)[str(out_bib)]
    assert code == 0, err
    assert report["added"] == count and report["rejected"] == 0


def test_ingest_reports_rejections_and_damage(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "2501.00001", "title": "Fine"}\nnot json\n')
    code, out, err = run(tmp_path / "h", "ingest", str(bad))
    assert code == 0
    assert f"skipped {bad}:2: invalid JSON" in err
    assert "1 added, 0 updated, 0 unchanged, 1 rejected" in out
    garbage = tmp_path / "garbage.gz"
    garbage.write_bytes(b"\x1f\x8b\x08\x00" + bytes(200))
    code, _, err = run(tmp_path / "h", "ingest", str(garbage))
    assert code == 1 and "error:" in err and "Traceback" not in err
    code, _, err = run(tmp_path / "h", "ingest", str(bad), "--map", "nonsense")
    assert code == 2 and "FIELD=KEY" in err


@pytest.fixture
def oai_server() -> Iterator[tuple[str, list[str]]]:
    """A loopback OAI-PMH endpoint answering every ListRecords with a recorded arXivRaw page."""
    body = (FIXTURES / "arxiv" / "oai_arxivraw.xml").read_bytes()
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/oai", seen
    server.shutdown()
    server.server_close()


def test_harvest_resumes_after_the_last_update(tmp_path: Path, oai_server: tuple[str, list[str]]) -> None:
    endpoint, seen = oai_server
    home = tmp_path / "h"
    code, _, err = run(home, "harvest", "--endpoint", endpoint)
    assert code == 2 and "first harvest needs --from" in err
    code, out, err = run(home, "harvest", "--endpoint", endpoint, "--from", "2020-01-01", "--set", "cs")
    assert code == 0, err
    assert "set=cs" in seen[-1] and "from=2020-01-01" in seen[-1] and "metadataPrefix=arXivRaw" in seen[-1]
    assert json.loads(run(home, "show", "2005.14165", "--json")[1])["version"] == 4
    code, out, _ = run(home, "harvest", "--endpoint", endpoint)  # resumes from the newest update stored
    assert code == 3 and "nothing changed" in out
    assert "from=2020-07-22" in seen[-1]


def test_concurrent_index_syncs_share_the_index(tmp_path: Path) -> None:
    """Two processes (a server worker and a cron ingest, say) bring one index up to date at once."""
    exe = str(Path(sys.executable).with_name("papersift"))
    home = str(tmp_path / "h")
    first = subprocess.run([exe, "--home", home, "ingest", str(SAMPLE), "-q", "--no-index"], capture_output=True)
    assert first.returncode == 0, first.stderr
    procs = [
        subprocess.Popen([exe, "--home", home, "index"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err.decode() for _, err in outputs]
    assert all(b"search index: 1," in out for out, _ in outputs)


def test_benchmarks_print_a_json_summary(tmp_path: Path) -> None:
    """Both benchmark entries run end to end (with the fast lexical embedder) and end in JSON."""
    data = SHARED_DATA / "arxiv_daily" / "arxiv_daily_2025-2026.jsonl.gz"
    scifact = SHARED_DATA / "scifact"
    if not data.exists() or not scifact.exists():
        pytest.skip("../shared/data is not beside the repo")
    code, out, err = run(tmp_path, "bench", "latency", "--papers", "3000", "--data", str(data), "--embedder", "hash")
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["papers"] == 3000 and 0 < summary["query_ms_p50"] <= summary["query_ms_p99"]
    assert summary["serve_max_rss_mb"] > 0  # measured in the fresh serving process
    keep = str(tmp_path / "keep")
    few = ("--answerability-queries", "30")  # the relevance cut-off's check, on a slice of train and test
    code, out, err = run(
        tmp_path, "bench", "relevance", "--beir", str(scifact), "--embedder", "hash", "--keep", keep, *few
    )
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["bm25_ndcg@10"] > 0.65  # BM25 on SciFact test; published BM25 figures are 0.66-0.69
    assert summary["recall@100"] > 0.85 and summary["docs_per_s"] > 0
    assert 0 < summary["cutoff_kept"] <= 1 and 0 <= summary["unanswerable_empty"] <= 1
    curve = summary["cutoff_curve"]  # a higher threshold keeps fewer relevant papers and empties more queries
    assert [p["cutoff_kept"] for p in curve] == sorted((p["cutoff_kept"] for p in curve), reverse=True)
    assert [p["unanswerable_empty"] for p in curve] == sorted(p["unanswerable_empty"] for p in curve)
    default = next(p for p in curve if p["threshold"] == summary["cutoff"])
    assert (default["cutoff_kept"], default["unanswerable_empty"]) == (
        summary["cutoff_kept"],
        summary["unanswerable_empty"],
    )
    assert "cut-off calibration on 30 train queries" in out
    code, out, err = run(
        tmp_path, "bench", "relevance", "--beir", str(scifact), "--embedder", "hash", "--keep", keep, *few
    )
    again = json.loads(out.strip().splitlines()[-1])
    assert code == 0 and again["ndcg@10"] == summary["ndcg@10"]  # the kept indexes give the same ranking
    assert again["docs_per_s"] is None  # nothing was indexed: no throughput is claimed
