"""arXiv OAI-PMH and API sources: parsing recorded responses, and the real network code against a local server.

Nothing here reaches arxiv.org: every request goes to an http.server on 127.0.0.1 that replays the
recorded pages in tests/fixtures/arxiv/.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from papersift.errors import SourceError
from papersift.models import Paper, Rejected
from papersift.sources import http
from papersift.sources.arxiv_api import ArxivAPISource, query_url
from papersift.sources.arxiv_oai import ArxivOAISource, harvest_url, split_authors
from papersift.sources.base import ParsedRecord

FIXTURES = Path(__file__).parent / "fixtures" / "arxiv"
FAST = {"delay": "0", "retry_wait": "0"}  # no politeness delay, no backoff: tests stay fast
OAI_FIRST = {"verb": "ListRecords", "metadataPrefix": "arXiv", "set": "cs", "from": "2024-01-08"}
TOKEN = "7512348|1001"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def parse_file(source: ArxivOAISource | ArxivAPISource, name: str) -> list[ParsedRecord]:
    with (FIXTURES / name).open("rb") as stream:
        return list(source.parse(stream, name))


def papers(records: list[ParsedRecord]) -> dict[str, Paper]:
    return {r.id: r for r in records if isinstance(r, Paper)}


@dataclass
class Replay:
    """What the fake server was asked, and its one-shot state (the first OAI request gets a 503)."""

    base: str = ""
    requests: list[tuple[str, dict[str, str], str]] = field(default_factory=list)
    served_once: set[str] = field(default_factory=set)

    def once(self, key: str) -> bool:
        first = key not in self.served_once
        self.served_once.add(key)
        return first

    def calls(self, path: str) -> list[dict[str, str]]:
        return [params for p, params, _ in self.requests if p == path]


Response = tuple[int, dict[str, str], bytes]


def route(replay: Replay, path: str, q: dict[str, str]) -> Response:
    xml = {"Content-Type": "text/xml; charset=utf-8"}
    if path == "/oai2":
        if q == OAI_FIRST:
            if replay.once("oai-busy"):
                return 503, {"Retry-After": "0"}, b"<html>Retry after 0 seconds</html>"
            return 200, xml, fixture("oai_arxiv_page1.xml")
        if q == {"verb": "ListRecords", "resumptionToken": TOKEN}:
            return 200, xml, fixture("oai_arxiv_page2.xml")
        by_param = {"marc21": "oai_error.xml", "arXivRaw": "oai_arxivraw.xml"}
        if q.get("metadataPrefix") in by_param:
            return 200, xml, fixture(by_param[q["metadataPrefix"]])
        by_set = {"bomb": "xml_bomb.xml", "truncated": "truncated.xml"}
        if q.get("set") in by_set:
            return 200, xml, fixture(by_set[q["set"]])
        if q.get("from") == "2030-01-01":
            return 200, xml, fixture("oai_no_records.xml")
    if path == "/api/query":
        atom = {"Content-Type": "application/atom+xml; charset=utf-8"}
        if q.get("id_list") == "1234.1234v1a":
            return 400, atom, fixture("api_error.xml")
        if q.get("search_query") in ("cat:cs.CL", "cat:cs.IR") and q.get("start") == "0":
            return 200, atom, fixture("api_page1.xml")
        if q.get("search_query") == "cat:cs.CL" and q.get("start") == "2":
            return 200, atom, fixture("api_page2.xml")
        if q.get("search_query") == "cat:cs.IR" and q.get("start") == "2":
            return 200, atom, fixture("api_empty.xml")
    if path.startswith("/broken"):
        return 500, {}, b"Internal Server Error"
    if path == "/busy":
        if replay.once("busy"):
            return 503, {"Retry-After": "7"}, b"busy"
        return 200, {}, b"ok"
    if path == "/big":
        return 200, {"Content-Length": "5000"}, b"x" * 5000
    if path == "/big-stream":
        return 200, {}, b"x" * 5000  # no Content-Length: HTTP/1.0 body runs to connection close
    return 404, {}, b"not found"


@pytest.fixture
def server() -> Iterator[Replay]:
    replay = Replay()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = dict(parse_qsl(parts.query, keep_blank_values=True))
            replay.requests.append((parts.path, query, self.headers.get("User-Agent", "")))
            status, headers, body = route(replay, parts.path, query)
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    replay.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield replay
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def test_oai_arxiv_format_parses_papers_skips_deleted_and_rejects_untitled() -> None:
    records = parse_file(ArxivOAISource(), "oai_arxiv_page1.xml")
    found = papers(records)
    assert list(found) == ["1706.03762", "1512.03385", "cs/9308101"]  # order kept, deleted 2401.01234 skipped
    rejected = [r for r in records if isinstance(r, Rejected)]
    assert rejected == [Rejected("oai_arxiv_page1.xml#4", "2401.03001: record has no title")]

    attention = found["1706.03762"]
    assert attention.title == "Attention Is All You Need"
    assert attention.abstract.startswith("The dominant sequence transduction models are based on complex recurrent or ")
    assert "\n" not in attention.abstract and "  " not in attention.abstract
    assert attention.authors[:2] == ["Ashish Vaswani", "Noam Shazeer"]
    assert attention.authors[5] == "Aidan N. Gomez" and len(attention.authors) == 8
    assert attention.categories == ["cs.CL", "cs.LG"]
    assert (attention.published, attention.updated) == (date(2017, 6, 12), date(2023, 8, 2))
    assert attention.version is None  # the arXiv format does not say
    assert attention.source == "arxiv-oai" and attention.source_id == "1706.03762"
    assert attention.comment == "15 pages, 5 figures"
    assert attention.abs_url == "https://arxiv.org/abs/1706.03762"
    assert attention.pdf_url == "https://arxiv.org/pdf/1706.03762"

    resnet = found["1512.03385"]
    assert resnet.published == resnet.updated == date(2015, 12, 10)  # one version: no <updated>
    old = found["cs/9308101"]
    assert old.venue == "Journal of Artificial Intelligence Research, Vol 1, (1993), 25-46"
    assert old.authors == ["M. L. Ginsberg"]


def test_oai_arxivraw_format_reads_versions_and_splits_author_strings() -> None:
    records = parse_file(ArxivOAISource(), "oai_arxivraw.xml")
    found = papers(records)
    gpt3 = found["2005.14165"]
    assert gpt3.version == 4  # versions listed out of order; the highest wins
    assert gpt3.source_id == "2005.14165v4"
    assert (gpt3.published, gpt3.updated) == (date(2020, 5, 28), date(2020, 7, 22))
    names = "Tom B. Brown|Benjamin Mann|Nick Ryder|Melanie Subbiah|Jared Kaplan|Prafulla Dhariwal|Dario Amodei"
    assert gpt3.authors == names.split("|")
    diphoton = found["0704.0001"]
    assert diphoton.authors == ["C. Bal\\'azs", "E. L. Berger", "P. M. Nadolsky", "C.-P. Yuan"]
    assert diphoton.doi == "10.1103/PhysRevD.76.013009"
    assert diphoton.venue == "Phys.Rev.D76:013009,2007"
    assert diphoton.title == "Calculation of prompt diphoton production cross sections at Tevatron and LHC energies"
    assert (diphoton.version, diphoton.published, diphoton.updated) == (2, date(2007, 4, 2), date(2007, 7, 24))
    assert records[-1] == Rejected("oai_arxivraw.xml#3", "no valid arXiv id (got 'oai:arXiv.org:invalid')")


@pytest.mark.parametrize(
    ("raw", "names"),
    [
        ("A. Smith, B. Jones and C. Li", ["A. Smith", "B. Jones", "C. Li"]),
        ("A. Smith (MIT and Harvard), B. Jones, and C. Li", ["A. Smith", "B. Jones", "C. Li"]),
        ("Sandhya Anand and\n  Ferdinand Mandel", ["Sandhya Anand", "Ferdinand Mandel"]),
        ("ATLAS Collaboration", ["ATLAS Collaboration"]),
    ],
)
def test_split_authors(raw: str, names: list[str]) -> None:
    assert split_authors(raw) == names


def test_oai_error_response_names_code_and_message() -> None:
    with pytest.raises(SourceError, match=r"cannotDisseminateFormat.*not supported by the repository"):
        parse_file(ArxivOAISource(), "oai_error.xml")


def test_oai_no_records_match_is_simply_empty() -> None:
    assert parse_file(ArxivOAISource(), "oai_no_records.xml") == []


@pytest.mark.parametrize("source", [ArxivOAISource(), ArxivAPISource()])
def test_xml_bomb_is_refused_not_expanded(source: ArxivOAISource | ArxivAPISource) -> None:
    with pytest.raises(SourceError, match=r"xml_bomb.xml: XML refused because it declares entities.*XML bomb"):
        parse_file(source, "xml_bomb.xml")


def test_truncated_xml_keeps_records_before_the_break_then_says_so() -> None:
    got: list[ParsedRecord] = []
    pattern = r"truncated\.xml: the XML is truncated or malformed \(.*line \d+"
    with pytest.raises(SourceError, match=pattern), (FIXTURES / "truncated.xml").open("rb") as stream:
        for record in ArxivOAISource().parse(stream, "truncated.xml"):
            got.append(record)
    assert [p.id for p in got if isinstance(p, Paper)] == ["1706.03762"]


def test_sniff_tells_the_two_formats_apart() -> None:
    oai, api = fixture("oai_arxiv_page1.xml"), fixture("api_page1.xml")
    assert ArxivOAISource.sniff(oai, "page.xml") and not ArxivOAISource.sniff(api, "page.xml")
    assert ArxivAPISource.sniff(api, "page.xml") and ArxivAPISource.sniff(fixture("api_page2.xml"), "p.xml")
    assert not ArxivAPISource.sniff(oai, "page.xml")
    assert not ArxivAPISource.sniff(b'<feed xmlns="http://www.w3.org/2005/Atom"><title>blog</title>', "x.xml")


def test_url_helpers_and_handles_url() -> None:
    url = harvest_url(from_=date(2024, 1, 8), until=date(2024, 1, 9))
    assert url == (
        "https://oaipmh.arxiv.org/oai?verb=ListRecords&metadataPrefix=arXiv&set=cs&from=2024-01-08&until=2024-01-09"
    )
    assert harvest_url("http://export.arxiv.org/oai2", metadata_prefix="arXivRaw", set_=None) == (
        "http://export.arxiv.org/oai2?verb=ListRecords&metadataPrefix=arXivRaw"
    )
    assert ArxivOAISource.handles_url(url) and ArxivOAISource.handles_url("http://export.arxiv.org/oai2?verb=Identify")
    assert query_url("cat:cs.CL AND ti:attention", start=5, max_results=50) == (
        "https://export.arxiv.org/api/query?search_query=cat:cs.CL+AND+ti:attention&id_list=&start=5&max_results=50"
    )
    assert query_url(id_list=["1706.03762", "hep-th/9901001"]).endswith(
        "search_query=&id_list=1706.03762,hep-th%2F9901001&start=0&max_results=100"
    )
    assert ArxivAPISource.handles_url(query_url("all:bert"))
    assert ArxivAPISource.handles_url("http://arxiv.org/api/query?id_list=1706.03762")
    assert not ArxivAPISource.handles_url(url) and not ArxivOAISource.handles_url(query_url("all:bert"))


def test_api_feed_parses_ids_versions_doi_and_primary_category_first() -> None:
    records = parse_file(ArxivAPISource(), "api_idlist.xml")
    found = papers(records)
    diphoton = found["0704.0001"]
    assert (diphoton.version, diphoton.source_id) == (2, "0704.0001v2")
    assert (diphoton.published, diphoton.updated) == (date(2007, 4, 2), date(2007, 7, 24))
    assert diphoton.authors == ["C. Balázs", "E. L. Berger", "P. M. Nadolsky", "C. -P. Yuan"]
    assert diphoton.doi == "10.1103/PhysRevD.76.013009"
    assert diphoton.venue == "Phys.Rev.D76:013009,2007"
    assert diphoton.comment == "37 pages, 15 figures; published version"
    assert diphoton.pdf_url == "https://arxiv.org/pdf/0704.0001v2"
    assert diphoton.abs_url == "https://arxiv.org/abs/0704.0001"
    assert diphoton.source == "arxiv-api"
    assert found["hep-th/9901001"].categories == ["hep-th", "gr-qc"]
    assert records[-1] == Rejected("api_idlist.xml#3", "2401.09999: entry has no title")

    page1 = papers(parse_file(ArxivAPISource(), "api_page1.xml"))
    assert page1["1706.03762"].categories == ["cs.CL", "cs.LG"]
    assert page1["1810.04805"].title == (
        "BERT: Pre-training of Deep Bidirectional Transformers for Language Understanding"
    )


def test_api_error_entry_becomes_source_error() -> None:
    with pytest.raises(SourceError, match=r"arXiv API reported an error: incorrect id format for 1234\.1234v1a"):
        parse_file(ArxivAPISource(), "api_error.xml")


def test_oai_fetch_retries_503_then_follows_resumption_token(server: Replay) -> None:
    source = ArxivOAISource(FAST)
    url = f"{server.base}/oai2?verb=ListRecords&metadataPrefix=arXiv&set=cs&from=2024-01-08"
    records = list(source.fetch(url))

    assert list(papers(records)) == ["1706.03762", "1512.03385", "cs/9308101", "1810.04805", "2106.09685"]
    assert [r.reason for r in records if isinstance(r, Rejected)] == ["2401.03001: record has no title"]
    # 503 first, the retry, then page 2 asked for by token alone
    assert server.calls("/oai2") == [OAI_FIRST, OAI_FIRST, {"verb": "ListRecords", "resumptionToken": TOKEN}]
    assert {agent for _, _, agent in server.requests} == {"papersift/0.1 (+self-hosted)"}
    lora = papers(records)["2106.09685"]
    assert lora.comment == "Draft V2 includes better baselines, experiments on GLUE, and more on adapter latency"


def test_oai_fetch_error_and_empty_harvest(server: Replay) -> None:
    with pytest.raises(SourceError, match="error 'cannotDisseminateFormat'"):
        list(ArxivOAISource(FAST).fetch(f"{server.base}/oai2?verb=ListRecords&metadataPrefix=marc21&set=cs"))
    assert list(ArxivOAISource(FAST).fetch(harvest_url(f"{server.base}/oai2", from_=date(2030, 1, 1)))) == []
    with pytest.raises(SourceError, match="XML bomb"):
        list(ArxivOAISource(FAST).fetch(f"{server.base}/oai2?verb=ListRecords&metadataPrefix=arXiv&set=bomb"))


def test_api_fetch_pages_until_total_results(server: Replay) -> None:
    source = ArxivAPISource({**FAST, "page_size": "2"})
    records = list(source.fetch(f"{server.base}/api/query?search_query=cat:cs.CL"))
    assert list(papers(records)) == ["1706.03762", "1810.04805", "2005.14165"]
    gpt3 = papers(records)["2005.14165"]
    assert (gpt3.version, gpt3.published, gpt3.comment) == (4, date(2020, 5, 28), "40+32 pages")
    assert gpt3.pdf_url == "https://arxiv.org/pdf/2005.14165v4"
    calls = server.calls("/api/query")
    assert [(c["start"], c["max_results"]) for c in calls] == [("0", "2"), ("2", "2")]  # total 3 reached: no 3rd
    assert all(c["search_query"] == "cat:cs.CL" for c in calls)


def test_api_fetch_stops_at_caps_and_empty_pages(server: Replay) -> None:
    list(
        ArxivAPISource({**FAST, "page_size": "2"}).fetch(
            f"{server.base}/api/query?search_query=cat:cs.CL&max_results=2"
        )
    )
    assert [(c["start"], c["max_results"]) for c in server.calls("/api/query")] == [("0", "2")]

    server.requests.clear()
    list(
        ArxivAPISource({**FAST, "page_size": "2", "max_results": "3"}).fetch(
            f"{server.base}/api/query?search_query=cat:cs.CL"
        )
    )
    assert [(c["start"], c["max_results"]) for c in server.calls("/api/query")] == [("0", "2"), ("2", "1")]

    server.requests.clear()  # totalResults says 5000 but page 2 is empty: stop rather than loop
    records = list(ArxivAPISource({**FAST, "page_size": "2"}).fetch(f"{server.base}/api/query?search_query=cat:cs.IR"))
    assert len(records) == 2
    assert [c["start"] for c in server.calls("/api/query")] == ["0", "2"]


def test_api_fetch_reports_the_api_error_from_an_http_400(server: Replay) -> None:
    with pytest.raises(SourceError, match=r"incorrect id format for 1234\.1234v1a"):
        list(ArxivAPISource(FAST).fetch(f"{server.base}/api/query?id_list=1234.1234v1a"))
    assert len(server.requests) == 1  # a 400 is an answer, not a reason to retry


def test_server_error_forever_gives_up_after_bounded_retries(server: Replay) -> None:
    with pytest.raises(SourceError, match=r"/broken: the server answered HTTP 500 .* on all 3 attempts"):
        http.get(f"{server.base}/broken", retry=http.RetryPolicy(attempts=3, backoff=0))
    assert len(server.requests) == 3
    server.requests.clear()
    with pytest.raises(SourceError, match="on all 2 attempts"):
        list(ArxivOAISource({**FAST, "retries": "2"}).fetch(f"{server.base}/broken/oai2?verb=ListRecords"))
    assert len(server.requests) == 2


def test_not_found_is_not_retried(server: Replay) -> None:
    with pytest.raises(SourceError, match=r"answered HTTP 404 Not Found: not found"):
        http.get(f"{server.base}/nowhere", retry=http.RetryPolicy(attempts=5, backoff=0))
    assert len(server.requests) == 1


def test_retry_after_is_honoured(server: Replay) -> None:
    waits: list[float] = []
    body = http.get(f"{server.base}/busy", retry=http.RetryPolicy(backoff=0), sleep=waits.append)
    assert (body, waits) == (b"ok", [7.0])
    now = datetime(2024, 1, 10, 12, 0, tzinfo=UTC)
    assert http.parse_retry_after("120") == 120.0
    assert http.parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30.0
    assert http.parse_retry_after("soon") is None and http.parse_retry_after(None) is None


def test_unreachable_or_bad_urls_say_what_to_do() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(SourceError, match=r"could not reach http://127.0.0.1:\d+/oai2.*check the network or ingest"):
        http.get(f"http://127.0.0.1:{port}/oai2", retry=http.RetryPolicy(attempts=2, backoff=0))
    with pytest.raises(SourceError, match="not a valid URL"):
        http.get("http://[::1")
    with pytest.raises(SourceError, match=r"could not reach ftp://example\.invalid/x"):
        http.get("ftp://example.invalid/x", retry=http.RetryPolicy(attempts=1))


@pytest.mark.parametrize("path", ["/big", "/big-stream"])
def test_response_size_cap(server: Replay, path: str) -> None:
    with pytest.raises(SourceError, match=r"(response is 0\.005 MB, )?over the 0\.001 MB limit"):
        http.get(f"{server.base}{path}", max_bytes=1000)
    assert http.get(f"{server.base}{path}", max_bytes=5000) == b"x" * 5000


def test_politeness_spaces_requests_per_host() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    polite = http.Politeness(3.0, clock=lambda: now[0], sleep=sleep)
    polite.wait("https://export.arxiv.org/api/query?a=1")
    now[0] += 1.0
    polite.wait("https://export.arxiv.org/api/query?a=2")  # 1 s later: waits the other 2
    polite.wait("https://oaipmh.arxiv.org/oai")  # another host: no wait
    assert slept == [pytest.approx(2.0)]
    http.Politeness(0).wait("https://x")  # interval 0 never sleeps (and never fails)
