"""Property-based tests of the network side of the sources: hostile servers on 127.0.0.1.

A loopback http.server answers with generated statuses, Retry-After headers and bodies (mutated real arXiv
responses, generated Hugging Face arrays); `http.get` and `ingest(URL)` must return records or raise a
SourceError with a message, never anything else.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from papersift.errors import SourceError
from papersift.ingest import ingest
from papersift.sources import hf_daily, http
from papersift.store import Store

from .sources_props_contract import check_record, dump_json
from .test_sources_props import hf_api_items
from .test_sources_props_xml import API_FILES, ARXIV, OAI_FILES, mutated_documents

# what a server might put in Retry-After: seconds, HTTP dates with any year or offset, junk
retry_after_values = st.one_of(
    st.integers(-5, 10**30).map(str),
    st.sampled_from(
        ["²", "1²", "1e400", " 7 ", "", "Mon, 1 Jan 99999999999 10:00:00 GMT", "Fri, 31 Dec 9999 23:59:59 -2359"]
    ),
    st.datetimes().map(lambda d: d.strftime("%a, %d %b %Y %H:%M:%S GMT")),
    st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=40),
)
NO_WAIT = http.RetryPolicy(attempts=2, backoff=0.0, max_wait=0.0, timeout=10.0)


@settings(max_examples=200, deadline=None)
@given(retry_after_values)
@example("²")  # '²'.isdigit() is True, float('²') raised ValueError
@example("Mon, 1 Jan 99999999999 10:00:00 GMT")  # OverflowError out of parsedate_to_datetime
def test_retry_after_is_seconds_or_none(value: str) -> None:
    seconds = http.parse_retry_after(value)
    assert seconds is None or (isinstance(seconds, float) and math.isfinite(seconds) and seconds >= 0)


@dataclass
class Hostile:
    """What the loopback server answers to every request (tests set it per example)."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    base: str = ""


@pytest.fixture(scope="module")
def hostile_server() -> Iterator[Hostile]:
    answer = Hostile()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(answer.status)
            for key, value in answer.headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    answer.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield answer
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from([200, 400, 404, 429, 500, 503]), retry_after_values, st.binary(max_size=64))
@example(503, "²", b"busy")  # ValueError from parse_retry_after escaped http.get
def test_get_returns_a_body_or_says_why_not(hostile_server: Hostile, status: int, retry: str, body: bytes) -> None:
    hostile_server.status, hostile_server.headers, hostile_server.body = status, {"Retry-After": retry}, body
    try:
        got = http.get(f"{hostile_server.base}/x", retry=NO_WAIT)
    except SourceError as exc:
        assert status >= 400 and str(exc).strip()
    else:
        assert status < 400 and got == body


@st.composite
def endpoint_answers(draw: st.DrawFn) -> tuple[str, bytes]:
    """(URL path and query that ingest routes to an endpoint source, the body the server sends)."""
    kind = draw(st.sampled_from(["oai", "api", "hf"]))
    if kind == "oai":
        return "/oai?verb=ListRecords&metadataPrefix=arXiv", draw(mutated_documents(OAI_FILES))
    if kind == "api":
        return "/arxiv.org/api/query?search_query=cat:cs.CL&max_results=4", draw(mutated_documents(API_FILES))
    items = draw(st.lists(hf_api_items, max_size=4))
    return "/huggingface.co/api/daily_papers?date=2025-01-02", dump_json(items, True).encode()


@pytest.fixture(scope="module")
def url_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    store = Store.open(f"sqlite:///{tmp_path_factory.mktemp('urls') / 'store.db'}")
    yield store
    store.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(endpoint_answers(), st.sampled_from([200, 200, 200, 400, 503]))
def test_endpoint_ingest_stores_records_or_says_why_not(
    hostile_server: Hostile, url_store: Store, answer: tuple[str, bytes], status: int
) -> None:
    path, body = answer
    hostile_server.status, hostile_server.headers, hostile_server.body = status, {"Retry-After": "0"}, body
    options = {"delay": "0", "retries": "1", "retry_wait": "0", "max_results": "8"}
    try:
        report = ingest(url_store, hostile_server.base + path, options=options)
    except SourceError as exc:
        assert str(exc).strip()
        event("SourceError")
    else:
        assert all(r.origin and r.reason.strip() for r in report.rejections)
        event("papers stored" if report.added + report.updated + report.unchanged else "no papers")
    for paper in url_store.iter_papers():
        check_record(paper, "", paper.source)


url_values = st.one_of(
    st.sampled_from(["", "0", "-1", "²", "1²", "99999999999999999999", "2", "abc", "1.5", " 3"]),
    st.text(st.characters(min_codepoint=33, max_codepoint=0x2FF), max_size=8),
)
_ENDPOINT_BODIES = {
    "/oai": "oai_arxiv_page2.xml",
    "/arxiv.org/api/query": "api_page2.xml",
    "/huggingface.co/api/daily_papers": None,
}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.sampled_from(sorted(_ENDPOINT_BODIES)),
    st.dictionaries(
        st.sampled_from(["verb", "limit", "p", "date", "start", "max_results", "resumptionToken", "search_query"]),
        url_values,
        max_size=4,
    ),
)
@example("/huggingface.co/api/daily_papers", {"date": "2025-01-02", "limit": "²"})  # int('²'): ValueError
def test_endpoint_urls_with_odd_parameters(
    hostile_server: Hostile, url_store: Store, path: str, params: dict[str, str]
) -> None:
    """Whatever a user writes in an endpoint URL's query, ingest pages through it or says what is wrong."""
    fixture = _ENDPOINT_BODIES[path]
    body = (ARXIV / fixture).read_bytes() if fixture else b"[]"
    hostile_server.status, hostile_server.headers, hostile_server.body = 200, {}, body
    query = {"verb": "ListRecords"} if path == "/oai" else {}
    query.update(params)
    url = f"{hostile_server.base}{path}?{urlencode(query)}"
    options = {"delay": "0", "retries": "1", "retry_wait": "0", "max_results": "4"}
    try:
        ingest(url_store, url, options=options)
    except SourceError as exc:
        assert str(exc).strip()


def _hf_item(n: int) -> dict[str, object]:
    paper = {"id": f"2501.{n:05d}", "title": f"Paper {n}", "summary": "An abstract.", "publishedAt": "2025-01-02"}
    return {"paper": paper, "publishedAt": "2025-01-03"}


def test_hf_paging_past_the_api_page_cap(url_store: Store) -> None:
    """The API serves at most PAGE_SIZE items a page whatever `limit` asks; a URL asking for more must still
    page to the end (it stopped after the first, capped page, as if that were the last)."""
    items = [_hf_item(n) for n in range(hf_daily.PAGE_SIZE + 50)]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            query = dict(parse_qsl(urlsplit(self.path).query))
            size = min(int(query.get("limit", "50")), hf_daily.PAGE_SIZE)
            start = int(query.get("p", "0")) * size
            body = dump_json(items[start : start + size], True).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/api/daily_papers?date=2025-01-03&limit=500"
        records = list(hf_daily.HFDailySource({"retry_wait": "0"}).fetch(url))
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
    assert len(records) == len(items)
