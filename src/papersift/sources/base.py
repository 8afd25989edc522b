"""The one small interface every source implements, plus the bounded line reader they share.

A source turns bytes (a file or a network response) into `Paper` records, or `Rejected` entries for
records it cannot use. It never touches the store: ingest does that.
"""

from __future__ import annotations

import email.utils
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from datetime import date
from typing import Any, BinaryIO, ClassVar

import orjson

from papersift.errors import SourceError
from papersift.models import Paper, Rejected

ParsedRecord = Paper | Rejected

# a whole-array JSON file is parsed in memory; past this, ask for JSON lines
MAX_ARRAY_BYTES = 512 << 20
# A single record above this size is rejected without being held in memory; real paper metadata
# records are a few KB, the largest arXiv abstracts ~3 KB.
MAX_RECORD_BYTES = 1 << 20


class Source(ABC):
    """A format or endpoint that yields papers. Subclasses set `name` and implement `parse`."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    # merge priority when two records of the same paper carry the same version: higher wins
    rank: ClassVar[int] = 0

    def __init__(self, options: Mapping[str, str] | None = None) -> None:
        self.options: dict[str, str] = dict(options or {})

    @property
    def field_map(self) -> dict[str, str]:
        """User field mapping (`--map title=Paper_Title`), passed as options `map.<field>`."""
        return {k.removeprefix("map."): v for k, v in self.options.items() if k.startswith("map.")}

    @classmethod
    def sniff(cls, head: bytes, filename: str) -> bool:
        """True when the first bytes (already gunzipped) look like this format."""
        return False

    @classmethod
    def handles_url(cls, url: str) -> bool:
        """True when `fetch(url)` knows this endpoint."""
        return False

    @abstractmethod
    def parse(self, stream: BinaryIO, origin: str) -> Iterator[ParsedRecord]:
        """Yield a Paper or a Rejected for every record in `stream`; `origin` names it in messages."""

    def fetch(self, url: str) -> Iterator[ParsedRecord]:
        """Yield the records behind a network endpoint (paging handled inside)."""
        raise SourceError(f"source {self.name!r} cannot fetch URLs; download the file and ingest it")


def iter_lines(stream: BinaryIO, origin: str, limit: int = MAX_RECORD_BYTES) -> Iterator[tuple[int, bytes | Rejected]]:
    """Yield (line number, line) with lines over `limit` bytes turned into Rejected without buffering them."""
    lineno = 0
    while True:
        line = stream.readline(limit + 1)
        if not line:
            return
        lineno += 1
        if len(line) > limit and not line.endswith(b"\n"):
            size = len(line)
            while True:  # skip the rest of the oversized line in bounded chunks
                chunk = stream.readline(1 << 20)
                size += len(chunk)
                if not chunk or chunk.endswith(b"\n"):
                    break
            yield (
                lineno,
                Rejected(
                    f"{origin}:{lineno}",
                    f"record is {size / 1e6:.1f} MB, over the {limit // 1024} KB limit for one record",
                ),
            )
            continue
        if line.strip():
            yield lineno, line


def iter_json_lines(
    stream: BinaryIO, origin: str, limit: int = MAX_RECORD_BYTES
) -> Iterator[tuple[str, dict[str, Any]] | Rejected]:
    """(origin:line, object) for each JSON-lines record; invalid or non-object lines become Rejected."""
    for lineno, line in iter_lines(stream, origin, limit):
        if isinstance(line, Rejected):
            yield line
            continue
        where = f"{origin}:{lineno}"
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield Rejected(where, f"invalid JSON: {exc}")
            continue
        if not isinstance(record, dict):
            yield Rejected(where, f"expected a JSON object, got {type(record).__name__}")
            continue
        yield where, record


def read_json_array_bytes(stream: BinaryIO, origin: str) -> bytes:
    """The whole body of a JSON-array file, refused past MAX_ARRAY_BYTES rather than exhausting memory."""
    data = stream.read(MAX_ARRAY_BYTES + 1)
    if len(data) > MAX_ARRAY_BYTES:
        raise SourceError(f"{origin}: JSON array over {MAX_ARRAY_BYTES >> 20} MB; convert it to JSON lines")
    return data


def rfc2822_date(value: str) -> date | None:
    """The date of an RFC 2822 timestamp ("Mon, 2 Apr 2007 19:18:42 GMT"), None when unreadable; a year or
    offset too large for datetime (OverflowError, not ValueError) is unreadable too."""
    try:
        return email.utils.parsedate_to_datetime(value.strip()).date()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
