"""RSS 2.0 and Atom (RFC 4287) documents for lists of papers, built with ElementTree.

Building the tree (not concatenating strings) is what makes escaping and well-formedness automatic;
ids are stable absolute URLs of the site's paper pages so a feed reader never shows a paper twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from email.utils import format_datetime
from xml.etree import ElementTree as ET

from papersift.models import Paper
from papersift.urls import safe_url

ATOM_NS = "http://www.w3.org/2005/Atom"
DC_NS = "http://purl.org/dc/elements/1.1/"
ATOM_TYPE = "application/atom+xml; charset=utf-8"
RSS_TYPE = "application/rss+xml; charset=utf-8"
SUMMARY_CHARS = 2000
ET.register_namespace("atom", ATOM_NS)  # the prefix of the atom:link an RSS channel carries
ET.register_namespace("dc", DC_NS)


@dataclass(slots=True, frozen=True)
class FeedMeta:
    """What a feed is: its title, its own URL (also its id) and the page it mirrors."""

    title: str
    self_url: str
    page_url: str
    description: str


def _clean(text: str) -> str:
    """Drop the characters XML 1.0 cannot carry (control codes that slip into scraped abstracts)."""
    return "".join(c for c in text if c in "\t\n\r" or (ord(c) >= 0x20 and c not in "\ufffe\uffff"))


def paper_time(paper: Paper) -> datetime:
    """When a paper last changed for a reader: its listing/publication date, else when we first saw it."""
    day: date | None = paper.date
    if day is not None:
        return datetime.combine(day, time(), UTC)
    return paper.first_seen or datetime(1970, 1, 1, tzinfo=UTC)


def _updated(papers: Sequence[Paper], now: datetime | None) -> datetime:
    if papers:
        return max(paper_time(p) for p in papers)
    return now or datetime.now(UTC)


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrs)
    if text is not None:
        el.text = _clean(text)
    return el


def _summary(paper: Paper) -> str:
    text = " ".join(paper.abstract.split())
    return text[:SUMMARY_CHARS] + ("…" if len(text) > SUMMARY_CHARS else "")


def atom(meta: FeedMeta, papers: Sequence[Paper], paper_url: dict[str, str], now: datetime | None = None) -> bytes:
    """An Atom feed; `paper_url` maps paper ids to their absolute page URLs (the entry ids)."""
    feed = ET.Element("feed", {"xmlns": ATOM_NS})  # a literal default namespace: no prefixes in the document
    _sub(feed, "id", meta.self_url)
    _sub(feed, "title", meta.title)
    _sub(feed, "subtitle", meta.description)
    _sub(feed, "updated", _updated(papers, now).isoformat())
    _sub(feed, "link", rel="self", type="application/atom+xml", href=meta.self_url)
    _sub(feed, "link", rel="alternate", type="text/html", href=meta.page_url)
    _sub(feed, "generator", "papersift")
    author = _sub(feed, "author")
    _sub(author, "name", "papersift")
    for paper in papers:
        entry = _sub(feed, "entry")
        url = paper_url[paper.id]
        _sub(entry, "id", url)
        _sub(entry, "title", paper.title)
        _sub(entry, "updated", paper_time(paper).isoformat())
        if paper.published:
            _sub(entry, "published", datetime.combine(paper.published, time(), UTC).isoformat())
        for name in paper.authors[:50]:
            _sub(_sub(entry, "author"), "name", name)
        _sub(entry, "link", rel="alternate", type="text/html", href=url)
        related = safe_url(paper.abs_url)  # rows stored before ingest checked links; feed readers have no CSP
        if related:
            _sub(entry, "link", rel="related", type="text/html", href=related)
        for category in paper.categories:
            _sub(entry, "category", term=category)
        _sub(entry, "summary", _summary(paper), type="text")
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)


def rss(meta: FeedMeta, papers: Sequence[Paper], paper_url: dict[str, str], now: datetime | None = None) -> bytes:
    """An RSS 2.0 feed with an atom:link to itself (what the W3C validator asks for)."""
    root = ET.Element("rss", {"version": "2.0"})
    channel = _sub(root, "channel")
    _sub(channel, "title", meta.title)
    _sub(channel, "link", meta.page_url)
    _sub(channel, "description", meta.description)
    _sub(channel, "lastBuildDate", format_datetime(_updated(papers, now)))
    _sub(channel, "generator", "papersift")
    _sub(channel, f"{{{ATOM_NS}}}link", rel="self", type="application/rss+xml", href=meta.self_url)
    for paper in papers:
        item = _sub(channel, "item")
        url = paper_url[paper.id]
        _sub(item, "title", paper.title)
        _sub(item, "link", url)
        _sub(item, "guid", url, isPermaLink="true")
        _sub(item, "pubDate", format_datetime(paper_time(paper)))
        for name in paper.authors[:50]:
            _sub(item, f"{{{DC_NS}}}creator", name)
        for category in paper.categories:
            _sub(item, "category", category)
        _sub(item, "description", _summary(paper))
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
