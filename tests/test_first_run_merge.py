"""Issue 11 point 8: a paper featured on Hugging Face and listed on arXiv is one record holding the arXiv
listing's full author list and abstract (not HF's first author or cut summary) and HF's featured day and
upvotes, whichever arrives first; re-ingesting either changes nothing. Hypothesis draws the pairs."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from papersift.ingest import ingest
from papersift.store import Store

_word = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=2, max_size=9)
_name = st.builds(lambda a, b: f"{a.title()} {b.title()}", _word, _word)
_sentence = st.builds(lambda ws: " ".join(ws).capitalize() + ".", st.lists(_word, min_size=3, max_size=12))
_ids = itertools.count(1)
_day = st.dates(min_value=date(2023, 1, 1), max_value=date(2025, 12, 31))


@st.composite
def pairs(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any], str]:
    """An arXiv listing line and a Hugging Face record (API item or newsletter line) of the same paper."""
    pid = f"2501.{next(_ids):05d}"  # a new paper each example: one store serves them all
    title = draw(_sentence).rstrip(".")
    authors = draw(st.lists(_name, min_size=1, max_size=8, unique=True))
    abstract = " ".join(draw(st.lists(_sentence, min_size=2, max_size=6)))
    listed = draw(_day)
    arxiv = {"id": pid, "listing_date": listed.isoformat(), "title": title, "authors": authors, "abstract": abstract}
    featured = listed + timedelta(days=draw(st.integers(0, 3)))
    cut = draw(st.integers(min(20, len(abstract)), len(abstract)))
    summary = abstract if cut == len(abstract) else abstract[:cut].rstrip() + draw(st.sampled_from(["...", "…", ""]))
    if draw(st.booleans()):  # the /api/daily_papers shape: upvotes, all or only the first author
        named = authors if draw(st.booleans()) else authors[:1]
        paper = {"id": pid, "title": title, "summary": summary, "authors": [{"name": n} for n in named]}
        paper["upvotes"] = draw(st.integers(0, 500))
        hf = {"paper": paper, "publishedAt": f"{featured.isoformat()}T00:00:00.000Z"}
    else:  # the newsletter archive: first author only, no upvotes
        link = f"https://huggingface.co/papers/{pid}"
        hf = {"date": featured.isoformat(), "author": authors[0], "title": title, "link": link, "summary": summary}
        hf["arxiv_id"] = pid
    return arxiv, hf, featured.isoformat()


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Path]]:
    folder = tmp_path_factory.mktemp("merge")
    store = Store.open(f"sqlite:///{folder / 'store.db'}")
    yield store, folder
    store.close()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(pair=pairs(), hf_first=st.booleans())
def test_hf_and_arxiv_records_merge_in_either_order(
    shared_store: tuple[Store, Path], pair: tuple[dict[str, Any], dict[str, Any], str], hf_first: bool
) -> None:
    store, folder = shared_store
    arxiv, hf, featured = pair
    files = {name: folder / f"{name}.jsonl" for name in ("arxiv", "hf")}
    files["arxiv"].write_text(json.dumps(arxiv) + "\n")
    files["hf"].write_text(json.dumps(hf) + "\n")
    order = ["hf", "arxiv"] if hf_first else ["arxiv", "hf"]
    for name in order:
        ingest(store, str(files[name]))
    paper = store.get(arxiv["id"])
    assert paper.authors == arxiv["authors"]
    assert paper.abstract == arxiv["abstract"]
    assert paper.announced == date.fromisoformat(arxiv["listing_date"])
    assert paper.featured == date.fromisoformat(featured)
    assert paper.upvotes == hf.get("paper", {}).get("upvotes", 0)
    for name in order:  # idempotent: either file again changes nothing
        report = ingest(store, str(files[name]))
        assert (report.added, report.updated, report.unchanged) == (0, 0, 1), name
