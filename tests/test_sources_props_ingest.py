"""Property-based tests of `papersift ingest` on hostile files: the store stays readable after any of them.

Generated files of every format (valid-looking to garbage, plain, gzip, truncated gzip) go through the public
`ingest()` into a real store (SQLite, and PostgreSQL with fewer examples), which must then answer stats,
reads of every paper and a keyword search. The same store takes every example: damage must not accumulate.
"""

from __future__ import annotations

import gzip
import itertools
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from papersift.cli import main
from papersift.errors import RecordError, SourceError
from papersift.ingest import ingest
from papersift.models import Paper
from papersift.search import SearchEngine
from papersift.settings import Settings
from papersift.sources import SOURCES
from papersift.store import Store

from .sources_props_contract import (
    check_record,
    dump_json,
    good_arxiv_ids,
    good_categories,
    good_dates,
    good_names,
    good_titles,
    keyed_records,
    mutate_bytes,
)
from .test_sources_props import bib_entries, csv_files, hf_api_items, json_lines_files, snapshot_records
from .test_sources_props_xml import API_FILES, OAI_FILES, mutated_documents

_counter = itertools.count()
clean_listings = st.fixed_dictionaries(
    {"id": good_arxiv_ids, "title": good_titles, "authors": st.lists(good_names, max_size=4)},
    optional={"listing_date": good_dates, "categories": good_categories, "abstract": st.text(max_size=300)},
)
_WORD_RE = re.compile(r"[a-z]{3,}")


@st.composite
def hostile_files(draw: st.DrawFn) -> tuple[str, bytes]:
    """(file name, bytes) in any supported format, sometimes gzipped, sometimes damaged, sometimes garbage."""
    kind = draw(st.sampled_from(["clean", "clean", "jsonl", "snapshot", "hf", "csv", "bib", "oai", "api", "bytes"]))
    if kind == "clean":  # a real-looking listing, so the store fills with papers the damaged files could hurt
        name, data = "day.jsonl", b"\n".join(orjson.dumps(r) for r in draw(st.lists(clean_listings, max_size=6)))
    elif kind == "jsonl":
        name, data = "listing.jsonl", draw(json_lines_files(keyed_records()))
    elif kind == "snapshot":
        name, data = "arxiv-metadata-oai-snapshot.json", draw(json_lines_files(snapshot_records))
    elif kind == "hf":
        name, data = "daily_papers.json", dump_json(draw(st.lists(hf_api_items, max_size=5)), True).encode()
    elif kind == "csv":
        name, data = "papers.csv", draw(csv_files())[0]
    elif kind == "bib":
        name, data = "refs.bib", "\n".join(draw(st.lists(bib_entries(), max_size=4))).encode()
    elif kind in ("oai", "api"):
        name, data = f"{kind}.xml", draw(mutated_documents(OAI_FILES if kind == "oai" else API_FILES))
    else:
        name, data = draw(st.sampled_from(["data.bin", "x.jsonl", "x.csv", "x.bib", "x"])), draw(st.binary())
    if draw(st.integers(0, 3)) == 0:  # gzip, whole or damaged (truncated, bytes flipped)
        name, data = name + ".gz", gzip.compress(data)
        if draw(st.booleans()):
            data = mutate_bytes(data, draw)
    return name, data


@pytest.fixture(scope="module")
def sqlite_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, SearchEngine, Path]]:
    home = tmp_path_factory.mktemp("hostile")
    settings_ = Settings(home=home, embedder="none")
    store = Store.open(settings_.store_url)
    yield store, SearchEngine.open(store, settings_, embed=False), home
    store.close()


def _ingest_and_read(
    store: Store,
    engine: SearchEngine,
    folder: Path,
    name: str,
    data: bytes,
    source: str | None = None,
    strict: bool = False,
) -> None:
    """Ingest one file (a report, or a SourceError with a message), then read everything back."""
    path = folder / f"{next(_counter)}-{name}"
    path.write_bytes(data)
    before = store.revision()
    try:
        report = ingest(store, str(path), source=source, strict=strict, batch_size=3)
    except SourceError as exc:
        assert str(exc).strip()
        assert not strict or store.revision() == before, "--strict stored part of a damaged file"
        event("ingest: SourceError")
    except RecordError as exc:  # --strict and a bad record: the whole run stores nothing
        assert strict and exc.origin and exc.reason.strip()
        assert store.revision() == before, "--strict stored records of a run it aborted"
        event("ingest: strict run aborted")
    else:
        assert all(r.origin and r.reason.strip() for r in report.rejections)
        event("ingest: " + ("papers stored" if report.added + report.updated else "nothing stored"))
    stats = store.stats()
    assert stats["papers"] == store.count()
    papers = list(store.iter_papers())
    assert len(papers) == stats["papers"]
    for paper in papers:
        check_record(paper, "", paper.source)
        assert store.get(paper.id).id == paper.id
    engine.sync(embed=False)
    words = _WORD_RE.findall(" ".join(p.title.lower() for p in papers[-5:])) or ["paper"]
    for hit in engine.search(words[-1], limit=5):
        assert isinstance(hit.paper, Paper)


@settings(max_examples=60, deadline=None)
@given(hostile_files(), st.one_of(st.none(), st.none(), st.sampled_from(sorted(SOURCES))), st.booleans())
@example(("snapshot.json", b'{"id": "2101.00001", "title": "T", "authors_parsed": [["\\u0000"]]}'), None, False)
@example(("x.csv.gz", gzip.compress(b"title,year\nA,2020\n")[:-9]), None, True)
def test_any_file_leaves_the_store_readable(
    sqlite_home: tuple[Store, SearchEngine, Path], case: tuple[str, bytes], source: str | None, strict: bool
) -> None:
    """Any file, its format detected or named (rightly or wrongly) with --source, with or without --strict."""
    store, engine, home = sqlite_home
    _ingest_and_read(store, engine, home, *case, source=source, strict=strict)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(hostile_files())
def test_any_file_leaves_a_postgresql_store_readable(
    postgres_home: tuple[Store, SearchEngine, Path], case: tuple[str, bytes]
) -> None:
    store, engine, home = postgres_home
    _ingest_and_read(store, engine, home, *case)


@pytest.fixture
def postgres_home(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Store, SearchEngine, Path]]:
    """One PostgreSQL database for all the examples of a test (the fixture is built once per test)."""
    server = request.getfixturevalue("postgres")
    settings_ = Settings(
        home=tmp_path, embedder="none", database_url=server.create_database(f"hostile{next(_counter)}")
    )
    store = Store.open(settings_.store_url)
    yield store, SearchEngine.open(store, settings_, embed=False), tmp_path
    store.close()


def test_cli_stats_and_search_after_hostile_files(tmp_path: Path) -> None:
    """The commands a user runs next still work after ingesting damaged files of every kind."""
    home = tmp_path / "home"
    files = {
        "garbage.bin": bytes(range(256)) * 4,
        "cut.jsonl.gz": gzip.compress(b'{"title": "Sparse routing for retrieval", "id": "2501.01234"}\n' * 50)[:-30],
        "bad.csv": b"title,upvotes\nSparse retrieval,\xc2\xb2\n\xff\xfe,1\n",
        "bomb.xml": b'<!DOCTYPE r [<!ENTITY a "aaaa">]><OAI-PMH>&a;</OAI-PMH>',
        "good.jsonl": b'{"title": "Dense retrieval with sparse routers", "id": "2501.04321"}\n{"title": {"a": 1}}\n',
    }
    runner = CliRunner()
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        result = runner.invoke(main, ["--home", str(home), "ingest", str(tmp_path / name), "-q"])
        assert result.exit_code in (0, 1, 3), result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    stats = runner.invoke(main, ["--home", str(home), "stats", "--json"])
    assert stats.exit_code == 0, stats.output
    assert orjson.loads(stats.stdout)["papers"] >= 1
    found = runner.invoke(main, ["--home", str(home), "search", "retrieval", "--json"])
    assert found.exit_code == 0, found.output
    assert "2501.04321" in found.stdout


@settings(max_examples=25, deadline=None)  # a fresh store per example
@given(
    st.lists(clean_listings, min_size=1, max_size=5, unique_by=lambda r: r["id"].split("v")[0]),
    st.sampled_from(["lines", "array"]),
    st.sampled_from([b"", b"\xef\xbb\xbf"]),
    st.sampled_from([b"\n", b"\r\n"]),
    st.booleans(),
)
@example([{"id": "2501.00001", "title": "A paper", "authors": []}], "lines", b"\xef\xbb\xbf", b"\n", False)  # BOM
def test_every_clean_listing_is_stored(
    listings: list[dict[str, object]],
    layout: str,
    bom: bytes,
    newline: bytes,
    gz: bool,
) -> None:
    """Valid records are never lost to how the file is written: JSON lines or an array, a UTF-8 byte-order
    mark (Windows tools write one), CRLF, gzip."""
    rows = [orjson.dumps(listing) for listing in listings]
    data = bom + (newline.join(rows) if layout == "lines" else b"[" + (b"," + newline).join(rows) + b"]")
    name = "day.jsonl" if layout == "lines" else "day.json"
    with tempfile.TemporaryDirectory() as folder:  # a fresh store: nothing earlier may outrank these records
        path = Path(folder) / f"{name}{'.gz' if gz else ''}"
        path.write_bytes(gzip.compress(data) if gz else data)
        store = Store.open(f"sqlite:///{folder}/store.db")
        try:
            report = ingest(store, str(path))
            assert (report.added, report.rejections) == (len(listings), [])
            for listing in listings:
                assert store.get(str(listing["id"]).split("v")[0]).title == " ".join(str(listing["title"]).split())
        finally:
            store.close()
