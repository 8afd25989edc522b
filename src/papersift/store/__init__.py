"""The store: the only module that speaks SQL. SQLite by default, PostgreSQL for multi-user sites."""

from papersift.store.papers import Store, Writer

__all__ = ["Store", "Writer"]
