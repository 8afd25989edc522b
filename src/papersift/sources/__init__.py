"""Source registry, format detection and transparent gzip: how `papersift ingest PATH_OR_URL` picks a reader."""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from papersift.errors import SourceError
from papersift.sources.arxiv_api import ArxivAPISource
from papersift.sources.arxiv_oai import ArxivOAISource
from papersift.sources.arxiv_snapshot import ArxivSnapshotSource
from papersift.sources.base import ParsedRecord, Source
from papersift.sources.bibtex import BibTeXSource
from papersift.sources.csvfile import CSVSource
from papersift.sources.hf_daily import HFDailySource
from papersift.sources.jsonl import JSONLinesSource

# Detection order matters: specific formats first, the generic JSON reader last.
SOURCES: dict[str, type[Source]] = {
    cls.name: cls
    for cls in (
        ArxivOAISource,
        ArxivAPISource,
        ArxivSnapshotSource,
        HFDailySource,
        BibTeXSource,
        CSVSource,
        JSONLinesSource,
    )
}

GZIP_MAGIC = b"\x1f\x8b"
HEAD_BYTES = 1 << 16
UTF8_BOM = b"\xef\xbb\xbf"

# Errors a damaged file raises while it is being read; they become one SourceError with the file name.
READ_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error, UnicodeDecodeError)


def source_names() -> list[str]:
    return list(SOURCES)


def make_source(name: str, options: Mapping[str, str] | None = None) -> Source:
    try:
        return SOURCES[name](options)
    except KeyError:
        raise SourceError(f"unknown source {name!r}; choose one of: {', '.join(SOURCES)}") from None


def is_url(target: str) -> bool:
    return target.startswith(("http://", "https://"))


@contextmanager
def open_input(path: Path) -> Iterator[BinaryIO]:
    """A buffered binary stream over `path`, gunzipped when the file is gzip (by magic, not name)."""
    try:
        raw = path.open("rb")
    except FileNotFoundError:
        raise SourceError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise SourceError(f"{path}: is a directory; ingest its files one by one") from None
    except OSError as exc:
        raise SourceError(f"{path}: cannot read ({exc.strerror})") from exc
    try:
        if raw.read(2) == GZIP_MAGIC:
            raw.seek(0)
            stream: BinaryIO = io.BufferedReader(gzip.GzipFile(fileobj=raw), HEAD_BYTES)
        else:
            raw.seek(0)
            stream = io.BufferedReader(raw, HEAD_BYTES)
        _skip_bom(stream)
        yield stream
    finally:
        raw.close()


def _skip_bom(stream: BinaryIO) -> None:
    """Drop a UTF-8 byte-order mark (Windows tools write one): no format needs it, and JSON is unreadable with it."""
    try:
        if stream.peek(len(UTF8_BOM))[: len(UTF8_BOM)] == UTF8_BOM:  # type: ignore[attr-defined]
            stream.read(len(UTF8_BOM))
    except READ_ERRORS:
        pass  # a damaged gzip: head_of reports it


def head_of(stream: BinaryIO, origin: str) -> bytes:
    try:
        return stream.peek(HEAD_BYTES)[:HEAD_BYTES]  # type: ignore[attr-defined]
    except READ_ERRORS as exc:
        raise SourceError(f"{origin}: damaged or truncated gzip file ({exc})") from exc


def detect(head: bytes, filename: str) -> type[Source]:
    """The source whose format the first bytes show; a clear error for anything else."""
    name = filename.removesuffix(".gz")
    for cls in SOURCES.values():
        if cls.sniff(head, name):
            return cls
    kind = "binary data" if b"\x00" in head[:1024] else "text in no format papersift knows"
    raise SourceError(
        f"{filename}: cannot tell the format ({kind}). Supported: JSON lines, JSON, CSV, BibTeX, "
        f"OAI-PMH XML, arXiv API Atom, gzip of any of these; or name it with --source "
        f"({', '.join(SOURCES)})"
    )


def endpoint_source(url: str, options: Mapping[str, str] | None) -> Source | None:
    """The source that speaks this endpoint's protocol (paging, tokens), or None for a plain file URL."""
    for cls in SOURCES.values():
        if cls.handles_url(url):
            return cls(options)
    return None


__all__ = [
    "READ_ERRORS",
    "SOURCES",
    "ParsedRecord",
    "Source",
    "detect",
    "endpoint_source",
    "head_of",
    "is_url",
    "make_source",
    "open_input",
    "source_names",
]
