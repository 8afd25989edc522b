"""The web site and JSON API: `create_app(settings)` builds the ASGI app that `papersift serve` runs.

Domain errors (papersift.errors) become HTTP statuses here, at the edge: the JSON API answers
`{"error": {"code": ..., "message": ...}}`, pages render an error page; no stack trace reaches a client.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import quote, urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from papersift.errors import (
    PaperNotFound,
    PapersiftError,
    QueryError,
    RateLimited,
    SearchIndexError,
    SourceError,
    StoreBusy,
    StoreError,
)
from papersift.mail import MailError, MailRejected, UnsafeHeader
from papersift.settings import Settings
from papersift.store import Store
from papersift.store.accounts import UsernameTaken
from papersift.store.comments import CommentNotFound, NotYourComment
from papersift.store.engine import WEB_BUSY_TIMEOUT
from papersift.store.library import CollectionNotFound
from papersift.web.auth import AuthRequired, BadCredentials, Forbidden, site_secret
from papersift.web.logs import AccessLog
from papersift.web.page_cache import PageCache
from papersift.web.render import STATIC, Renderer
from papersift.web.site import Site

__all__ = ["app_from_environment", "create_app"]

log = logging.getLogger("papersift.web")

# most specific first: the first class in an exception's MRO found here decides its status
STATUS: dict[type[Exception], tuple[int, str]] = {
    PaperNotFound: (404, "not_found"),
    CommentNotFound: (404, "not_found"),
    NotYourComment: (403, "forbidden"),
    CollectionNotFound: (404, "not_found"),
    RateLimited: (429, "rate_limited"),
    StoreBusy: (503, "store_busy"),
    QueryError: (422, "invalid_request"),
    UsernameTaken: (409, "username_taken"),
    BadCredentials: (401, "bad_credentials"),
    AuthRequired: (401, "auth_required"),
    Forbidden: (403, "forbidden"),
    SourceError: (502, "upstream_unavailable"),
    MailRejected: (422, "address_refused"),  # the SMTP server refused the address for good
    UnsafeHeader: (422, "invalid_request"),
    MailError: (502, "mail_unavailable"),  # the SMTP server is down or unreachable: try later
    SearchIndexError: (503, "search_unavailable"),
    StoreError: (503, "store_unavailable"),
}
HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}


def root_path_of(settings: Settings) -> str:
    """The path prefix a reverse proxy serves the site under, from PAPERSIFT_BASE_URL."""
    return urlsplit(settings.base_url).path.rstrip("/") if settings.base_url else ""


def _route_path(request: Request) -> str:
    path: str = request.scope["path"]
    root: str = request.scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def is_api(request: Request) -> bool:
    return _route_path(request).startswith("/api/")


# What an error page tells a reader. The domain errors' messages are written for the operator at the CLI
# (`try papersift search`, store URLs, file paths, errno text); pages show them only for the statuses
# whose messages are about what the reader sent (a parameter, a taken name) and only when they carry
# nothing of the operator's.
READER_MESSAGES = {
    400: "We could not understand that request.",
    401: "Please sign in first.",
    403: "That is not allowed. If you were signing in or voting, reload the page and try again.",
    404: "We have no page at that address.",
    405: "That address only takes a form submission: go back and use the button on the page.",
    409: "That conflicts with something that already exists.",
    413: "That request was too large.",
    422: "Some of what you sent was not valid.",
    429: "Too many attempts: wait a minute, then try again.",
    500: "Something went wrong on our side. It has been noted; please try again later.",
    502: "A service we depend on did not answer. Please try again in a few minutes.",
    503: "The site is busy right now. Please try again in a minute.",
}
PAPER_NOT_FOUND = "We have no paper with that id. Searching for its title may find it."
_READER_SPECIFIC = frozenset({400, 401, 403, 409, 422, 429})  # messages about what the reader sent
_OPERATOR_TEXT = re.compile(  # an arXiv link is an example for the reader (`paste https://arxiv.org/abs/...`)
    r"papersift |`|://(?!arxiv\.org/)|sqlite|postgres|/home/|/tmp/|/var/|/srv/|errno|traceback|exception|\.py\b",
    re.IGNORECASE,
)
_ASIDE = re.compile(r"\s*\([^()]*\)")  # "could not fetch X from arXiv (<URL>: [Errno 111] ...); check the network"


def _readable(message: str) -> str | None:
    """`message` without the parenthesised asides that carry the operator's text, or None if it still does."""
    if not message or len(message) > 600:
        return None
    if _OPERATOR_TEXT.search(message):
        message = _ASIDE.sub(lambda m: "" if _OPERATOR_TEXT.search(m.group(0)) else m.group(0), message)
    return message if len(message) <= 300 and not _OPERATOR_TEXT.search(message) else None


def for_reader(status: int, message: str) -> str:
    """`message` for a form that failed with `status`, unless it carries the operator's text."""
    return _readable(message) or reader_message(status, "")


def reader_message(status: int, message: str) -> str:
    """The message an error page shows for `status`: the specific one only where it was written for readers."""
    readable = _readable(message) if status in _READER_SPECIFIC else None
    if readable:
        return readable
    if status in READER_MESSAGES:
        return READER_MESSAGES[status]
    return READER_MESSAGES[500] if status >= 500 else READER_MESSAGES[400]


def error_response(
    request: Request,
    status: int,
    code: str,
    message: str,
    retry_after: int | None = None,
    *,
    reader: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """One error shape for the API, one error page for browsers (with `reader`'s or a reader's message,
    never the operator's); 429 and 503 say when to come back."""
    if is_api(request):
        response: Response = JSONResponse({"error": {"code": code, "message": message}}, status_code=status)
    else:
        renderer: Renderer = request.app.state.renderer
        context = {"status": status, "message": reader or reader_message(status, message), "user": None}
        response = renderer.render(request, "error.html", context, status)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(PapersiftError)
    async def domain_error(request: Request, exc: Exception) -> Response:
        status, code = next((STATUS[c] for c in type(exc).__mro__ if c in STATUS), (400, "bad_request"))
        if isinstance(exc, AuthRequired) and not is_api(request):
            root = request.scope.get("root_path", "").rstrip("/")
            return RedirectResponse(f"{root}/login?next={quote(_route_path(request))}", status_code=303)
        if status >= 500:
            log.warning("%s %s: %s", request.method, _route_path(request), exc)
        retry_after = getattr(exc, "retry_after", None)
        reader = PAPER_NOT_FOUND if isinstance(exc, PaperNotFound) else None
        return error_response(
            request, status, code, str(exc), retry_after if status in (429, 503) else None, reader=reader
        )

    @app.exception_handler(OperationalError)
    async def store_unreachable(request: Request, exc: Exception) -> Response:
        # a locked SQLite file or a PostgreSQL server that went away: the client may simply retry
        log.warning("%s %s: store unavailable: %s", request.method, _route_path(request), exc)
        message = "the store is busy or unreachable; try again in a few seconds"
        return error_response(request, 503, "store_unavailable", message, StoreBusy.retry_after)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        parts = []
        for err in exc.errors()[:5]:
            where = ".".join(str(x) for x in err.get("loc", ())[1:]) or "request"
            parts.append(f"{where}: {err.get('msg', 'invalid')}")
        return error_response(request, 422, "invalid_parameter", "; ".join(parts)[:500])

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        message = "no such page" if exc.status_code == 404 else str(exc.detail)
        code = HTTP_CODES.get(exc.status_code, "error")
        return error_response(request, exc.status_code, code, message, headers=dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, _route_path(request))
        return error_response(request, 500, "internal", "something went wrong on our side; it has been logged")


def _refuse_get_on_write_routes(app: FastAPI) -> None:
    """GET on a route that only takes POST/DELETE answers 405 with `Allow`, even where a GET catch-all
    (`/papers/{paper_id:path}`) would otherwise read `X/upvote` as a paper id and answer 404."""
    methods_of: dict[str, set[str]] = {}

    def collect(routes: list[BaseRoute]) -> None:
        for route in routes:
            if isinstance(route, APIRoute):
                methods_of.setdefault(route.path, set()).update(route.methods or ())
            included = getattr(route, "original_router", None)  # FastAPI ≥ 0.16x keeps included routers whole
            if included is not None:
                collect(included.routes)

    collect(app.router.routes)
    guards: list[BaseRoute] = []
    for path, methods in methods_of.items():
        if "GET" in methods:
            continue
        allow = ", ".join(sorted(methods))

        async def refuse(request: Request, allow: str = allow) -> Response:
            raise StarletteHTTPException(405, "method not allowed", headers={"Allow": allow})

        guards.append(Route(path, refuse, methods=["GET"], include_in_schema=False))
    app.router.routes[:0] = guards


def app_from_environment() -> FastAPI:
    """The app for `uvicorn --factory` worker processes, configured by PAPERSIFT_* variables."""
    return create_app(Settings())


def create_app(settings: Settings, store: Store | None = None) -> FastAPI:
    """Build the app over `store` (or the one the settings name, opened and closed with the app)."""
    from papersift.web import api, authors, comments, docs, feeds, library, pages, subscriptions

    owns_store = store is None
    if store is None:  # a request answers 503 + Retry-After rather than wait out a long writer
        store = Store.open(settings.store_url, busy_timeout=min(settings.busy_timeout, WEB_BUSY_TIMEOUT))
    site = Site(settings, store, owns_store=owns_store)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        site.start()  # the index thread opens, checks and syncs the indexes; requests never wait for it
        yield
        site.close()

    app = FastAPI(
        title="papersift",
        summary="Daily papers, trending, search and paper pages of a self-hosted papersift site.",
        version="1",
        openapi_url="/api/openapi.json",
        docs_url=None,  # Swagger UI loads from a CDN and the site ships no third-party assets: /docs is ours
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.site = site
    app.state.renderer = Renderer()
    app.state.renderer.templates.env.globals["mail_enabled"] = bool(settings.smtp_host)  # else offer feeds
    app.state.page_cache = PageCache()
    _install_error_handlers(app)
    app.include_router(comments.api_router)  # before api.router's catch-all GET /api/papers/{paper_id:path}
    app.include_router(api.router)
    app.include_router(pages.router)
    app.include_router(comments.router)
    app.include_router(feeds.router)
    app.include_router(authors.router)
    app.include_router(authors.api_router)
    app.include_router(subscriptions.router)
    app.include_router(subscriptions.api_router)
    app.include_router(docs.router)
    app.include_router(library.api_router)
    app.include_router(library.router)
    _refuse_get_on_write_routes(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(
        SessionMiddleware,
        secret_key=site_secret(settings),
        session_cookie="papersift_session",
        max_age=30 * 24 * 3600,
        same_site="lax",
        https_only=settings.base_url.startswith("https://"),
    )
    app.add_middleware(AccessLog)
    root = root_path_of(settings)
    if root:
        app.add_middleware(RootPath, root=root)
    return app


class RootPath:
    """Serve under PAPERSIFT_BASE_URL's path: sets the ASGI root_path so every generated link carries
    the prefix, whether or not the proxy strips it (best: pass the path through unchanged)."""

    def __init__(self, app: ASGIApp, root: str) -> None:
        self.app = app
        self.root = root

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            path = scope["path"]
            if not (path == self.root or path.startswith(self.root + "/")):
                path = self.root + path
            scope = {**scope, "root_path": self.root, "path": path}
        await self.app(scope, receive, send)
