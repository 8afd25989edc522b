"""Normalised paper ids: the dedup key that makes ingest idempotent across sources and versions.

Order of preference: bare arXiv id (no version), then `doi:<lowercased DOI>`, then `t:<hash>` of
the normalised title and first author's surname, so that the same paper from two listings merges.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

# new style 2101.00001 (4 or 5 digits after the dot since 2015), old style hep-th/9901001 or math.GT/0309136
# [0-9], not \d: \d also matches other scripts' digits, and "٢٠٢٠.١٢٣٤٥" must not become a key
_ARXIV_NEW = r"[0-9]{4}\.[0-9]{4,5}"
_ARXIV_OLD = r"[a-z][a-z\-]+(?:\.[A-Z]{2})?/[0-9]{7}"
ARXIV_ID_RE = re.compile(rf"^(?:{_ARXIV_NEW}|{_ARXIV_OLD})$")
_ARXIV_VERSIONED_RE = re.compile(rf"^(?P<id>{_ARXIV_NEW}|{_ARXIV_OLD})(?:v(?P<version>[0-9]+))?$")
# arxiv ids as they appear inside URLs and prefixed strings
_ARXIV_IN_TEXT_RE = re.compile(
    rf"(?:arxiv\.org/(?:abs|pdf|html)/|huggingface\.co/papers/|arxiv:|oai:arxiv\.org:)"
    rf"(?P<id>{_ARXIV_NEW}|{_ARXIV_OLD})(?:v(?P<version>[0-9]+))?",
    re.IGNORECASE,
)
_DOI_RE = re.compile(r"^(?:https?://(?:dx\.)?doi\.org/|doi:)?\s*(10\.[0-9]{4,9}/\S+)$", re.IGNORECASE)


def is_arxiv_id(value: str) -> bool:
    return bool(ARXIV_ID_RE.match(value))


def parse_arxiv_id(value: str) -> tuple[str, int | None] | None:
    """Split '2101.00001v3', 'arXiv:2101.00001', or an abs/pdf URL into (bare id, version)."""
    value = value.strip()
    match = _ARXIV_VERSIONED_RE.match(value)
    if not match:
        match = _ARXIV_IN_TEXT_RE.search(value)
        if not match:
            return None
    version = match.group("version")
    return _canonical_case(match.group("id")), int(version) if version else None


def _canonical_case(arxiv_id: str) -> str:
    """Old-style ids have a lowercase archive and an uppercase subject class (math.GT/0309136) however a URL
    or an 'arXiv:' prefix spelled them: one paper, one key."""
    archive, slash, number = arxiv_id.partition("/")
    if not slash:
        return arxiv_id
    name, dot, subject = archive.partition(".")
    return f"{name.lower()}{dot}{subject.upper()}/{number}"


def normalise_doi(value: str) -> str | None:
    match = _DOI_RE.match(value.strip())
    return match.group(1).lower().rstrip(".") if match else None


def normalise_title(title: str) -> str:
    """Lowercase ASCII letters and digits only, single-spaced: survives LaTeX, accents and punctuation."""
    text = unicodedata.normalize("NFKD", title)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text).split())


def _surname(author: str) -> str:
    author = author.strip()
    if "," in author:  # "Vaswani, Ashish"
        author = author.split(",", 1)[0]
    else:
        parts = author.split()
        author = parts[-1] if parts else ""
    return normalise_title(author)


def title_key(title: str, authors: list[str]) -> str:
    first = _surname(authors[0]) if authors else ""
    digest = hashlib.sha1(f"{normalise_title(title)}|{first}".encode()).hexdigest()[:16]
    return f"t:{digest}"


def paper_id(*, arxiv: str = "", doi: str = "", title: str = "", authors: list[str] | None = None) -> str:
    """The dedup key for a record; raises ValueError when nothing identifies it."""
    if arxiv:
        parsed = parse_arxiv_id(arxiv)
        if parsed:
            return parsed[0]
    if doi:
        norm = normalise_doi(doi)
        if norm:
            return f"doi:{norm}"
    if normalise_title(title):
        return title_key(title, authors or [])
    raise ValueError("record has no arXiv id, DOI or title to identify it")
