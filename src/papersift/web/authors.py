"""Author pages and their API: an author's papers newest first, with their feeds and digest.

`/authors/NAME` takes the whole name as one path part (a '/' in it arrives as %2F and Starlette hands the
route the decoded name; the `path` converter keeps it). Names are compared by `store.authors.author_key`,
so a link made from any spelling of the same written name lands on the same papers.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from papersift import feed
from papersift.errors import PaperNotFound, PapersiftError, QueryError
from papersift.store import authors
from papersift.validate import MAX_AUTHOR_CHARS as MAX_NAME_CHARS
from papersift.web import pages
from papersift.web.api import Limit, Offset, PaperOut, SiteDep, error_responses, paper_out
from papersift.web.site import Site

router = APIRouter(include_in_schema=False)
api_router = APIRouter(prefix="/api/authors", tags=["api"])
PER_PAGE = 50
PageNo = Annotated[int, Query(ge=1, le=1000)]


class AuthorNotFound(PaperNotFound):
    """No visible paper lists the author: a 404 like any unknown id."""

    def __init__(self, name: str) -> None:
        PapersiftError.__init__(self, f"no paper lists the author {name[:100]!r}")


def _page(site: Site, name: str, limit: int, offset: int) -> authors.AuthorPage:
    """The author's page of papers (a name no store could hold, with NUL or a lone surrogate, lists nothing)."""
    if len(name) > MAX_NAME_CHARS:
        raise QueryError(f"an author name has at most {MAX_NAME_CHARS} characters")
    return authors.papers_by(site.store, name, limit, offset)


def _author_page(request: Request, site: Site, name: str, page: int) -> Response:
    found = _page(site, name, PER_PAGE, (page - 1) * PER_PAGE)
    counts = site.accounts.counts([p.id for p in found.papers])
    items = [feed.FeedItem(p, counts.get(p.id, 0)) for p in found.papers]
    context: dict[str, Any] = {"author": found, "items": items, "page": page, "per_page": PER_PAGE, "asked": name}
    status = 404 if found.total == 0 else 200
    return pages.render(request, site, "author.html", status, **context, **pages._votes(request, site, items))


@router.get("/authors")
def author_by_query(
    request: Request,
    site: SiteDep,
    name: Annotated[str, Query(max_length=MAX_NAME_CHARS)] = "",
    page: PageNo = 1,
) -> Response:
    """The same page for a name given as `?name=` (names a browser would resolve as '.' or '..')."""
    return _author_page(request, site, name, page)


@router.get("/authors/{name:path}")
def author(request: Request, site: SiteDep, name: str, page: PageNo = 1) -> Response:
    return _author_page(request, site, name, page)


class AuthorPapers(BaseModel):
    name: str = Field(description="The author's name as most of their papers write it")
    total: int = Field(description="How many visible papers list this author")
    items: list[PaperOut]
    limit: int
    offset: int
    next_offset: int | None


@api_router.get(
    "/{name:path}/papers",
    response_model=AuthorPapers,
    responses=error_responses((404, "No paper lists this author"), (422, "Bad parameter")),
    summary="An author's papers, newest first",
)
def author_papers(request: Request, site: SiteDep, name: str, limit: Limit = 50, offset: Offset = 0) -> AuthorPapers:
    """Papers whose author list holds `name` as written, compared after Unicode NFKC normalisation, case
    folding and whitespace collapsing (`Jürgen  SCHMIDHUBER` finds `Jürgen Schmidhuber`); URL-encode the
    name as one path segment (`/` as `%2F`)."""
    found = _page(site, name, limit, offset)
    if found.total == 0:
        raise AuthorNotFound(name)
    counts = site.accounts.counts([p.id for p in found.papers])
    items = [paper_out(request, p, counts.get(p.id, 0)) for p in found.papers]
    more = offset + len(items) < found.total
    return AuthorPapers(
        name=found.name,
        total=found.total,
        items=items,
        limit=limit,
        offset=offset,
        next_offset=offset + limit if more else None,
    )
