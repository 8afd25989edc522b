"""Rate limits for abuse-prone actions (sign-in, sign-up, subscriptions), on the `limits` library.

Use: `limiter_for(request).hit(f"ip:{client_ip(request)}", "10/minute")` raises `RateLimited` (the web
edge answers 429 with `Retry-After`) once the key has been hit that often in the moving window.
A rule is a `limits` string: "5/minute", "20 per hour", "3/15minutes".

Counters live in this process's memory: with `papersift serve --workers N` each worker keeps its own, so a
client gets at most N times the limit (still bounded); a restart forgets them. No shared storage is used
because that would need a server (Redis, memcached) papersift does not otherwise require.
"""

from __future__ import annotations

import math
import threading
import time
from functools import lru_cache

from fastapi import FastAPI, Request
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from papersift.errors import RateLimited

__all__ = ["Limiter", "client_ip", "limiter_for"]

_create_lock = threading.Lock()


@lru_cache(maxsize=256)
def _item(rule: str) -> RateLimitItem:
    """A parsed rule; a malformed one is a programming error, so `limits` raises ValueError."""
    return parse(rule)


class Limiter:
    """Moving-window counters per (rule, key), thread-safe; one per app (see `limiter_for`)."""

    def __init__(self) -> None:
        self._storage = MemoryStorage()
        self._strategy = MovingWindowRateLimiter(self._storage)

    def hit(self, key: str, rule: str, message: str = "too many attempts") -> None:
        """Count one event for `key`; raise RateLimited (nothing counted) when the rule's limit is reached.

        Checking and counting are one atomic step, so concurrent requests cannot all slip under the limit."""
        item = _item(rule)
        if not self._strategy.hit(item, key):
            wait = self.retry_after(key, rule)
            raise RateLimited(f"{message}; try again in {_human(wait)}", wait)

    def record(self, key: str, rule: str) -> None:
        """Count one event for `key` after the fact (e.g. a failure), without raising when over the limit."""
        self._strategy.hit(_item(rule), key)

    def check(self, key: str, rule: str, message: str = "too many attempts") -> None:
        """Raise RateLimited if one more hit would exceed the rule, without counting anything."""
        if not self._strategy.test(_item(rule), key):
            wait = self.retry_after(key, rule)
            raise RateLimited(f"{message}; try again in {_human(wait)}", wait)

    def retry_after(self, key: str, rule: str) -> int:
        """Whole seconds until the key may be hit again under the rule (at least 1)."""
        stats = self._strategy.get_window_stats(_item(rule), key)
        return max(1, math.ceil(stats.reset_time - time.time()))

    def tracked(self) -> int:
        """How many keys currently hold counts (memory use grows with it; expired ones are dropped)."""
        return len(self._storage.events)

    def clear(self, key: str, rule: str) -> None:
        """Forget the key's count under the rule (e.g. after a successful sign-in)."""
        self._strategy.clear(_item(rule), key)


def limiter_for(request: Request) -> Limiter:
    """The app's limiter, created on first use (so every app, and every test, gets fresh counters)."""
    return app_limiter(request.app)


def app_limiter(app: FastAPI) -> Limiter:
    state = app.state
    limiter = getattr(state, "limiter", None)
    if limiter is None:
        with _create_lock:
            limiter = getattr(state, "limiter", None)
            if limiter is None:
                limiter = state.limiter = Limiter()
    assert isinstance(limiter, Limiter)
    return limiter


def client_ip(request: Request) -> str:
    """The client's address as uvicorn reports it (already the X-Forwarded-For address when the request
    came through a proxy listed in PAPERSIFT_FORWARDED_ALLOW_IPS); "unknown" when there is none."""
    return request.client.host if request.client else "unknown"


def _human(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} s"
    return f"{math.ceil(seconds / 60)} min"
