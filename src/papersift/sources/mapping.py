"""Field aliases and the one record -> Paper mapping that the CSV, JSON lines, BibTeX and HF sources share,
so every tabular or keyed input is validated, keyed and normalised the same way.

A mapping names, per Paper field, the record key that holds it (`{"title": "Paper Title"}`); fields it
does not name are found through `ALIASES`. Mapping a field to "" ignores it.
"""

from __future__ import annotations

import ast
import email.utils
import re
from collections.abc import Mapping
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from papersift.errors import SourceError
from papersift.ids import normalise_doi, paper_id, parse_arxiv_id
from papersift.models import Paper, Rejected

# field -> record keys (normalised: snake_case, lowercase) that hold it; earlier keys win over later ones
ALIASES: dict[str, tuple[str, ...]] = {
    "arxiv": ("arxiv_id", "arxiv", "arxivid", "eprint", "arxiv_url"),
    "id": ("id", "paper_id", "identifier"),
    "doi": ("doi",),
    "title": ("title", "paper_title", "article_title"),
    "abstract": ("abstract", "summary", "description"),
    "authors": ("authors", "author", "author_names", "creators"),
    "categories": ("categories", "category", "keywords", "subjects", "tags"),
    "published": ("published", "published_at", "publication_date", "published_date", "pub_date", "date", "created"),
    "updated": ("updated", "updated_at", "update_date", "updated_date", "last_updated"),
    "announced": ("announced", "listing_date", "announced_date"),
    "featured": ("featured", "featured_date"),
    "venue": ("venue", "journal", "conference", "booktitle", "journal_ref"),
    "year": ("year",),
    "version": ("version",),
    "comment": ("comment", "comments", "note"),
    "abs_url": ("abs_url", "url", "link", "site", "html_url"),
    "pdf_url": ("pdf_url", "pdf", "pdf_link"),
    "upvotes": ("upvotes",),
    "source_id": ("source_id",),
}
_ALIAS_TO_FIELD: dict[str, tuple[str, int]] = {
    alias: (field, prio) for field, aliases in ALIASES.items() for prio, alias in enumerate(aliases)
}
# values spreadsheets and pandas write for "nothing here"
_NULLS = frozenset({"", "null", "none", "n/a", "na", "nan", "-", "--", "?"})
_CAMEL_RE = re.compile(r"(?<=[a-z0-9])([A-Z])")
_SEP_RE = re.compile(r"[\s\-.]+")
_ARXIV_CATEGORY_RE = re.compile(
    r"^(?:[a-z\-]+\.[A-Za-z\-]+|hep-(?:th|ph|ex|lat)|gr-qc|quant-ph|nucl-(?:th|ex)|math-ph|astro-ph|cond-mat)$"
)
_DOI_IN_TEXT_RE = re.compile(r"10\.[0-9]{4,9}/\S+")  # [0-9]: \d takes any script's digits
# "42", "2021.0" (pandas writes integer columns with gaps as floats); bounded, as int() refuses 4300+ digits
_WHOLE_RE = re.compile(r"[0-9]{1,18}(?:\.0*)?")
_ARXIV_DOI_PREFIX = "10.48550/arxiv."
_MAX_CACHED_KEYS = 4096
_MISS: Any = object()
_DATE_FIELDS = ("published", "updated", "announced", "featured")
_TEXT_FIELDS = ("abstract", "venue", "comment")


class _Bad(ValueError):
    """A value that makes the record unusable; the message becomes the Rejected reason."""


def normalise_key(key: str, camel: bool = False) -> str:
    """'Paper Title' and 'paper-title' name the same column; with `camel`, so does 'paperTitle'."""
    key = key.strip()
    if camel:
        key = _CAMEL_RE.sub(r"_\1", key)
    return _SEP_RE.sub("_", key.lower()).strip("_")


def _alias(key: str) -> tuple[str, int] | None:
    # 'arXiv ID' must not become 'ar_xiv_id', so camelCase is only the second guess
    return _ALIAS_TO_FIELD.get(normalise_key(key)) or _ALIAS_TO_FIELD.get(normalise_key(key, camel=True))


def resolve_field(name: str) -> str:
    """The Paper field a mapping target names (a field or any of its aliases); SourceError when none."""
    if normalise_key(name) in ALIASES:
        return normalise_key(name)
    hit = _alias(name)
    if hit is None:
        raise SourceError(f"unknown field {name!r} in the field mapping; use one of: {', '.join(ALIASES)}")
    return hit[0]


class FieldPlan:
    """A compiled mapping: which record key feeds which field, with a per-key cache so each record costs
    one dict lookup per key."""

    __slots__ = ("_cache", "_taken", "explicit")

    def __init__(self, mapping: Mapping[str, str] | None = None) -> None:
        self.explicit: dict[str, tuple[str, int]] = {}
        self._taken: set[str] = set()
        for target, key in (mapping or {}).items():
            field = resolve_field(target)
            self._taken.add(field)
            if key:
                self.explicit[key] = (field, -1)
        self._cache: dict[Any, tuple[str, int] | None] = dict(self.explicit)

    def lookup(self, key: Any) -> tuple[str, int] | None:
        """(field, priority) for a record key, or None when the key feeds nothing."""
        hit = self._cache.get(key, _MISS)
        if hit is not _MISS:
            return hit
        hit = _alias(key) if isinstance(key, str) else None
        if hit is not None and hit[0] in self._taken:
            hit = None  # an explicitly mapped field ignores its aliases
        if len(self._cache) < _MAX_CACHED_KEYS:
            self._cache[key] = hit
        return hit

    def fields_for(self, keys: list[str]) -> dict[str, str]:
        """field -> the key that feeds it, for a known set of keys (a CSV header)."""
        best: dict[str, tuple[int, str]] = {}
        for key in keys:
            hit = self.lookup(key)
            if hit and (hit[0] not in best or hit[1] < best[hit[0]][0]):
                best[hit[0]] = (hit[1], key)
        return {field: key for field, (_, key) in best.items()}


_DEFAULT_PLAN = FieldPlan()


@lru_cache(maxsize=64)
def _cached_plan(items: frozenset[tuple[str, str]]) -> FieldPlan:
    return FieldPlan(dict(items))


def compile_mapping(mapping: Mapping[str, str] | FieldPlan | None) -> FieldPlan:
    """The cached plan for a mapping (callers may pass a fresh dict per record); SourceError for an unknown field."""
    if not mapping:
        return _DEFAULT_PLAN
    return mapping if isinstance(mapping, FieldPlan) else _cached_plan(frozenset(mapping.items()))


def collapse(value: str) -> str:
    """Single-spaced and stripped, whatever the whitespace (form feed and \\x1c-\\x1f too). Plain split/join:
    a fast path that checked for some whitespace characters missed the others and cost as much."""
    return " ".join(value.split())


def _text(value: Any, field: str) -> str:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise _Bad(f"{field} is a {type(value).__name__}, expected text")


def _literal_list(value: str) -> list[Any] | None:
    """A list written out as text ("['A', 'B']" or JSON), as pandas and spreadsheets export lists."""
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    return parsed if isinstance(parsed, list) else None


def _last_first(name: str) -> str:
    last, _, first = name.partition(",")
    return f"{first.strip()} {last.strip()}".strip()


def split_authors(value: str) -> list[str]:
    """'A; B', 'A, B and C', 'Last, First and Last, First', 'Last, First; Last, First' -> names."""
    if ";" in value:
        parts = [p.strip().removeprefix("and ") for p in value.split(";")]
        return [_last_first(p) if p.count(",") == 1 else p.strip() for p in parts if p.strip()]
    if " and " in value:
        halves = value.split(" and ")
        if all(h.count(",") == 1 for h in halves):  # BibTeX style: every name is "Last, First"
            return [_last_first(h) for h in halves if h.strip()]
        parts = [p for h in halves for p in h.split(",")]
    else:
        parts = value.split(",")
        if len(parts) == 2 and len(parts[0].split()) == 1 and parts[1].strip():
            return [_last_first(value)]  # "Vaswani, Ashish" is one person
    return [p.strip() for p in parts if p.strip()]


def split_categories(value: str) -> list[str]:
    for separator in (";", ","):
        if separator in value:
            return [p.strip() for p in value.split(separator) if p.strip()]
    tokens = value.split()
    if len(tokens) > 1 and _ARXIV_CATEGORY_RE.match(tokens[0]):
        return list(dict.fromkeys(tokens))  # "cs.CL cs.LG I.2.7", as arXiv writes them (primary first)
    return [value.strip()] if value.strip() else []


def _list(value: Any, field: str, authors: bool) -> list[str]:
    """Names in order (authors) or unique labels (categories) from a list, a list-as-text, or delimited text."""
    if value.__class__ is list:  # the common case, a list of strings, kept fast
        try:
            names = [" ".join(item.split()) for item in value]
        except (AttributeError, TypeError):
            pass  # not all strings: the general path below
        else:
            names = [name for name in names if name] if "" in names else names
            return names if authors else list(dict.fromkeys(names))
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("[") and text.endswith("]"):
            parsed = _literal_list(text)
            if parsed is not None:
                return _list(parsed, field, authors)
        names = split_authors(text) if authors else split_categories(text)
        return [name for raw_name in names if (name := collapse(raw_name))]
    if not isinstance(value, (list, tuple)):
        raise _Bad(f"{field} is a {type(value).__name__}, expected a list or text")
    out = []
    for item in value:
        item = item.get("name") if isinstance(item, dict) else item  # {"name": ...}, as the HF API sends authors
        if item is not None and not isinstance(item, str):
            raise _Bad(f"{field} holds a {type(item).__name__}, expected names as text")
        if item and (item := collapse(item)) and (authors or item not in out):
            out.append(item)
    return out


def _check_year(year: int, what: str) -> int:
    if not 1000 <= year <= 2200:
        raise _Bad(f"{what} year {year} is out of range")
    return year


def parse_date(value: Any, field: str) -> tuple[date | None, int | None]:
    """(date, None) for a full date, (None, year) for a bare year; _Bad with the reason otherwise."""
    if isinstance(value, date):
        return (value.date() if isinstance(value, datetime) else value), None
    if isinstance(value, int) and not isinstance(value, bool):
        return None, _check_year(value, field)
    if not isinstance(value, str):
        raise _Bad(f"{field} date is a {type(value).__name__}, expected text")
    text = value.strip()
    size = len(text)
    try:
        if size >= 10 and text[4] == "-" and text[7] == "-":
            parsed = date.fromisoformat(text) if size == 10 else datetime.fromisoformat(text).date()
            return parsed, None
        if size == 4 and text.isdigit():
            return None, _check_year(int(text), field)
        if size == 7 and text[4] == "-":
            return date(int(text[:4]), int(text[5:]), 1), None
        if size == 8 and text.isdigit():
            return date.fromisoformat(text), None
        return email.utils.parsedate_to_datetime(text).date(), None
    except (ValueError, TypeError, IndexError, OverflowError):  # year 99999999999: OverflowError
        pass
    raise _Bad(f"bad {field} date {text[:40]!r}: expected ISO 8601 (2025-01-31), YYYY-MM, YYYY or RFC 2822")


def _int(value: Any, field: str) -> int:
    """A count or year: 42, "42", "v3", or 2021.0 as pandas writes integer columns with gaps."""
    number = value.strip().removeprefix("v") if isinstance(value, str) else value
    if isinstance(number, str) and _WHOLE_RE.fullmatch(number):  # ASCII digits only: '²'.isdigit() is True
        number = int(number.split(".", 1)[0])
    if isinstance(number, float) and number.is_integer():
        number = int(number)
    if not isinstance(number, int) or isinstance(number, bool) or number < 0:
        raise _Bad(f"{field} {str(value)[:20]!r} is not a whole number")
    return number


def _doi(value: Any) -> str:
    text = _text(value, "doi")
    doi = normalise_doi(text)
    if doi is None:
        match = _DOI_IN_TEXT_RE.search(text)
        if match is None:
            raise _Bad(f"bad DOI {text[:60]!r}")
        doi = match.group(0).lower().rstrip(".")
    return doi


def paper_from_mapping(
    record: Mapping[str, Any], mapping: Mapping[str, str] | FieldPlan | None, *, source: str, origin: str
) -> Paper | Rejected:
    """Map one keyed record to a Paper, or a Rejected naming the bad field, so one bad row never stops
    an ingest. Raises SourceError only for a broken mapping (unknown field name)."""
    plan = compile_mapping(mapping)
    values: dict[str, Any] = {}
    prios: dict[str, int] = {}
    cache = plan._cache
    for key, value in record.items():
        hit = cache.get(key, _MISS)
        if hit is _MISS:
            hit = plan.lookup(key)
        if hit is None or value is None:
            continue
        if value.__class__ is str:
            if len(value) < 5 and value.strip().lower() in _NULLS:
                continue
        elif value == []:
            continue
        field, prio = hit
        old = prios.get(field)
        if old is None or prio < old:
            values[field] = value
            prios[field] = prio
    try:
        return _build(values, source, origin) or _no_title(record, plan, origin)
    except _Bad as exc:
        return Rejected(origin, str(exc))


def _no_title(record: Mapping[str, Any], plan: FieldPlan, origin: str) -> Rejected:
    if any(value is not None and (plan.lookup(key) or ("",))[0] == "title" for key, value in record.items()):
        return Rejected(origin, "empty title")
    return Rejected(origin, f"no title field (keys: {', '.join(str(k) for k in list(record)[:12])})")


def _build(values: dict[str, Any], source: str, origin: str) -> Paper | Rejected | None:
    """The Paper, a Rejected, or None when the title is missing (the caller says why)."""
    get = values.get
    raw = get("title")
    title = collapse(raw if raw.__class__ is str else _text(raw, "title")) if raw is not None else ""
    if not title:
        return None
    authors = _list(raw, "authors", True) if (raw := get("authors")) is not None else []

    arxiv: tuple[str, int | None] | None = None
    raw = get("arxiv")
    if raw is not None:
        text = _text(raw, "arxiv id")
        arxiv = parse_arxiv_id(text)
        if arxiv is None:
            raise _Bad(f"bad arXiv id {text[:40]!r}")
    own_id = _text(raw, "id") if (raw := get("id")) is not None else ""
    if arxiv is None and own_id:
        arxiv = parse_arxiv_id(own_id)
    abs_url = _text(raw, "url") if (raw := get("abs_url")) is not None else ""
    pdf_url = _text(raw, "pdf url") if (raw := get("pdf_url")) is not None else ""
    if arxiv is None:
        arxiv = (abs_url and parse_arxiv_id(abs_url)) or (pdf_url and parse_arxiv_id(pdf_url)) or None
    doi = _doi(raw) if (raw := get("doi")) is not None else ""
    if arxiv is None and doi.startswith(_ARXIV_DOI_PREFIX):
        arxiv = parse_arxiv_id(doi[len(_ARXIV_DOI_PREFIX) :])

    dates: dict[str, Any] = {}  # field -> date, passed to Paper by name
    year: int | None = None
    for name in _DATE_FIELDS:
        raw = get(name)
        if raw is not None:
            dates[name], bare_year = parse_date(raw, name)
            year = year or bare_year
    if (raw := get("year")) is not None:
        year = _check_year(_int(raw, "year"), "year")

    version = _int(raw, "version") if (raw := get("version")) is not None else (arxiv[1] if arxiv else None)
    raw = get("source_id")
    if raw is not None:
        source_id = _text(raw, "source_id")
    elif own_id:
        source_id = own_id
    elif arxiv:
        source_id = f"{arxiv[0]}v{arxiv[1]}" if arxiv[1] else arxiv[0]
    else:
        source_id = ""

    if arxiv is not None:
        key = arxiv[0]
        abs_url = abs_url or f"https://arxiv.org/abs/{key}"
        pdf_url = pdf_url or f"https://arxiv.org/pdf/{key}"
    else:
        try:
            key = paper_id(doi=doi, title=title, authors=authors)
        except ValueError:
            return Rejected(origin, f"title {title[:60]!r} has no letters or digits to identify it by")
        if doi and not abs_url:
            abs_url = f"https://doi.org/{doi}"
    texts: dict[str, Any] = {}
    for name in _TEXT_FIELDS:
        if (raw := get(name)) is not None:
            texts[name] = collapse(raw if raw.__class__ is str else _text(raw, name))
    return Paper(
        id=key,
        title=title,
        authors=authors,
        categories=_list(raw, "categories", False) if (raw := get("categories")) is not None else [],
        version=version,
        source=source,
        source_id=source_id,
        doi=doi,
        year=year,
        abs_url=abs_url,
        pdf_url=pdf_url,
        upvotes=_int(raw, "upvotes") if (raw := get("upvotes")) is not None else 0,
        origin=origin,
        **texts,
        **dates,
    )
