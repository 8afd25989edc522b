"""Accounts on the web edge: argon2 passwords, signed session cookies, CSRF tokens.

Sessions live in a cookie signed with the site secret (Starlette's SessionMiddleware over
itsdangerous), so no session table is needed; signing out clears it. Every state-changing request
carries the session's CSRF token, in a form field or the X-CSRF-Token header, compared in constant time.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Request

from papersift.errors import PapersiftError, QueryError
from papersift.settings import Settings
from papersift.store.accounts import User
from papersift.web.site import Site

USERNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{3,32}$")
MIN_PASSWORD, MAX_PASSWORD = 8, 256
CSRF_HEADER = "x-csrf-token"
_hasher = PasswordHasher()


class AuthRequired(PapersiftError):
    """The action needs a signed-in user."""


class Forbidden(PapersiftError):
    """Signed in (or not), but not allowed: a missing CSRF token or a non-admin doing admin work."""


class BadCredentials(PapersiftError):
    """Sign-in or sign-up details are wrong or unacceptable."""


def site_secret(settings: Settings) -> str:
    """The configured secret, else one generated on first start and kept (mode 600) in the home."""
    if settings.secret_key:
        return settings.secret_key
    path: Path = settings.home_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    path.touch(mode=0o600)
    path.write_text(secret)
    return secret


def csrf_token(request: Request) -> str:
    """The session's CSRF token, created on first use."""
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def check_csrf(request: Request, supplied: str | None) -> None:
    expected = request.session.get("csrf")
    given = supplied or request.headers.get(CSRF_HEADER, "")
    if not isinstance(expected, str) or not given or not secrets.compare_digest(expected, given):
        raise Forbidden("the form expired or did not come from this site; reload the page and try again")


def current_user(request: Request, site: Site) -> User | None:
    """The signed-in user, looked up once per request."""
    if not getattr(request.state, "user_loaded", False):
        uid = request.session.get("uid")
        request.state.user = site.accounts.user_by_id(uid) if isinstance(uid, int) else None
        request.state.user_loaded = True
    user: User | None = request.state.user
    return user


def require_user(request: Request, site: Site) -> User:
    user = current_user(request, site)
    if user is None:
        raise AuthRequired("sign in to do that")
    return user


def require_admin(request: Request, site: Site) -> User:
    user = require_user(request, site)
    if not user.is_admin:
        raise Forbidden("only an admin can do that")
    return user


def _start_session(request: Request, user: User) -> None:
    request.session.clear()  # a fresh session (and CSRF token) at every sign-in: no session fixation
    request.session["uid"] = user.id
    csrf_token(request)


def sign_up(request: Request, site: Site, username: str, password: str) -> User:
    username = username.strip()
    if not USERNAME_RE.match(username):
        raise QueryError("a user name is 3 to 32 letters, digits, '.', '_' or '-'")
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise QueryError(f"a password is {MIN_PASSWORD} to {MAX_PASSWORD} characters long")
    user = site.accounts.create_user(username, _hasher.hash(password))
    _start_session(request, user)
    return user


def sign_in(request: Request, site: Site, username: str, password: str) -> User:
    user = site.accounts.user_by_name(username.strip()[:64])
    if user is None or len(password) > MAX_PASSWORD:
        _hasher.hash("timing-equaliser")  # same work whether or not the user exists
        raise BadCredentials("wrong user name or password")
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        raise BadCredentials("wrong user name or password") from None
    if _hasher.check_needs_rehash(user.password_hash):
        site.accounts.set_password_hash(user.id, _hasher.hash(password))
    _start_session(request, user)
    return user


def sign_out(request: Request) -> None:
    request.session.clear()
