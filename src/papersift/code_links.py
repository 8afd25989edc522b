"""A paper's code or project link, read from its abstract and comment at ingest.

Conservative on purpose: a wrong "Code" link is worse than none. Two kinds of URL are taken:

1. A repository on a code host: github.com/OWNER/REPO, gitlab.com/OWNER/REPO(/SUBGROUP...),
   huggingface.co/[spaces/|datasets/]OWNER/NAME, bitbucket.org/OWNER/REPO, codeberg.org/OWNER/REPO,
   with or without a scheme (always given back as https). Never huggingface.co/papers/ID (the paper
   itself), nor a host's own pages (github.com/features/..., huggingface.co/docs/...).
2. Any other http(s) URL only when the text introduces it as code or a project page: "code",
   "implementation" or "project page/website" followed within a sentence (no full stop) by "available",
   "released", "found", "at", ":" ... and the URL ("Code: URL", "Our code is publicly available at URL").
   arxiv.org, doi.org and openreview.net links never count.
3. Failing both, a *.github.io site (a project page), with or without a scheme.

The first repository link in the text wins, else the first introduced URL, else a github.io page. Trailing punctuation
`.,;:)]}'"` and `.git` are cut; the spaces LaTeX line breaks put into arXiv abstracts
("https:// github.com/ owner/repo") are closed up. Whatever comes out passes `papersift.urls.safe_url`.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from papersift.urls import safe_url

CODE_HOSTS = frozenset({"github.com", "gitlab.com", "huggingface.co", "bitbucket.org", "codeberg.org"})
# what a text must contain for any link to be found: also the migration's SQL pre-filter
MARKERS = ("http", "github", "gitlab", "huggingface", "bitbucket", "codeberg")
MAX_TEXT_CHARS = 100_000

_TRAILING = ".,;:)]}'\""
_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*"
# a "/" then whitespace, after "://" or a code host: starts with a literal, so the scan is fast
_JOIN = re.compile(
    r"/(?:(?<=://)|(?<=github\.com/)|(?<=gitlab\.com/)|(?<=huggingface\.co/)|(?<=bitbucket\.org/)|(?<=codeberg\.org/))"
    r"[ \t\r\n]+(?=[A-Za-z0-9])",
    re.IGNORECASE,
)
# "https: //" or "https:/ /" -> "https://"; a literal first again
_SCHEME_GAP = re.compile(r":(?:(?<=https:)|(?<=http:))(?:[ \t\r\n]+/[ \t\r\n]*|/[ \t\r\n]+)/", re.IGNORECASE)
_REPO = re.compile(
    r"(?<![A-Za-z0-9.@/-])(?:https?://)?(?:www\.)?"
    r"(?:(?P<gh>github\.com|bitbucket\.org|codeberg\.org)/(?P<gh_owner>" + _NAME + r")/(?P<gh_repo>" + _NAME + r")"
    r"|(?P<gl>gitlab\.com)/(?P<gl_path>" + _NAME + r"(?:/" + _NAME + r")+)"
    r"|(?P<hf>huggingface\.co)/(?P<hf_path>(?:(?:spaces|datasets)/)?" + _NAME + r"/" + _NAME + r"))",
    re.IGNORECASE,
)
_INTRO = re.compile(
    r"\b(?:code|codes|source\s+code|implementation|project\s+(?:page|website|homepage|site))\b"
    r"[^.]{0,60}?(?:availab\w*|released|found|accessed|hosted|uploaded|open[- ]sourced|provided|at|:|see)"
    r"[^.]{0,20}?(?P<url>https?://[^\s<>\"{}]+)",
    re.IGNORECASE,
)
# *.github.io is a project page wherever it stands (scheme or not): only the paper's own sites live there
_PAGES = re.compile(r"(?<![A-Za-z0-9.@/-])(?P<url>(?:https?://)?[A-Za-z0-9-]+\.github\.io(?:/[^\s<>\"{}]*)?)", re.I)
# first path segments of a host's own pages, not someone's repository
_RESERVED = {
    "github.com": {"features", "about", "orgs", "topics", "marketplace", "sponsors", "settings", "login", "pricing"},
    "huggingface.co": {"papers", "docs", "blog", "learn", "join", "login", "settings", "pricing", "tasks", "models"},
    "gitlab.com": {"explore", "users", "help", "dashboard", "-"},
    "bitbucket.org": {"product", "account", "site"},
    "codeberg.org": {"explore", "user"},
}
_NEVER = ("arxiv.org", "doi.org", "openreview.net")


def _trim(part: str) -> str:
    while True:
        stripped = part.rstrip(_TRAILING)
        if stripped.lower().endswith(".git"):
            stripped = stripped[:-4]
        if stripped == part:
            return part
        part = stripped


def _repository(match: re.Match[str]) -> str:
    host = (match["gh"] or match["gl"] or match["hf"]).lower()
    if match["gh"]:
        path = f"{match['gh_owner']}/{_trim(match['gh_repo'])}"
    else:
        path = _trim(match["gl_path"] or match["hf_path"])
    segments = path.split("/")
    if len(segments) < 2 or not all(segments) or segments[0].lower() in _RESERVED[host]:
        return ""
    if host == "huggingface.co" and segments[0].lower() in ("spaces", "datasets") and len(segments) < 3:
        return ""
    return safe_url(f"https://{host}/{path}")


def _introduced(url: str) -> str:
    url = safe_url(_trim(url))
    if not url:
        return ""
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""
    if not host or any(host == never or host.endswith("." + never) for never in _NEVER):
        return ""
    if host.removeprefix("www.") in CODE_HOSTS:
        return ""  # a code host's URL counts only as a repository (rule 1), never as any page of it
    return url


def extract(*texts: str) -> str:
    """The code or project URL the texts give, or ''. Never raises on any string."""
    text = " ".join(t for t in texts if isinstance(t, str))[:MAX_TEXT_CHARS]
    lowered = text.lower()
    if not any(marker in lowered for marker in MARKERS):
        return ""
    text = _JOIN.sub("/", _SCHEME_GAP.sub("://", text))
    if any(host.partition(".")[0] in lowered for host in CODE_HOSTS):
        for match in _REPO.finditer(text):
            url = _repository(match)
            if url:
                return url
    # cheap substring tests first: the patterns below are the costly part of an ingest's checks
    patterns = ([_INTRO] if "://" in text else []) + ([_PAGES] if ".github.io" in lowered else [])
    for pattern in patterns:
        for match in pattern.finditer(text):
            found = match["url"]
            url = _introduced(found if "://" in found else f"https://{found}")
            if url:
                return url
    return ""


def host_of(url: str) -> str:
    """The host of an extracted link ('' for none), for tests and stats."""
    try:
        return (urlsplit(url).hostname or "").lower() if url else ""
    except ValueError:
        return ""
