"""Exceptions a user can act on; the CLI and web edges turn them into messages and status codes."""

from __future__ import annotations


class PapersiftError(Exception):
    """Base class: every message says what went wrong and what to do about it."""


class ConfigError(PapersiftError):
    """A setting is missing or invalid."""


class StoreError(PapersiftError):
    """The store cannot be opened, migrated or written."""


class PaperNotFound(PapersiftError):
    """No paper with the given id exists in the store."""

    def __init__(self, paper_id: str) -> None:
        super().__init__(f"no paper with id {paper_id!r} in the store (try `papersift search` to find it)")
        self.paper_id = paper_id


class SourceError(PapersiftError):
    """A source could not be read or fetched: bad file, unknown format, network failure.

    When raised mid-ingest, `report` holds what was stored before the failure.
    """

    report: object | None = None


class RecordError(PapersiftError):
    """One input record is malformed; `origin` says where (file:line or URL#n)."""

    def __init__(self, origin: str, message: str) -> None:
        super().__init__(f"{origin}: {message}")
        self.origin = origin
        self.reason = message


class SearchIndexError(PapersiftError):
    """The search index is missing, stale or corrupt and could not be rebuilt."""


class QueryError(PapersiftError):
    """A search query or filter is invalid."""


class StoreBusy(StoreError):
    """Another process holds the store's write lock for longer than we wait; try again shortly."""

    retry_after = 5


class RateLimited(PapersiftError):
    """Too many attempts from one client or for one account/address; `retry_after` says when to retry."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))
