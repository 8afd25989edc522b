"""Template environment and the small filters the pages share (highlighting, author lines, URLs)."""

from __future__ import annotations

import functools
import hashlib
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape
from starlette.responses import HTMLResponse, Response

from papersift.models import Paper
from papersift.urls import safe_url

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "in",
        "into",
        "is",
        "it",
        "of",
        "on",
        "or",
        "the",
        "to",
        "with",
        "without",
    ]
)
_WORD = re.compile(r"[^\W_]{2,}", re.UNICODE)


def query_terms(query: str) -> list[str]:
    """The words worth highlighting in a query: no stop words, no operators, at most 12."""
    words = [w.lower() for w in _WORD.findall(query[:500]) if w.lower() not in _STOP and w not in ("AND", "OR", "NOT")]
    return list(dict.fromkeys(words))[:12]


@functools.lru_cache(maxsize=256)
def _pattern(terms: tuple[str, ...]) -> re.Pattern[str]:
    """Compiled once per query: compiling per card cost more than the rest of the search page."""
    stems = sorted({t[:-1] if len(t) > 4 and t.endswith("s") else t for t in terms}, key=len, reverse=True)
    return re.compile(r"(?<![&#])\b(?:" + "|".join(re.escape(s) for s in stems) + r")[^\W_]*", re.IGNORECASE)


def highlight(text: str, terms: list[str]) -> Markup:
    """Escape `text`, then wrap words starting with a query term (a cheap stand-in for stemming) in <mark>.

    Matching runs on the escaped text, one regex pass: building Markup piece by piece was the slowest
    part of the search page. The pattern never matches inside an entity (`&amp;`, `&#39;`).
    """
    escaped = str(escape(text))
    if not terms:
        return Markup(escaped)
    return Markup(_pattern(tuple(terms)).sub(r"<mark>\g<0></mark>", escaped))


def authors_short(paper: Paper, first: int = 3) -> str:
    names = paper.authors[:first]
    more = len(paper.authors) - len(names)
    return ", ".join(names) + (f" +{more}" if more > 0 else "")


def paper_path(paper_id: str) -> str:
    """The id as one URL path part. '/' stays readable (hep-th/9901001) unless a segment is empty, '.' or
    '..': a browser would resolve those (a stored `x/../../api/...` would send a form's POST elsewhere)."""
    if _dotted(paper_id):  # '..' as one part is still '..': a trailing %2F makes it a part the browser keeps
        return quote(paper_id + "/", safe=":")
    keep_slashes = not any(_dotted(s) or not s for s in paper_id.split("/"))
    return quote(paper_id, safe="/:" if keep_slashes else ":")


def author_path(name: str) -> str:
    """An author page's path: the whole name as one URL path part ('/' too, as %2F), so any name round-trips.
    A name a browser would resolve as '.' or '..' goes in the query instead."""
    if _dotted(name):
        return "/authors?" + urlencode({"name": name})
    return "/authors/" + quote(name, safe="")


def _dotted(segment: str) -> bool:
    """A path segment a browser resolves as '.' or '..' (WHATWG counts '%2e' as a dot)."""
    return segment.lower().replace("%2e", ".") in (".", "..")


def _static_version() -> str:
    digest = hashlib.sha256()
    for path in sorted(STATIC.iterdir()):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


class Renderer:
    """Jinja2 templates with autoescaping, plus URL helpers that respect the proxy's root path."""

    def __init__(self) -> None:
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        env = self.templates.env
        env.filters["highlight"] = highlight
        env.filters["authors_short"] = authors_short
        # every link that leaves the site goes through this: rows stored before ingest checked links may
        # still hold javascript: or data: URLs, and an e-mail client or feed reader has no CSP
        env.filters["safe_url"] = safe_url
        env.globals["static_version"] = _static_version()

    def render(self, request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
        return HTMLResponse(self.html(request, name, context), status_code=status_code)

    def html(self, request: Request, name: str, context: dict[str, Any]) -> str:
        root = request.scope.get("root_path", "").rstrip("/")

        def url(path: str, **params: Any) -> str:
            query = urlencode({k: v for k, v in params.items() if v not in (None, "", (), [])}, doseq=True)
            return f"{root}{path}" + (f"?{query}" if query else "")

        def paper_url(paper: Paper, suffix: str = "") -> str:
            return f"{root}/papers/{paper_path(paper.id)}{suffix}"

        def author_url(author: str, **params: Any) -> str:
            path = author_path(author)
            query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
            return root + path + (("&" if "?" in path else "?") + query if query else "")

        def follow_links(title: str, feed: str, email: str = "", **params: Any) -> dict[str, str]:
            """A list's Atom and RSS feeds (`/feeds/FEED.atom?params`) and its e-mail digest form."""
            atom, rss = url(f"/feeds/{feed}.atom", **params), url(f"/feeds/{feed}.rss", **params)
            return {"title": title, "atom": atom, "rss": rss, "email": email}

        template = self.templates.get_template(name)
        helpers = {"url": url, "paper_url": paper_url, "author_url": author_url, "follow_links": follow_links}
        return template.render({"request": request, **helpers, **context})
