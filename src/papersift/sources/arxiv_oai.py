"""arXiv's OAI-PMH interface: the supported way to harvest new and changed metadata incrementally by date.

Reads ListRecords/GetRecord responses in the `arXiv` and `arXivRaw` metadata formats, from a saved
file or straight from the endpoint (following resumption tokens). Parsing streams, with defusedxml
refusing any DTD or entity declaration, so a hostile or huge response can neither bomb nor balloon.
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Generator, Iterator, Mapping
from datetime import date
from typing import BinaryIO
from urllib.parse import urlencode, urlsplit, urlunsplit

import defusedxml.ElementTree as DefusedET
from defusedxml import DefusedXmlException

from papersift.errors import SourceError
from papersift.ids import parse_arxiv_id
from papersift.models import Paper, Rejected
from papersift.sources import http
from papersift.sources.base import ParsedRecord, Source, rfc2822_date

OAI = "{http://www.openarchives.org/OAI/2.0/}"
ARXIV = "{http://arxiv.org/OAI/arXiv/}"
ARXIV_RAW = "{http://arxiv.org/OAI/arXivRaw/}"
HARVEST_BASE = "https://oaipmh.arxiv.org/oai"
_CONTAINERS = (f"{OAI}ListRecords", f"{OAI}GetRecord")
_AFFILIATION_RE = re.compile(r"\([^()]*\)")
_AUTHOR_SEP_RE = re.compile(r"\s*,\s*(?:and\s+)?|\s+and\s+")


def iter_xml(
    stream: BinaryIO, origin: str, events: tuple[str, ...] = ("start", "end")
) -> Iterator[tuple[str, ET.Element]]:
    """Stream (event, element) pairs; DTDs/entities and broken XML become SourceErrors that say what happened."""
    try:
        yield from DefusedET.iterparse(stream, events=events, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise SourceError(
            f"{origin}: XML refused because it declares entities or a DTD (possible XML bomb); "
            "papersift never expands them. Real arXiv responses have none: re-download the file"
        ) from exc
    except ET.ParseError as exc:
        raise SourceError(
            f"{origin}: the XML is truncated or malformed ({exc}); the records before that point were read, "
            "re-download the file for the rest"
        ) from exc
    except LookupError as exc:  # <?xml encoding="..."?> naming a codec Python does not have
        raise SourceError(f"{origin}: the XML declares an encoding that cannot be read ({exc})") from exc


def collapse(value: str | None) -> str:
    """Single-space a text field: arXiv titles and abstracts are hard-wrapped with newlines and indents."""
    return " ".join((value or "").split())


def first_doi(value: str | None) -> str:
    """arXiv's doi field may hold several DOIs separated by spaces; the first one is the paper's."""
    parts = (value or "").split()
    return parts[0] if parts else ""


def split_authors(raw: str) -> list[str]:
    """Split an arXivRaw authors string ("A. Smith (MIT), B. Jones and C. Li") into names, dropping affiliations."""
    text = collapse(raw)
    previous = None
    while previous != text:  # nested parentheses come off from the inside out
        previous, text = text, _AFFILIATION_RE.sub("", text)
    return [" ".join(name.split()) for name in _AUTHOR_SEP_RE.split(text) if name.strip()]


def harvest_url(
    base: str = HARVEST_BASE,
    *,
    metadata_prefix: str = "arXiv",
    set_: str | None = "cs",
    from_: date | None = None,
    until: date | None = None,
) -> str:
    """The ListRecords URL for records added or changed between `from_` and `until` (inclusive): incremental harvest."""
    params = {"verb": "ListRecords", "metadataPrefix": metadata_prefix}
    if set_:
        params["set"] = set_
    if from_:
        params["from"] = from_.isoformat()
    if until:
        params["until"] = until.isoformat()
    return f"{base}?{urlencode(params, safe=':')}"


def _text(parent: ET.Element, tag: str) -> str:
    child = parent.find(tag)
    return (child.text or "") if child is not None else ""


def _iso_date(value: str, what: str) -> date | None:
    value = value.strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        raise ValueError(f"bad {what} date {value[:40]!r}") from None


def float_option(options: Mapping[str, str], key: str, default: float) -> float:
    try:
        return max(0.0, float(options.get(key, default)))
    except ValueError:
        raise SourceError(f"option {key}={options[key]!r} is not a number of seconds") from None


class ArxivOAISource(Source):
    name = "arxiv-oai"
    description = "arXiv OAI-PMH responses (arXiv or arXivRaw metadata), saved or harvested from the endpoint"
    rank = 30

    @classmethod
    def sniff(cls, head: bytes, filename: str) -> bool:
        return b"<OAI-PMH" in head

    @classmethod
    def handles_url(cls, url: str) -> bool:
        return "/oai2" in url or "verb=ListRecords" in url or "verb=GetRecord" in url

    def parse(self, stream: BinaryIO, origin: str) -> Iterator[ParsedRecord]:
        yield from self._records(stream, origin)

    def fetch(self, url: str) -> Iterator[ParsedRecord]:
        """Harvest every page behind `url`; each next page is requested by resumption token alone, per OAI-PMH."""
        parts = urlsplit(url)
        base = urlunsplit(parts._replace(query="", fragment=""))
        politeness = http.Politeness(float_option(self.options, "delay", 3.0))
        retry = http.RetryPolicy.from_options(self.options)
        page_url, seen = url, set()
        while True:
            body = http.get(page_url, politeness=politeness, retry=retry)
            token = yield from self._records(io.BytesIO(body), page_url)
            if not token:
                return
            if token in seen:
                raise SourceError(
                    f"{page_url}: the server repeated resumption token {token!r}; stopping to avoid a loop"
                )
            seen.add(token)
            page_url = f"{base}?{urlencode({'verb': 'ListRecords', 'resumptionToken': token})}"

    def _records(self, stream: BinaryIO, origin: str) -> Generator[ParsedRecord, None, str]:
        """Yield the records of one response and return its resumption token ('' on the last page)."""
        token = ""
        count = 0
        open_elements: list[ET.Element] = []  # the path from the root to the element being read
        for event, elem in iter_xml(stream, origin):
            if event == "start":
                if not open_elements and elem.tag != f"{OAI}OAI-PMH":
                    raise SourceError(f"{origin}: not an OAI-PMH response (root element {elem.tag!r})")
                open_elements.append(elem)
                continue
            open_elements.pop()
            parent = open_elements[-1] if open_elements else None
            if elem.tag == f"{OAI}record":
                count += 1
                where = f"{origin}#{count}"
                if parent is None or parent.tag not in _CONTAINERS:
                    yield Rejected(where, "a record outside ListRecords/GetRecord is not valid OAI-PMH; skipped")
                elif (record := self._record(elem, where)) is not None:
                    yield record
                if parent is not None:
                    parent.remove(elem)  # keep memory flat across a 10,000-record page
            elif elem.tag == f"{OAI}resumptionToken":
                token = (elem.text or "").strip()
            elif elem.tag == f"{OAI}error":
                code = elem.get("code", "")
                if code != "noRecordsMatch":
                    message = collapse(elem.text) or "no message"
                    hint = " (the harvest expired; start it again)" if code == "badResumptionToken" else ""
                    raise SourceError(f"{origin}: the OAI-PMH server answered error {code!r}: {message}{hint}")
        return token

    def _record(self, record: ET.Element, where: str) -> ParsedRecord | None:
        header = record.find(f"{OAI}header")
        if header is not None and header.get("status") == "deleted":
            return None
        metadata = record.find(f"{OAI}metadata")
        meta = metadata[0] if metadata is not None and len(metadata) else None
        if meta is None:
            return Rejected(where, "record has no metadata")
        if meta.tag not in (f"{ARXIV}arXiv", f"{ARXIV_RAW}arXivRaw"):
            raise SourceError(
                f"{where}: metadata format {meta.tag!r} is not supported; harvest with metadataPrefix=arXiv or arXivRaw"
            )
        ns = ARXIV if meta.tag == f"{ARXIV}arXiv" else ARXIV_RAW
        raw_id = _text(meta, f"{ns}id") or (_text(header, f"{OAI}identifier") if header is not None else "")
        parsed = parse_arxiv_id(raw_id)
        if parsed is None:
            return Rejected(where, f"no valid arXiv id (got {raw_id.strip()[:40]!r})")
        arxiv_id = parsed[0]
        title = collapse(_text(meta, f"{ns}title"))
        if not title:
            return Rejected(where, f"{arxiv_id}: record has no title")
        version: int | None = None
        try:
            if ns == ARXIV:
                authors = self._structured_authors(meta)
                published = _iso_date(_text(meta, f"{ARXIV}created"), "created")
                updated = _iso_date(_text(meta, f"{ARXIV}updated"), "updated") or published
            else:
                authors = split_authors(_text(meta, f"{ARXIV_RAW}authors"))
                version, published, updated = self._versions(meta)
        except ValueError as exc:
            return Rejected(where, f"{arxiv_id}: {exc}")
        return Paper(
            id=arxiv_id,
            title=title,
            abstract=collapse(_text(meta, f"{ns}abstract")),
            authors=authors,
            categories=_text(meta, f"{ns}categories").split(),
            published=published,
            updated=updated,
            version=version,
            source=self.name,
            source_id=f"{arxiv_id}v{version}" if version else arxiv_id,
            doi=first_doi(_text(meta, f"{ns}doi")),
            venue=collapse(_text(meta, f"{ns}journal-ref")),
            comment=collapse(_text(meta, f"{ns}comments")),
            abs_url=f"https://arxiv.org/abs/{arxiv_id}",
            pdf_url=f"https://arxiv.org/pdf/{arxiv_id}",
        )

    @staticmethod
    def _structured_authors(meta: ET.Element) -> list[str]:
        names = []
        for author in meta.iterfind(f"{ARXIV}authors/{ARXIV}author"):
            parts = (_text(author, f"{ARXIV}{part}") for part in ("forenames", "keyname", "suffix"))
            name = " ".join(collapse(part) for part in parts if part.strip())
            if name:
                names.append(name)
        return names

    @staticmethod
    def _versions(meta: ET.Element) -> tuple[int | None, date | None, date | None]:
        """(highest version, v1 date, newest version's date) from arXivRaw's <version version="vN"> list."""
        versions: list[tuple[int, date | None]] = []
        for elem in meta.iterfind(f"{ARXIV_RAW}version"):
            label = elem.get("version", "").strip().lstrip("vV")
            if not label.isdigit():
                raise ValueError(f"bad version label {elem.get('version')!r}")
            versions.append((int(label), rfc2822_date(_text(elem, f"{ARXIV_RAW}date"))))
        if not versions:
            return None, None, None
        versions.sort(key=lambda item: item[0])
        return versions[-1][0], versions[0][1], versions[-1][1]
