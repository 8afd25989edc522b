"""BibTeX files (reference managers, Google Scholar, arXiv/DBLP exports), parsed by bibtexparser 2.

bibtexparser splits the file and its name middlewares turn "Last, First" into "First Last"; pylatexenc turns
LaTeX accents into Unicode. The fields then go through `paper_from_mapping`, so ids, dates and bad values are
handled as in every other source.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import date
from functools import lru_cache
from typing import Any, BinaryIO

import bibtexparser
from bibtexparser import middlewares
from bibtexparser.middlewares.middleware import Middleware
from bibtexparser.model import DuplicateBlockKeyBlock, Entry, ParsingFailedBlock
from pylatexenc import latexwalker, macrospec
from pylatexenc.latex2text import LatexNodes2Text, MacroTextSpec, get_default_latex_context_db

from papersift.errors import SourceError
from papersift.ids import parse_arxiv_id
from papersift.models import Rejected
from papersift.sources.base import ParsedRecord, Source
from papersift.sources.mapping import collapse, paper_from_mapping

# the splitter logs every syntax error it also returns as a failed block, which we report as Rejected
logging.getLogger("bibtexparser").addHandler(logging.NullHandler())

# the whole file is parsed in memory; real bibliographies are a few MB at most
MAX_BIB_BYTES = 64 << 20
_LATEX_CHARS = re.compile(r"[\\{}$~]")
# literal in BibTeX text (and in our own exports), special in LaTeX: escaped before decoding
_PLAIN_SPECIALS = re.compile(r"(?<!\\)([%&#])")
_KEY_RE = re.compile(r"@\s*\w+\s*[{(]\s*([^,\s]+)")
_YEAR_RE = re.compile(r"\b(\d{4})\b")
_ARXIV_VENUE_RE = re.compile(r"^\s*arxiv\b", re.IGNORECASE)
_ENTRY_START_RE = re.compile(rb"^\s*@\s*[A-Za-z]+\s*[{(]", re.MULTILINE)
_MONTH_NAMES = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)


@lru_cache(maxsize=1)
def _decoder() -> tuple[LatexNodes2Text, latexwalker.LatexContextDb]:
    """pylatexenc's defaults, plus \\url and \\href kept as readable text (bibtexparser does the same for url)."""
    text_db = get_default_latex_context_db()
    text_db.add_context_category(
        "papersift",
        prepend=True,
        macros=[MacroTextSpec("url", simplify_repl="%s"), MacroTextSpec("href", simplify_repl="%(2)s (%(1)s)")],
    )
    walker_db = latexwalker.get_default_latex_context_db()
    walker_db.add_context_category(
        "papersift", prepend=True, macros=[macrospec.MacroSpec("url", "{"), macrospec.MacroSpec("href", "{{")]
    )
    return LatexNodes2Text(latex_context=text_db, math_mode="verbatim", keep_braced_groups=False), walker_db


def latex_to_text(value: str) -> str:
    """Unicode for LaTeX accents and braces; plain strings skip the (slow) LaTeX parser."""
    if _LATEX_CHARS.search(value):
        decoder, walker_db = _decoder()
        # '/~' is a URL's home directory, not a LaTeX tie
        latex = _PLAIN_SPECIALS.sub(r"\\\1", value).replace("/~", "/\\textasciitilde{}")
        try:
            value = decoder.latex_to_text(latex, latex_context=walker_db)
        except Exception:  # pylatexenc trips over some malformed input (a bare \href); keep the text
            value = value.replace("{", "").replace("}", "")
    return collapse(value)


def _month(value: Any) -> int | None:
    """1-12 from "jan", "January", "3" or "03"; None for anything else. (Not bibtexparser's MonthIntMiddleware:
    it raises ValueError on '1²', which str.isdigit() accepts.)"""
    text = value.strip().lower().rstrip(".") if isinstance(value, str) else ""
    if text.isascii() and text.isdigit():
        return int(text) if 1 <= int(text) <= 12 else None
    for number, name in enumerate(_MONTH_NAMES, start=1):
        if text in (name, name[:3]):
            return number
    return None


def _parse_stack() -> list[Middleware]:
    return [
        *middlewares.default_parse_stack(),
        middlewares.NormalizeFieldKeys(),
        middlewares.SeparateCoAuthors(),
        middlewares.SplitNameParts(),
        middlewares.MergeNameParts(style="first"),
    ]


def _failure(block: ParsingFailedBlock) -> str:
    error = block.error
    text = getattr(error, "abort_reason", None) or getattr(error, "message", None) or str(error)
    return collapse(str(text)) or type(error).__name__


def _block_key(block: ParsingFailedBlock) -> str:
    if isinstance(block, DuplicateBlockKeyBlock):
        return block.key
    match = _KEY_RE.match(block.raw or "")
    return match.group(1) if match else "?"


def _arxiv(fields: dict[str, Any]) -> str | None:
    """The arXiv id from eprint (+ archivePrefix), arxivid, or an 'arXiv:ID' journal/note; None when absent."""
    prefix = str(fields.get("archiveprefix") or fields.get("eprinttype") or "").strip().lower()
    eprint = str(fields.get("eprint") or "").strip()
    if eprint and (prefix == "arxiv" or (not prefix and parse_arxiv_id(eprint))):
        return eprint  # a bad one is rejected by the mapping with its value
    for name in ("arxivid", "arxiv"):
        if fields.get(name):
            return str(fields[name])
    for name in ("journal", "note", "howpublished"):
        value = str(fields.get(name) or "")
        if "arxiv" in value.lower():
            parsed = parse_arxiv_id(value)
            if parsed:
                return f"{parsed[0]}v{parsed[1]}" if parsed[1] else parsed[0]
    return None


def entry_record(entry: Entry) -> dict[str, Any]:
    """The entry's fields under the names `paper_from_mapping` knows."""
    fields = {f.key: f.value for f in entry.fields}

    def text(name: str) -> str | None:
        value = fields.get(name)
        return latex_to_text(value) if isinstance(value, str) else None

    year_match = _YEAR_RE.search(str(fields.get("year") or ""))
    year = int(year_match.group(1)) if year_match else None
    month = _month(fields.get("month"))
    authors = fields.get("author")
    venue = text("journal") or text("booktitle")
    keywords = text("keywords")
    return {
        "title": text("title"),
        "authors": [latex_to_text(a) for a in authors] if isinstance(authors, list) else authors,
        "abstract": text("abstract"),
        "arxiv": _arxiv(fields),
        "doi": fields.get("doi"),
        "abs_url": fields.get("url"),
        "pdf_url": fields.get("pdf"),
        "venue": None if venue and _ARXIV_VENUE_RE.match(venue) else venue,
        "year": year,
        "published": date(year, month, 1) if year and month else None,
        "categories": keywords,
        "comment": text("note"),
        "source_id": entry.key,
    }


class BibTeXSource(Source):
    name = "bibtex"
    description = "BibTeX (.bib) files: title, authors, abstract, DOI, arXiv eprint, venue, year"
    rank = 5

    @classmethod
    def sniff(cls, head: bytes, filename: str) -> bool:
        if filename.lower().removesuffix(".gz").endswith(".bib"):
            return True
        text = head.lstrip()
        if text[:1] == b"@":
            return True
        return text[:1] == b"%" and _ENTRY_START_RE.search(head) is not None  # a commented header first

    def parse(self, stream: BinaryIO, origin: str) -> Iterator[ParsedRecord]:
        data = stream.read(MAX_BIB_BYTES + 1)
        if len(data) > MAX_BIB_BYTES:
            raise SourceError(f"{origin}: BibTeX file over {MAX_BIB_BYTES >> 20} MB; split it into smaller files")
        encoding = self.options.get("encoding")
        try:
            text = data.decode(encoding or "utf-8-sig")
        except LookupError:
            raise SourceError(f"unknown encoding {encoding!r} for {origin}") from None
        except UnicodeDecodeError as exc:
            if encoding:
                raise SourceError(f"{origin}: not valid {encoding} ({exc})") from exc
            text = data.decode("latin-1")  # older .bib files are Latin-1 more often than anything else
        library = bibtexparser.parse_string(text, parse_stack=_parse_stack())
        for block in library.blocks:
            line = (block.start_line or 0) + 1
            where = f"{origin}:{line}"
            if isinstance(block, DuplicateBlockKeyBlock) and isinstance(block.ignore_error_block, Entry):
                block = block.ignore_error_block  # papers are keyed by id, not by the citation key
            elif isinstance(block, ParsingFailedBlock):
                yield Rejected(where, f"entry {_block_key(block)!r}: BibTeX error: {_failure(block)}")
                continue
            if not isinstance(block, Entry):
                continue  # @string, @preamble, @comment and free text
            record = entry_record(block)
            if not record["title"]:
                yield Rejected(where, f"entry {block.key!r} has no title")
                continue
            result = paper_from_mapping(record, None, source=self.name, origin=where)
            if isinstance(result, Rejected):
                result = Rejected(where, f"entry {block.key!r}: {result.reason}")
            yield result
