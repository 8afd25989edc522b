"""The web site and JSON API: `create_app(settings)` builds the ASGI app that `papersift serve` runs.

Domain errors (papersift.errors) become HTTP statuses here, at the edge: the JSON API answers
`{"error": {"code": ..., "message": ...}}`, pages render an error page; no stack trace reaches a client.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import quote, urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.responses import Response
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
from papersift.store.engine import WEB_BUSY_TIMEOUT
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


def error_response(request: Request, status: int, code: str, message: str, retry_after: int | None = None) -> Response:
    """One error shape for the API, one error page for browsers; 429 and 503 say when to come back."""
    if is_api(request):
        response: Response = JSONResponse({"error": {"code": code, "message": message}}, status_code=status)
    else:
        renderer: Renderer = request.app.state.renderer
        context = {"status": status, "message": message, "user": None}
        response = renderer.render(request, "error.html", context, status)
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
        return error_response(request, status, code, str(exc), retry_after if status in (429, 503) else None)

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
        return error_response(request, exc.status_code, HTTP_CODES.get(exc.status_code, "error"), message)

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, _route_path(request))
        return error_response(request, 500, "internal", "something went wrong on our side; it has been logged")


def app_from_environment() -> FastAPI:
    """The app for `uvicorn --factory` worker processes, configured by PAPERSIFT_* variables."""
    return create_app(Settings())


def create_app(settings: Settings, store: Store | None = None) -> FastAPI:
    """Build the app over `store` (or the one the settings name, opened and closed with the app)."""
    from papersift.web import api, feeds, pages, subscriptions

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
        docs_url=None,  # Swagger UI loads from a CDN; the site ships no third-party assets
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.site = site
    app.state.renderer = Renderer()
    app.state.page_cache = PageCache()
    _install_error_handlers(app)
    app.include_router(api.router)
    app.include_router(pages.router)
    app.include_router(feeds.router)
    app.include_router(subscriptions.router)
    app.include_router(subscriptions.api_router)
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
