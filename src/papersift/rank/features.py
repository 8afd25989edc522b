"""What the curation model sees of one listed paper on the day it is ranked.

Shared by the benchmark and the product so both measure the same thing. Every history-derived
feature for listing day D counts only events *known before D*: a featuring is known from the later
of its featured day and its own listing day, so neither a paper's own featuring nor that of another
paper listed the same day can leak into its features (see `History.advance`).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

from papersift import code_links

# primary categories with enough featured papers to learn a rate from; the rest share "other"
CATEGORIES = ("cs.CV", "cs.CL", "cs.AI", "cs.LG", "cs.GR", "cs.RO", "cs.IR", "cs.SD", "eess.IV", "cs.MM")
# cues of a paper written to be noticed: a named method ("Name: ..."), a released model/benchmark
_CUES = re.compile(
    r"\b(?:open[- ]sourc\w*|we release|publicly available|benchmark|state-of-the-art|agent\w*|llms?)\b", re.I
)
_NAMED = re.compile(r"^\s*[A-Z][\w-]*(?:[- ][\w-]+)?\s*:")


@dataclass(frozen=True, slots=True)
class Listed:
    """A paper as it appears in one day's listing."""

    id: str
    day: date
    title: str
    abstract: str = ""
    authors: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    comment: str = ""

    @property
    def text(self) -> str:
        return f"{self.title}\n{self.abstract}"


@dataclass(frozen=True, slots=True)
class Featuring:
    """A featured paper: `known` is the first day it may be used as history (exclusive: used when < D)."""

    id: str
    known: date
    authors: tuple[str, ...]
    weight: float = 1.0  # an admin pick or a paper upvoted on this site may count more than one


def author_key(name: str) -> str:
    return " ".join(name.lower().split())


def known_day(featured: date | None, listed: date | None) -> date | None:
    """The day a featuring becomes history: not before the paper's own listing (it would leak its label)."""
    if featured is None:
        return None
    return max(featured, listed) if listed else featured


class History:
    """Authors' featured and listed counts up to (not including) a day, advanced day by day.

    Hand-written (a pointer over two sorted event lists) because the benchmark asks for the counts at
    each of ~300 days: recounting from scratch each day would be quadratic.
    """

    def __init__(self, featurings: Iterable[Featuring], listings: Iterable[tuple[date, Sequence[str]]]) -> None:
        self._featured = sorted(featurings, key=lambda f: f.known)
        self._listed = sorted(listings, key=lambda item: item[0])
        self.featured: Counter[str] = Counter()
        self.featured_ids: dict[str, set[str]] = {}
        self.listed: Counter[str] = Counter()
        self.day: date | None = None
        self._f = 0
        self._l = 0

    def advance(self, day: date) -> None:
        """Count everything known strictly before `day`; days must not go backwards."""
        if self.day is not None and day < self.day:
            raise ValueError(f"history is at {self.day}; cannot go back to {day}")
        self.day = day
        while self._f < len(self._featured) and self._featured[self._f].known < day:
            event = self._featured[self._f]
            for name in {author_key(a) for a in event.authors}:
                self.featured[name] += event.weight  # type: ignore[assignment]
                self.featured_ids.setdefault(name, set()).add(event.id)
            self._f += 1
        while self._l < len(self._listed) and self._listed[self._l][0] < day:
            for name in {author_key(a) for a in self._listed[self._l][1]}:
                self.listed[name] += 1
            self._l += 1

    def featured_papers(self, authors: Sequence[str]) -> int:
        """How many distinct papers by any of these authors were featured before the day."""
        ids: set[str] = set()
        for name in authors:
            ids |= self.featured_ids.get(author_key(name), set())
        return len(ids)


META_NAMES = (
    "team_size",
    "log_team_size",
    "featured_sum",
    "featured_papers",
    "featured_max",
    "featured_authors",
    "featured_first",
    "featured_last",
    "listed_max",
    "listed_sum_log",
    "featured_rate_max",
    "has_code",
    "has_repo",
    "has_project_page",
    "n_categories",
    "abstract_words",
    "title_words",
    "named_method",
    "cues",
    "comment_pages",
    "comment_accepted",
    *(f"cat={c}" for c in CATEGORIES),
    "cat=other",
    "cross_cs.LG",
    "cross_cs.CL",
    "cross_cs.CV",
)


def meta_row(paper: Listed, history: History) -> list[float]:
    """The non-text features of one paper at `history.day` (team, track record, code, categories, cues)."""
    names = [author_key(a) for a in paper.authors]
    featured = [history.featured.get(n, 0) for n in names]
    listed = [history.listed.get(n, 0) for n in names]
    rates = [f / (lst + 2.0) for f, lst in zip(featured, listed, strict=True)]
    link = code_links.extract(paper.abstract, paper.comment)
    host = code_links.host_of(link) if link else ""
    primary = paper.categories[0] if paper.categories else ""
    comment = paper.comment.lower()
    return [
        float(len(names)),
        math.log1p(len(names)),
        float(sum(featured)),
        float(history.featured_papers(paper.authors)),
        float(max(featured, default=0)),
        float(sum(1 for f in featured if f > 0)),
        float(featured[0]) if featured else 0.0,
        float(featured[-1]) if featured else 0.0,
        float(max(listed, default=0)),
        math.log1p(sum(listed)),
        max(rates, default=0.0),
        float(bool(link)),
        float(host in code_links.CODE_HOSTS),
        float(bool(link) and host not in code_links.CODE_HOSTS),
        float(len(paper.categories)),
        math.log1p(len(paper.abstract.split())),
        float(len(paper.title.split())),
        float(bool(_NAMED.match(paper.title))),
        float(len(_CUES.findall(paper.abstract))),
        float("pages" in comment),
        float(any(w in comment for w in ("accepted", "to appear", "camera", "conference", "neurips", "iclr"))),
        *(float(primary == c) for c in CATEGORIES),
        float(primary not in CATEGORIES),
        float("cs.LG" in paper.categories[1:]),
        float("cs.CL" in paper.categories[1:]),
        float("cs.CV" in paper.categories[1:]),
    ]


def meta_matrix(papers: Sequence[Listed], history: History) -> np.ndarray:
    return np.asarray([meta_row(p, history) for p in papers], dtype=np.float32).reshape(len(papers), len(META_NAMES))
