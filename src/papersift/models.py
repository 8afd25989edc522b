"""Typed records that flow from sources through the store to search and the web."""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import orjson

# Fields that describe the paper itself; `content_hash` covers exactly these, so re-ingesting an
# identical record is detected as unchanged while bookkeeping (first_seen, rev) never counts as a change.
CONTENT_FIELDS: tuple[str, ...] = (
    "title",
    "abstract",
    "authors",
    "categories",
    "published",
    "updated",
    "announced",
    "featured",
    "version",
    "source",
    "source_id",
    "doi",
    "venue",
    "year",
    "comment",
    "abs_url",
    "pdf_url",
    "upvotes",
)


# Paper fields that live only while a record is being ingested: not columns of the store
TRANSIENT_FIELDS: tuple[str, ...] = ("origin",)


@dataclass(slots=True)
class Paper:
    """One paper's metadata, normalised. `id` is the dedup key (see `papersift.ids`)."""

    id: str
    title: str
    abstract: str = ""
    authors: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    published: date | None = None  # first version submitted / publication date
    updated: date | None = None  # date of the newest version we know
    announced: date | None = None  # date it appeared in a daily listing
    featured: date | None = None  # date it was featured on a community daily-papers page
    version: int | None = None  # arXiv version number, when known
    source: str = ""  # name of the source module that produced it
    source_id: str = ""  # the id the source itself uses (OpenReview id, arXiv id with version, ...)
    doi: str = ""
    venue: str = ""
    year: int | None = None
    comment: str = ""
    abs_url: str = ""
    pdf_url: str = ""
    upvotes: int = 0
    # code or project link read from abstract and comment (`papersift.code_links`): derived, so not in
    # CONTENT_FIELDS (the hash already covers what it comes from); set by validate and kept by merge
    code_url: str = ""
    # bookkeeping, set by the store
    first_seen: datetime | None = None
    rev: int = 0
    hidden: bool = False
    # where the record was read (file:line, URL#n), for ingest's messages; never stored or compared
    origin: str = field(default="", compare=False, repr=False)

    @property
    def primary_category(self) -> str:
        return self.categories[0] if self.categories else ""

    @property
    def arxiv_id(self) -> str:
        """The bare arXiv id when the paper is on arXiv, else ''."""
        from papersift.ids import is_arxiv_id

        return self.id if is_arxiv_id(self.id) else ""

    @property
    def date(self) -> date | None:
        """The date a reader would quote: announced, else published, else updated, else featured."""
        return self.announced or self.published or self.updated or self.featured

    def content_hash(self) -> str:
        payload = {name: getattr(self, name) for name in CONTENT_FIELDS}
        return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]

    def text_hash(self) -> str:
        """Hash of what is embedded: unchanged text is never embedded twice."""
        return hashlib.sha256(f"{self.title}\n{self.abstract}".encode()).hexdigest()[:32]

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        for name in TRANSIENT_FIELDS:
            del out[name]
        for key, value in out.items():
            if isinstance(value, (date, datetime)):
                out[key] = value.isoformat()
        return out


@dataclass(slots=True, frozen=True)
class Rejected:
    """A record a source could not turn into a Paper; ingest reports it and goes on."""

    origin: str  # file:line, or URL#record
    reason: str

    def __str__(self) -> str:
        return f"{self.origin}: {self.reason}"


@dataclass(slots=True)
class IngestReport:
    """What one ingest run changed; `changed` drives the CLI exit status."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    seconds: float = 0.0
    rejections: list[Rejected] = field(default_factory=list)
    # records stored with a field dropped or cut (an impossible date, a non-http link): origin + what
    amended: int = 0
    amendments: list[Rejected] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated)

    @property
    def total(self) -> int:
        return self.added + self.updated + self.unchanged + self.rejected

    def summary(self) -> str:
        rate = (self.total / self.seconds) if self.seconds > 0 else 0.0
        return (
            f"{self.added} added, {self.updated} updated, {self.unchanged} unchanged, "
            f"{self.rejected} rejected in {self.seconds:.1f}s ({rate:,.0f} records/s)"
        ) + (f"; {self.amended} stored with a field dropped" if self.amended else "")
