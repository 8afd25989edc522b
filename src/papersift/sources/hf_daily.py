"""Hugging Face Daily Papers: the community's daily pick of arXiv papers, with upvotes and the day featured.

Two shapes: the `/api/daily_papers` JSON (an array of {"paper": {...}, ...}, also accepted as JSON lines) and
the archived featured list as JSON lines ({date, author, title, link, summary, arxiv_id}). Both are mapped
through `paper_from_mapping`, so dates, ids and bad values are handled exactly as in the other sources.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import date
from typing import Any, BinaryIO, cast
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import orjson

from papersift.errors import SourceError
from papersift.ids import parse_arxiv_id
from papersift.models import Rejected
from papersift.sources.base import (
    MAX_RECORD_BYTES,
    ParsedRecord,
    Source,
    iter_json_lines,
    read_json_array_bytes,
)
from papersift.sources.mapping import paper_from_mapping

API_URL = "https://huggingface.co/api/daily_papers"
# a saved API response is parsed whole; real ones are well under 1 MB per day

PAGE_SIZE = 100  # the API's maximum `limit`
MAX_PAGES = 200
# filters that bound a query, so paging through it ends; the bare endpoint pages through all history
_BOUNDED_FILTERS = ("date", "week", "month", "submitter")


def daily_papers_url(day: date) -> str:
    """The API query for one day's featured papers (what `papersift ingest URL` or a daily job fetches)."""
    return f"{API_URL}?date={day.isoformat()}"


def _is_api_item(record: Any) -> bool:
    return isinstance(record, dict) and isinstance(record.get("paper"), dict) and "summary" in record["paper"]


def _is_featured_item(record: Any) -> bool:
    return (
        isinstance(record, dict)
        and "summary" in record
        and isinstance(record.get("link"), str)
        and "huggingface.co" in record["link"]
    )


def _summary(value: Any) -> Any:
    """The newsletter archive sometimes kept arXiv's line breaks as a literal backslash-n."""
    if isinstance(value, str) and "\n" not in value and value.count("\\n") >= 3:
        return value.replace("\\n", " ")
    return value


class HFDailySource(Source):
    name = "hf-daily"
    description = "Hugging Face Daily Papers: the /api/daily_papers JSON or a featured-papers JSON lines archive"
    rank = 10

    @classmethod
    def sniff(cls, head: bytes, filename: str) -> bool:
        text = head.lstrip()
        if text[:1] == b"[":
            return b'"paper"' in text[:4096] and b'"summary"' in text
        if text[:1] != b"{":
            return False
        first, newline, _ = text.partition(b"\n")
        try:
            record = orjson.loads(first)
        except orjson.JSONDecodeError:
            if newline:
                return False
            # a first line longer than the head: judge by its keys
            return (b'"paper"' in first and b'"summary"' in first) or (
                b'"link"' in first and b"huggingface.co/papers/" in first and b'"summary"' in first
            )
        return _is_api_item(record) or _is_featured_item(record)

    @classmethod
    def handles_url(cls, url: str) -> bool:
        return "huggingface.co/api/daily_papers" in url

    def parse(self, stream: BinaryIO, origin: str) -> Iterator[ParsedRecord]:
        if not hasattr(stream, "peek"):
            stream = cast(BinaryIO, io.BufferedReader(cast(io.RawIOBase, stream)))
        head = stream.peek(1 << 12)  # type: ignore[attr-defined]
        if head.lstrip()[:1] == b"[":
            yield from self.parse_bytes(read_json_array_bytes(stream, origin), origin)
            return
        limit = int(self.options.get("max_record_bytes", MAX_RECORD_BYTES))
        for item in iter_json_lines(stream, origin, limit):
            yield item if isinstance(item, Rejected) else self.to_paper(item[1], item[0])

    def parse_bytes(self, data: bytes, origin: str) -> Iterator[ParsedRecord]:
        """Records of one whole JSON array, e.g. an API response body."""
        try:
            records = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise SourceError(f"{origin}: not valid JSON ({exc}); expected a Hugging Face daily_papers array") from exc
        if isinstance(records, dict):  # the API's error document, e.g. {"error": "Invalid date"}
            detail = records.get("error") or ", ".join(list(records)[:5])
            raise SourceError(f"{origin}: expected a JSON array of daily papers, got an object ({detail})")
        if not isinstance(records, list):
            raise SourceError(f"{origin}: expected a JSON array of daily papers, got {type(records).__name__}")
        for index, record in enumerate(records):
            yield self.to_paper(record, f"{origin}#{index}")

    def to_paper(self, record: Any, where: str) -> ParsedRecord:
        """One API item or featured-list line -> Paper, or Rejected saying what is wrong with it."""
        if not isinstance(record, dict):
            return Rejected(where, f"expected a JSON object, got {type(record).__name__}")
        if "paper" in record:
            return self._api_item(record, where)
        if "link" in record or "arxiv_id" in record:
            return self._featured_item(record, where)
        return Rejected(where, f"neither a daily_papers item nor a featured-list record (keys: {', '.join(record)})")

    def _api_item(self, item: dict[str, Any], where: str) -> ParsedRecord:
        paper = item["paper"]
        if not isinstance(paper, dict):
            return Rejected(where, f"'paper' is a {type(paper).__name__}, expected an object")
        raw_id = paper.get("id")
        if not isinstance(raw_id, str) or not raw_id.strip():
            return Rejected(where, "paper.id is missing")
        parsed = parse_arxiv_id(raw_id)
        if parsed is None:
            return Rejected(where, f"paper.id {raw_id[:40]!r} is not an arXiv id")
        authors = paper.get("authors")
        if authors is not None and not isinstance(authors, list):
            return Rejected(where, f"{parsed[0]}: paper.authors is a {type(authors).__name__}, expected a list")
        record = {
            "arxiv": raw_id,
            "title": paper.get("title") or item.get("title"),
            "abstract": paper.get("summary") or item.get("summary"),
            "authors": authors,
            "published": paper.get("publishedAt"),
            # the feature day: submittedOnDailyAt where the API sends it, else the item's own date
            "featured": paper.get("submittedOnDailyAt") or item.get("submittedOnDailyAt") or item.get("publishedAt"),
            "upvotes": paper.get("upvotes", item.get("upvotes")),
            "source_id": f"hf:{parsed[0]}",
        }
        return self._map(record, where)

    def _featured_item(self, item: dict[str, Any], where: str) -> ParsedRecord:
        raw_id = item.get("arxiv_id") or item.get("link")
        parsed = parse_arxiv_id(raw_id) if isinstance(raw_id, str) else None
        if parsed is None:
            return Rejected(where, f"no arXiv id in arxiv_id or link (got {str(raw_id)[:60]!r})")
        author = item.get("author")
        record = {
            "arxiv": parsed[0],
            "title": item.get("title"),
            "abstract": _summary(item.get("summary")),
            "authors": [author] if isinstance(author, str) else author,
            "featured": item.get("date"),
            "source_id": f"hf:{parsed[0]}",
        }
        return self._map(record, where)

    def _map(self, record: dict[str, Any], where: str) -> ParsedRecord:
        if record["title"] is None:  # say so here: the mapping would list our internal keys
            return Rejected(where, f"{record['source_id'][3:]}: no title")
        return paper_from_mapping(record, None, source=self.name, origin=where)

    def fetch(self, url: str) -> Iterator[ParsedRecord]:
        """Fetch an API query; a date/week/month query is paged through (PAGE_SIZE per page) to its end."""
        from papersift.sources import http

        parts = urlsplit(url)
        if not parts.path.rstrip("/").endswith("/api/daily_papers"):  # any host: mirrors and test servers
            raise SourceError(f"{url}: not a Hugging Face daily_papers API URL (expected {API_URL}?date=YYYY-MM-DD)")
        base = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        params = dict(parse_qsl(parts.query))
        retry = http.RetryPolicy.from_options(self.options)
        if "p" in params or not any(key in params for key in _BOUNDED_FILTERS):
            yield from self.parse_bytes(http.get(base, params or None, retry=retry), url)
            return
        limit = params.get("limit", "")
        size = int(limit) if limit.isascii() and limit.isdigit() and int(limit) > 0 else PAGE_SIZE  # not '²'
        size = min(size, PAGE_SIZE)  # the API caps pages there: a bigger `limit` made page 0 look like the last
        seen: set[str] = set()
        for page in range(MAX_PAGES):
            query = {**params, "limit": str(size), "p": str(page)}
            body = http.get(base, query, retry=retry)
            records = list(self.parse_bytes(body, f"{url}&p={page}" if parts.query else f"{url}?p={page}"))
            fresh = [r for r in records if isinstance(r, Rejected) or r.id not in seen]
            seen.update(r.id for r in records if not isinstance(r, Rejected))
            yield from fresh
            if len(records) < size or not fresh:  # a short page is the last; a repeated one means no paging
                return


MAX_HARVEST_DAYS = 400  # one run's bound: a year and a bit of days, one request (or a few pages) each


def harvest_urls(start: date, until: date, endpoint: str = API_URL) -> list[str]:
    """One daily_papers query per day from `start` to `until` (inclusive), oldest first: `harvest --hf-daily`.

    The start day itself is fetched again on resume: its list and upvotes may have grown since the last run.
    """
    if until < start:
        return []
    days = min((until - start).days + 1, MAX_HARVEST_DAYS)
    base = endpoint.split("?", 1)[0]
    return [f"{base}?date={date.fromordinal(start.toordinal() + i).isoformat()}" for i in range(days)]
