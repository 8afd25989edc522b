"""Export papers as JSON lines or BibTeX (written by bibtexparser, so escaping is its job, not ours)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

import bibtexparser
import orjson
from bibtexparser import model

from papersift.ids import normalise_title
from papersift.models import Paper
from papersift.urls import safe_url

FORMATS = ("jsonl", "bibtex")


def to_jsonl(papers: Iterable[Paper]) -> Iterator[str]:
    for paper in papers:
        yield orjson.dumps(paper.to_dict()).decode() + "\n"


def _balanced(value: str) -> str:
    """Drop braces that do not pair up: BibTeX counts braces to find a value's end, so one stray
    brace in an abstract would swallow the entries after it."""
    keep = [True] * len(value)
    opened: list[int] = []
    for i, ch in enumerate(value):
        if ch == "{":
            opened.append(i)
        elif ch == "}":
            if opened:
                opened.pop()
            else:
                keep[i] = False
    for i in opened:
        keep[i] = False
    return "".join(ch for ch, k in zip(value, keep, strict=True) if k)


def _cite_key(paper: Paper, used: set[str]) -> str:
    surname = normalise_title(paper.authors[0].split(",")[0].split()[-1]) if paper.authors else "anon"
    year = paper.year or (paper.date.year if paper.date else "")
    word = next((w for w in normalise_title(paper.title).split() if len(w) > 3), "paper")
    base = re.sub(r"\s+", "", f"{surname}{year}{word}") or "paper"
    key, n = base, 1
    while key in used:
        n += 1
        key = f"{base}{chr(ord('a') + n - 2)}" if n <= 27 else f"{base}{n}"
    used.add(key)
    return key


def bibtex_entry(paper: Paper, used: set[str] | None = None) -> model.Entry:
    fields = [
        model.Field("title", paper.title),
        model.Field("author", " and ".join(paper.authors) or "Unknown"),
    ]
    year = paper.year or (paper.date.year if paper.date else None)
    if year:
        fields.append(model.Field("year", str(year)))
    if paper.arxiv_id:
        fields += [
            model.Field("eprint", paper.arxiv_id),
            model.Field("archivePrefix", "arXiv"),
        ]
        if paper.primary_category:
            fields.append(model.Field("primaryClass", paper.primary_category))
    if paper.doi:
        fields.append(model.Field("doi", paper.doi))
    if paper.venue:
        fields.append(model.Field("booktitle" if paper.year else "journal", paper.venue))
    if safe_url(paper.abs_url):  # a reference manager turns `url` into a link
        fields.append(model.Field("url", safe_url(paper.abs_url)))
    if paper.abstract:
        fields.append(model.Field("abstract", paper.abstract))
    for f in fields:
        f.value = _balanced(f.value) if f.key != "title" else "{" + _balanced(paper.title) + "}"
    entry_type = "inproceedings" if paper.venue and paper.year else ("article" if paper.doi else "misc")
    return model.Entry(entry_type, _cite_key(paper, used if used is not None else set()), fields)


def to_bibtex(papers: Iterable[Paper]) -> Iterator[str]:
    used: set[str] = set()
    for paper in papers:
        library = bibtexparser.Library([bibtex_entry(paper, used)])
        yield bibtexparser.write_string(library)
