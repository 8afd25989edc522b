"""RSS and Atom feeds of the daily list, trending, a saved search, a category and an author.

`/feeds/NAME.atom` and `/feeds/NAME.rss` serve the same papers; links are absolute (from
PAPERSIFT_BASE_URL when set, else the request), because a feed reader resolves nothing relative.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from papersift import digest, feed, syndication
from papersift.models import Paper
from papersift.search import Filters, Sort
from papersift.store import listing
from papersift.web.api import SiteDep, parse_day
from papersift.web.render import author_path
from papersift.web.site import Site

router = APIRouter(prefix="/feeds", include_in_schema=False)
Format = Literal["atom", "rss"]
ITEMS = 50
Short = Annotated[str, Query(max_length=64)]


def site_base(request: Request, site: Site) -> str:
    """The public root of the site, without a trailing slash."""
    return site.settings.base_url.rstrip("/") or str(request.base_url).rstrip("/")


def _respond(request: Request, site: Site, fmt: Format, title: str, page: str, papers: list[Paper]) -> Response:
    base = site_base(request, site)
    root = request.scope.get("root_path", "").rstrip("/")
    path = request.url.path[len(root) :] if root and request.url.path.startswith(root) else request.url.path
    self_url = base + path + (f"?{request.url.query}" if request.url.query else "")
    meta = syndication.FeedMeta(f"papersift: {title}", self_url, base + page, f"{title}, from papersift")
    urls = {p.id: f"{base}/papers/{quote(p.id, safe='/:')}" for p in papers}
    if fmt == "atom":
        return Response(syndication.atom(meta, papers, urls), media_type=syndication.ATOM_TYPE)
    return Response(syndication.rss(meta, papers, urls), media_type=syndication.RSS_TYPE)


@router.get("/daily.{fmt}")
def daily(
    request: Request,
    site: SiteDep,
    fmt: Format,
    date: Annotated[str, Query(max_length=10)] = "",
    view: feed.View = "day",
    category: Annotated[str, Query(max_length=32)] = "",
) -> Response:
    """The daily page's list as it opens (`date`, `view`, `category` as on `/`): the newest day by default."""
    page = feed.daily(site.store, site.accounts, parse_day(date, "date"), view, category=category, limit=ITEMS)
    day = page.day.isoformat() if page.day else "no papers yet"
    title = f"{'daily' if view == 'day' else view + 'ly'} papers{f' in {category}' if category else ''}, {day}"
    return _respond(
        request,
        site,
        fmt,
        title,
        "/" + (f"?{request.url.query}" if request.url.query else ""),
        [it.paper for it in page.items],
    )


@router.get("/trending.{fmt}")
def trending(request: Request, site: SiteDep, fmt: Format) -> Response:
    s = site.settings
    items = feed.trending(site.store, site.accounts, gravity=s.trending_gravity, days=s.trending_days, limit=ITEMS)
    return _respond(request, site, fmt, "trending papers", "/trending", [it.paper for it in items])


@router.get("/search.{fmt}")
def search(
    request: Request,
    site: SiteDep,
    fmt: Format,
    q: Annotated[str, Query(min_length=1, max_length=500)],
    category: Annotated[list[str] | None, Query(max_length=10)] = None,
    venue: Annotated[str, Query(max_length=128)] = "",
    author: Annotated[str, Query(max_length=128)] = "",
    date_from: Annotated[str, Query(alias="from", max_length=10)] = "",
    date_to: Annotated[str, Query(alias="to", max_length=10)] = "",
    has_code: bool = False,
    sort: Sort = "date",
) -> Response:
    """A saved search as a feed: newest matches first by default, so new papers show up on top. Only
    papers holding every query word are listed, whichever the order (a Scholar-style alert)."""
    cats = tuple(c for c in (category or []) if c)
    filters = Filters(parse_day(date_from, "from"), parse_day(date_to, "to"), cats, venue, author, has_code=has_code)
    hits = site.search.search(q, ITEMS, filters, sort, match="all")
    page = "/search?" + str(request.url.query)
    return _respond(request, site, fmt, f"search “{q}”", page, [h.paper for h in hits])


@router.get("/category/{category}.{fmt}")
def category(request: Request, site: SiteDep, category: str, fmt: Format) -> Response:
    """The last week of listings in one (primary) category, most upvoted first."""
    papers: list[Paper] = []
    latest = listing.latest_day(site.store)
    if latest is not None:
        start = latest - timedelta(days=6)
        rows, _ = listing.papers_between(site.store, site.accounts, start, latest, category=category, limit=ITEMS)
        papers = [p for p, _ in rows]
    return _respond(request, site, fmt, f"{category} papers", f"/?category={quote(category)}&view=week", papers)


@router.get("/author.{fmt}")
def author(request: Request, site: SiteDep, fmt: Format, name: Short) -> Response:
    """An author's papers, newest first: what the author page lists (a name no paper holds exactly
    matches as a substring, like the search filter)."""
    papers: list[Paper] = []
    if name.strip():
        papers = digest.author_papers(site.store, site.search, name, ITEMS)
    return _respond(request, site, fmt, f"papers by {name}", author_path(name), papers)
