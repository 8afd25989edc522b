"""The parser contract the property tests check, and the Hypothesis strategies they share.

Contract (issue 10): any input either becomes valid Papers and reported rejections, or stops with a
`SourceError` that says what is wrong with the file; no other exception ever escapes a parser.
"""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, date, datetime
from email.utils import format_datetime
from typing import Any

from hypothesis import event
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from papersift.errors import SourceError
from papersift.ids import is_arxiv_id
from papersift.models import Paper, Rejected
from papersift.sources.base import ParsedRecord, Source
from papersift.sources.mapping import _NULLS as NULL_WORDS
from papersift.sources.mapping import ALIASES

_TEXT_FIELDS = ("abstract", "source", "source_id", "doi", "venue", "comment", "abs_url", "pdf_url")
_DATE_FIELDS = ("published", "updated", "announced", "featured")


def check_record(record: object, origin: str, source: str) -> None:
    """One parsed record honours the contract: a well-typed Paper or a Rejected that says where and why."""
    if isinstance(record, Rejected):
        assert re.fullmatch(re.escape(origin) + r"[:#]\d+", record.origin), record
        assert isinstance(record.reason, str) and record.reason.strip(), record
        return
    assert isinstance(record, Paper), f"parser yielded a {type(record).__name__}"
    assert isinstance(record.id, str) and record.id.strip(), record
    assert is_arxiv_id(record.id) or record.id.startswith(("doi:", "t:")), record.id
    # one paper, one key: '٢٠٢٠.١٢٣٤٥' or '10.١٢٣٤/x' (digits of another script) would be another paper's key
    assert not is_arxiv_id(record.id) or record.id.isascii(), record.id
    assert not record.id.startswith("doi:") or re.match(r"doi:10\.[0-9]{4,9}/", record.id), record.id
    assert isinstance(record.title, str) and record.title.strip(), record
    assert record.title == " ".join(record.title.split()), f"title not single-spaced: {record.title!r}"
    for name in ("authors", "categories"):
        values = getattr(record, name)
        assert isinstance(values, list), f"{name} is a {type(values).__name__}"
        assert all(isinstance(v, str) and v == " ".join(v.split()) and v for v in values), f"{name}: {values!r}"
    for name in _DATE_FIELDS:
        value = getattr(record, name)
        assert value is None or type(value) is date, f"{name} = {value!r}"
    for name in _TEXT_FIELDS:
        assert isinstance(getattr(record, name), str), f"{name} = {getattr(record, name)!r}"
    for name in ("version", "year"):
        value = getattr(record, name)
        assert value is None or (type(value) is int and value >= 0), f"{name} = {value!r}"
    assert type(record.upvotes) is int and record.upvotes >= 0, record.upvotes
    assert record.source == source


def run_parse(source: Source, data: bytes, origin: str = "input.dat") -> list[ParsedRecord]:
    """Parse `data` as ingest would (a buffered stream), checking every record; a SourceError must say why."""
    stream = io.BufferedReader(io.BytesIO(data), 1 << 16)
    records: list[ParsedRecord] = []
    try:
        for record in source.parse(stream, origin):
            check_record(record, origin, source.name)
            records.append(record)
    except SourceError as exc:
        assert str(exc).strip()
        outcome = "SourceError"
    else:
        papers = any(isinstance(r, Paper) for r in records)
        outcome = "papers" if papers else "rejections only" if records else "nothing"
    if currently_in_test_context():
        event(f"outcome: {outcome}")  # --hypothesis-show-statistics: how much input reaches each path
    return records


# --- values ----------------------------------------------------------------------------------------

ODD_TEXT = [
    "",
    " ",
    "\t\n",
    "null",
    "N/A",
    "nan",
    "-",
    "²",
    "1²",
    "٣",
    "v²",
    "1e400",
    "-1",
    "0",
    "3.5",
    "[",
    "[]",
    "[[1]]",
    "['A', 'B']",
    '["Ada Lovelace", {"name": 1}]',
    "[{'name': 'A'}]",
    "[" * 300 + "]" * 300,
    "\x00",
    "a\x00b",
    "\ufeff",
    "\u2028",
    "\\'{e}t\\'{e} {\\\"o} $x^2$ \\href{a}",
    "\\",
    "{",
    "}",
    "Smith, John and Doe, Jane",
    "Ada  Lovelace,\n  Grace Hopper and\tX Y",
    "A. Smith (MIT), B. Jones (Univ. (X)), and C. Li",
    "Last, First; Other, Name",
    "cs.CL cs.LG I.2.7",
    "10.1145/3580305.3599256",
    "doi:10.",
    "https://arxiv.org/abs/2101.00001v2",
    "arXiv:hep-th/9901001",
    "2101.00001v99999999999999999999",
    "٢٠٢٠.١٢٣٤٥",
    "x" * 5000,
]
ODD_DATES = [
    "2025-01-31",
    "2025-02-30",
    "2025-01-31T10:00:00Z",
    "2025-01-31T25:99:00",
    "2025-01-31 10:00:00+05:30",
    "2025-13",
    "2025-00",
    "2025--1",
    "0000",
    "9999",
    "99999",
    "20250131",
    "2025013",
    "31/01/2025",
    "Jan 31, 2025",
    "Mon, 31 Jan 2025 10:00:00 GMT",
    "Mon, 1 Jan 99999999999 10:00:00 GMT",
    "Mon, 1 Jan 2020 10:00:00 +99999999",
    "1 Jan 0",
    "٢٠٢٥-٠١-٣١",
    "²⁰²⁵-⁰¹-³¹",
    "0001-01-01",
    "2025-01-31T",
]


def _rfc2822(moment: datetime) -> str:
    return format_datetime(moment.replace(tzinfo=UTC))


dates_text = st.one_of(
    st.sampled_from(ODD_DATES),
    st.dates().map(date.isoformat),
    st.datetimes().map(datetime.isoformat),
    st.datetimes().map(_rfc2822),
    st.dates().map(lambda d: d.strftime("%d/%m/%Y")),
    st.from_regex(r"\A[0-9]{1,5}(-[0-9]{1,3}){0,2}\Z"),
)
arxiv_ids = st.one_of(
    st.from_regex(r"\A[0-9]{4}\.[0-9]{4,5}(v[0-9]{1,3})?\Z"),
    st.from_regex(r"\A(hep-th|math\.GT|cs|astro-ph)/[0-9]{7}(v[0-9])?\Z"),
    st.from_regex(r"\A[0-9]{4}\.[0-9]{4,5}\Z").map(lambda i: f"https://arxiv.org/abs/{i}"),
    st.from_regex(r"\A[0-9]{4}\.[0-9]{4,5}\Z").map(lambda i: f"arXiv:{i}"),
    st.sampled_from(["", "2101.0001", "21010.00001", "abs/2101.00001", "٢٠٢٠.١٢٣٤٥", "2101.00001v", "2101.00001v²"]),
    st.sampled_from(["arXiv:HEP-TH/9901001", "https://arxiv.org/abs/Math.gt/0309136v2", "10.١٢٣٤/x", "doi:10.١٢٣٤/x"]),
)
odd_text = st.one_of(st.text(max_size=60), st.sampled_from(ODD_TEXT))
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    odd_text,
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def usually(good: st.SearchStrategy[Any], odd: st.SearchStrategy[Any] = json_values) -> st.SearchStrategy[Any]:
    """Mostly the right kind of value, sometimes an odd one: so most records have one odd field, not ten,
    and both the accept and the reject paths of every field are reached."""
    return st.one_of(good, good, good, odd)


# values a real record holds
# a title is good when some letter or digit survives and it is not a spreadsheet's word for "nothing"
# ("NULL", "n/a", "-": the keyed sources read those as an empty cell, by design)
good_titles = st.one_of(
    st.text(st.characters(categories=("L", "N", "P", "Zs")), min_size=1, max_size=80).filter(
        lambda t: any(ch.isalnum() for ch in t) and t.strip().lower() not in NULL_WORDS
    ),
    st.sampled_from(["Attention Is All You Need", "On $\\mathcal{O}(n)$ {\\'E}coles", "Über Ψ-Räume: 𝔽ℚ"]),
)
good_names = st.one_of(
    st.from_regex(r"\A[A-Z][a-z]{1,8} [A-Z][a-z]{1,10}\Z"),
    st.text(st.characters(categories=("L",)), min_size=1, max_size=20),
)
good_dates = st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 1, 1)).map(date.isoformat)
good_arxiv_ids = st.from_regex(r"\A2[0-9]{3}\.[0-9]{5}(v[1-9])?\Z")
good_categories = st.lists(st.sampled_from(["cs.CL", "cs.LG", "math.GT", "hep-th", "stat.ML"]), min_size=1, max_size=3)

# what a real field might hold: the right kind of value, an odd one, or any JSON value at all
titles = usually(good_titles, st.one_of(odd_text, json_values))
names = st.one_of(good_names, good_names, odd_text)
author_values = st.one_of(
    st.lists(names, max_size=5),
    st.lists(names, max_size=5),
    st.lists(st.fixed_dictionaries({"name": st.one_of(names, json_scalars)}), max_size=4),
    odd_text,
    json_values,
)
field_values: dict[str, st.SearchStrategy[Any]] = {
    "title": titles,
    "authors": author_values,
    "categories": usually(good_categories, odd_text),
    "arxiv": usually(good_arxiv_ids, st.one_of(arxiv_ids, json_values)),
    "id": usually(good_arxiv_ids, st.one_of(arxiv_ids, odd_text, json_scalars)),
    "doi": usually(st.from_regex(r"\A10\.[0-9]{4,6}/[a-z0-9.]{1,12}\Z"), st.one_of(odd_text, json_scalars)),
    "published": usually(good_dates, st.one_of(dates_text, json_scalars)),
    "updated": usually(good_dates, st.one_of(dates_text, json_scalars)),
    "announced": usually(good_dates, st.one_of(dates_text, json_scalars)),
    "featured": usually(good_dates, st.one_of(dates_text, json_scalars)),
    "year": st.one_of(st.integers(1900, 2100), st.integers(), odd_text, dates_text, json_scalars),
    "version": st.one_of(
        st.integers(1, 9), st.integers(), st.sampled_from(["v3", "3", "3.0", "v²", "-2"]), json_scalars
    ),
    "upvotes": st.one_of(
        st.integers(0, 999), st.integers(), st.sampled_from(["42", "4.0", "²", "1e3", "∞"]), json_scalars
    ),
    "abstract": usually(st.text(max_size=200), odd_text),
}
# every alias the mapping knows, so generated records exercise every key path
ALIAS_KEYS = sorted({alias for aliases in ALIASES.values() for alias in aliases})
record_keys = st.one_of(
    st.sampled_from(ALIAS_KEYS),
    st.sampled_from(["Paper Title", "paperTitle", "arXiv ID", "TITLE ", " title", "pdf-link"]),
    st.text(max_size=10),
)


def _field_value(key: str) -> st.SearchStrategy[Any]:
    for field, aliases in ALIASES.items():
        if key in aliases and field in field_values:
            return field_values[field]
    return json_values


@st.composite
def keyed_records(draw: st.DrawFn) -> dict[str, Any]:
    """A JSON object with real field names (and some odd ones) holding right, odd or wrongly-typed values."""
    record: dict[str, Any] = {}
    if draw(st.integers(0, 3)):  # a listing-like record first, most of the time
        for key in draw(
            st.sampled_from(
                [
                    ("title", "id", "authors", "published", "categories", "abstract"),
                    ("paper_title", "arxiv_id", "author_names", "listing_date", "summary"),
                    ("title", "doi", "authors", "year", "venue"),
                    ("title", "authors"),
                ]
            )
        ):
            record[key] = draw(_field_value(key))
    for key in draw(st.lists(record_keys, max_size=6, unique=True)):
        record[key] = draw(_field_value(key))
    return record


def dump_json(value: Any, ascii_only: bool) -> str:
    """JSON text as another tool might write it: arbitrary-size ints, NaN/Infinity, unicode either way."""
    return json.dumps(value, ensure_ascii=ascii_only)


def mutate_bytes(data: bytes, draw: st.DrawFn) -> bytes:
    """A damaged copy of `data`: truncated, a slice cut out, or a few bytes overwritten."""
    if not data:
        return draw(st.binary(max_size=64))
    kind = draw(st.sampled_from(["keep", "truncate", "cut", "overwrite", "insert"]))
    at = draw(st.integers(0, len(data)))
    if kind == "truncate":
        return data[:at]
    if kind == "cut":
        return data[:at] + data[at + draw(st.integers(1, 64)) :]
    if kind == "overwrite":
        return data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at + 8 :]
    if kind == "insert":
        return data[:at] + draw(st.binary(max_size=16)) + data[at:]
    return data
