"""The one check of a date a reader types (a filter, a day to list): every edge parses dates here.

The range is what the rest of the pipeline can represent with room to spare: tantivy keeps dates as
nanoseconds since 1970 (1677-2262) and a week or month view adds days to the chosen one, which at
9999-12-31 overflows Python's `date`. Papers older than 1800 or after 2200 do not exist.
"""

from __future__ import annotations

from datetime import date

from papersift.errors import QueryError

MIN_DAY = date(1800, 1, 1)
MAX_DAY = date(2200, 12, 31)


def check_day(day: date, name: str) -> date:
    """`day` itself, or a QueryError naming the parameter when it lies outside MIN_DAY..MAX_DAY."""
    if not MIN_DAY <= day <= MAX_DAY:
        raise QueryError(f"{name}: {day.isoformat()} is out of range; use dates between {MIN_DAY} and {MAX_DAY}")
    return day


def parse_day(value: str | None, name: str) -> date | None:
    """A YYYY-MM-DD parameter; empty means none; anything else is a QueryError that names the parameter."""
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise QueryError(f"{name}: {value[:10]!r} is not a date like 2025-12-19") from None
    return check_day(day, name)
