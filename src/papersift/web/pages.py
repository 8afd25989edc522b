"""Server-rendered pages: daily list, trending, search, paper page, submit, sign in/up.

Pages call the same services as the API; forms post with a CSRF token and redirect (POST/redirect/GET),
so reloading never repeats an action.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import bibtexparser
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.responses import HTMLResponse, Response

from papersift import feed
from papersift.errors import PapersiftError, QueryError, RateLimited, SourceError
from papersift.export import bibtex_entry
from papersift.search import Facets, Filters
from papersift.submit import submit_arxiv
from papersift.web import auth, comments, for_reader
from papersift.web.api import SiteDep, parse_day, visible_paper
from papersift.web.page_cache import PageCache
from papersift.web.render import Renderer, query_terms
from papersift.web.site import Site
from papersift.web.warmup import semantic_health

router = APIRouter(include_in_schema=False)
PER_PAGE = 50
# Search shows 25 per page: readers judge the first screenful, and each highlighted card costs ~0.2 ms,
# which under 8 concurrent readers doubled the page's latency at 50.
SEARCH_PER_PAGE = 25
PageNo = Annotated[int, Query(ge=1, le=200)]
Short = Annotated[str, Query(max_length=32)]
FormText = Annotated[str, Form(max_length=300)]


def render(request: Request, site: Site, name: str, status_code: int = 200, **context: Any) -> Response:
    """Render with what every page needs: the user, the CSRF token, the search box's query."""
    renderer: Renderer = request.app.state.renderer
    base = {"user": auth.current_user(request, site), "csrf": auth.csrf_token(request), "q": ""}
    return renderer.render(request, name, {**base, **context}, status_code)


def render_cached(
    request: Request, site: Site, name: str, key: Hashable, context: Callable[[], dict[str, Any]]
) -> Response:
    """A listing page from the page cache for signed-out readers; signed-in ones see their own votes."""
    if auth.current_user(request, site) is not None:
        return render(request, site, name, **context())
    cache: PageCache = request.app.state.page_cache
    renderer: Renderer = request.app.state.renderer
    full_key = (name, key, site.store.revisions(), datetime.now(UTC).date())

    def fresh(csrf: str) -> str:
        return renderer.html(request, name, {"user": None, "csrf": csrf, "q": "", "voted": set(), **context()})

    return HTMLResponse(cache.page(full_key, fresh, auth.csrf_token(request)))


def _redirect(request: Request, path: str) -> RedirectResponse:
    root = request.scope.get("root_path", "").rstrip("/")
    return RedirectResponse(root + path, status_code=303)


def _safe_next(value: str) -> str:
    """Only same-site paths: never an open redirect to another host."""
    return value if value.startswith("/") and not value.startswith("//") and "\\" not in value else "/"


@router.get("/healthz")
def healthz(request: Request) -> Response:
    site: Site = request.app.state.site
    try:
        revision = site.store.revision()
        pending = site.vectors_pending()
    except PapersiftError as exc:
        return JSONResponse({"status": "unavailable", "error": str(exc)}, status_code=503)
    except Exception:
        return JSONResponse({"status": "unavailable", "error": "store unreachable"}, status_code=503)
    problem = site.search_problem()  # e.g. damaged keyword index files, being rebuilt
    body = {"revision": revision, "vectors_pending": pending, "search": problem or "ok", **semantic_health(site)}
    if problem:
        return JSONResponse({"status": "degraded", **body}, status_code=503, headers={"Retry-After": "30"})
    return JSONResponse({"status": "ok", **body})


@router.get("/")
def daily(
    request: Request,
    site: SiteDep,
    date: Annotated[str, Query(max_length=10)] = "",
    view: feed.View = "day",
    category: Short = "",
    page: PageNo = 1,
    sort: feed.DailySort | None = None,
) -> Response:
    def context() -> dict[str, Any]:
        listing = feed.daily(
            site.store,
            site.accounts,
            parse_day(date, "date"),
            view,
            category=category,
            limit=PER_PAGE,
            offset=(page - 1) * PER_PAGE,
            sort=sort,
            curation=site.curation,
        )
        return {
            "listing": listing,
            "view": view,
            "category": category,
            "page": page,
            "sort": sort,
            **_votes(request, site, listing.items),
        }

    return render_cached(request, site, "daily.html", ("daily", date, view, category, page, sort), context)


def _votes(request: Request, site: Site, items: list[feed.FeedItem]) -> dict[str, Any]:
    """What the cards need besides the papers: the reader's votes, the comment counts, who submitted each."""
    user = auth.current_user(request, site)
    ids = [it.paper.id for it in items]
    if user is None:
        saved: set[str] = set()
        voted: set[str] = set()
    else:
        voted, saved = site.accounts.voted(user.id, ids), site.library.saved_among(user.id, ids)
    return {
        "voted": voted,
        "saved": saved,
        "comment_counts": site.comments.counts(ids),
        "submitters": site.accounts.submitters(ids),
    }


@router.get("/trending")
def trending(request: Request, site: SiteDep) -> Response:
    s = site.settings

    def context() -> dict[str, Any]:
        items = feed.trending(site.store, site.accounts, gravity=s.trending_gravity, days=s.trending_days, limit=50)
        return {"items": items, "gravity": s.trending_gravity, "days": s.trending_days, **_votes(request, site, items)}

    # scores decay with time as well as votes: a cached trending page lives at most a minute
    return render_cached(request, site, "trending.html", ("trending", int(time.time() // 60)), context)


@router.get("/search")
def search(
    request: Request,
    site: SiteDep,
    q: Annotated[str, Query(max_length=500)] = "",
    date_from: Annotated[str, Query(alias="from", max_length=10)] = "",
    date_to: Annotated[str, Query(alias="to", max_length=10)] = "",
    category: Short = "",
    venue: Annotated[str, Query(max_length=128)] = "",
    has_code: bool = False,
    year: Annotated[int | None, Query(ge=1, le=9999)] = None,
    sort: Literal["relevance", "date"] = "relevance",
    page: Annotated[int, Query(ge=1, le=50)] = 1,
) -> Response:
    form = {
        "from": date_from,
        "to": date_to,
        "category": category,
        "venue": venue,
        "has_code": "1" if has_code else "",
        "year": str(year or ""),
        "sort": sort,
    }
    items: list[feed.FeedItem] = []
    weaker: list[feed.FeedItem] = []
    found = Facets()
    unmatched: list[str] = []
    if q.strip():
        filters = Filters(
            parse_day(date_from, "from"),
            parse_day(date_to, "to"),
            (category,) if category else (),
            venue,
            has_code=has_code,
        ).in_year(year)
        hits = site.search.search(q, SEARCH_PER_PAGE, filters, sort, (page - 1) * SEARCH_PER_PAGE, weaker=True)
        counts = site.accounts.counts([h.paper.id for h in hits])
        items = [feed.FeedItem(h.paper, counts.get(h.paper.id, 0)) for h in hits if not h.weak]
        weaker = [feed.FeedItem(h.paper, counts.get(h.paper.id, 0)) for h in hits if h.weak]
        found, unmatched = site.search.facets(q, filters), site.search.unmatched(q)
    return render(
        request,
        site,
        "search.html",
        q=q,
        terms=query_terms(q),
        items=items,
        weaker=weaker,
        facets=found,
        unmatched=unmatched,
        form=form,
        page=page,
        per_page=SEARCH_PER_PAGE,
        filtered=any(v for k, v in form.items() if k != "sort"),
        warmup=site.warming_up() if q.strip() and sort == "relevance" else None,
        **_votes(request, site, items + weaker),
    )


@router.get("/papers/{paper_id:path}")
def paper(request: Request, site: SiteDep, paper_id: str) -> Response:
    found = visible_paper(request, site, paper_id)
    related = [h.paper for h in site.search.related(found.id, 8)]
    counts = site.accounts.counts([found.id, *(p.id for p in related)])
    item = feed.FeedItem(found, counts.get(found.id, 0))
    related_items = [feed.FeedItem(p, counts.get(p.id, 0)) for p in related]
    library = bibtexparser.Library([bibtex_entry(found)])
    bibtex = bibtexparser.write_string(library).strip()
    return render(
        request,
        site,
        "paper.html",
        item=item,
        related=related_items,
        bibtex=bibtex,
        featured_here=bool(site.curation.picked([found.id])),
        **_votes(request, site, [item, *related_items]),
        **comments.page_context(request, site, found),
    )


@router.post("/papers/{paper_id:path}/upvote")
def upvote(
    request: Request,
    site: SiteDep,
    paper_id: str,
    csrf_token: FormText = "",
    action: Annotated[Literal["up", "down"], Form()] = "up",
    next: FormText = "/",
) -> Response:
    user = auth.require_user(request, site)
    auth.check_csrf(request, csrf_token)
    found = visible_paper(request, site, paper_id)
    site.accounts.vote(user.id, found.id, up=action == "up")
    return _redirect(request, _safe_next(next))


@router.post("/papers/{paper_id:path}/hide")
def hide(request: Request, site: SiteDep, paper_id: str, csrf_token: FormText = "", hidden: FormText = "1") -> Response:
    auth.require_admin(request, site)
    auth.check_csrf(request, csrf_token)
    with site.store.write() as writer:
        writer.set_hidden(paper_id, hidden == "1")
    return _redirect(request, "/" if hidden == "1" else f"/papers/{paper_id}")


@router.post("/papers/{paper_id:path}/feature")
def feature(
    request: Request, site: SiteDep, paper_id: str, csrf_token: FormText = "", featured: FormText = "1"
) -> Response:
    user = auth.require_admin(request, site)
    auth.check_csrf(request, csrf_token)
    site.curation.set_pick(paper_id, user.id, featured == "1")
    return _redirect(request, f"/papers/{paper_id}")


@router.get("/submit")
def submit_form(request: Request, site: SiteDep) -> Response:
    auth.require_user(request, site)
    return render(request, site, "submit.html", message="", value="")


@router.post("/submit")
def submit(request: Request, site: SiteDep, arxiv: FormText = "", csrf_token: FormText = "") -> Response:
    user = auth.require_user(request, site)
    auth.check_csrf(request, csrf_token)
    try:
        result = submit_arxiv(site.store, site.settings, arxiv)
    except (QueryError, SourceError) as exc:
        status = 422 if isinstance(exc, QueryError) else 502
        message = for_reader(status, str(exc))  # not the fetch's URL or errno text
        return render(request, site, "submit.html", status_code=status, message=message, value=arxiv)
    if result.added:
        site.accounts.record_submission(user.id, result.paper.id)
        site.changed()  # the index thread syncs it; the request does not wait
    return _redirect(request, f"/papers/{result.paper.id}")


@router.get("/login")
def login_form(request: Request, site: SiteDep, next: Annotated[str, Query(max_length=300)] = "/") -> Response:
    return render(request, site, "login.html", mode="login", message="", next=_safe_next(next), username="")


@router.get("/signup")
def signup_form(request: Request, site: SiteDep, next: Annotated[str, Query(max_length=300)] = "/") -> Response:
    return render(request, site, "login.html", mode="signup", message="", next=_safe_next(next), username="")


def _account_post(
    request: Request, site: Site, mode: str, username: str, password: str, csrf_token: str, next: str
) -> Response:
    auth.check_csrf(request, csrf_token)
    try:
        if mode == "signup":
            auth.sign_up(request, site, username, password)
        else:
            auth.sign_in(request, site, username, password)
    except PapersiftError as exc:
        status = 401 if isinstance(exc, auth.BadCredentials) else 409 if "taken" in str(exc) else 422
        if isinstance(exc, RateLimited):
            status = 429
        page = render(
            request,
            site,
            "login.html",
            status_code=status,
            mode=mode,
            message=str(exc),
            next=_safe_next(next),
            username=username[:64],
        )
        if isinstance(exc, RateLimited):
            page.headers["Retry-After"] = str(exc.retry_after)
        return page
    return _redirect(request, _safe_next(next))


@router.post("/login")
def login(
    request: Request,
    site: SiteDep,
    username: FormText = "",
    password: FormText = "",
    csrf_token: FormText = "",
    next: FormText = "/",
) -> Response:
    return _account_post(request, site, "login", username, password, csrf_token, next)


@router.post("/signup")
def signup(
    request: Request,
    site: SiteDep,
    username: FormText = "",
    password: FormText = "",
    csrf_token: FormText = "",
    next: FormText = "/",
) -> Response:
    return _account_post(request, site, "signup", username, password, csrf_token, next)


@router.post("/logout")
def logout(request: Request, site: SiteDep, csrf_token: FormText = "") -> Response:
    auth.check_csrf(request, csrf_token)
    auth.sign_out(request, site)
    return _redirect(request, "/")
