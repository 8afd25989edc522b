"""The JSON API under /api/: the same capabilities as the pages, for scripts and other front ends.

Lists are paginated with `limit` (at most 100) and `offset`; errors are `{"error": {"code", "message"}}`.
State changes need a signed-in session and its CSRF token in the X-CSRF-Token header
(returned by /api/auth/login and /api/me).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from papersift import feed, query_dates
from papersift.errors import PaperNotFound
from papersift.models import Paper
from papersift.search import Filters
from papersift.store.accounts import User
from papersift.submit import submit_arxiv
from papersift.web import auth
from papersift.web.site import Site

MAX_PAGE = 100
Day = date  # a field below is named `date`
DayParam = Annotated[str, Query(max_length=10, description="YYYY-MM-DD")]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]
Offset = Annotated[int, Query(ge=0, le=10_000)]


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


def error_responses(*declared: tuple[int, str]) -> dict[int | str, dict[str, object]]:
    """OpenAPI response declarations for error statuses, all in the one error shape."""
    return {status: {"model": ErrorBody, "description": text} for status, text in declared}


ERRORS = error_responses(
    (400, "Malformed request (e.g. a body that is not JSON)"),
    (401, "Not signed in"),
    (403, "Forbidden / bad CSRF token"),
    (404, "No such paper"),
    (422, "Bad parameter"),
)
THROTTLED = error_responses((429, "Too many attempts; the Retry-After header says when to try again"))
TAKEN = error_responses((409, "The user name is taken"))
router = APIRouter(prefix="/api", tags=["api"], responses=ERRORS)


class PaperOut(BaseModel):
    id: str
    title: str
    abstract: str
    authors: list[str]
    categories: list[str]
    published: date | None
    updated: date | None
    announced: date | None
    featured: date | None
    version: int | None
    doi: str
    venue: str
    year: int | None
    comment: str
    abs_url: str
    pdf_url: str
    code_url: str = Field(description="Code or project link found in the abstract or comment, or ''")
    first_seen: datetime | None
    source_upvotes: int = Field(description="Upvotes from the source (e.g. Hugging Face)")
    local_votes: int = Field(description="Upvotes cast on this site")
    votes: int = Field(description="source_upvotes + local_votes")
    comments: int = Field(0, description="Comments readers can see in this paper's discussion on the site")
    url: str = Field(description="This paper's page on the site")


class PaperList(BaseModel):
    items: list[PaperOut]
    limit: int
    offset: int
    next_offset: int | None


class SearchItem(PaperOut):
    relevance: float | None = Field(
        description="Absolute relevance the cut-off compares (query cosine + weighted share of query words held)"
    )
    weak: bool = Field(description="Below the relevance cut-off: a weaker match, listed after the main results")


class FacetCount(BaseModel):
    value: str = Field(description="A category, or a year; pass it as the category= or year= parameter")
    count: int


class SearchOut(BaseModel):
    items: list[SearchItem] = Field(description="Main results, then (weak=true) weaker matches once they end")
    limit: int
    offset: int
    next_offset: int | None
    total: int = Field(description="Papers holding every query word with these filters (the newest-first list)")
    categories: list[FacetCount] = Field(description="Category facet of those papers, most papers first")
    years: list[FacetCount] = Field(description="Year facet of those papers, newest first")
    unmatched: list[str] = Field(description="Query words no paper holds (they cannot contribute to any match)")


class DailyItemOut(PaperOut):
    pick: bool = Field(description="Picked for its day by the curation model or an admin (sort=curated)")
    pick_reason: str = Field(description="Why it was picked, in one line; '' when not a pick")


class DailyOut(PaperList):
    items: list[DailyItemOut]  # type: ignore[assignment]
    sort: str = Field(description="The order used: curated (picks first) or votes")
    date: Day | None
    view: str
    start: Day | None
    end: Day | None
    total: int
    previous: Day | None
    next: Day | None


class VoteOut(BaseModel):
    id: str
    voted: bool
    votes: int


class Credentials(BaseModel):
    username: str = Field(max_length=64)
    password: str = Field(max_length=256)


class PasswordChange(BaseModel):
    old_password: str = Field(max_length=256)
    new_password: str = Field(max_length=256)


class MeOut(BaseModel):
    username: str | None
    is_admin: bool
    csrf_token: str


class SubmitIn(BaseModel):
    id: str = Field(max_length=300, description="arXiv id or abs/pdf URL")


class SubmitOut(BaseModel):
    added: bool
    paper: PaperOut


class HideIn(BaseModel):
    hidden: bool = True


class FeatureIn(BaseModel):
    featured: bool = True


class FeatureOut(BaseModel):
    id: str
    featured: bool = Field(description="Featured by an admin: shown first in curated order and learned from")


def get_site(request: Request) -> Site:
    site: Site = request.app.state.site
    return site


SiteDep = Annotated[Site, Depends(get_site)]


def parse_day(value: str | None, name: str) -> date | None:
    """A YYYY-MM-DD parameter within the supported range (query_dates); else a 422 naming the parameter."""
    return query_dates.parse_day(value, name)


def paper_out(request: Request, paper: Paper, local_votes: int) -> PaperOut:
    root = request.scope.get("root_path", "").rstrip("/")
    data = {k: getattr(paper, k) for k in PaperOut.model_fields if hasattr(paper, k) and k != "url"}
    return PaperOut(
        **data,
        source_upvotes=paper.upvotes,
        local_votes=local_votes,
        votes=paper.upvotes + local_votes,
        url=f"{root}/papers/{quote(paper.id, safe='/:')}",
    )


def _with_comments(site: Site, items: list[PaperOut]) -> list[PaperOut]:
    """The papers' comment counts, one query for the whole list."""
    counts = site.comments.counts([it.id for it in items])
    for it in items:
        it.comments = counts.get(it.id, 0)
    return items


def visible_paper(request: Request, site: Site, paper_id: str) -> Paper:
    """A paper by id; hidden ones exist only for admins."""
    paper = site.store.get(paper_id[:300])
    if paper.hidden:
        user = auth.current_user(request, site)
        if user is None or not user.is_admin:
            raise PaperNotFound(paper_id)
    return paper


def _list(request: Request, site: Site, papers: list[Paper], limit: int, offset: int) -> PaperList:
    counts = site.accounts.counts([p.id for p in papers])
    items = _with_comments(site, [paper_out(request, p, counts.get(p.id, 0)) for p in papers])
    return PaperList(
        items=items, limit=limit, offset=offset, next_offset=offset + limit if len(items) >= limit else None
    )


def _mutating_user(request: Request, site: Site) -> User:
    user = auth.require_user(request, site)
    auth.check_csrf(request, None)
    return user


@router.get("/daily_papers", response_model=DailyOut, summary="Papers of a day, week or month, picks or votes first")
def daily_papers(
    request: Request,
    site: SiteDep,
    date: DayParam = "",
    view: feed.View = "day",
    category: Annotated[str, Query(max_length=32)] = "",
    limit: Limit = 50,
    offset: Offset = 0,
    sort: Annotated[
        feed.DailySort | None, Query(description="curated (model picks first) or votes; default curated on few votes")
    ] = None,
) -> DailyOut:
    page = feed.daily(
        site.store,
        site.accounts,
        parse_day(date, "date"),
        view,
        category=category,
        limit=limit,
        offset=offset,
        sort=sort,
        curation=site.curation,
    )
    outs = _with_comments(site, [paper_out(request, it.paper, it.local_votes) for it in page.items])
    items = [
        DailyItemOut(**out.model_dump(), pick=it.pick, pick_reason=it.pick_reason)
        for out, it in zip(outs, page.items, strict=True)
    ]
    more = offset + len(items) < page.total
    return DailyOut(
        items=items,
        sort=page.sort,
        limit=limit,
        offset=offset,
        next_offset=offset + limit if more else None,
        date=page.day,
        view=view,
        start=page.start,
        end=page.end,
        total=page.total,
        previous=page.previous,
        next=page.next,
    )


@router.get("/trending", response_model=PaperList, summary="Upvoted papers ranked with time decay")
def trending(request: Request, site: SiteDep, limit: Limit = 30) -> PaperList:
    s = site.settings
    items = feed.trending(site.store, site.accounts, gravity=s.trending_gravity, days=s.trending_days, limit=limit)
    outs = _with_comments(site, [paper_out(request, it.paper, it.local_votes) for it in items])
    return PaperList(items=outs, limit=limit, offset=0, next_offset=None)


@router.get("/papers/search", response_model=SearchOut, summary="Full-text search with filters, count and facets")
def search(
    request: Request,
    site: SiteDep,
    q: Annotated[str, Query(min_length=1, max_length=500)],
    date_from: Annotated[str, Query(alias="from", max_length=10)] = "",
    date_to: Annotated[str, Query(alias="to", max_length=10)] = "",
    category: Annotated[str, Query(max_length=32)] = "",
    venue: Annotated[str, Query(max_length=128)] = "",
    author: Annotated[str, Query(max_length=128)] = "",
    has_code: Annotated[bool, Query(description="Only papers with a code or project link")] = False,
    year: Annotated[int | None, Query(ge=1, le=9999, description="Only papers dated in this year")] = None,
    sort: Literal["relevance", "date"] = "relevance",
    limit: Limit = 20,
    offset: Annotated[int, Query(ge=0, le=1000)] = 0,
) -> SearchOut:
    filters = Filters(
        parse_day(date_from, "from"),
        parse_day(date_to, "to"),
        (category,) if category else (),
        venue,
        author,
        has_code=has_code,
    ).in_year(year)
    hits = site.search.search(q, limit, filters, sort, offset, weaker=True)
    counts = site.accounts.counts([h.paper.id for h in hits])
    papers = _with_comments(site, [paper_out(request, h.paper, counts.get(h.paper.id, 0)) for h in hits])
    items = [
        SearchItem(**out.model_dump(), relevance=h.relevance, weak=h.weak) for out, h in zip(papers, hits, strict=True)
    ]
    strong = sum(not h.weak for h in hits)
    facets = site.search.facets(q, filters)
    return SearchOut(
        items=items,
        limit=limit,
        offset=offset,
        next_offset=offset + limit if strong >= limit else None,
        total=facets.total,
        categories=[FacetCount(value=c, count=n) for c, n in facets.categories],
        years=[FacetCount(value=str(y), count=n) for y, n in facets.years],
        unmatched=site.search.unmatched(q),
    )


@router.get("/papers/{paper_id:path}/related", response_model=PaperList, summary="Papers like this one")
def related(
    request: Request, site: SiteDep, paper_id: str, limit: Annotated[int, Query(ge=1, le=50)] = 10
) -> PaperList:
    visible_paper(request, site, paper_id)
    return _list(request, site, [h.paper for h in site.search.related(paper_id, limit)], limit, 0)


@router.post("/papers/{paper_id:path}/upvote", response_model=VoteOut, summary="Upvote (idempotent)")
def upvote(request: Request, site: SiteDep, paper_id: str) -> VoteOut:
    user = _mutating_user(request, site)
    paper = visible_paper(request, site, paper_id)
    local = site.accounts.vote(user.id, paper.id, up=True)
    return VoteOut(id=paper.id, voted=True, votes=paper.upvotes + local)


@router.delete("/papers/{paper_id:path}/upvote", response_model=VoteOut, summary="Withdraw an upvote")
def unvote(request: Request, site: SiteDep, paper_id: str) -> VoteOut:
    user = _mutating_user(request, site)
    paper = visible_paper(request, site, paper_id)
    local = site.accounts.vote(user.id, paper.id, up=False)
    return VoteOut(id=paper.id, voted=False, votes=paper.upvotes + local)


@router.post("/papers/{paper_id:path}/hide", response_model=PaperOut, summary="Hide or unhide a paper (admin)")
def hide(request: Request, site: SiteDep, paper_id: str, body: HideIn) -> PaperOut:
    auth.require_admin(request, site)
    auth.check_csrf(request, None)
    with site.store.write() as writer:
        writer.set_hidden(paper_id, body.hidden)
    paper = site.store.get(paper_id)
    return _with_comments(site, [paper_out(request, paper, site.accounts.counts([paper.id]).get(paper.id, 0))])[0]


@router.post(
    "/papers/{paper_id:path}/feature", response_model=FeatureOut, summary="Feature or un-feature a paper (admin)"
)
def feature(request: Request, site: SiteDep, paper_id: str, body: FeatureIn) -> FeatureOut:
    user = auth.require_admin(request, site)
    auth.check_csrf(request, None)
    site.curation.set_pick(paper_id[:300], user.id, body.featured)
    return FeatureOut(id=paper_id[:300], featured=body.featured)


@router.get("/papers/{paper_id:path}", response_model=PaperOut, summary="One paper")
def paper(request: Request, site: SiteDep, paper_id: str) -> PaperOut:
    found = visible_paper(request, site, paper_id)
    return _with_comments(site, [paper_out(request, found, site.accounts.counts([found.id]).get(found.id, 0))])[0]


@router.post("/submit", response_model=SubmitOut, status_code=201, summary="Add a paper by arXiv id or URL")
def submit(request: Request, site: SiteDep, body: SubmitIn) -> SubmitOut:
    user = _mutating_user(request, site)
    result = submit_arxiv(site.store, site.settings, body.id)
    if result.added:
        site.accounts.record_submission(user.id, result.paper.id)
        site.changed()  # the index thread syncs it; the request does not wait
    return SubmitOut(added=result.added, paper=_with_comments(site, [paper_out(request, result.paper, 0)])[0])


def _me(request: Request, user: User | None) -> MeOut:
    return MeOut(
        username=user.username if user else None,
        is_admin=bool(user and user.is_admin),
        csrf_token=auth.csrf_token(request),
    )


@router.get("/me", response_model=MeOut, summary="Who is signed in, and the CSRF token for writes")
def me(request: Request, site: SiteDep) -> MeOut:
    return _me(request, auth.current_user(request, site))


@router.post(
    "/auth/signup",
    response_model=MeOut,
    status_code=201,
    responses={**THROTTLED, **TAKEN},
    summary="Create an account and sign in",
)
def signup(request: Request, site: SiteDep, body: Credentials) -> MeOut:
    return _me(request, auth.sign_up(request, site, body.username, body.password))


@router.post("/auth/login", response_model=MeOut, responses=THROTTLED, summary="Sign in (sets the session cookie)")
def login(request: Request, site: SiteDep, body: Credentials) -> MeOut:
    return _me(request, auth.sign_in(request, site, body.username, body.password))


@router.post(
    "/auth/password",
    response_model=MeOut,
    responses=THROTTLED,
    summary="Change the password; other sessions end, this one stays",
)
def change_password(request: Request, site: SiteDep, body: PasswordChange) -> MeOut:
    auth.check_csrf(request, None)
    return _me(request, auth.change_password(request, site, body.old_password, body.new_password))


@router.post("/auth/logout", status_code=204, summary="Sign out (every session of the user ends)")
def logout(request: Request, site: SiteDep) -> None:
    auth.check_csrf(request, None)
    auth.sign_out(request, site)
