"""Add one paper by arXiv id or URL: fetch it from the arXiv API, ingest it, say what happened."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from papersift.errors import PaperNotFound, QueryError, SourceError
from papersift.ids import parse_arxiv_id
from papersift.ingest import ingest_records
from papersift.models import Paper
from papersift.settings import Settings
from papersift.sources.arxiv_api import ArxivAPISource, query_url
from papersift.store import Store


@dataclass(slots=True, frozen=True)
class Submitted:
    paper: Paper
    added: bool  # False: the store already had it, nothing was fetched


def arxiv_id_of(text: str) -> str:
    """The bare arXiv id in an id, 'arXiv:' string or abs/pdf URL; QueryError when there is none."""
    parsed = parse_arxiv_id(text.strip()[:300])
    if parsed is None:
        raise QueryError(
            "that is not an arXiv id or URL; paste something like 2501.01234 or https://arxiv.org/abs/2501.01234"
        )
    return parsed[0]


def submit_arxiv(store: Store, settings: Settings, text: str) -> Submitted:
    """Fetch and store the paper unless the store has it already. Network trouble is a SourceError
    whose message says the site could not reach arXiv, not a stack trace."""
    arxiv_id = arxiv_id_of(text)
    try:
        return Submitted(store.get(arxiv_id), added=False)
    except PaperNotFound:
        pass
    api = urlsplit(query_url(id_list=[arxiv_id], max_results=1))
    url = f"{settings.arxiv_api_url}?{api.query}"
    source = ArxivAPISource({"delay": "0", "retries": str(min(settings.http_retries, 2)), "retry_wait": "1"})
    try:
        ingest_records(store, source.fetch(url), batch_size=10)
    except SourceError as exc:
        raise SourceError(f"could not fetch {arxiv_id} from arXiv ({exc}); check the network and try again") from exc
    try:
        return Submitted(store.get(arxiv_id), added=True)
    except PaperNotFound:
        raise QueryError(f"arXiv has no paper {arxiv_id}; check the id") from None
