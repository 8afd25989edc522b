"""The arXiv search API (Atom feeds from export.arxiv.org/api/query): targeted queries and id lookups.

Good for "everything matching this query" or a handful of ids; for bulk or daily harvesting use
OAI-PMH (`arxiv_oai`), which arXiv prefers. Pages politely (3 s between requests by default).
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import BinaryIO
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from papersift.errors import SourceError
from papersift.ids import parse_arxiv_id
from papersift.models import Paper, Rejected
from papersift.sources import http
from papersift.sources.arxiv_oai import collapse, first_doi, float_option, iter_xml
from papersift.sources.base import ParsedRecord, Source

ATOM = "{http://www.w3.org/2005/Atom}"
ARXIV = "{http://arxiv.org/schemas/atom}"
OPENSEARCH = "{http://a9.com/-/spec/opensearch/1.1/}"
API_URL = "https://export.arxiv.org/api/query"
ERROR_ID_PREFIX = "arxiv.org/api/errors"
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 2000  # arXiv refuses larger pages


def query_url(
    search_query: str = "", id_list: Sequence[str] = (), start: int = 0, max_results: int = DEFAULT_PAGE_SIZE
) -> str:
    """An API query URL; `fetch` treats its max_results as the total wanted and pages up to it."""
    params = {"search_query": search_query, "id_list": ",".join(id_list), "start": str(start)}
    params["max_results"] = str(max_results)
    return f"{API_URL}?{urlencode(params, safe=':,')}"


@dataclass(slots=True)
class _PageInfo:
    entries: int = 0
    total: int | None = None


def _date(value: str, what: str) -> date | None:
    value = value.strip()
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).date()
    except ValueError:
        raise ValueError(f"bad {what} date {value[:40]!r}") from None


def _text(parent: ET.Element, tag: str) -> str:
    child = parent.find(tag)
    return (child.text or "") if child is not None else ""


def _int_option(value: str | None, key: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return max(0, int(value))
    except ValueError:
        raise SourceError(f"{key}={value!r} is not a whole number") from None


class ArxivAPISource(Source):
    name = "arxiv-api"
    description = "arXiv API Atom feeds (export.arxiv.org/api/query), saved or fetched page by page"
    rank = 20

    @classmethod
    def sniff(cls, head: bytes, filename: str) -> bool:
        return b"<feed" in head and b"arxiv" in head.lower()

    @classmethod
    def handles_url(cls, url: str) -> bool:
        return "export.arxiv.org/api/query" in url or "arxiv.org/api/query" in url

    def parse(self, stream: BinaryIO, origin: str) -> Iterator[ParsedRecord]:
        yield from self._entries(stream, origin)

    def fetch(self, url: str) -> Iterator[ParsedRecord]:
        """Page through the query with start/max_results until totalResults, an empty page or the cap.

        The cap is the `max_results` option, else the URL's own max_results, else none; `page_size`
        (default 100) sets how many entries each request asks for.
        """
        parts = urlsplit(url)
        base = urlunsplit(parts._replace(query="", fragment=""))
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        start = _int_option(params.pop("start", None), "start") or 0
        url_cap = _int_option(params.pop("max_results", None), "max_results")
        option_cap = _int_option(self.options.get("max_results"), "max_results")
        cap = option_cap if option_cap is not None else url_cap
        page_size = _int_option(self.options.get("page_size"), "page_size") or DEFAULT_PAGE_SIZE
        page_size = min(page_size, MAX_PAGE_SIZE)
        politeness = http.Politeness(float_option(self.options, "delay", 3.0))
        retry = http.RetryPolicy.from_options(self.options)
        fetched = 0
        while cap is None or fetched < cap:
            size = page_size if cap is None else min(page_size, cap - fetched)
            page = {**params, "start": str(start + fetched), "max_results": str(size)}
            origin = f"{base}?{urlencode(page, safe=':,')}"
            # arXiv answers some bad queries with HTTP 400 and an Atom error entry; parse it for its message
            body = http.get(base, page, politeness=politeness, retry=retry, allow_statuses=(400,))
            info = yield from self._entries(io.BytesIO(body), origin)
            fetched += info.entries
            if info.entries == 0 or (info.total is not None and start + fetched >= info.total):
                return

    def _entries(self, stream: BinaryIO, origin: str) -> Generator[ParsedRecord, None, _PageInfo]:
        """Yield one feed's entries and return how many there were and the feed's totalResults."""
        info = _PageInfo()
        open_elements: list[ET.Element] = []  # the path from the root to the element being read
        for event, elem in iter_xml(stream, origin):
            if event == "start":
                if not open_elements and elem.tag != f"{ATOM}feed":
                    raise SourceError(f"{origin}: not an Atom feed (root element {elem.tag!r})")
                open_elements.append(elem)
                continue
            open_elements.pop()
            parent = open_elements[-1] if open_elements else None
            if elem.tag == f"{OPENSEARCH}totalResults":
                info.total = _int_option((elem.text or "").strip(), "opensearch:totalResults")
            elif elem.tag == f"{ATOM}entry":
                info.entries += 1
                where = f"{origin}#{info.entries}"
                if parent is None or parent.tag != f"{ATOM}feed":
                    yield Rejected(where, "an entry outside the feed element is not valid Atom; skipped")
                else:
                    yield self._entry(elem, where)
                if parent is not None:
                    parent.remove(elem)  # keep memory flat across a large page
        return info

    def _entry(self, entry: ET.Element, where: str) -> ParsedRecord:
        entry_id = _text(entry, f"{ATOM}id").strip()
        if ERROR_ID_PREFIX in entry_id:
            message = collapse(_text(entry, f"{ATOM}summary")) or entry_id
            raise SourceError(f"{where}: the arXiv API reported an error: {message}")
        parsed = parse_arxiv_id(entry_id)
        if parsed is None:
            return Rejected(where, f"no valid arXiv id (got {entry_id[:60]!r})")
        arxiv_id, version = parsed
        title = collapse(_text(entry, f"{ATOM}title"))
        if not title:
            return Rejected(where, f"{arxiv_id}: entry has no title")
        try:
            published = _date(_text(entry, f"{ATOM}published"), "published")
            updated = _date(_text(entry, f"{ATOM}updated"), "updated")
        except ValueError as exc:
            return Rejected(where, f"{arxiv_id}: {exc}")
        return Paper(
            id=arxiv_id,
            title=title,
            abstract=collapse(_text(entry, f"{ATOM}summary")),
            authors=[name for a in entry.iterfind(f"{ATOM}author") if (name := collapse(_text(a, f"{ATOM}name")))],
            categories=self._categories(entry),
            published=published,
            updated=updated,
            version=version,
            source=self.name,
            source_id=f"{arxiv_id}v{version}" if version else arxiv_id,
            doi=first_doi(_text(entry, f"{ARXIV}doi")),
            venue=collapse(_text(entry, f"{ARXIV}journal_ref")),
            comment=collapse(_text(entry, f"{ARXIV}comment")),
            abs_url=f"https://arxiv.org/abs/{arxiv_id}",
            pdf_url=self._pdf_link(entry) or f"https://arxiv.org/pdf/{arxiv_id}",
        )

    @staticmethod
    def _categories(entry: ET.Element) -> list[str]:
        primary = entry.find(f"{ARXIV}primary_category")
        terms = [primary.get("term", "")] if primary is not None else []
        terms += [cat.get("term", "") for cat in entry.iterfind(f"{ATOM}category")]
        return list(dict.fromkeys(label for term in terms if (label := collapse(term))))

    @staticmethod
    def _pdf_link(entry: ET.Element) -> str:
        for link in entry.iterfind(f"{ATOM}link"):
            if link.get("title") == "pdf" or link.get("type") == "application/pdf":
                href = link.get("href", "").strip()
                return "https://" + href.removeprefix("http://") if href.startswith("http://") else href
        return ""
