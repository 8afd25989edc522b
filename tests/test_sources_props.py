"""Property-based tests of the keyed-record parsers (JSON lines/arrays, arXiv snapshot, HF daily, CSV, BibTeX).

Each generates inputs from valid-looking (real field names, arXiv-like ids, dates in odd formats, LaTeX,
wrongly-typed JSON values) to garbage (random bytes, damaged copies of real files) and checks the contract
in `sources_props_contract`: Papers with well-typed fields and Rejected records that say where and why,
or a SourceError with a message, never any other exception. Examples that once crashed a parser are
pinned with @example.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import orjson
from hypothesis import example, given, settings
from hypothesis import strategies as st

from papersift.errors import SourceError
from papersift.models import Paper
from papersift.sources import SOURCES, detect
from papersift.sources.arxiv_snapshot import ArxivSnapshotSource
from papersift.sources.bibtex import BibTeXSource
from papersift.sources.csvfile import CSVSource
from papersift.sources.hf_daily import HFDailySource
from papersift.sources.jsonl import JSONLinesSource

from .conftest import FIXTURES
from .sources_props_contract import (
    ALIAS_KEYS,
    arxiv_ids,
    author_values,
    dates_text,
    dump_json,
    good_arxiv_ids,
    good_dates,
    good_names,
    good_titles,
    json_scalars,
    json_values,
    keyed_records,
    mutate_bytes,
    odd_text,
    run_parse,
    titles,
    usually,
)

PROPS = settings(max_examples=100, deadline=None)
# a small record limit now and then, so generated records also take the oversize paths
record_limits = st.one_of(
    st.just({}), st.just({}), st.sampled_from([{"max_record_bytes": "64"}, {"max_record_bytes": "300"}])
)


@st.composite
def json_lines_files(draw: st.DrawFn, records: st.SearchStrategy[Any]) -> bytes:
    """Records as JSON lines, with odd line endings, blank and broken lines and non-object values mixed in."""
    ascii_only = draw(st.booleans())
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    lines = []
    for item in draw(st.lists(st.one_of(records, records, json_values, st.binary(max_size=20)), max_size=8)):
        if isinstance(item, bytes):
            lines.append(item.replace(b"\n", b" "))
        else:
            lines.append(dump_json(item, ascii_only).encode("utf-8", "surrogatepass"))
    return newline.encode().join(lines) + draw(st.sampled_from([b"", newline.encode()]))


# --- JSON lines and arrays ----------------------------------------------------------------------


@PROPS
@given(
    json_lines_files(keyed_records()),
    usually(st.just({}), st.dictionaries(st.sampled_from(["map.title", "map.authors"]), odd_text)),
    record_limits,
)
@example(b'{"title": "A paper", "upvotes": "\\u00b2"}', {}, {})  # float('²'): ValueError escaped the mapping
# a year past datetime's range: OverflowError (not ValueError) escaped the date parser
@example(b'{"title": "A paper", "published": "Mon, 1 Jan 99999999999 10:00:00 GMT"}', {}, {})
# keys no other record of the paper would get: Arabic-Indic digits, an upper-case old-style archive
@example('{"title": "A paper", "id": "٢٠٢٠.١٢٣٤٥"}'.encode(), {}, {})
@example('{"title": "A paper", "doi": "10.١٢٣٤/x"}'.encode(), {}, {})
@example(b'{"title": "A paper", "arxiv": "arXiv:HEP-TH/9901001"}', {}, {})
# whitespace other than space, tab, CR and LF was kept: title "6\x0c", category "a\x0bb"
@example(b'{"title": "6\\f", "categories": "a\\u000bb"}', {}, {})
def test_jsonl_records_become_papers_or_rejections(data: bytes, mapping: dict[str, str], limit: dict[str, str]) -> None:
    records = run_parse(JSONLinesSource({**mapping, **limit}), data, "listing.jsonl")
    for record in records:
        if isinstance(record, Paper):
            assert record.source == "jsonl"


@PROPS
@given(st.lists(st.one_of(keyed_records(), json_values), max_size=8), st.booleans())
def test_json_array_records_become_papers_or_rejections(items: list[Any], ascii_only: bool) -> None:
    data = dump_json(items, ascii_only).encode("utf-8", "surrogatepass")
    records = run_parse(JSONLinesSource(), data, "list.json")
    assert len(records) in (0, len(items))  # one result per element, or a SourceError (invalid JSON)


# --- arXiv snapshot --------------------------------------------------------------------------------

snapshot_records = st.fixed_dictionaries(
    {"id": usually(good_arxiv_ids, arxiv_ids), "title": titles},
    optional={
        "submitter": usually(good_names),
        "authors": usually(good_names.map(lambda n: f"{n} and Grace Hopper")),
        "comments": usually(odd_text),
        "journal-ref": usually(odd_text),
        "doi": usually(st.just("10.1145/3580305.3599256 10.1000/xyz"), odd_text),
        "categories": usually(st.sampled_from(["cs.CL cs.LG", "math.GT", ""]), odd_text),
        "abstract": usually(st.text(max_size=200)),
        "versions": usually(
            st.lists(
                st.fixed_dictionaries({"version": st.just("v1"), "created": usually(dates_text, json_scalars)}),
                max_size=3,
            )
        ),
        "update_date": usually(good_dates, st.one_of(dates_text, json_scalars)),
        "authors_parsed": usually(
            st.lists(st.lists(st.one_of(good_names, good_names, odd_text, json_scalars), max_size=4), max_size=4)
        ),
    },
)


SNAPSHOT_TEXT_KEYS = ("title", "abstract", "authors", "comments", "journal-ref", "doi", "categories")


def _is_text(value: Any) -> bool:
    return value is None or isinstance(value, str)


@PROPS
@given(json_lines_files(snapshot_records), record_limits)
# wrongly-typed values became text: authors "['A'", "'B']", title "{'a': 1}"
@example(b'{"id": "2101.00001", "title": "T", "authors_parsed": [], "authors": ["A", "B"]}', {})
@example(b'{"id": "2101.00001", "title": {"a": 1}}', {})
@example(
    b'{"id": "2101.00001", "title": "T", "authors": "Ada  Lovelace,\\n Grace Hopper and\\tX Y"}', {}
)  # names kept spaces
def test_snapshot_records_become_papers_or_rejections(data: bytes, limit: dict[str, str]) -> None:
    records = run_parse(ArxivSnapshotSource(limit), data, "arxiv-metadata-oai-snapshot.json")
    lines = [line for line in data.split(b"\n") if line.strip()]  # as the reader splits them
    assert len(records) == len(lines)
    for line, record in zip(lines, records, strict=True):
        if isinstance(record, Paper):  # a value of the wrong type is rejected, never turned into "{'a': 1}"
            fields = orjson.loads(line)
            assert all(_is_text(fields.get(key)) for key in SNAPSHOT_TEXT_KEYS), line


# --- Hugging Face daily papers -------------------------------------------------------------------

hf_papers = st.fixed_dictionaries(
    {"id": usually(good_arxiv_ids, st.one_of(arxiv_ids, json_scalars)), "summary": usually(st.text(max_size=100))},
    optional={
        "title": titles,
        "authors": st.one_of(
            st.lists(st.fixed_dictionaries({"name": usually(good_names)}, optional={"hidden": st.booleans()})),
            author_values,
        ),
        "publishedAt": usually(good_dates, st.one_of(dates_text, json_scalars)),
        "submittedOnDailyAt": usually(good_dates, st.one_of(dates_text, json_scalars)),
        "upvotes": usually(st.integers(0, 999), json_scalars),
    },
)
hf_api_items = st.fixed_dictionaries(
    {"paper": usually(hf_papers)},
    optional={
        "title": titles,
        "summary": odd_text,
        "publishedAt": usually(good_dates, st.one_of(dates_text, json_scalars)),
        "submittedOnDailyAt": st.one_of(dates_text, json_scalars),
        "upvotes": json_scalars,
    },
)
hf_featured_items = st.fixed_dictionaries(
    {
        "link": usually(good_arxiv_ids.map(lambda i: f"https://huggingface.co/papers/{i}"), json_scalars),
        "summary": st.one_of(odd_text, odd_text.map(lambda t: t + "\\n" * 3), json_values),
        "title": titles,
    },
    optional={
        "date": usually(good_dates, st.one_of(dates_text, json_scalars)),
        "author": usually(good_names),
        "arxiv_id": st.one_of(arxiv_ids, json_values),
    },
)


@PROPS
@given(st.lists(st.one_of(hf_api_items, hf_featured_items, json_values), max_size=6), st.booleans(), st.booleans())
def test_hf_daily_items_become_papers_or_rejections(items: list[Any], as_array: bool, ascii_only: bool) -> None:
    if as_array:
        data = dump_json(items, ascii_only).encode()
    else:
        data = b"\n".join(dump_json(item, ascii_only).encode() for item in items)
    records = run_parse(HFDailySource(), data, "daily.json")
    if records:
        assert len(records) == len(items) or not as_array


# --- CSV ---------------------------------------------------------------------------------------------

csv_cells = st.one_of(
    good_titles,
    good_names,
    good_dates,
    good_arxiv_ids,
    odd_text,
    dates_text,
    arxiv_ids,
    st.text(alphabet=st.sampled_from("ab ,;\t|\"'\n\r\\"), max_size=12),
)


@st.composite
def csv_files(draw: st.DrawFn) -> tuple[bytes, dict[str, str]]:
    """A header of real (and odd) column names, rows of odd cells, written with any dialect and encoding."""
    other = usually(st.text(st.characters(categories=("L", "N", "Zs")), max_size=8), st.text(max_size=8))
    header = draw(st.lists(st.one_of(st.sampled_from(ALIAS_KEYS), other), min_size=1, max_size=6))
    if draw(st.integers(0, 3)):
        header.insert(draw(st.integers(0, len(header))), draw(st.sampled_from(["title", "Title", "Paper Title"])))
    width = len(header)
    rows = draw(st.lists(st.lists(csv_cells, min_size=0, max_size=width + 2), max_size=6))
    delimiter = draw(st.sampled_from([",", "\t", ";", "|"]))
    buffer = io.StringIO()
    if draw(st.booleans()):
        quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]))
        newline = draw(st.sampled_from(["\n", "\r\n"]))
        writer = csv.writer(buffer, delimiter=delimiter, quoting=quoting, lineterminator=newline)
        writer.writerow(header)
        writer.writerows(rows)
    else:  # hand-joined: unbalanced quotes, stray delimiters, embedded newlines as they come
        for row in [header, *rows]:
            buffer.write(delimiter.join(row) + "\n")
    text = buffer.getvalue()
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "cp1252", "utf-16"]))
    data = text.encode(encoding, errors="replace")
    options = {}
    if not draw(st.integers(0, 3)):
        options["delimiter"] = draw(st.sampled_from(["tab", "comma", ";", "|", "semicolon"]))
    if not draw(st.integers(0, 3)):
        options["encoding"] = draw(st.sampled_from(["utf-8", "cp1252", "latin-1"]))
    options.update(draw(record_limits))
    return (mutate_bytes(data, draw) if draw(st.integers(0, 3)) == 0 else data), options


@PROPS
@given(csv_files())
# a bad byte and a bare CR in the header, then a good header: IndexError on an empty list of bad lines
@example((b"ti\xfftle\r,x\ntitle,year\nA,2020\n", {}))
def test_csv_rows_become_papers_or_rejections(case: tuple[bytes, dict[str, str]]) -> None:
    data, options = case
    run_parse(CSVSource(options), data, "papers.csv")


# --- BibTeX ------------------------------------------------------------------------------------------

bib_values = st.one_of(
    odd_text,
    st.sampled_from(
        [
            "{\\'E}cole {\\\"u}ber",
            "\\textbf{Bold} and $\\alpha$",
            "\\href{http://x}",
            "\\url{",
            "{unbalanced",
            "unbalanced}",
            "{{double}}",
            "Last, First and Other, Name and {Org, Inc.}",
            "and and and",
            ",,,",
            "jan",
            "13",
            "0000",
            "arXiv:2101.00001",
            "10.1000/xyz",
            "%comment",
            "a # b",
        ]
    ),
    st.text(alphabet=st.sampled_from("ab{}\\\"'$%#@,= \n~^"), max_size=20),
)
bib_fields = st.sampled_from(
    [
        "title",
        "author",
        "editor",
        "year",
        "month",
        "eprint",
        "archiveprefix",
        "eprinttype",
        "arxivid",
        "doi",
        "url",
        "pdf",
        "journal",
        "booktitle",
        "keywords",
        "note",
        "howpublished",
        "abstract",
        "TITLE",
        "Year",
    ]
)


@st.composite
def bib_entries(draw: st.DrawFn) -> str:
    """An entry: most of the time a real-looking article with a few odd fields, else any block at all."""
    real = draw(st.integers(0, 2)) > 0
    fields = []
    if real:
        kind, key = "article", draw(st.from_regex(r"\A[a-z]{1,8}[0-9]{0,4}\Z"))
        fields.append(f"  title = {{{draw(good_titles)}}}")
        fields.append(f"  author = {{{draw(good_names)} and {draw(good_names)}}}")
        fields.append(f"  year = {draw(st.integers(1900, 2100))}")
    else:
        kind = draw(st.sampled_from(["article", "inproceedings", "misc", "ARTICLE", "string", "comment", "preamble"]))
        key = draw(st.one_of(st.from_regex(r"\A[a-z]{1,8}[0-9]{0,4}\Z"), st.text(max_size=6)))
    for name in draw(st.lists(bib_fields, max_size=5)):
        value = draw(bib_values)
        style = draw(st.sampled_from(["{}", '""', "bare"]))
        rendered = f"{{{value}}}" if style == "{}" else f'"{value}"' if style == '""' else value
        fields.append(f"  {name} = {rendered}")
    open_, close = ("{", "}")
    if not real or draw(st.integers(0, 3)) == 0:
        open_, close = draw(st.sampled_from([("{", "}"), ("(", ")"), ("{", ""), ("{", "}}")]))
    return f"@{kind}{open_}{key},\n" + ",\n".join(fields) + f"\n{close}\n"


@PROPS
@given(st.lists(st.one_of(bib_entries(), bib_entries(), odd_text), max_size=5), st.sampled_from(["utf-8", "latin-1"]))
# bibtexparser's MonthIntMiddleware: int('1²') raised ValueError out of the parser
@example(["@article{k,\n  title = {T},\n  year = 1963,\n  month = {1²}\n}\n"], "utf-8")
def test_bibtex_entries_become_papers_or_rejections(entries: list[str], encoding: str) -> None:
    data = "\n".join(entries).encode(encoding, errors="replace")
    run_parse(BibTeXSource(), data, "refs.bib")


# --- anything at all, into every source ----------------------------------------------------------


@PROPS
@given(st.sampled_from(sorted(SOURCES)), st.binary(max_size=400))
def test_random_bytes_into_every_source(name: str, data: bytes) -> None:
    run_parse(SOURCES[name](), data, "garbage.bin")


_REAL_FILES = {
    "hf-daily": ["files/hf_daily_papers_api.json", "files/hf_featured.jsonl"],
    "csv": ["files/papers.csv", "files/custom.tsv"],
    "bibtex": ["files/refs.bib"],
    "jsonl": ["files/hf_featured.jsonl", "files/hf_daily_papers_api.json"],
    "arxiv-oai": ["arxiv/oai_arxiv_page1.xml", "arxiv/oai_arxivraw.xml"],
    "arxiv-api": ["arxiv/api_page1.xml", "arxiv/api_idlist.xml"],
}
_REAL_CASES = [(name, path) for name, paths in _REAL_FILES.items() for path in paths]


@PROPS
@given(st.sampled_from(_REAL_CASES), st.data())
def test_damaged_copies_of_real_files(case: tuple[str, str], data: st.DataObject) -> None:
    name, path = case
    original = (FIXTURES / path).read_bytes()
    damaged = data.draw(st.composite(lambda draw: mutate_bytes(original, draw))())
    run_parse(SOURCES[name](), damaged, path.rsplit("/", 1)[-1])


# --- format detection --------------------------------------------------------------------------------

heads = st.one_of(
    st.binary(max_size=300),
    json_lines_files(keyed_records()),
    csv_files().map(lambda case: case[0]),
    st.lists(bib_entries(), max_size=2).map(lambda entries: "\n".join(entries).encode()),
)
file_names = st.one_of(
    st.sampled_from(["x.csv", "x.tsv.gz", "x.bib", "x.jsonl", "x.json", "x.xml", "x", ""]), st.text()
)


@PROPS
@given(heads, file_names)
@example(b"title,a\rb\n", "papers.txt")  # csv.Error from the CSV sniffer escaped format detection
def test_detection_names_a_source_or_says_why_not(head: bytes, filename: str) -> None:
    for cls in SOURCES.values():
        assert cls.sniff(head, filename) in (True, False)
    try:
        found = detect(head, filename)
    except SourceError as exc:
        assert "cannot tell the format" in str(exc)
    else:
        assert found in SOURCES.values()
