"""Rendered listing pages for signed-out readers, kept until the papers or votes they show change.

Most visits to a daily-papers site are anonymous reads of the same few pages (today, this week,
trending), and rendering fifty cards cost more than the rest of the request. A page is cached under its
URL plus the store's paper and vote revisions (and the day, since "new" badges depend on it), so
any ingest, hide or vote changes the key and the next reader gets a fresh render: never stale, and
correct across several server processes, since the revisions live in the database. The per-session
CSRF token is rendered as a random placeholder and filled in per response. Signed-in readers bypass
the cache: their pages show their own votes.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

MAX_PAGES = 256


class PageCache:
    """A small thread-safe LRU of rendered HTML with the CSRF token left as a placeholder."""

    def __init__(self, max_pages: int = MAX_PAGES) -> None:
        # random per process: no paper text can contain it, so nothing but the token is ever replaced
        self.placeholder = f"csrf-{secrets.token_hex(16)}"
        self._pages: OrderedDict[Hashable, str] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_pages
        self.hits = self.misses = 0

    def page(self, key: Hashable, render: Callable[[str], str], csrf: str) -> str:
        """The page under `key`, rendering it with `render(placeholder)` on a miss; `csrf` filled in."""
        with self._lock:
            html = self._pages.get(key)
            if html is not None:
                self._pages.move_to_end(key)
                self.hits += 1
        if html is None:
            html = render(self.placeholder)  # outside the lock: two misses may render twice, harmlessly
            with self._lock:
                self.misses += 1
                self._pages[key] = html
                while len(self._pages) > self._max:
                    self._pages.popitem(last=False)
        return html.replace(self.placeholder, csrf)
