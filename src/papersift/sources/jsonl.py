"""Generic JSON lines (or a JSON array) with a field mapping: the format most listings come in,
e.g. arXiv daily listings or conference paper lists. Field aliases live in `mapping`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

import orjson

from papersift.errors import SourceError
from papersift.models import Rejected
from papersift.sources.base import MAX_RECORD_BYTES, ParsedRecord, Source, iter_lines
from papersift.sources.mapping import paper_from_mapping

# a whole-array file is parsed in memory; past this, ask for JSON lines
MAX_ARRAY_BYTES = 512 << 20


class JSONLinesSource(Source):
    name = "jsonl"
    description = "JSON lines or a JSON array of paper records; --map FIELD=KEY maps unusual keys"
    rank = 15

    @classmethod
    def sniff(cls, head: bytes, filename: str) -> bool:
        return head.lstrip()[:1] in (b"{", b"[")

    def parse(self, stream: BinaryIO, origin: str) -> Iterator[ParsedRecord]:
        peek = getattr(stream, "peek", None)
        head = peek(64) if peek else b""
        if head.lstrip()[:1] == b"[":
            yield from self._parse_array(stream, origin)
            return
        limit = int(self.options.get("max_record_bytes", MAX_RECORD_BYTES))
        for lineno, line in iter_lines(stream, origin, limit):
            if isinstance(line, Rejected):
                yield line
                continue
            yield self._record(line, f"{origin}:{lineno}")

    def _record(self, line: bytes, where: str) -> ParsedRecord:
        try:
            record: Any = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            return Rejected(where, f"invalid JSON: {exc}")
        if not isinstance(record, dict):
            return Rejected(where, f"expected a JSON object, got {type(record).__name__}")
        return paper_from_mapping(record, self.field_map, source=self.name, origin=where)

    def _parse_array(self, stream: BinaryIO, origin: str) -> Iterator[ParsedRecord]:
        data = stream.read(MAX_ARRAY_BYTES + 1)
        if len(data) > MAX_ARRAY_BYTES:
            raise SourceError(f"{origin}: JSON array over {MAX_ARRAY_BYTES >> 20} MB; convert it to JSON lines")
        try:
            records = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise SourceError(f"{origin}: not valid JSON ({exc})") from exc
        for index, record in enumerate(records):
            where = f"{origin}#{index}"
            if not isinstance(record, dict):
                yield Rejected(where, f"expected a JSON object, got {type(record).__name__}")
                continue
            yield paper_from_mapping(record, self.field_map, source=self.name, origin=where)
