"""A reader's library on the web: collections (pages, BibTeX, RSS/Atom, JSON API), saving from any card,
"not interested" marks, and the For you page and API.

Writes need a signed-in session and its CSRF token (form field or X-CSRF-Token header) and are rate
limited per reader (LIBRARY_WRITES); a private collection answers 404 to everyone but its owner, the
same answer as a collection that does not exist.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

import bibtexparser
from bibtexparser.model import Block
from fastapi import APIRouter, Form, Path, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from papersift import digest, feed
from papersift.errors import PapersiftError, QueryError, RateLimited
from papersift.export import bibtex_entry
from papersift.mail import Mailer, SmtpConfig
from papersift.models import Paper
from papersift.rank.for_you import ForYou, Window
from papersift.store.accounts import User
from papersift.store.library import MAX_NAME, Collection
from papersift.store.subscriptions import Topic
from papersift.web import auth, for_reader
from papersift.web.api import PaperOut, SiteDep, error_responses, paper_out, visible_paper
from papersift.web.feeds import _respond as feed_response
from papersift.web.pages import _redirect, _safe_next, render
from papersift.web.ratelimit import limiter_for
from papersift.web.site import Site
from papersift.web.subscriptions import _throttle as throttle_subscriptions
from papersift.web.subscriptions import letters_for

LIBRARY_WRITES = "120/minute"  # per reader: generous for clicking, a wall for a runaway script
router = APIRouter(include_in_schema=False)
api_router = APIRouter(
    prefix="/api",
    tags=["library"],
    responses=error_responses(
        (400, "Malformed request"),
        (401, "Not signed in"),
        (403, "Bad CSRF token"),
        (404, "No such paper or collection (a private collection is not found for others)"),
        (422, "Bad parameter"),
        (429, "Too many changes; the Retry-After header says when to try again"),
    ),
)
FormText = Annotated[str, Form(max_length=300)]
CollectionId = Annotated[int, Path(ge=1, le=2**31 - 1)]
Limit = Annotated[int, Query(ge=1, le=100)]


# -- shared by pages and API --------------------------------------------------------------------------


def _writer(request: Request, site: Site, csrf: str | None) -> User:
    """The signed-in reader allowed to change their library now (CSRF checked, rate limited)."""
    user = auth.require_user(request, site)
    auth.check_csrf(request, csrf)
    limiter_for(request).hit(f"library:{user.id}", LIBRARY_WRITES, "too many library changes; wait a minute")
    return user


def _viewer_id(request: Request, site: Site) -> int | None:
    user = auth.current_user(request, site)
    return user.id if user else None


def _visible(site: Site, ids: list[str]) -> list[Paper]:
    found = site.store.get_many(ids)
    return [found[i] for i in ids if i in found and not found[i].hidden]


def for_you(site: Site, user: User, collection: int | None, window: Window) -> ForYou | None:
    """The reader's ranking (None while it is being computed); a collection must be visible to them."""
    if collection is not None:
        site.library.get(collection, user.id)
    return site.recommender.get(user.id, collection, window)


# -- API ---------------------------------------------------------------------------------------------


class CollectionIn(BaseModel):
    name: str = Field(max_length=MAX_NAME * 2, description="1-100 characters; unique per reader")
    public: bool = False


class CollectionPatch(BaseModel):
    name: str | None = Field(default=None, max_length=MAX_NAME * 2)
    public: bool | None = None


class CollectionOut(BaseModel):
    id: int
    name: str
    owner: str
    public: bool
    papers: int
    url: str


class CollectionPage(CollectionOut):
    items: list[PaperOut]


class SaveIn(BaseModel):
    collection: int | None = Field(default=None, ge=1, le=2**31 - 1, description="Default: your 'Saved' collection")


class SavedOut(BaseModel):
    id: str
    saved: bool
    collections: list[int] = Field(description="Your collections holding the paper")


class MarkOut(BaseModel):
    id: str
    not_interested: bool


class RecommendationOut(BaseModel):
    paper: PaperOut
    score: float
    because: str = Field(description="Id of your paper it is closest to")
    because_title: str


class RecommendationsOut(BaseModel):
    ready: bool = Field(description="False while your ranking is being computed: ask again in a few seconds")
    window: Window
    start: date | None
    end: date | None
    library: int = Field(description="Papers the model learned from (saved and upvoted, or the collection's)")
    negatives: int
    items: list[RecommendationOut]


def _collection_out(request: Request, c: Collection) -> CollectionOut:
    root = request.scope.get("root_path", "").rstrip("/")
    return CollectionOut(
        id=c.id, name=c.name, owner=c.owner, public=c.public, papers=c.papers, url=f"{root}/collections/{c.id}"
    )


def _saved_out(site: Site, user: User, paper_id: str) -> SavedOut:
    held = site.library.holding(user.id, paper_id)
    return SavedOut(id=paper_id, saved=bool(held), collections=held)


@api_router.get("/collections", response_model=list[CollectionOut], summary="Your collections")
def api_collections(request: Request, site: SiteDep) -> list[CollectionOut]:
    user = auth.require_user(request, site)
    return [_collection_out(request, c) for c in site.library.collections_of(user.id, user.id)]


@api_router.post("/collections", response_model=CollectionOut, status_code=201, summary="Make a collection")
def api_create(request: Request, site: SiteDep, body: CollectionIn) -> CollectionOut:
    user = _writer(request, site, None)
    return _collection_out(request, site.library.create(user.id, body.name, body.public))


@api_router.get("/collections/{collection_id}", response_model=CollectionPage, summary="A collection and its papers")
def api_collection(request: Request, site: SiteDep, collection_id: CollectionId) -> CollectionPage:
    found = site.library.get(collection_id, _viewer_id(request, site))
    papers = _visible(site, site.library.paper_ids(found.id))
    counts = site.accounts.counts([p.id for p in papers])
    items = [paper_out(request, p, counts.get(p.id, 0)) for p in papers]
    return CollectionPage(**_collection_out(request, found).model_dump(), items=items)


@api_router.patch("/collections/{collection_id}", response_model=CollectionOut, summary="Rename or share")
def api_update(request: Request, site: SiteDep, collection_id: CollectionId, body: CollectionPatch) -> CollectionOut:
    user = _writer(request, site, None)
    return _collection_out(request, site.library.update(user.id, collection_id, body.name, body.public))


@api_router.delete("/collections/{collection_id}", status_code=204, summary="Delete a collection (papers stay)")
def api_delete(request: Request, site: SiteDep, collection_id: CollectionId) -> None:
    user = _writer(request, site, None)
    site.library.delete(user.id, collection_id)


@api_router.put("/collections/{collection_id}/papers/{paper_id:path}", response_model=SavedOut, summary="Add a paper")
def api_add(request: Request, site: SiteDep, collection_id: CollectionId, paper_id: str) -> SavedOut:
    user = _writer(request, site, None)
    paper = visible_paper(request, site, paper_id)
    site.library.save(user.id, collection_id, paper.id)
    return _saved_out(site, user, paper.id)


@api_router.delete(
    "/collections/{collection_id}/papers/{paper_id:path}", response_model=SavedOut, summary="Remove a paper"
)
def api_remove(request: Request, site: SiteDep, collection_id: CollectionId, paper_id: str) -> SavedOut:
    user = _writer(request, site, None)
    site.library.save(user.id, collection_id, paper_id[:300], saved=False)
    return _saved_out(site, user, paper_id[:300])


@api_router.post("/papers/{paper_id:path}/save", response_model=SavedOut, summary="Save a paper to a collection")
def api_save(request: Request, site: SiteDep, paper_id: str, body: SaveIn | None = None) -> SavedOut:
    user = _writer(request, site, None)
    paper = visible_paper(request, site, paper_id)
    target = body.collection if body and body.collection else site.library.default_collection(user.id).id
    site.library.save(user.id, target, paper.id)
    return _saved_out(site, user, paper.id)


@api_router.delete("/papers/{paper_id:path}/save", response_model=SavedOut, summary="Remove from all your collections")
def api_unsave(request: Request, site: SiteDep, paper_id: str) -> SavedOut:
    user = _writer(request, site, None)
    site.library.unsave(user.id, paper_id[:300])
    return _saved_out(site, user, paper_id[:300])


@api_router.post(
    "/papers/{paper_id:path}/not-interested", response_model=MarkOut, summary="Mark 'not interested' (a negative)"
)
def api_dismiss(request: Request, site: SiteDep, paper_id: str) -> MarkOut:
    user = _writer(request, site, None)
    paper = visible_paper(request, site, paper_id)
    site.library.dismiss(user.id, paper.id)
    return MarkOut(id=paper.id, not_interested=True)


@api_router.delete("/papers/{paper_id:path}/not-interested", response_model=MarkOut, summary="Withdraw the mark")
def api_undismiss(request: Request, site: SiteDep, paper_id: str) -> MarkOut:
    user = _writer(request, site, None)
    site.library.dismiss(user.id, paper_id[:300], dismissed=False)
    return MarkOut(id=paper_id[:300], not_interested=False)


@api_router.get(
    "/recommendations",
    response_model=RecommendationsOut,
    summary="For you: the newest papers ranked by a model of your library",
)
def api_recommendations(
    request: Request,
    site: SiteDep,
    window: Window = "day",
    collection: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="Learn from this collection only")] = None,
    limit: Limit = 20,
) -> RecommendationsOut:
    user = auth.require_user(request, site)
    result = for_you(site, user, collection, window)
    if result is None:
        return RecommendationsOut(ready=False, window=window, start=None, end=None, library=0, negatives=0, items=[])
    shown = result.items[:limit]
    counts = site.accounts.counts([r.paper.id for r in shown])
    items = [
        RecommendationOut(
            paper=paper_out(request, r.paper, counts.get(r.paper.id, 0)),
            score=round(r.score, 6),
            because=r.because.id,
            because_title=r.because.title,
        )
        for r in shown
    ]
    return RecommendationsOut(
        ready=True,
        window=window,
        start=result.start,
        end=result.end,
        library=result.library,
        negatives=result.negatives,
        items=items,
    )


# -- pages -------------------------------------------------------------------------------------------


def _cards(site: Site, user: User | None, papers: list[Paper]) -> dict[str, Any]:
    counts = site.accounts.counts([p.id for p in papers])
    items = [feed.FeedItem(p, counts.get(p.id, 0)) for p in papers]
    ids = [p.id for p in papers]
    voted = site.accounts.voted(user.id, ids) if user else set()
    saved = site.library.saved_among(user.id, ids) if user else set()
    return {"items": items, "voted": voted, "saved": saved}


@router.get("/collections")
def collections_page(request: Request, site: SiteDep) -> Response:
    user = auth.require_user(request, site)
    return render(request, site, "collections.html", collections=site.library.collections_of(user.id, user.id))


@router.post("/collections")
def create_collection(
    request: Request, site: SiteDep, name: FormText = "", public: FormText = "", csrf_token: FormText = ""
) -> Response:
    user = _writer(request, site, csrf_token)
    try:
        made = site.library.create(user.id, name, public == "1")
    except PapersiftError as exc:
        mine = site.library.collections_of(user.id, user.id)
        return render(request, site, "collections.html", status_code=422, collections=mine, message=str(exc))
    return _redirect(request, f"/collections/{made.id}")


@router.get("/collections/{collection_id}")
def collection_page(request: Request, site: SiteDep, collection_id: CollectionId) -> Response:
    user = auth.current_user(request, site)
    found = site.library.get(collection_id, user.id if user else None)
    papers = _visible(site, site.library.paper_ids(found.id))
    mine = user is not None and user.id == found.user_id
    return render(request, site, "collection.html", collection=found, mine=mine, **_cards(site, user, papers))


@router.post("/collections/{collection_id}/edit")
def edit_collection(
    request: Request,
    site: SiteDep,
    collection_id: CollectionId,
    name: FormText = "",
    public: FormText = "",
    csrf_token: FormText = "",
) -> Response:
    user = _writer(request, site, csrf_token)
    site.library.update(user.id, collection_id, name or None, public == "1")
    return _redirect(request, f"/collections/{collection_id}")


@router.post("/collections/{collection_id}/delete")
def delete_collection(
    request: Request, site: SiteDep, collection_id: CollectionId, csrf_token: FormText = ""
) -> Response:
    user = _writer(request, site, csrf_token)
    site.library.delete(user.id, collection_id)
    return _redirect(request, "/collections")


@router.get("/collections/{collection_id}/bibtex")
def collection_bibtex(request: Request, site: SiteDep, collection_id: CollectionId) -> Response:
    found = site.library.get(collection_id, _viewer_id(request, site))
    used: set[str] = set()
    entries: list[Block] = [bibtex_entry(p, used) for p in _visible(site, site.library.paper_ids(found.id))]
    text = bibtexparser.write_string(bibtexparser.Library(entries)) if entries else ""
    headers = {"Content-Disposition": f'attachment; filename="collection-{found.id}.bib"'}
    return Response(text, media_type="application/x-bibtex; charset=utf-8", headers=headers)


@router.get("/feeds/collections/{collection_id}.{fmt}")
def collection_feed(
    request: Request, site: SiteDep, collection_id: CollectionId, fmt: Literal["atom", "rss"]
) -> Response:
    # feed readers carry no session: only public collections have feeds
    found = site.library.get(collection_id, None)
    papers = _visible(site, site.library.paper_ids(found.id))[:100]
    title = f"{found.name} (a collection by {found.owner})"
    return feed_response(request, site, fmt, title, f"/collections/{found.id}", papers)


@router.post("/papers/{paper_id:path}/save")
def save(
    request: Request,
    site: SiteDep,
    paper_id: str,
    csrf_token: FormText = "",
    action: Annotated[Literal["save", "remove"], Form()] = "save",
    collection: Annotated[int | None, Form(ge=1, le=2**31 - 1)] = None,
    next: FormText = "/",
) -> Response:
    user = _writer(request, site, csrf_token)
    paper = visible_paper(request, site, paper_id)
    if action == "remove":
        if collection is None:
            site.library.unsave(user.id, paper.id)
        else:
            site.library.save(user.id, collection, paper.id, saved=False)
    else:
        site.library.save(user.id, collection or site.library.default_collection(user.id).id, paper.id)
    return _redirect(request, _safe_next(next))


@router.post("/papers/{paper_id:path}/not-interested")
def not_interested(
    request: Request,
    site: SiteDep,
    paper_id: str,
    csrf_token: FormText = "",
    action: Annotated[Literal["mark", "unmark"], Form()] = "mark",
    next: FormText = "/for-you",
) -> Response:
    user = _writer(request, site, csrf_token)
    paper = visible_paper(request, site, paper_id)
    site.library.dismiss(user.id, paper.id, dismissed=action == "mark")
    return _redirect(request, _safe_next(next))


@router.post("/for-you/subscribe")
def for_you_subscribe(
    request: Request,
    site: SiteDep,
    email: FormText = "",
    frequency: Annotated[Literal["daily", "weekly"], Form()] = "daily",
    max_papers: Annotated[int, Form(ge=1, le=digest.MAX_PAPERS)] = 10,
    csrf_token: FormText = "",
) -> Response:
    """E-mail me my For you papers: a digest subscription of the signed-in reader (double opt-in, like the
    others; its confirmation mail goes to the address given)."""
    user = _writer(request, site, csrf_token)
    throttle_subscriptions(request)  # the same per-address limits as every subscription request
    topic = Topic("foryou", str(user.id))
    try:
        mailer = Mailer(SmtpConfig.from_settings(site.settings), attempts=2, backoff=1.0)
        digest.subscribe(site.store, letters_for(site), mailer, email, topic, frequency, max_papers)
    except RateLimited:
        raise
    except PapersiftError as exc:
        status = 422 if isinstance(exc, QueryError) else 502
        return render(
            request,
            site,
            "for_you.html",
            status_code=status,
            **_for_you_context(request, site, user, "day", None),
            message=for_reader(status, str(exc)),
        )
    return render(
        request,
        site,
        "for_you.html",
        **_for_you_context(request, site, user, "day", None),
        message=f"Check {email.strip()} for a link to confirm your For you digest.",
    )


@router.get("/for-you")
def for_you_page(
    request: Request,
    site: SiteDep,
    window: Window = "day",
    collection: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> Response:
    user = auth.require_user(request, site)
    return render(request, site, "for_you.html", **_for_you_context(request, site, user, window, collection))


def _for_you_context(
    request: Request, site: Site, user: User, window: Window, collection: int | None
) -> dict[str, Any]:
    result = for_you(site, user, collection, window)
    chosen = site.library.get(collection, user.id) if collection is not None else None
    recs = result.items[:50] if result else []
    return {
        "result": result,
        "window": window,
        "chosen": chosen,
        "because": {r.paper.id: r.because for r in recs},
        "collections": site.library.collections_of(user.id, user.id),
        **_cards(site, user, [r.paper for r in recs]),
    }
