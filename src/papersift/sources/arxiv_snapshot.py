"""The arXiv bulk metadata snapshot: one JSON object per line, the format of the public Kaggle dump
(`arxiv-metadata-oai-snapshot.json`, ~2.9M lines). Streaming, so memory stays flat on the full file."""

from __future__ import annotations

import email.utils
from collections.abc import Iterator
from datetime import date
from typing import Any, BinaryIO

from papersift.ids import parse_arxiv_id
from papersift.models import Paper, Rejected
from papersift.sources.base import MAX_RECORD_BYTES, ParsedRecord, Source, iter_json_lines


def _rfc2822_date(value: str) -> date | None:
    try:
        return email.utils.parsedate_to_datetime(value).date()
    except (TypeError, ValueError, IndexError):
        return None


def _authors(record: dict[str, Any]) -> list[str]:
    parsed = record.get("authors_parsed")
    if isinstance(parsed, list) and parsed:
        names = []
        for entry in parsed:
            if isinstance(entry, list) and entry:
                last, first = str(entry[0]).strip(), str(entry[1]).strip() if len(entry) > 1 else ""
                suffix = str(entry[2]).strip() if len(entry) > 2 else ""
                names.append(" ".join(part for part in (first, last, suffix) if part))
        return names
    raw = record.get("authors") or ""
    return [a.strip() for a in str(raw).replace(" and ", ", ").split(",") if a.strip()]


def _collapse(value: Any) -> str:
    return " ".join(str(value or "").split())


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
        parsed = parse_arxiv_id(str(record.get("id") or ""))
        if parsed is None:
            return Rejected(where, f"no valid arXiv id (got {str(record.get('id'))[:40]!r})")
        arxiv_id = parsed[0]
        title = _collapse(record.get("title"))
        if not title:
            return Rejected(where, f"{arxiv_id}: record has no title")
        raw_versions = record.get("versions")
        versions: list[Any] = raw_versions if isinstance(raw_versions, list) else []
        dates = [_rfc2822_date(str(v.get("created", ""))) for v in versions if isinstance(v, dict)]
        created = [d for d in dates if d]
        update_date = None
        if record.get("update_date"):
            try:
                update_date = date.fromisoformat(str(record["update_date"]))
            except ValueError:
                return Rejected(where, f"{arxiv_id}: bad update_date {record['update_date']!r}")
        version = len(versions) or None
        return Paper(
            id=arxiv_id,
            title=title,
            abstract=_collapse(record.get("abstract")),
            authors=_authors(record),
            categories=str(record.get("categories") or "").split(),
            published=created[0] if created else None,
            updated=created[-1] if created else update_date,
            version=version,
            source=self.name,
            source_id=f"{arxiv_id}v{version}" if version else arxiv_id,
            doi=str(record.get("doi") or "").strip(),
            venue=_collapse(record.get("journal-ref")),
            comment=_collapse(record.get("comments")),
            abs_url=f"https://arxiv.org/abs/{arxiv_id}",
            pdf_url=f"https://arxiv.org/pdf/{arxiv_id}",
        )
