"""The arXiv bulk metadata snapshot: one JSON object per line, the format of the public Kaggle dump
(`arxiv-metadata-oai-snapshot.json`, ~2.9M lines). Streaming, so memory stays flat on the full file."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any, BinaryIO

from papersift.ids import parse_arxiv_id
from papersift.models import Paper, Rejected
from papersift.sources.arxiv_oai import first_doi, split_authors
from papersift.sources.base import MAX_RECORD_BYTES, ParsedRecord, Source, iter_json_lines, rfc2822_date

# keys the dump always writes as a string or null; anything else is a damaged record, not text to str()
_TEXT_KEYS = ("title", "abstract", "authors", "comments", "journal-ref", "doi", "categories", "update_date")


class _Bad(ValueError):
    """The record is unusable; the message becomes the Rejected reason."""


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _authors(record: dict[str, Any]) -> list[str]:
    """Names from authors_parsed ([last, first, suffix] lists), else from the plain authors string."""
    parsed = record.get("authors_parsed")
    if parsed is not None and not isinstance(parsed, list):
        raise _Bad(f"authors_parsed is a {_kind(parsed)}, expected a list of [last, first, suffix]")
    if parsed:
        names = []
        for entry in parsed:
            if not isinstance(entry, list) or not all(isinstance(part, str) for part in entry):
                raise _Bad(f"authors_parsed holds {str(entry)[:40]!r}, expected [last, first, suffix] as text")
            last, first, suffix = [*entry, "", "", ""][:3]
            name = " ".join(" ".join(part.split()) for part in (first, last, suffix) if part.strip())
            if name:
                names.append(name)
        return names
    return split_authors(record.get("authors") or "")  # arXiv's own authors string, as in arXivRaw


def _versions(record: dict[str, Any]) -> list[date | None]:
    """The creation date of each version, oldest first (None where unreadable)."""
    versions = record.get("versions")
    if versions is None:
        return []
    if not isinstance(versions, list) or not all(isinstance(v, dict) for v in versions):
        raise _Bad(f"versions is {str(versions)[:40]!r}, expected a list of {{version, created}}")
    return [rfc2822_date(v["created"]) if isinstance(v.get("created"), str) else None for v in versions]


def _collapse(value: str | None) -> str:
    return " ".join((value or "").split())


class ArxivSnapshotSource(Source):
    name = "arxiv-snapshot"
    description = "arXiv bulk metadata snapshot (JSON lines, as the public Kaggle dump)"
    rank = 25

    @classmethod
    def sniff(cls, head: bytes, filename: str) -> bool:
        first = head.lstrip()[:4096]
        return (
            first.startswith(b"{")
            and b'"versions"' in first
            and (b'"authors_parsed"' in first or b'"submitter"' in first)
        )

    def parse(self, stream: BinaryIO, origin: str) -> Iterator[ParsedRecord]:
        limit = int(self.options.get("max_record_bytes", MAX_RECORD_BYTES))
        for item in iter_json_lines(stream, origin, limit):
            yield item if isinstance(item, Rejected) else self.to_paper(item[1], item[0])

    def to_paper(self, record: dict[str, Any], where: str) -> ParsedRecord:
        raw_id = record.get("id")
        parsed = parse_arxiv_id(raw_id) if isinstance(raw_id, str) else None
        if parsed is None:
            return Rejected(where, f"no valid arXiv id (got {str(raw_id)[:40]!r})")
        arxiv_id = parsed[0]
        try:
            return self._paper(record, arxiv_id, where)
        except _Bad as exc:
            return Rejected(where, f"{arxiv_id}: {exc}")

    def _paper(self, record: dict[str, Any], arxiv_id: str, where: str) -> ParsedRecord:
        for key in _TEXT_KEYS:
            if record.get(key) is not None and not isinstance(record[key], str):
                raise _Bad(f"{key} is a {_kind(record[key])}, expected text")
        title = _collapse(record.get("title"))
        if not title:
            return Rejected(where, f"{arxiv_id}: record has no title")
        created = [d for d in _versions(record) if d]
        update_date = None
        if record.get("update_date"):
            try:
                update_date = date.fromisoformat(record["update_date"])
            except ValueError:
                raise _Bad(f"bad update_date {record['update_date'][:40]!r}") from None
        version = len(record.get("versions") or ()) or None
        return Paper(
            id=arxiv_id,
            title=title,
            abstract=_collapse(record.get("abstract")),
            authors=_authors(record),
            categories=(record.get("categories") or "").split(),
            published=created[0] if created else None,
            updated=created[-1] if created else update_date,
            version=version,
            source=self.name,
            source_id=f"{arxiv_id}v{version}" if version else arxiv_id,
            doi=first_doi(record.get("doi")),
            venue=_collapse(record.get("journal-ref")),
            comment=_collapse(record.get("comments")),
            abs_url=f"https://arxiv.org/abs/{arxiv_id}",
            pdf_url=f"https://arxiv.org/pdf/{arxiv_id}",
            origin=where,
        )
