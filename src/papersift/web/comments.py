"""Discussion on paper pages and in the JSON API: post, reply, edit, delete, an admin's hide.

The page forms work without JavaScript (POST, then a redirect to the comment); a refused form (too long,
too fast, an expired session) shows a page with the reader's text kept, so nothing typed is lost.
Writes carry the session's CSRF token like every other form and API write. New comments and edits are
rate limited per user and per client address (the `limits` counters of `web.ratelimit`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import RedirectResponse
from markupsafe import Markup
from pydantic import BaseModel, Field
from starlette.responses import Response

from papersift.errors import PapersiftError, QueryError, RateLimited
from papersift.models import Paper
from papersift.store.accounts import User
from papersift.store.comments import MAX_CHARS, Comment, CommentNotFound, NotYourComment, Thread, check_body
from papersift.web import STATUS, auth, for_reader, markdown
from papersift.web.api import MAX_PAGE, THROTTLED, HideIn, SiteDep, error_responses, visible_paper
from papersift.web.ratelimit import client_ip, limiter_for
from papersift.web.render import Renderer, paper_path
from papersift.web.site import Site

# Per user: a burst of replies in a lively thread, not a flood. Per address: several people behind one
# lab's NAT. Edits count too (an edit can replace a comment with spam as well as a new one can).
PER_USER = ("5/minute", "60/hour")
PER_ADDRESS = ("15/minute", "200/hour")
MAX_ID = 2**31 - 1  # PostgreSQL's INTEGER
CommentId = Annotated[int, Path(ge=1, le=MAX_ID, description="A comment's id")]
BODY_LIMIT = 10 * MAX_CHARS  # beyond this the request is refused unread; up to it, `check_body` explains
DELETED, HIDDEN = "[deleted]", "[hidden by a moderator]"

ERRORS = error_responses(
    (400, "Malformed request (e.g. a body that is not JSON)"),
    (401, "Not signed in"),
    (403, "Forbidden: bad CSRF token, not the comment's author, or not an admin"),
    (404, "No such paper or comment"),
    (422, "Bad parameter, or a comment that is empty or too long"),
)
api_router = APIRouter(prefix="/api", tags=["comments"], responses=ERRORS)
router = APIRouter(include_in_schema=False)


# -- shared by the API and the pages ------------------------------------------------------------------


def throttle(request: Request, user: User) -> None:
    """Count a new comment or an edit for the user and the address; 429 (nothing counted) when over."""
    limiter = limiter_for(request)
    counters = [(f"comment-user:{user.id}", rule) for rule in PER_USER]
    counters += [(f"comment-ip:{client_ip(request)}", rule) for rule in PER_ADDRESS]
    message = "you are commenting faster than the site allows"
    for key, rule in counters:  # all checked first, so a refusal under one rule counts under none
        limiter.check(key, rule, message)
    for key, rule in counters:
        limiter.hit(key, rule, message)


def _moderator(request: Request, site: Site) -> bool:
    user = auth.current_user(request, site)
    return bool(user and user.is_admin)


def _placeholder(comment: Comment, moderator: bool) -> str:
    if comment.deleted:
        return DELETED
    return HIDDEN if comment.hidden and not moderator else ""


# -- the JSON API -------------------------------------------------------------------------------------


class CommentOut(BaseModel):
    id: int
    paper_id: str
    parent_id: int | None = Field(description="The top-level comment this replies to, or null")
    author: str | None = Field(description="The author's user name; null for deleted or hidden comments")
    body: str = Field(description="The Markdown as written; '' for a deleted or hidden comment")
    html: str = Field(description="The Markdown rendered and sanitised; '' for a deleted or hidden comment")
    created_at: datetime
    edited_at: datetime | None
    deleted: bool
    hidden: bool = Field(description="Hidden by an admin (only admins see the text)")
    replies: list[CommentOut] = Field(default_factory=list, description="Replies, oldest first")


class CommentList(BaseModel):
    paper_id: str
    count: int = Field(description="Comments a reader can see (not deleted, not hidden), replies included")
    items: list[CommentOut] = Field(description="Top-level comments, oldest first, with their replies")
    limit: int
    offset: int
    next_offset: int | None


class CommentIn(BaseModel):
    body: str = Field(max_length=BODY_LIMIT, description=f"Markdown, at most {MAX_CHARS:,} characters")
    parent_id: int | None = Field(
        default=None, ge=1, le=MAX_ID, description="Reply to this comment (a reply to a reply joins its thread)"
    )


class CommentEdit(BaseModel):
    body: str = Field(max_length=BODY_LIMIT, description=f"Markdown, at most {MAX_CHARS:,} characters")


def comment_out(comment: Comment, moderator: bool, replies: list[Comment] | None = None) -> CommentOut:
    gone = bool(_placeholder(comment, moderator))
    return CommentOut(
        id=comment.id,
        paper_id=comment.paper_id,
        parent_id=comment.parent_id,
        author=None if gone else comment.username,
        body="" if gone else comment.body,
        html="" if gone else str(markdown.render(comment.body)),
        created_at=comment.created_at,
        edited_at=comment.edited_at,
        deleted=comment.deleted,
        hidden=comment.hidden,
        replies=[comment_out(r, moderator) for r in replies or []],
    )


def _writer(request: Request, site: Site) -> User:
    user = auth.require_user(request, site)
    auth.check_csrf(request, None)
    return user


@api_router.get("/papers/{paper_id:path}/comments", response_model=CommentList, summary="A paper's discussion")
def list_comments(
    request: Request,
    site: SiteDep,
    paper_id: str,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000)] = 0,
) -> CommentList:
    paper = visible_paper(request, site, paper_id)
    moderator = _moderator(request, site)
    threads = site.comments.threads(paper.id, moderator)
    page = threads[offset : offset + limit]
    return CommentList(
        paper_id=paper.id,
        count=site.comments.counts([paper.id]).get(paper.id, 0),
        items=[comment_out(t.comment, moderator, t.replies) for t in page],
        limit=limit,
        offset=offset,
        next_offset=offset + limit if offset + limit < len(threads) else None,
    )


@api_router.post(
    "/papers/{paper_id:path}/comments",
    response_model=CommentOut,
    status_code=201,
    responses=THROTTLED,
    summary="Comment on a paper, or reply to a comment",
)
def post_comment(request: Request, site: SiteDep, paper_id: str, body: CommentIn) -> CommentOut:
    user = _writer(request, site)
    paper = visible_paper(request, site, paper_id)
    check_body(body.body)  # a refused text does not use up the reader's allowance
    throttle(request, user)
    return comment_out(site.comments.add(paper.id, user.id, body.body, body.parent_id), user.is_admin)


@api_router.patch(
    "/comments/{comment_id}", response_model=CommentOut, responses=THROTTLED, summary="Edit your own comment"
)
def edit_comment(request: Request, site: SiteDep, comment_id: CommentId, body: CommentEdit) -> CommentOut:
    user = _writer(request, site)
    check_body(body.body)
    throttle(request, user)
    return comment_out(site.comments.edit(comment_id, user.id, body.body), user.is_admin)


@api_router.delete("/comments/{comment_id}", status_code=204, summary="Delete your own comment")
def delete_comment(request: Request, site: SiteDep, comment_id: CommentId) -> None:
    user = _writer(request, site)
    site.comments.delete(comment_id, user.id)


@api_router.post("/comments/{comment_id}/hide", response_model=CommentOut, summary="Hide or show a comment (admin)")
def hide_comment(request: Request, site: SiteDep, comment_id: CommentId, body: HideIn) -> CommentOut:
    auth.require_admin(request, site)
    auth.check_csrf(request, None)
    return comment_out(site.comments.set_hidden(comment_id, body.hidden), True)


# -- the paper page -----------------------------------------------------------------------------------


@dataclass(slots=True)
class CommentView:
    """One comment as the page draws it."""

    id: int
    author: str | None
    created_at: datetime
    edited: bool
    html: Markup
    placeholder: str  # "[deleted]" or "[hidden by a moderator]" instead of the text, else ''
    hidden: bool
    mine: bool
    body: str  # the Markdown, for the author's edit form
    replies: list[CommentView] = field(default_factory=list)


def _view(comment: Comment, user: User | None, replies: list[Comment] | None = None) -> CommentView:
    moderator = bool(user and user.is_admin)
    placeholder = _placeholder(comment, moderator)
    mine = bool(user and not comment.deleted and comment.user_id == user.id)
    return CommentView(
        id=comment.id,
        author=None if placeholder else comment.username,
        created_at=comment.created_at,
        edited=comment.edited_at is not None,
        html=Markup("") if placeholder else markdown.render(comment.body),
        placeholder=placeholder,
        hidden=comment.hidden,
        mine=mine,
        body=comment.body if mine else "",
        replies=[_view(r, user, None) for r in replies or []],
    )


def page_context(request: Request, site: Site, paper: Paper) -> dict[str, Any]:
    """What the paper page's discussion block needs: the threads as this reader sees them, and the count."""
    user = auth.current_user(request, site)
    threads: list[Thread] = site.comments.threads(paper.id, bool(user and user.is_admin))
    return {
        "threads": [_view(t.comment, user, t.replies) for t in threads],
        "comment_count": site.comments.counts([paper.id]).get(paper.id, 0),
        "comment_limit": MAX_CHARS,
        "comments_path": _comments_path(paper),
    }


def _comments_path(paper: Paper) -> str:
    """The discussion's address without the proxy prefix (a sign-in `next`, which the redirect prefixes)."""
    return f"/papers/{paper_path(paper.id)}#comments"


def _to(request: Request, paper_id: str, anchor: str) -> RedirectResponse:
    root = request.scope.get("root_path", "").rstrip("/")
    return RedirectResponse(f"{root}/papers/{paper_path(paper_id)}#{anchor}", status_code=303)


def _refused(
    request: Request, site: Site, exc: PapersiftError, paper: Paper, text: str, action: str, **hidden: str
) -> Response:
    """The form again, with the reader's text and what went wrong (never a lost comment)."""
    status = next((STATUS[c][0] for c in type(exc).__mro__ if c in STATUS), 400)
    if isinstance(exc, auth.AuthRequired):
        message = "Your session ended: sign in again (in another tab), then send your text, kept below."
    else:
        message = for_reader(status, str(exc))
    renderer: Renderer = request.app.state.renderer
    context = {
        "user": auth.current_user(request, site),
        "csrf": auth.csrf_token(request),
        "q": "",
        "message": message,
        "paper": paper,
        "text": text[:BODY_LIMIT],
        "action": action,
        "hidden": hidden,
        "comment_limit": MAX_CHARS,
        "comments_path": _comments_path(paper),
    }
    page = renderer.render(request, "comment_form.html", context, status)
    if isinstance(exc, RateLimited):
        page.headers["Retry-After"] = str(exc.retry_after)
    return page


FormBody = Annotated[str, Form(max_length=BODY_LIMIT)]
FormText = Annotated[str, Form(max_length=300)]


def _reply_to(value: str) -> int | None:
    if not value.strip():
        return None
    if not value.strip().isdigit() or not 1 <= int(value) <= MAX_ID:
        raise QueryError("that reply does not point at a comment; reload the page and try again")
    return int(value)


@router.post("/papers/{paper_id:path}/comments")
def post_form(
    request: Request,
    site: SiteDep,
    paper_id: str,
    body: FormBody = "",
    parent_id: FormText = "",
    csrf_token: FormText = "",
) -> Response:
    paper = visible_paper(request, site, paper_id)
    action = f"/papers/{paper_path(paper.id)}/comments"
    try:
        user = auth.require_user(request, site)
        auth.check_csrf(request, csrf_token)
        check_body(body)
        reply_to = _reply_to(parent_id)
        throttle(request, user)
        comment = site.comments.add(paper.id, user.id, body, reply_to)
    except (QueryError, RateLimited, CommentNotFound, auth.Forbidden, auth.AuthRequired) as exc:
        return _refused(request, site, exc, paper, body, action, parent_id=parent_id)
    return _to(request, paper.id, f"c{comment.id}")


@router.post("/comments/{comment_id}/edit")
def edit_form(
    request: Request, site: SiteDep, comment_id: CommentId, body: FormBody = "", csrf_token: FormText = ""
) -> Response:
    comment = site.comments.get(comment_id)
    paper = visible_paper(request, site, comment.paper_id)
    try:
        user = auth.require_user(request, site)
        auth.check_csrf(request, csrf_token)
        check_body(body)
        throttle(request, user)
        site.comments.edit(comment_id, user.id, body)
    except (QueryError, RateLimited, CommentNotFound, NotYourComment, auth.Forbidden, auth.AuthRequired) as exc:
        return _refused(request, site, exc, paper, body, f"/comments/{comment_id}/edit")
    return _to(request, paper.id, f"c{comment_id}")


@router.post("/comments/{comment_id}/delete")
def delete_form(request: Request, site: SiteDep, comment_id: CommentId, csrf_token: FormText = "") -> Response:
    user = auth.require_user(request, site)
    auth.check_csrf(request, csrf_token)
    comment = site.comments.get(comment_id)
    site.comments.delete(comment_id, user.id)
    return _to(request, comment.paper_id, "comments")


@router.post("/comments/{comment_id}/hide")
def hide_form(
    request: Request, site: SiteDep, comment_id: CommentId, csrf_token: FormText = "", hidden: FormText = "1"
) -> Response:
    auth.require_admin(request, site)
    auth.check_csrf(request, csrf_token)
    comment = site.comments.set_hidden(comment_id, hidden == "1")
    return _to(request, comment.paper_id, f"c{comment_id}")
