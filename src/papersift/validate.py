"""The one gate every record passes between a source and the store: a clean Paper or a Rejected.

Sources parse formats; this module decides what may be stored, whatever the source, so that one record
can never poison what runs after it (the search index, the daily page, feeds, e-mail, the JSON API):

- ids: what becomes a URL path segment must not be able to leave it: no `.`/`..`/empty segments, no
  `#`, `?`, `\\`, whitespace or control characters, at most MAX_ID_CHARS. A record whose id fails is
  rejected, never re-keyed (a different key would silently make it a different paper).
- dates: kept only within MIN_DATE..today + slack. The BM25 index stores dates as nanoseconds (years
  1677-2262) and the pages do date arithmetic, so 1650 or 9999 crashed them. Listing and featured days
  get a week of slack (a 2150 listing would become the front page's "newest day"); publication dates
  two years (proceedings are dated ahead). An impossible date is dropped, the paper kept and the drop
  reported: the rest of the record (title, authors, abstract) is still worth finding.
- links: only http(s) URLs with a host (`urls.safe_url`); anything else is dropped and reported.
- text: NUL, other C0 controls, lone surrogates and non-characters are removed from every text field
  (PostgreSQL text and JSONB refuse NUL; no UTF-8 encoder takes a lone surrogate); absurd lengths
  are cut to caps far above any real paper's.
- integers: bounded so a PostgreSQL INTEGER cannot overflow.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from papersift import code_links
from papersift.models import Paper, Rejected
from papersift.urls import MAX_URL_CHARS, safe_url

MIN_DATE = date(1800, 1, 1)
LISTING_SLACK = timedelta(days=7)  # announced / featured: a listing day is never far in the future
PUBLISHED_SLACK = timedelta(days=731)  # published / updated: journals and proceedings are dated ahead
MIN_YEAR = MIN_DATE.year
YEAR_SLACK = 2
MAX_VERSION = 10_000
MAX_INT = 2**31 - 1  # PostgreSQL INTEGER

MAX_ID_CHARS = 200
# caps far above real metadata (the longest arXiv abstract is ~3 KB; big-collaboration papers list
# ~3,000 authors): they bound what one record costs every page and the index, not what is plausible
TEXT_CAPS: dict[str, int] = {
    "title": 2_000,
    "abstract": 100_000,
    "comment": 10_000,
    "venue": 2_000,
    "doi": 300,
    "source": 64,
    "source_id": 300,
}
_TEXT_FIELDS = ("title", "abstract", "comment", "venue", "doi", "source", "source_id")
MAX_AUTHORS = 10_000
MAX_AUTHOR_CHARS = 500
MAX_CATEGORIES = 100
MAX_CATEGORY_CHARS = 100

# characters no store, XML document or browser should receive inside text
_UNSTORABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
# whitespace, controls, invisible format characters and lone surrogates, plus the URL delimiters
_ID_FORBIDDEN = re.compile(
    r"[\s\x00-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ud800-\udfff#?\\]"
)


# an http(s) URL with a plain host name and only visible ASCII after it: what safe_url accepts, matched fast
_PLAIN_URL = re.compile(r"https?://[A-Za-z0-9](?:[A-Za-z0-9.\-]*[A-Za-z0-9])?(?::[0-9]{1,5})?(?:[/?#][!-~]*)?\Z")


@dataclass(slots=True, frozen=True)
class Accepted:
    """A storable paper, plus what was dropped or cut from the record to make it storable."""

    paper: Paper
    notes: tuple[str, ...] = ()


def clean_text(value: str) -> str:
    """`value` without the characters a store or an XML document refuses."""
    return _UNSTORABLE.sub("", value)


def id_problem(value: object) -> str | None:
    """Why `value` cannot be a paper id (it becomes a URL path segment), or None when it can."""
    if not isinstance(value, str) or not value:
        return "the record has no id"
    if len(value) > MAX_ID_CHARS:
        return f"id is {len(value)} characters, over {MAX_ID_CHARS}"
    bad = _ID_FORBIDDEN.search(value)
    if bad:
        return f"id {value[:80]!r} contains {bad.group()!r} (no whitespace, control characters, '#', '?' or '\\')"
    if any(segment in ("", ".", "..") for segment in value.split("/")):
        return f"id {value[:80]!r} has an empty, '.' or '..' path segment"
    return None


def date_bounds(field: str, today: date) -> tuple[date, date]:
    """The dates `field` may hold; outside them it is dropped."""
    slack = LISTING_SLACK if field in ("announced", "featured") else PUBLISHED_SLACK
    return MIN_DATE, today + slack


_bounds = functools.lru_cache(maxsize=16)(date_bounds)  # called four times per record with the same day


def _text(paper: Paper, name: str, notes: list[str]) -> str:
    value = getattr(paper, name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TypeError(f"{name} is {type(value).__name__}, not text")
    if _UNSTORABLE.search(value):
        value = clean_text(value)
    cap = TEXT_CAPS.get(name)
    if cap is not None and len(value) > cap:
        notes.append(f"{name} cut from {len(value):,} to {cap:,} characters")
        value = value[:cap]
    return value


def _names(paper: Paper, name: str, cap: int, each: int, notes: list[str]) -> list[str]:
    values = getattr(paper, name)
    if values is None:
        return []
    if isinstance(values, str) or not isinstance(values, (list, tuple)):
        raise TypeError(f"{name} is {type(values).__name__}, not a list of names")
    if (
        len(values) <= cap
        and all(item.__class__ is str and 0 < len(item) <= each and item == item.strip() for item in values)
        and not _UNSTORABLE.search("\n".join(values))
    ):
        return list(values)  # the common case: already clean
    out: list[str] = []
    for item in values:
        if not isinstance(item, str):
            raise TypeError(f"{name} holds a {type(item).__name__}, not text")
        item = clean_text(item).strip()[:each]
        if item:
            out.append(item)
    if len(out) > cap:
        notes.append(f"{name} cut from {len(out):,} to {cap:,}")
        out = out[:cap]
    return out


def _date(paper: Paper, name: str, today: date, notes: list[str]) -> date | None:
    value: Any = getattr(paper, name)
    if value is None:
        return None
    if isinstance(value, datetime):
        value = value.date()
    if not isinstance(value, date):
        notes.append(f"{name} {str(value)[:40]!r} is not a date; stored without it")
        return None
    low, high = _bounds(name, today)
    if not low <= value <= high:
        notes.append(f"{name} {value.isoformat()} is outside {low.isoformat()}..{high.isoformat()}; stored without it")
        return None
    return value


def _int(paper: Paper, name: str, low: int, high: int, notes: list[str]) -> int | None:
    value: Any = getattr(paper, name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        notes.append(f"{name} {str(value)[:40]!r} is not a whole number; stored without it")
        return None
    if not low <= value <= high:
        notes.append(f"{name} {value} is outside {low}..{high}; stored without it")
        return None
    return value


def _count(value: Any, notes: list[str]) -> int:
    """A vote count bounded to 0..MAX_INT: a negative or huge count is clamped, not lost."""
    if isinstance(value, bool) or not isinstance(value, int):
        if value is not None:
            notes.append(f"upvotes {str(value)[:40]!r} is not a whole number; stored as 0")
        return 0
    bounded = max(0, min(value, MAX_INT))
    if bounded != value:
        notes.append(f"upvotes {value} bounded to {bounded}")
    return bounded


def _url(paper: Paper, name: str, notes: list[str]) -> str:
    value: Any = getattr(paper, name)
    if not value:
        return ""
    if isinstance(value, str) and len(value) <= MAX_URL_CHARS and _PLAIN_URL.match(value):
        return value  # the common case, decided without urlsplit (half of this module's time)
    safe = safe_url(value)
    if not safe:
        notes.append(f"{name} {str(value)[:60]!r} is not an http(s) link; stored without it")
    return clean_text(safe)


def normalise(paper: Paper, origin: str, today: date | None = None) -> Accepted | Rejected:
    """Check and clean one parsed record (in place): what the store may hold, or why it may not hold it."""
    today = today or date.today()
    if not isinstance(paper, Paper):
        return Rejected(origin, f"not a paper record ({type(paper).__name__})")
    problem = id_problem(paper.id)
    if problem:
        return Rejected(origin, problem)
    notes: list[str] = []
    texts = [getattr(paper, name) for name in _TEXT_FIELDS]
    if (
        all(
            value.__class__ is str and len(value) <= TEXT_CAPS[name]
            for name, value in zip(_TEXT_FIELDS, texts, strict=True)
        )
        and not _UNSTORABLE.search("".join(texts))
        and paper.title.strip()
    ):
        # the common case, one regex pass over all text fields: only lists, dates, numbers and links to check
        try:
            paper.authors = _names(paper, "authors", MAX_AUTHORS, MAX_AUTHOR_CHARS, notes)
            paper.categories = _names(paper, "categories", MAX_CATEGORIES, MAX_CATEGORY_CHARS, notes)
        except TypeError as exc:
            return Rejected(origin, f"{paper.id}: {exc}")
        return _check_values(paper, today, notes)
    try:
        title = _text(paper, "title", notes)
        if not title.strip():
            return Rejected(origin, f"{paper.id}: record has no title")
        values = {
            "title": title,
            "abstract": _text(paper, "abstract", notes),
            "comment": _text(paper, "comment", notes),
            "venue": _text(paper, "venue", notes),
            "doi": _text(paper, "doi", notes),
            "source": _text(paper, "source", notes),
            "source_id": _text(paper, "source_id", notes),
            "authors": _names(paper, "authors", MAX_AUTHORS, MAX_AUTHOR_CHARS, notes),
            "categories": _names(paper, "categories", MAX_CATEGORIES, MAX_CATEGORY_CHARS, notes),
        }
        for field, value in values.items():  # in place: the parsed record belongs to ingest alone
            setattr(paper, field, value)
    except TypeError as exc:
        return Rejected(origin, f"{paper.id}: {exc}")
    return _check_values(paper, today, notes)


def _check_values(paper: Paper, today: date, notes: list[str]) -> Accepted:
    """Dates, numbers and links: wrong ones are dropped (with a note), never a reason to lose the paper."""
    paper.published = _date(paper, "published", today, notes)
    paper.updated = _date(paper, "updated", today, notes)
    paper.announced = _date(paper, "announced", today, notes)
    paper.featured = _date(paper, "featured", today, notes)
    paper.year = _int(paper, "year", MIN_YEAR, today.year + YEAR_SLACK, notes)
    paper.version = _int(paper, "version", 1, MAX_VERSION, notes)
    paper.upvotes = _count(paper.upvotes, notes)
    paper.abs_url = _url(paper, "abs_url", notes)
    paper.pdf_url = _url(paper, "pdf_url", notes)
    paper.code_url = code_links.extract(paper.abstract, paper.comment)
    return Accepted(paper, tuple(f"{paper.id}: {note}" for note in notes))
