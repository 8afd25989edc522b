"""CSV/TSV exports (spreadsheets, reference managers, dataset dumps) mapped to papers by header aliases.

The reader is fed bounded, decoded physical lines, so a damaged row (bad bytes, a runaway field) becomes one
Rejected with its line number instead of an exception or an unbounded buffer.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any, BinaryIO

from papersift.errors import SourceError
from papersift.models import Rejected
from papersift.sources.base import MAX_RECORD_BYTES, ParsedRecord, Source
from papersift.sources.mapping import FieldPlan, compile_mapping, paper_from_mapping

_DELIMITERS = (",", "\t", ";", "|")
_NAMED_DELIMITERS = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}


class _TooBig(Exception):
    def __init__(self, lineno: int, size: int) -> None:
        super().__init__(f"line {lineno}")
        self.lineno = lineno
        self.size = size


class _Lines:
    """Decoded physical lines for csv.reader: each bounded, the BOM dropped, undecodable bytes noted per line.

    `csv.reader` resets its state on every `next()`, so raising `_TooBig` from here rejects one row and
    the reader carries on with the next line.
    """

    def __init__(self, stream: BinaryIO, encoding: str, limit: int) -> None:
        self.stream = stream
        self.encoding = encoding
        self.limit = limit
        self.lineno = 0
        self.record_bytes = 0  # bytes of the row being read; the caller resets it per row
        self.bad: dict[int, str] = {}  # line number -> why it did not decode
        self._pushed: str | None = None

    def first_line(self) -> str | None:
        """Read line 1 ahead (to choose the delimiter); `__next__` returns it again."""
        self._pushed = next(self, None)
        if self._pushed is not None:
            self.lineno -= 1
        return self._pushed

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self._pushed is not None:
            text, self._pushed = self._pushed, None
            self.lineno += 1
            self.record_bytes += len(text)
            return text
        line = self.stream.readline(self.limit + 1)
        if not line:
            raise StopIteration
        self.lineno += 1
        size = len(line)
        if size > self.limit and not line.endswith(b"\n"):
            while chunk := self.stream.readline(1 << 20):  # skip the rest in bounded chunks
                size += len(chunk)
                if chunk.endswith(b"\n"):
                    break
            raise _TooBig(self.lineno, size)
        self.record_bytes += size
        if self.record_bytes > self.limit:
            raise _TooBig(self.lineno, self.record_bytes)
        nul = line.find(b"\x00")
        if nul >= 0:  # binary data, and PostgreSQL text cannot hold NUL
            self.bad.setdefault(self.lineno, f"NUL byte at column {nul + 1}")
        try:
            text = line.decode(self.encoding)
        except UnicodeDecodeError as exc:
            self.bad.setdefault(self.lineno, f"byte 0x{line[exc.start]:02x} at column {exc.start + 1}")
            text = line.decode(self.encoding, errors="replace")
        if self.lineno == 1 and text.startswith("\ufeff"):
            text = text[1:]
        return text


def choose_delimiter(header: str, filename: str, option: str | None) -> str:
    """The option, else tab for .tsv, else whichever candidate the header line uses most."""
    if option:
        return _NAMED_DELIMITERS.get(option.lower(), option)
    if filename.lower().removesuffix(".gz").endswith(".tsv"):
        return "\t"
    counts = [(header.count(d), -i, d) for i, d in enumerate(_DELIMITERS)]
    best = max(counts)
    return best[2] if best[0] else ","


def _looks_like_header(line: str) -> bool:
    if not line.strip() or line.lstrip()[:1] in ("{", "[", "<", "@") or "\x00" in line:
        return False
    delimiter = choose_delimiter(line, "", None)
    try:
        cells = next(csv.reader([line], delimiter=delimiter), [])
    except csv.Error:  # e.g. a bare CR: whatever this is, it is not a header we can read
        return False
    fields = compile_mapping(None).fields_for([c.strip() for c in cells])
    return len(cells) > 1 and "title" in fields


class CSVSource(Source):
    name = "csv"
    description = "CSV or TSV with a header row; columns found by common names, or --map FIELD=COLUMN"
    rank = 0

    @classmethod
    def sniff(cls, head: bytes, filename: str) -> bool:
        if filename.lower().removesuffix(".gz").endswith((".csv", ".tsv")):
            return True
        first = head.split(b"\n", 1)[0].decode("utf-8-sig", errors="replace")
        return _looks_like_header(first)

    @property
    def mapping(self) -> dict[str, str]:
        return self.field_map

    def parse(self, stream: BinaryIO, origin: str) -> Iterator[ParsedRecord]:
        limit = int(self.options.get("max_record_bytes", MAX_RECORD_BYTES))
        encoding = self.options.get("encoding", "utf-8")
        try:
            "".encode(encoding)
        except LookupError:
            raise SourceError(f"unknown encoding {encoding!r} for {origin}") from None
        lines = _Lines(stream, encoding, limit)
        try:
            first = lines.first_line()
        except _TooBig as exc:
            raise SourceError(f"{origin}:1: the header line is {exc.size / 1e6:.1f} MB; this is not a CSV") from None
        if first is None:
            return
        delimiter = choose_delimiter(first, origin, self.options.get("delimiter"))
        reader = csv.reader(lines, delimiter=delimiter, quotechar='"', doublequote=True, skipinitialspace=True)
        plan = compile_mapping(self.mapping)
        columns: list[tuple[int, str]] | None = None
        while True:
            start = lines.lineno + 1
            lines.record_bytes = 0
            try:
                row = next(reader)
            except StopIteration:
                return
            except (_TooBig, csv.Error) as exc:
                lines.bad.clear()  # the row is reported whole; its lines' decoding errors go with it
                if columns is None:
                    raise SourceError(
                        f"{origin}:{start}: cannot read the header row ({exc}); is it a CSV with LF or CRLF line ends?"
                    ) from exc
                yield self._oversize(exc, start, lines.lineno, origin)
                continue
            if lines.bad:
                bad = [f"line {n}: {why}" for n, why in sorted(lines.bad.items())]
                lines.bad.clear()
                if columns is None:
                    raise SourceError(f"{origin}: the header is not valid {encoding} ({bad[0]})")
                yield Rejected(
                    f"{origin}:{start}",
                    f"not valid {encoding} text ({'; '.join(bad[:3])}); if the file uses another encoding, "
                    "pass the option encoding=NAME (e.g. cp1252)",
                )
                continue
            if not row or not any(cell.strip() for cell in row):
                continue
            if columns is None:
                columns = self._header(row, plan, origin)
                continue
            yield self._record(row, columns, plan, f"{origin}:{start}")

    def _oversize(self, exc: Exception, start: int, lineno: int, origin: str) -> Rejected:
        """A runaway row: rejected when it was one line (the reader is still in step), fatal when it spanned
        several (an unbalanced quote, after which every later row would be misread)."""
        if lineno > start:
            raise SourceError(
                f"{origin}:{start}: a quoted field runs on for lines {start}-{lineno} and past the "
                f"{self._limit_text()} limit; the file probably has an unbalanced quote there"
            ) from exc
        if isinstance(exc, _TooBig):
            reason = f"row is {exc.size / 1e6:.1f} MB, over the {self._limit_text()} limit for one record"
        elif "field limit" in str(exc):
            reason = f"a field is over the {csv.field_size_limit() // 1024} KB limit for one CSV field"
        else:
            reason = f"cannot read the row as CSV ({exc})"
        return Rejected(f"{origin}:{start}", reason)

    def _limit_text(self) -> str:
        limit = int(self.options.get("max_record_bytes", MAX_RECORD_BYTES))
        return f"{limit // 1024} KB"

    def _header(self, row: list[str], plan: FieldPlan, origin: str) -> list[tuple[int, str]]:
        names = [cell.strip() for cell in row]
        missing = [key for key in plan.explicit if key not in names]
        if missing:
            raise SourceError(f"{origin}: no column {missing[0]!r} in the header (columns: {', '.join(names)})")
        if "title" not in plan.fields_for(names):
            raise SourceError(
                f"{origin}: no title column in the header (columns: {', '.join(names)}); "
                "name it with --map title=COLUMN"
            )
        seen: set[str] = set()
        columns = []
        for index, name in enumerate(names):
            if name and name not in seen:  # the first of two same-named columns wins
                seen.add(name)
                columns.append((index, name))
        return columns

    def _record(self, row: list[str], columns: list[tuple[int, str]], plan: FieldPlan, where: str) -> ParsedRecord:
        width = len(row)
        if width > columns[-1][0] + 1 and any(cell.strip() for cell in row[columns[-1][0] + 1 :]):
            return Rejected(where, f"row has {width} fields but the header has {columns[-1][0] + 1}")
        record: dict[str, Any] = {name: row[index] for index, name in columns if index < width}
        return paper_from_mapping(record, plan, source=self.name, origin=where)
