"""File sources: Hugging Face daily papers, CSV/TSV, BibTeX, and the shared record -> Paper mapping.

Fixtures are small hand-written files in tests/fixtures/files/; one test reads the real featured-papers
archive from ../shared/data. Fetching goes to an http.server on 127.0.0.1, never to huggingface.co.
"""

from __future__ import annotations

import gzip
import io
import threading
import tracemalloc
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import orjson
import pytest

from papersift.errors import SourceError
from papersift.models import Paper, Rejected
from papersift.sources.base import ParsedRecord, Source
from papersift.sources.bibtex import BibTeXSource
from papersift.sources.csvfile import CSVSource
from papersift.sources.hf_daily import HFDailySource, daily_papers_url
from papersift.sources.mapping import paper_from_mapping

from .conftest import FIXTURES, shared

FILES = FIXTURES / "files"
FIFTY_MB = 50 << 20


def parse(source: Source, name: str) -> list[ParsedRecord]:
    with (FILES / name).open("rb") as stream:
        return list(source.parse(stream, name))


def parse_bytes(source: Source, data: bytes, origin: str = "mem") -> list[ParsedRecord]:
    return list(source.parse(io.BytesIO(data), origin))


def papers(records: list[ParsedRecord]) -> list[Paper]:
    return [r for r in records if isinstance(r, Paper)]


def rejected(records: list[ParsedRecord]) -> list[Rejected]:
    return [r for r in records if isinstance(r, Rejected)]


def head(name: str) -> bytes:
    return (FILES / name).read_bytes()[: 1 << 16]


# --- Hugging Face daily papers -------------------------------------------------------------------


def test_hf_api_response_maps_every_field() -> None:
    records = parse(HFDailySource(), "hf_daily_papers_api.json")
    assert rejected(records) == []
    first, second, third = papers(records)
    assert first.id == "2501.01234"
    assert first.title == "Sparse Mixture Routing for Long-Context Retrieval"  # paper.title, whitespace collapsed
    assert first.abstract.startswith("We study retrieval over contexts of a million tokens. A sparse router")
    assert first.authors == ["Mei Lin", "Tomás Ruiz", "Priya Natarajan"]  # in order, hidden ones too
    assert first.published == date(2025, 1, 2)
    assert first.featured == date(2025, 1, 3)  # paper.submittedOnDailyAt
    assert first.upvotes == 42
    assert (first.source, first.source_id) == ("hf-daily", "hf:2501.01234")
    assert first.abs_url == "https://arxiv.org/abs/2501.01234"
    assert first.pdf_url == "https://arxiv.org/pdf/2501.01234"
    assert (second.id, second.published, second.upvotes) == ("2412.20987", date(2024, 12, 30), 17)
    assert third.featured == date(2025, 1, 3)  # no submittedOnDailyAt: the item's own publishedAt


def test_hf_api_items_as_json_lines_parse_the_same() -> None:
    items = orjson.loads((FILES / "hf_daily_papers_api.json").read_bytes())
    lines = b"\n".join(orjson.dumps(item) for item in items) + b"\n"
    from_lines = papers(parse_bytes(HFDailySource(), lines))
    assert [p.to_dict() for p in from_lines] == [
        p.to_dict() for p in papers(parse(HFDailySource(), "hf_daily_papers_api.json"))
    ]


def test_hf_featured_list_maps_and_rejects_bad_lines() -> None:
    records = parse(HFDailySource(), "hf_featured.jsonl")
    found = {p.id: p for p in papers(records)}
    assert list(found) == ["2403.01234", "2403.00999", "2403.04000"]
    keller = found["2403.01234"]
    assert (keller.authors, keller.featured, keller.published) == (["Hannah Keller"], date(2024, 3, 5), None)
    assert keller.source_id == "hf:2403.01234" and keller.abs_url == "https://arxiv.org/abs/2403.01234"
    assert found["2403.00999"].title == "Speculative Decoding at the Edge"
    assert found["2403.00999"].abstract == "Phones can draft tokens for a server model and cut its latency by half."
    assert found["2403.04000"].featured == date(2024, 3, 7)  # id taken from the link
    bad = {r.origin: r.reason for r in rejected(records)}
    assert set(bad) == {"hf_featured.jsonl:3", "hf_featured.jsonl:4", "hf_featured.jsonl:5"}
    assert bad["hf_featured.jsonl:3"] == "empty title"
    assert bad["hf_featured.jsonl:4"].startswith("invalid JSON:")
    assert "bad featured date 'March the 6th'" in bad["hf_featured.jsonl:5"]


def test_hf_malformed_items_are_rejected_with_their_index() -> None:
    good = {"paper": {"id": "2501.00001", "title": "Fine", "summary": "s", "authors": []}}
    items = [
        good,
        "not an object",
        {"paper": "2501.00002"},
        {"paper": {"title": "No id", "summary": "s"}},
        {"paper": {"id": "not-arxiv", "title": "T", "summary": "s"}},
        {"paper": {"id": "2501.00003", "title": "T", "summary": "s", "authors": "Ann Author"}},
        {"paper": {"id": "2501.00004", "title": {"en": "T"}, "summary": "s"}},
        {"paper": {"id": "2501.00005", "title": "T", "summary": "s", "upvotes": "lots"}},
        {"paper": {"id": "2501.00006", "summary": "s"}},
    ]
    records = parse_bytes(HFDailySource(), orjson.dumps(items), "api.json")
    assert [p.id for p in papers(records)] == ["2501.00001"]
    assert [(r.origin, r.reason) for r in rejected(records)] == [
        ("api.json#1", "expected a JSON object, got str"),
        ("api.json#2", "'paper' is a str, expected an object"),
        ("api.json#3", "paper.id is missing"),
        ("api.json#4", "paper.id 'not-arxiv' is not an arXiv id"),
        ("api.json#5", "2501.00003: paper.authors is a str, expected a list"),
        ("api.json#6", "title is a dict, expected text"),
        ("api.json#7", "upvotes 'lots' is not a whole number"),
        ("api.json#8", "2501.00006: no title"),
    ]


@pytest.mark.parametrize("body", [b'[{"paper": {"id": "2501.00001", "summary": "cut short', b"[1, 2,, 3]"])
def test_hf_unparseable_array_is_a_source_error(body: bytes) -> None:
    with pytest.raises(SourceError, match=r"^api\.json: not valid JSON .*daily_papers array"):
        parse_bytes(HFDailySource(), body, "api.json")


def test_hf_sniff_tells_its_shapes_from_other_json() -> None:
    assert HFDailySource.sniff(head("hf_daily_papers_api.json"), "daily.json")
    assert HFDailySource.sniff(head("hf_featured.jsonl"), "featured.jsonl")
    arxiv_daily = b'{"id": "2503.11731", "listing_date": "2025-03-18", "title": "T", "abstract": "A"}\n'
    conference = b'{"venue": "3dv", "year": 2025, "id": "05T81ScPFb", "title": "T", "abstract": "A"}\n'
    for other in (arxiv_daily, conference, head("papers.csv"), head("refs.bib")):
        assert not HFDailySource.sniff(other, "x")


def test_hf_urls() -> None:
    assert daily_papers_url(date(2025, 1, 3)) == "https://huggingface.co/api/daily_papers?date=2025-01-03"
    assert HFDailySource.handles_url(daily_papers_url(date(2025, 1, 3)))
    assert not HFDailySource.handles_url("https://export.arxiv.org/api/query?search_query=cat:cs.CL")
    with pytest.raises(SourceError, match="not a Hugging Face daily_papers API URL"):
        list(HFDailySource().fetch("https://huggingface.co/papers"))


def test_hf_real_featured_archive_parses_completely() -> None:
    path = shared("hf_daily_papers/hf_daily_featured_papers.jsonl.gz")
    with gzip.open(path, "rb") as stream:
        assert HFDailySource.sniff(stream.peek(1 << 16)[: 1 << 16], path.name.removesuffix(".gz"))
        records = list(HFDailySource().parse(stream, path.name))  # type: ignore[arg-type]
    found = papers(records)
    assert len(records) == 9130
    assert len(rejected(records)) <= 5, rejected(records)[:5]
    assert len({p.id for p in found}) >= 9100
    assert all(p.featured and date(2023, 10, 30) <= p.featured <= date(2025, 12, 31) for p in found)
    assert all(len(p.authors) == 1 and p.title and p.abs_url.startswith("https://arxiv.org/abs/") for p in found)


class _Server:
    def __init__(self, pages: list[list[dict[str, object]]], honour_paging: bool = True) -> None:
        self.pages = pages
        self.honour_paging = honour_paging
        self.queries: list[dict[str, str]] = []
        self.base = ""


@pytest.fixture
def hf_server() -> Iterator[_Server]:
    items = orjson.loads((FILES / "hf_daily_papers_api.json").read_bytes())
    state = _Server([items])

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            query = dict(parse_qsl(urlsplit(self.path).query))
            state.queries.append(query)
            size = int(query.get("limit", 50))
            page = int(query.get("p", 0)) if state.honour_paging else 0
            body = orjson.dumps(state.pages[0][page * size : (page + 1) * size])
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}/api/daily_papers"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def test_hf_fetch_one_day(hf_server: _Server) -> None:
    records = list(HFDailySource({"retry_wait": "0"}).fetch(f"{hf_server.base}?date=2025-01-03"))
    assert [p.id for p in papers(records)] == ["2501.01234", "2412.20987", "2501.00321"]
    assert hf_server.queries == [{"date": "2025-01-03", "limit": "100", "p": "0"}]  # a short page is the last


def test_hf_fetch_pages_until_a_short_page(hf_server: _Server) -> None:
    records = list(HFDailySource({"retry_wait": "0"}).fetch(f"{hf_server.base}?date=2025-01-03&limit=2"))
    assert [p.id for p in papers(records)] == ["2501.01234", "2412.20987", "2501.00321"]
    assert [q["p"] for q in hf_server.queries] == ["0", "1"]


def test_hf_fetch_stops_when_the_server_ignores_paging(hf_server: _Server) -> None:
    hf_server.honour_paging = False
    records = list(HFDailySource({"retry_wait": "0"}).fetch(f"{hf_server.base}?date=2025-01-03&limit=2"))
    assert [p.id for p in papers(records)] == ["2501.01234", "2412.20987"]
    assert len(hf_server.queries) == 2


def test_hf_fetch_latest_feed_is_one_request(hf_server: _Server) -> None:
    records = list(HFDailySource({"retry_wait": "0"}).fetch(hf_server.base))
    assert len(papers(records)) == 3 and hf_server.queries == [{}]


# --- CSV -----------------------------------------------------------------------------------------


def test_csv_header_aliases_bom_quoting_and_row_errors() -> None:
    records = parse(CSVSource(), "papers.csv")
    found = papers(records)
    assert [p.title for p in found] == [
        "Transformers, Revisited",
        "Graph Networks for Chemistry",
        "A Paper Known Only by Title",
        "Listed on arXiv by URL",
    ]
    arxiv, doi, titled, by_url = found
    assert (arxiv.id, arxiv.version, arxiv.source_id) == ("2101.00001", 2, "2101.00001v2")  # "arXiv ID" column
    assert arxiv.authors == ["Ada Lovelace", "Alan Turing"] and arxiv.categories == ["cs.CL", "cs.LG"]
    assert (arxiv.published, arxiv.year, arxiv.source) == (date(2021, 1, 4), 2021, "csv")
    assert doi.id == "doi:10.1234/jot.2021.77" and doi.abs_url == "https://doi.org/10.1234/jot.2021.77"
    assert doi.abstract == 'A multi-line abstract, with "quotes".'
    assert doi.authors == ["Marie Curie", "Niels Bohr"] and doi.categories == ["chemistry", "graphs"]
    assert (doi.published, doi.venue) == (date(2021, 3, 2), "Journal of Things")  # an RFC 2822 date
    assert titled.id.startswith("t:") and titled.authors == ["Grace Hopper", "Edsger Dijkstra", "Barbara Liskov"]
    assert (titled.published, titled.year, titled.abs_url) == (None, 2019, "https://example.org/papers/42")
    assert (by_url.id, by_url.version, by_url.published) == ("2007.01234", 3, date(2020, 7, 1))
    assert by_url.authors == ["John Smith"]  # "Smith, John" is one person
    bad = {r.origin: r.reason for r in rejected(records)}
    assert bad["papers.csv:6"] == "empty title"  # line 6: the quoted abstract on lines 3-4 counts twice
    assert bad["papers.csv:7"].startswith("bad published date '31/02/2020'")
    assert len(bad) == 2


def test_csv_custom_mapping_on_tsv() -> None:
    mapping = {"id": "Ref", "title": "Paper Title", "abstract": "Summary Text", "authors": "Writers"}
    mapping |= {"venue": "Venue Name", "published": "When"}
    records = parse(CSVSource({f"map.{k}": v for k, v in mapping.items()} | {"timeout": "5"}), "custom.tsv")
    first, second = papers(records)
    assert (first.title, first.abstract, first.authors) == ("Learning to Route", "Routing helps.", ["A. One", "B. Two"])
    assert (first.source_id, first.venue, first.published) == ("openreview:Xy12AbCdE", "ICLR", date(2024, 5, 7))
    assert first.id.startswith("t:")  # an OpenReview id is not an arXiv id: keyed by title
    assert (second.year, second.published) == (2023, None)


def test_csv_mapping_and_header_problems_are_source_errors() -> None:
    with pytest.raises(SourceError, match=r"no column 'Nope' in the header \(columns: Ref, Paper Title"):
        parse(CSVSource({"map.title": "Nope"}), "custom.tsv")
    with pytest.raises(SourceError, match=r"no title column in the header .*--map title=COLUMN"):
        parse_bytes(CSVSource(), b"name,abstract\nx,y\n", "t.csv")
    with pytest.raises(SourceError, match=r"unknown field 'colour' in the field mapping"):
        parse(CSVSource({"map.colour": "Ref"}), "custom.tsv")


def test_csv_non_utf8_row_is_rejected_and_an_encoding_option_reads_it() -> None:
    data = b"title,authors\nFine Paper,Ann\nCaf\xe9 Society,Bob\nAnother,Cy\n"
    records = parse_bytes(CSVSource(), data, "latin.csv")
    assert [p.title for p in papers(records)] == ["Fine Paper", "Another"]
    (bad,) = rejected(records)
    assert bad.origin == "latin.csv:3"
    assert "not valid utf-8 text (line 3: byte 0xe9 at column 4)" in bad.reason and "encoding=" in bad.reason
    records = parse_bytes(CSVSource({"encoding": "cp1252"}), data, "latin.csv")
    assert [p.title for p in papers(records)] == ["Fine Paper", "Café Society", "Another"]


def _fifty_mb_file(path: Path, prefix: bytes, filler: bytes, suffix: bytes) -> Path:
    with path.open("wb") as out:
        out.write(prefix)
        chunk = filler * ((1 << 20) // len(filler))
        for _ in range(FIFTY_MB // len(chunk)):
            out.write(chunk)
        out.write(suffix)
    return path


def test_csv_50mb_field_on_one_line_is_one_rejected_row_in_bounded_memory(tmp_path: Path) -> None:
    path = _fifty_mb_file(tmp_path / "big.csv", b"title,authors\nFirst,Ann\n", b"x", b",Bob\nLast,Cy\n")
    tracemalloc.start()
    try:
        with path.open("rb") as stream:
            records = list(CSVSource().parse(stream, "big.csv"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [p.title for p in papers(records)] == ["First", "Last"]
    (bad,) = rejected(records)
    assert bad.origin == "big.csv:3" and bad.reason.startswith("row is 52.4 MB, over the 1024 KB limit")
    assert peak < 8 << 20  # read in 1 MB pieces, never whole


def test_csv_50mb_multiline_quoted_field_stops_with_a_clear_error(tmp_path: Path) -> None:
    path = _fifty_mb_file(tmp_path / "quote.csv", b'title,authors\nFirst,Ann\n"Runaway', b"text\n", b'",Bob\n')
    seen: list[ParsedRecord] = []
    with path.open("rb") as stream, pytest.raises(SourceError, match=r"quote\.csv:3: a quoted field runs on .*quote"):
        seen.extend(CSVSource().parse(stream, "quote.csv"))
    assert [p.title for p in papers(seen)] == ["First"]


def test_csv_ragged_row_nul_bytes_and_blank_lines() -> None:
    data = b"title,authors\n\nGood,Ann\nToo,Many,Cells\nShort\nBin\x00ary,x\n"
    records = parse_bytes(CSVSource(), data, "r.csv")
    assert [p.title for p in papers(records)] == ["Good", "Short"]
    assert [(r.origin, r.reason[:45]) for r in rejected(records)] == [
        ("r.csv:4", "row has 3 fields but the header has 2"),
        ("r.csv:6", "not valid utf-8 text (line 6: NUL byte at col"),
    ]


def test_csv_sniff() -> None:
    assert CSVSource.sniff(b"anything", "export.csv") and CSVSource.sniff(b"", "export.tsv.gz")
    assert CSVSource.sniff(b"\xef\xbb\xbfPaper Title;Authors;Year\nA;B;2020\n", "export")
    assert not CSVSource.sniff(b'{"title": "x", "authors": []}\n', "data")
    assert not CSVSource.sniff(b"name,value\n1,2\n", "data")


# --- the shared mapping --------------------------------------------------------------------------


def test_mapping_arxiv_daily_and_conference_shapes() -> None:
    daily = {
        "id": "2503.11731",
        "listing_date": "2025-03-18",
        "title": "Sensor\n  Simulation",
        "authors": ["Xianming Zeng", " Sicong  Du "],
        "categories": ["cs.CV", "cs.RO", "cs.CV"],
        "abstract": "Line one\nline two.",
        "comment": None,
    }
    paper = paper_from_mapping(daily, None, source="jsonl", origin="d:1")
    assert isinstance(paper, Paper)
    assert (paper.id, paper.announced, paper.published, paper.title) == (
        "2503.11731",
        date(2025, 3, 18),
        None,
        "Sensor Simulation",
    )
    assert (paper.authors, paper.categories, paper.abstract) == (
        ["Xianming Zeng", "Sicong Du"],
        ["cs.CV", "cs.RO"],
        "Line one line two.",
    )
    conference = {
        "venue": "3dv",
        "year": 2025,
        "id": "05T81ScPFb",
        "title": "Flash3D",
        "abstract": "A.",
        "keywords": "Novel View Synthesis;3D Gaussian Splatting",
        "status": "Poster",
        "site": "https://openreview.net/forum?id=05T81ScPFb",
        "authors": ["Stanislaw Szymanowicz"],
    }
    paper = paper_from_mapping(conference, None, source="jsonl", origin="c:1")
    assert isinstance(paper, Paper)
    assert paper.id.startswith("t:") and (paper.source_id, paper.venue, paper.year) == ("05T81ScPFb", "3dv", 2025)
    assert paper.categories == ["Novel View Synthesis", "3D Gaussian Splatting"]
    assert paper.abs_url == "https://openreview.net/forum?id=05T81ScPFb" and paper.pdf_url == ""


@pytest.mark.parametrize(
    ("value", "published", "year"),
    [
        ("2024-02-29", date(2024, 2, 29), None),
        ("2024-02-29T23:59:59.123Z", date(2024, 2, 29), None),
        ("2023-10-30 00:00", date(2023, 10, 30), None),
        ("Tue, 02 Mar 2021 10:00:00 GMT", date(2021, 3, 2), None),
        ("2021-07", date(2021, 7, 1), None),
        ("2019", None, 2019),
        (2018, None, 2018),
    ],
)
def test_mapping_dates(value: object, published: date | None, year: int | None) -> None:
    paper = paper_from_mapping({"title": "T", "date": value}, None, source="s", origin="o")
    assert isinstance(paper, Paper) and (paper.published, paper.year) == (published, year)


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"title": "T", "published": "yesterday"}, "bad published date 'yesterday'"),
        ({"title": "T", "updated": "2024-13-01"}, "bad updated date '2024-13-01'"),
        ({"title": "T", "year": "MMXX"}, "year 'MMXX' is not a whole number"),
        ({"title": "T", "year": 20251}, "year year 20251 is out of range"),
        ({"title": "T", "doi": "not a doi"}, "bad DOI 'not a doi'"),
        ({"title": "T", "arxiv_id": "12345"}, "bad arXiv id '12345'"),
        ({"title": ["T"]}, "title is a list, expected text"),
        ({"title": "T", "authors": 42}, "authors is a int, expected a list or text"),
        ({"name": "T"}, "no title field (keys: name)"),
        ({"title": "???"}, "title '???' has no letters or digits to identify it by"),
    ],
)
def test_mapping_rejects_bad_values_with_a_reason(record: dict[str, object], reason: str) -> None:
    result = paper_from_mapping(record, None, source="s", origin="f:9")
    assert isinstance(result, Rejected) and result.origin == "f:9" and result.reason.startswith(reason)


def test_mapping_lists_as_text_nulls_and_explicit_fields() -> None:
    record = {"Title": "T", "Authors": "['Ann A', 'Bob B']", "DOI": "N/A", "Year": "2021.0", "arxivId": "2101.00002"}
    paper = paper_from_mapping(record, None, source="s", origin="o")
    assert isinstance(paper, Paper)
    assert (paper.authors, paper.doi, paper.year, paper.id) == (["Ann A", "Bob B"], "", 2021, "2101.00002")
    # an explicit key wins over the aliases for its field; "" switches a field off
    record = {"title": "Alias title", "Headline": "Mapped title", "abstract": "dropped"}
    paper = paper_from_mapping(record, {"title": "Headline", "abstract": ""}, source="s", origin="o")
    assert isinstance(paper, Paper) and (paper.title, paper.abstract) == ("Mapped title", "")


# --- BibTeX --------------------------------------------------------------------------------------


def _line_of(name: str, text: str) -> int:
    return (FILES / name).read_text().splitlines().index(text) + 1


def test_bibtex_fields_accents_arxiv_doi_and_broken_entries() -> None:
    records = parse(BibTeXSource(), "refs.bib")
    attention, muller, scholar = papers(records)
    assert (attention.id, attention.version, attention.source_id) == ("1706.03762", 7, "vaswani2017attention")
    assert attention.title == "Attention Is All You Need"
    assert attention.authors == ["Ashish Vaswani", "Noam Shazeer", "Niki Parmar"]
    assert attention.abstract.startswith("The dominant sequence transduction models are based on complex recurrent")
    assert (attention.published, attention.year, attention.venue) == (date(2017, 6, 1), 2017, "")
    assert attention.categories == ["transformers", "attention"]
    assert muller.title == "Über die Beweisbarkeit: Café naïve ça and 100% $\\alpha$-stability"
    assert muller.authors == ["Jörg Müller", "José García-López", "Juan de la Fuente"]
    assert (muller.id, muller.doi) == ("doi:10.5555/3495724.3495883", "10.5555/3495724.3495883")
    assert muller.venue == "Advances in Neural Information Processing Systems"  # through @string
    assert (muller.year, muller.published, muller.abs_url) == (2020, None, "https://example.org/~muller/paper.pdf")
    assert (scholar.id, scholar.source) == ("2203.04567", "bibtex")  # "arXiv preprint arXiv:2203.04567"
    bad = rejected(records)
    assert [r.origin for r in bad] == [
        f"refs.bib:{_line_of('refs.bib', '@inproceedings{broken2021,')}",
        f"refs.bib:{_line_of('refs.bib', '@book{notitle2019,')}",
    ]
    assert bad[0].reason.startswith("entry 'broken2021': BibTeX error: Unexpected block start: `@misc`")
    assert bad[1].reason == "entry 'notitle2019' has no title"


def test_bibtex_latin1_file_and_bad_names() -> None:
    data = "@article{k1, title={Caf\u00e9 Stories}, author={Ren\u00e9 Dupont}, year={1999}}\n".encode("latin-1")
    data += b"@article{k2, title={Too Many Commas}, author={Smith, John, Jr, Extra, More}}\n"
    records = parse_bytes(BibTeXSource(), data, "old.bib")
    (paper,) = papers(records)
    assert (paper.title, paper.authors, paper.year) == ("Café Stories", ["René Dupont"], 1999)
    (bad,) = rejected(records)
    assert bad.origin == "old.bib:2" and bad.reason.startswith(
        "entry 'k2': BibTeX error: Cannot split the following name"
    )


def test_bibtex_sniff() -> None:
    assert BibTeXSource.sniff(b"", "refs.bib.gz")
    assert BibTeXSource.sniff(b"  \n@article{x, title={T}}", "export")
    assert BibTeXSource.sniff(b"% exported\n@misc{x, title={T}}", "export")
    assert not BibTeXSource.sniff(b"title,authors\n", "export")


def test_bibtex_plain_text_specials_survive_latex_decoding() -> None:
    data = rb"""@misc{k, title = {R&D at 50% of Cost: Fig.~1 \& {T}able \#2},
      abstract = {Code at https://x.org/~me/code and \href{https://g.com/r}{here}; Schr\"odinger.}}"""
    (paper,) = papers(parse_bytes(BibTeXSource(), data, "s.bib"))
    assert paper.title == "R&D at 50% of Cost: Fig. 1 & Table #2"
    assert paper.abstract == "Code at https://x.org/~me/code and here (https://g.com/r); Schrödinger."
