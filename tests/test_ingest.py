"""Ingest semantics through the public `ingest()` service: idempotence, versions, merging, bad input."""

from __future__ import annotations

import functools
import gzip
import http.server
import json
import threading
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from papersift.errors import RecordError, SourceError
from papersift.ingest import ingest
from papersift.store import Store

from .conftest import shared


def listing(pid: str, **kw: object) -> dict[str, object]:
    record: dict[str, object] = {
        "id": pid,
        "listing_date": "2025-06-02",
        "title": f"On the study of {pid}",
        "authors": ["Grace Hopper", "Edsger Dijkstra", "Barbara Liskov"],
        "categories": ["cs.CL", "cs.LG"],
        "abstract": f"We study {pid} in depth.\nWith line breaks.",
        "comment": "10 pages",
    }
    record.update(kw)
    return record


def write_jsonl(path: Path, records: list[dict[str, object]], gz: bool = False) -> Path:
    text = "".join(json.dumps(r) + "\n" for r in records)
    if gz:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def snapshot(pid: str, versions: int, title: str) -> dict[str, object]:
    return {
        "id": pid,
        "submitter": "Grace Hopper",
        "authors": "Grace Hopper and Edsger Dijkstra",
        "title": title,
        "comments": None,
        "journal-ref": None,
        "doi": None,
        "categories": "cs.CL cs.LG",
        "abstract": "  An abstract.\n",
        "versions": [
            {"version": f"v{i}", "created": f"Mon, {i} Jun 2025 10:00:00 GMT"} for i in range(1, versions + 1)
        ],
        "update_date": "2025-06-10",
        "authors_parsed": [["Hopper", "Grace", ""], ["Dijkstra", "Edsger", ""]],
    }


def test_ingest_then_reingest_changes_nothing(store: Store, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "day.jsonl.gz", [listing(f"2506.{i:05d}") for i in range(50)], gz=True)
    first = ingest(store, str(path))
    assert (first.added, first.updated, first.unchanged, first.rejected) == (50, 0, 0, 0)
    rev = store.revision()
    again = ingest(store, str(path))
    assert (again.added, again.updated, again.unchanged) == (0, 0, 50)
    assert not again.changed
    assert store.revision() == rev  # no write at all
    paper = store.get("2506.00007")
    assert paper.abstract == "We study 2506.00007 in depth. With line breaks."
    assert paper.announced == date(2025, 6, 2)
    assert paper.authors == ["Grace Hopper", "Edsger Dijkstra", "Barbara Liskov"]
    assert paper.abs_url.endswith("2506.00007")


def test_versioned_ids_dedupe_and_newest_version_wins(store: Store, tmp_path: Path) -> None:
    v2 = write_jsonl(tmp_path / "v2.jsonl", [snapshot("2506.00001", 2, "Second version title")])
    v1 = write_jsonl(tmp_path / "v1.jsonl", [snapshot("2506.00001", 1, "First version title")])
    v3 = write_jsonl(tmp_path / "v3.jsonl", [snapshot("2506.00001", 3, "Third version title")])
    assert ingest(store, str(v2)).added == 1
    older = ingest(store, str(v1))
    assert older.unchanged == 1 and older.updated == 0
    assert store.get("2506.00001").title == "Second version title"
    newer = ingest(store, str(v3))
    assert newer.updated == 1
    paper = store.get("2506.00001")
    assert (paper.title, paper.version, paper.published) == ("Third version title", 3, date(2025, 6, 1))
    assert store.count() == 1


def test_featured_listing_merges_into_full_record(store: Store, tmp_path: Path) -> None:
    ingest(store, str(write_jsonl(tmp_path / "a.jsonl", [listing("2506.00002")])))
    featured = {
        "date": "2025-06-04 00:00",
        "author": "Grace Hopper",
        "title": "On the study of 2506.00002",
        "link": "https://huggingface.co/papers/2506.00002",
        "summary": "We study 2506.00002",
        "tags": [],
        "arxiv_id": "2506.00002",
    }
    report = ingest(store, str(write_jsonl(tmp_path / "hf.jsonl", [featured])))
    assert report.updated == 1
    paper = store.get("2506.00002")
    assert paper.featured == date(2025, 6, 4)
    assert len(paper.authors) == 3  # the featured list names only the first author
    assert paper.abstract.startswith("We study 2506.00002 in depth")  # the truncated summary loses
    assert ingest(store, str(tmp_path / "hf.jsonl")).unchanged == 1


def test_bad_records_are_reported_and_skipped(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    lines = [
        json.dumps(listing("2506.00010")),
        '{"id": "2506.00011", "title": "broken json',
        json.dumps(listing("2506.00012", title="")),
        json.dumps(listing("2506.00013")),
    ]
    path.write_text("\n".join(lines) + "\n")
    report = ingest(store, str(path))
    assert (report.added, report.rejected) == (2, 2)
    origins = [r.origin for r in report.rejections]
    assert origins == [f"{path}:2", f"{path}:3"]
    assert "invalid JSON" in report.rejections[0].reason
    assert "title" in report.rejections[1].reason


def test_strict_aborts_and_stores_nothing(store: Store, tmp_path: Path) -> None:
    ingest(store, str(write_jsonl(tmp_path / "ok.jsonl", [listing("2506.00020")])))
    records = [listing(f"2506.{i:05d}") for i in range(30, 40)] + [listing("2506.00099", title="")]
    bad = write_jsonl(tmp_path / "bad.jsonl", records)
    with pytest.raises(RecordError, match=r"bad\.jsonl:11: .*title.*nothing was stored"):
        ingest(store, str(bad), strict=True, batch_size=3)
    assert store.count() == 1


def test_truncated_gzip_keeps_what_came_before(store: Store, tmp_path: Path) -> None:
    ingest(store, str(write_jsonl(tmp_path / "old.jsonl", [listing("2401.00001")])))
    full = gzip.compress("".join(json.dumps(listing(f"2506.{i:05d}")) + "\n" for i in range(3000)).encode())
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(full[: len(full) // 2])
    with pytest.raises(SourceError, match="damaged or truncated") as err:
        ingest(store, str(cut), batch_size=500)
    kept = store.count() - 1
    assert 0 < kept < 3000
    assert err.value.report is not None
    assert store.get("2401.00001").title  # nothing stored earlier was lost


def test_oversized_single_line_is_rejected_unread(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "huge.jsonl"
    with path.open("w") as f:
        f.write(json.dumps(listing("2506.00030")) + "\n")
        f.write('{"id": "2506.00031", "title": "' + "x" * (50 * 1024 * 1024) + '"}\n')
        f.write(json.dumps(listing("2506.00032")) + "\n")
    report = ingest(store, str(path))
    assert report.added == 2
    assert report.rejected == 1
    assert "52.4 MB" in report.rejections[0].reason and report.rejections[0].origin.endswith(":2")


def test_binary_garbage_is_refused_with_a_clear_message(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "garbage.bin"
    path.write_bytes(bytes(range(256)) * 64)
    with pytest.raises(SourceError, match=r"cannot tell the format.*binary data.*--source"):
        ingest(store, str(path))
    assert store.count() == 0


def test_missing_file(store: Store, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file"):
        ingest(store, str(tmp_path / "nope.jsonl"))


def test_xml_bomb_is_refused(store: Store, tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.xml"
    bomb.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
        + "".join(
            f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">' for i in range(1, 10)
        )
        + ']>\n<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/"><ListRecords><record><metadata>&lol9;'
        "</metadata></record></ListRecords></OAI-PMH>\n"
    )
    with pytest.raises(SourceError, match=r"(?i)entit"):
        ingest(store, str(bomb))
    assert store.count() == 0


def test_real_featured_papers_list(sqlite_store: Store) -> None:
    path = shared("hf_daily_papers/hf_daily_featured_papers.jsonl.gz")
    report = ingest(sqlite_store, str(path))
    assert report.rejected == 0
    assert sqlite_store.count() == 9111  # 9,130 records, 9,111 distinct arXiv ids
    assert ingest(sqlite_store, str(path)).changed is False


def test_real_conference_papers(sqlite_store: Store) -> None:
    path = shared("conference_papers/papers_slim.jsonl.gz")
    report = ingest(sqlite_store, str(path))
    assert report.added > 90_000
    assert report.rejected < 100
    again = ingest(sqlite_store, str(path))
    assert not again.changed
    stats = sqlite_store.stats()
    assert stats["papers"] == report.added


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real HTTP server on loopback serving a temp directory."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()


def test_ingest_a_file_url(store: Store, file_server: tuple[str, Path]) -> None:
    base, root = file_server
    write_jsonl(root / "listing.jsonl.gz", [listing(f"2507.{i:05d}") for i in range(20)], gz=True)
    report = ingest(store, f"{base}/listing.jsonl.gz", options={"retries": "1"})
    assert report.added == 20
    assert store.get("2507.00003").announced == date(2025, 6, 2)
    assert not ingest(store, f"{base}/listing.jsonl.gz").changed
    with pytest.raises(SourceError, match="HTTP 404"):
        ingest(store, f"{base}/missing.jsonl", options={"retries": "1"})
