"""Every setting in one place; each is also an environment variable `PAPERSIFT_<NAME>`.

A test (tests/test_settings.py) fails when a field here is not documented in the README.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

HOME_NAME = ".papersift"
STORE_FILE = "papersift.db"


def find_home(start: Path | None = None) -> Path | None:
    """The nearest `.papersift` holding a store in `start` (default: the working directory) or a parent
    directory, like git finds `.git`.

    Why: `make run` keeps its store in the repository's `.papersift` (one checkout, one site, nothing
    written outside it), and the README's `papersift search ...` run from that checkout must answer from
    the same store without flags. Searching upwards makes it work from any subdirectory too, while
    `--home` and PAPERSIFT_HOME still win (the CLI only asks when neither is given) and elsewhere the
    default stays ~/.papersift.
    """
    try:
        here = (start or Path.cwd()).resolve()
    except OSError:  # the working directory was removed under this shell: nothing to find
        return None
    for directory in (here, *here.parents):
        candidate = directory / HOME_NAME
        try:
            if (candidate / STORE_FILE).is_file():
                return candidate
        except OSError:  # a directory we may not look into
            continue
    return None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PAPERSIFT_", extra="ignore")

    home: Path = Field(
        default=Path("~/.papersift"),
        description="Directory for the SQLite store, search indexes and model caches. When neither this nor "
        "--home is given, the CLI uses the nearest .papersift holding a store in the working directory or a "
        "parent (where `make run` keeps its data), else ~/.papersift.",
    )
    database_url: str = Field(
        default="",
        description="SQLAlchemy URL of the store; empty means SQLite at $PAPERSIFT_HOME/papersift.db. "
        "For PostgreSQL: postgresql+psycopg://user:pass@host/db",
    )
    batch_size: int = Field(default=2000, ge=1, le=100_000, description="Records per ingest transaction.")
    busy_timeout: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="Seconds a write waits while another process holds the store's write lock before giving up "
        "(the web server waits at most 5 and answers 503 with Retry-After).",
    )
    max_record_bytes: int = Field(
        default=1 << 20, ge=1024, description="Largest single input record accepted, in bytes."
    )
    http_timeout: float = Field(default=60.0, gt=0, description="Seconds before a network request gives up.")
    http_retries: int = Field(default=5, ge=0, le=20, description="Retries of a transient network failure.")
    arxiv_api_delay: float = Field(
        default=3.0, ge=0, description="Seconds between arXiv API requests (arXiv asks for 3)."
    )
    embedder: str = Field(
        default="minilm-onnx-int8",
        description="Dense embedding model for hybrid search: minilm-onnx-int8 (packaged, offline), minilm-onnx, "
        "st:<sentence-transformers model name> (needs a network once), static:<path>, hash, or none for BM25 only.",
    )
    ray_address: str = Field(
        default="",
        description="Where `papersift index` embeds: empty in this process; `auto` starts a local Ray; an address "
        "(host:port of a cluster's head) joins that Ray cluster. `papersift index --ray [ADDRESS]` overrides it.",
    )
    ray_batch: int = Field(
        default=64,
        ge=1,
        le=10_000,
        description="Papers per Ray task: what a lost worker redoes; smaller costs more overhead per paper.",
    )
    embed_device: str = Field(
        default="cpu",
        pattern="^(cpu|cuda)$",
        description="Where the transformer embedder runs: cpu, or cuda (onnxruntime's CUDA provider; needs the gpu "
        "extra and an NVIDIA GPU, else commands fail saying so).",
    )
    vector_dtype: str = Field(
        default="i8",
        pattern="^(f32|f16|i8)$",
        description="Storage type of paper vectors in the HNSW index (i8 halves it; same SciFact nDCG as f16).",
    )
    fusion: str = Field(
        default="convex",
        pattern="^(rrf|convex)$",
        description="How keyword and dense rankings are combined: convex (weighted z-scores, tuned on SciFact train) "
        "or rrf.",
    )
    dense_weight: float = Field(
        default=0.2,
        ge=0,
        le=1,
        description="Weight of the paper-vector similarity in fusion; keyword gets 1 - dense - passage weights.",
    )
    passage_weight: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Weight of the best-matching passage's similarity in fusion (convex only).",
    )
    rrf_k: float = Field(default=60.0, gt=0, description="The k of reciprocal-rank fusion.")
    # Calibrated on SciFact *train* claims only (`papersift bench relevance` prints the sweep): the coverage
    # weight and threshold that leave the most train queries empty once their relevant papers are removed
    # while keeping >= 0.97 of the relevant papers in train top-10s. Test claims only measure these values.
    relevance_cutoff: float = Field(
        default=0.52,
        ge=-1,
        le=3,
        description="Relevance cut-off of hybrid search: a paper whose query cosine + coverage weight x share "
        "of query words held falls below it (and lacks a query word) is a 'weaker match', kept out of the main "
        "list, feeds and digests.",
    )
    cutoff_coverage_weight: float = Field(
        default=0.2, ge=0, le=2, description="Weight of the share of query words a paper holds in the cut-off."
    )
    workers: int = Field(
        default=1, ge=1, le=64, description="Processes `papersift serve` runs; 2 uses both cores of a small machine."
    )
    host: str = Field(default="127.0.0.1", description="Interface `papersift serve` listens on.")
    port: int = Field(default=8000, ge=0, le=65535, description="TCP port `papersift serve` listens on.")
    base_url: str = Field(
        default="",
        description="Public URL of the site, e.g. https://example.org/papers when behind a reverse proxy; "
        "its path becomes the root path and an https scheme makes cookies Secure.",
    )
    forwarded_allow_ips: str = Field(
        default="127.0.0.1",
        description="Comma-separated proxy addresses whose X-Forwarded-For/-Proto headers are trusted ('*' for any).",
    )
    secret_key: str = Field(
        default="",
        description="Key that signs session cookies; empty means one generated once and kept in the home.",
    )
    trending_gravity: float = Field(
        default=1.8, gt=0, le=5, description="Exponent of the trending time decay: higher forgets faster."
    )
    trending_days: int = Field(default=7, ge=1, le=365, description="Days of papers the trending list considers.")
    curate_every: float = Field(
        default=300.0,
        ge=0,
        description="Seconds between serve's background curation checks (retrain on new featured data, picks or "
        "votes, score new papers); 0 turns it off (then run `papersift curate train` from cron).",
    )
    arxiv_api_url: str = Field(
        default="https://export.arxiv.org/api/query",
        description="arXiv API endpoint used by the site's paper submission.",
    )
    smtp_host: str = Field(default="", description="SMTP server that sends digests; empty disables email.")
    smtp_port: int = Field(default=587, ge=1, le=65535, description="Port of the SMTP server.")
    smtp_security: str = Field(
        default="starttls",
        pattern="^(starttls|ssl|none)$",
        description="starttls (port 587), ssl (implicit TLS, port 465) or none (a local relay only).",
    )
    smtp_username: str = Field(default="", description="SMTP user name; empty means no authentication.")
    smtp_password: str = Field(default="", description="SMTP password.")
    smtp_from: str = Field(default="", description="From address of digests, e.g. 'papersift <papers@example.org>'.")

    @model_validator(mode="after")
    def _weights_leave_room_for_bm25(self) -> Settings:
        if self.dense_weight + self.passage_weight > 1:
            raise ValueError("PAPERSIFT_DENSE_WEIGHT + PAPERSIFT_PASSAGE_WEIGHT must be at most 1")
        return self

    @property
    def home_dir(self) -> Path:
        """The home as an absolute path: a relative `--home` names the same store, lock and indexes whatever
        the working directory of the process that later reads them (a server, a cron job)."""
        return self.home.expanduser().resolve()

    @property
    def store_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home_dir / STORE_FILE}"

    @property
    def index_dir(self) -> Path:
        return self.home_dir / "index"
