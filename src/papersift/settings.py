"""Every setting in one place; each is also an environment variable `PAPERSIFT_<NAME>`.

A test (tests/test_settings.py) fails when a field here is not documented in the README.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PAPERSIFT_", extra="ignore")

    home: Path = Field(
        default=Path("~/.papersift"),
        description="Directory for the SQLite store, search indexes and model caches.",
    )
    database_url: str = Field(
        default="",
        description="SQLAlchemy URL of the store; empty means SQLite at $PAPERSIFT_HOME/papersift.db. "
        "For PostgreSQL: postgresql+psycopg://user:pass@host/db",
    )
    batch_size: int = Field(default=2000, ge=1, le=100_000, description="Records per ingest transaction.")
    max_record_bytes: int = Field(
        default=1 << 20, ge=1024, description="Largest single input record accepted, in bytes."
    )
    http_timeout: float = Field(default=60.0, gt=0, description="Seconds before a network request gives up.")
    http_retries: int = Field(default=5, ge=0, le=20, description="Retries of a transient network failure.")
    arxiv_api_delay: float = Field(
        default=3.0, ge=0, description="Seconds between arXiv API requests (arXiv asks for 3)."
    )

    @property
    def home_dir(self) -> Path:
        return self.home.expanduser()

    @property
    def store_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home_dir / 'papersift.db'}"

    @property
    def index_dir(self) -> Path:
        return self.home_dir / "index"
