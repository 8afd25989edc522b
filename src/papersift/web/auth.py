"""Accounts on the web edge: argon2 passwords, signed session cookies, CSRF tokens, sign-in throttling.

Sessions live in a cookie signed with the site secret (Starlette's SessionMiddleware over
itsdangerous), so no session table is needed. The cookie carries the user's session version (`sv`);
signing out or changing the password raises the version in the store, which ends every session of that
user (all browsers and devices), including copies of the cookie someone saved. Every state-changing
request carries the session's CSRF token, in a form field or the X-CSRF-Token header, compared in
constant time.

Sign-in and sign-up are rate limited before any argon2 work (each hash costs ~0.15 s of CPU, which a
flood would take from searches): every attempt counts per client address; failures count per existing
account and address, and per account from anywhere (see the LOGIN_* rules); a successful sign-in
forgets that address's failures on the account. An attacker can lock an account out only by spending
LOGIN_PER_ACCOUNT wrong guesses from several addresses, and then for at most an hour after stopping;
signing in often locks no one out. On top, hashing gets at most half the cores (HASH_SLOTS), against
floods spread over many addresses. Counters and slots are per process: with `--workers N` a client
gets up to N times the limits.
"""

from __future__ import annotations

import os
import re
import secrets
import threading
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Request

from papersift.errors import PapersiftError, QueryError, RateLimited
from papersift.settings import Settings
from papersift.store.accounts import User, UsernameTaken
from papersift.web.ratelimit import client_ip, limiter_for
from papersift.web.site import Site

USERNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{3,32}$")  # after NFKC: 'ａｌｉｃｅ' is 'alice'; no look-alike scripts
# Per address every attempt counts (checked and counted atomically before argon2 runs, so parallel
# requests cannot slip past): tight, humans sign in rarely. Per account only failures count. Per account
# and address: stops one client guessing one password. Per account: bounds guessing spread over many
# addresses, high enough that locking a victim out needs several addresses working for it.
LOGIN_PER_IP = "10/minute"
LOGIN_PER_ACCOUNT_ADDRESS = "5/15minutes"
LOGIN_PER_ACCOUNT = "20/hour"
SIGNUP_PER_IP = "20/hour"
MIN_PASSWORD, MAX_PASSWORD = 8, 256
CSRF_HEADER = "x-csrf-token"
_hasher = PasswordHasher()
# argon2 is the costliest thing the site does (~0.15 s of a core). Attempts spread over many addresses
# pass the per-address limits, so hashing also gets at most half the cores, site-wide; an attempt that
# finds no free slot within HASH_WAIT is told to retry rather than queue (queued requests would hold
# the worker threads that searches need).
HASH_SLOT_COUNT = max(1, len(os.sched_getaffinity(0)) // 2 if hasattr(os, "sched_getaffinity") else 1)
HASH_SLOTS = threading.BoundedSemaphore(HASH_SLOT_COUNT)
HASH_WAIT = 0.2


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
    """The signed-in user, looked up once per request; a cookie from a revoked session signs no one in."""
    if not getattr(request.state, "user_loaded", False):
        uid = request.session.get("uid")
        found = site.accounts.user_by_id(uid) if isinstance(uid, int) else None
        if found is not None and request.session.get("sv") != found.session_version:
            found = None
        if found is None and "uid" in request.session:
            request.session.pop("uid", None)  # stale: the browser gets a cookie without it
            request.session.pop("sv", None)
        request.state.user = found
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
    request.session["sv"] = user.session_version
    csrf_token(request)
    request.state.user = user
    request.state.user_loaded = True


@contextmanager
def _hashing() -> Iterator[None]:
    """Hold one of the site's password-hashing slots, or raise RateLimited when all stay busy."""
    if not HASH_SLOTS.acquire(timeout=HASH_WAIT):
        raise RateLimited("the site is busy checking other sign-ins", 2)
    try:
        yield
    finally:
        HASH_SLOTS.release()


def _typed_name(username: str) -> str:
    """What a user name means however it was typed: NFKC-normalised ('ａｌｉｃｅ' -> 'alice'), trimmed."""
    return unicodedata.normalize("NFKC", username[:128]).strip()


def _check_password(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise QueryError(f"a password is {MIN_PASSWORD} to {MAX_PASSWORD} characters long")


def sign_up(request: Request, site: Site, username: str, password: str) -> User:
    """Create an account and sign it in; names are unique however they are cased or Unicode-encoded."""
    username = _typed_name(username)
    if not USERNAME_RE.match(username):
        raise QueryError("a user name is 3 to 32 letters, digits, '.', '_' or '-'")
    _check_password(password)
    limiter_for(request).hit(
        f"signup-ip:{client_ip(request)}", SIGNUP_PER_IP, "too many new accounts from your address"
    )
    if site.accounts.user_by_name(username) is not None:  # spares the hash; create_user still enforces it
        raise UsernameTaken(f"the name {username!r} is taken; pick another")
    with _hashing():
        password_hash = _hasher.hash(password)
    user = site.accounts.create_user(username, password_hash)
    _start_session(request, user)
    return user


def _throttle_address(request: Request) -> None:
    """Count a sign-in attempt from the client's address (429 when over)."""
    limiter_for(request).hit(
        f"login-ip:{client_ip(request)}", LOGIN_PER_IP, "too many sign-in attempts from your address"
    )


def _account_counters(request: Request, user: User | None) -> list[tuple[str, str]]:
    """The account's failure counters: from this address, and from anywhere. Names with no account get
    none: nothing to protect there, and a spray of made-up names must not fill memory."""
    if user is None:
        return []
    return [
        (f"login-account-ip:{user.id}:{client_ip(request)}", LOGIN_PER_ACCOUNT_ADDRESS),
        (f"login-account:{user.id}", LOGIN_PER_ACCOUNT),
    ]


def _verified(request: Request, site: Site, user: User | None, password: str) -> User:
    """The user if the password is theirs; the same argon2 work whether or not the user exists.

    Per account only failures count, so signing in often never locks anyone out. They are checked and
    counted while holding a hashing slot: concurrent guesses can pass the limit by at most the other
    slots' attempts. A success forgets this address's failures on the account (typos are forgiven)."""
    limiter, counters = limiter_for(request), _account_counters(request, user)
    with _hashing():
        for key, rule in counters:
            limiter.check(key, rule, "too many failed sign-ins for this account")
        try:
            if user is None or len(password) > MAX_PASSWORD:
                _hasher.hash("timing-equaliser")
                raise VerificationError("no such user, or an oversized password")
            _hasher.verify(user.password_hash, password)
        except (VerificationError, InvalidHashError):
            for key, rule in counters:
                limiter.record(key, rule)
            raise BadCredentials("wrong user name or password") from None
        rehashed = _hasher.hash(password) if _hasher.check_needs_rehash(user.password_hash) else None
    limiter.clear(*counters[0])
    if rehashed is not None:
        site.accounts.set_password_hash(user.id, rehashed)
    return user


def sign_in(request: Request, site: Site, username: str, password: str) -> User:
    """Sign in by name (any case or Unicode form of it) and password, throttled before the hash runs."""
    _throttle_address(request)
    typed = _typed_name(username)
    # only a well-formed name can belong to someone; the store never sees the rest (PostgreSQL refuses NUL)
    found = site.accounts.user_by_name(typed) if USERNAME_RE.match(typed) else None
    user = _verified(request, site, found, password)
    _start_session(request, user)
    return user


def change_password(request: Request, site: Site, old_password: str, new_password: str) -> User:
    """Replace the signed-in user's password after checking the old one; every other session ends, this
    one goes on. Throttled like sign-in, so a stolen session cannot be used to guess the password."""
    user = require_user(request, site)
    _check_password(new_password)
    _throttle_address(request)
    _verified(request, site, user, old_password)
    with _hashing():
        new_hash = _hasher.hash(new_password)
    site.accounts.set_password_hash(user.id, new_hash)
    version = site.accounts.revoke_sessions(user.id)
    renewed = User(user.id, user.username, new_hash, user.is_admin, version)
    _start_session(request, renewed)
    return renewed


def sign_out(request: Request, site: Site) -> None:
    """End the session, and every other session of the same user: a saved copy of the cookie stops working."""
    user = current_user(request, site)
    if user is not None:
        site.accounts.revoke_sessions(user.id)
    request.session.clear()
    request.state.user = None
    request.state.user_loaded = True
