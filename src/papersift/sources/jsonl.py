"""Generic JSON lines (or a JSON array) with a field mapping: the format most listings come in,
e.g. arXiv daily listings or conference paper lists. Field aliases live in `mapping`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

import orjson

from papersift.errors import SourceError
from papersift.models import Rejected
from papersift.sources.base import (
    MAX_RECORD_BYTES,
    ParsedRecord,
    Source,
    iter_json_lines,
    read_json_array_bytes,
)
from papersift.sources.mapping import paper_from_mapping


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
        for item in iter_json_lines(stream, origin, limit):
            if isinstance(item, Rejected):
                yield item
            else:
                yield paper_from_mapping(item[1], self.field_map, source=self.name, origin=item[0])

    def _parse_array(self, stream: BinaryIO, origin: str) -> Iterator[ParsedRecord]:
        try:
            records = orjson.loads(read_json_array_bytes(stream, origin))
        except orjson.JSONDecodeError as exc:
            raise SourceError(f"{origin}: not valid JSON ({exc})") from exc
        for index, record in enumerate(records):
            where = f"{origin}#{index}"
            if not isinstance(record, dict):
                yield Rejected(where, f"expected a JSON object, got {type(record).__name__}")
                continue
            yield paper_from_mapping(record, self.field_map, source=self.name, origin=where)
