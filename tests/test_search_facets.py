"""Search shows how many papers match and their category and year facets (issue 11 point 3), counted by
tantivy's aggregations and checked against a count over the stored papers themselves (3,000 real arXiv
listings); facet links filter, on the page, in the API, and in real Chromium at 390 and 1280 px."""

# ruff: noqa: F811 - the fixtures imported below are test parameters of the same names
from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from papersift.index.facets import CATEGORY_FACETS
from papersift.index.keyword import _english
from papersift.search import Filters

from .live_server import DESKTOP, PHONE, live_server
from .test_precise_search import VOCAB, Corpus

# fixtures shared with the cut-off tests: 3,000 real arXiv listings, keyword-only
from .test_relevance_cutoff import client, corpus  # noqa: F401

QUERIES = ["diffusion model", "graph neural network", "reinforcement learning", "large language models reasoning"]
FEW = ["diffusion model audio", "reinforcement learning agents", "speech recognition", "diffusion model video editing"]


def _expected(corpus: Corpus, query: str, filters: Filters | None = None) -> tuple[int, Counter[str], Counter[int]]:
    """Count, categories and years of the stored papers holding every query word: no index involved."""
    papers = [corpus.papers[pid] for pid in corpus.brute_force(query)]
    if filters and filters.categories:
        papers = [p for p in papers if set(p.categories) & set(filters.categories)]
    if filters and filters.date_from and filters.date_to:
        papers = [p for p in papers if p.date and filters.date_from <= p.date <= filters.date_to]
    categories = Counter(c for p in papers for c in set(p.categories))
    return len(papers), categories, Counter(p.date.year for p in papers if p.date)


def _check(corpus: Corpus, query: str, filters: Filters | None = None) -> None:
    found = corpus.engine.facets(query, filters)
    total, categories, years = _expected(corpus, query, filters)
    assert found.total == total, query
    assert dict(found.years) == dict(years), query
    listed = dict(found.categories)
    assert len(listed) == min(CATEGORY_FACETS, len(categories))
    assert all(categories[c] == n for c, n in listed.items()), query
    assert [n for _, n in found.categories] == sorted(listed.values(), reverse=True)
    if len(categories) > len(listed):  # the top ones are listed
        assert max(n for c, n in categories.items() if c not in listed) <= min(listed.values())


def test_count_and_facets_equal_a_count_over_the_store(corpus: Corpus) -> None:
    for query in QUERIES:
        _check(corpus, query)
        total, _, _ = _expected(corpus, query)
        assert total > 20, query  # the queries match enough to make the check mean something
        if total <= 1000:  # the count is the newest-first list's length
            assert len(corpus.engine.search(query, 1000, sort="date")) == total


def test_facet_filters_narrow_the_count(corpus: Corpus) -> None:
    query = QUERIES[0]
    top_category = corpus.engine.facets(query).categories[0][0]
    year = corpus.engine.facets(query).years[0][0]
    _check(corpus, query, Filters(categories=(top_category,)))
    narrowed = Filters(categories=(top_category,)).in_year(year)
    assert narrowed.date_from == date(year, 1, 1) and narrowed.date_to == date(year, 12, 31)
    _check(corpus, query, narrowed)
    hits = corpus.engine.search(query, 100, narrowed)
    assert hits and all(h.paper.date and h.paper.date.year == year for h in hits)
    assert all(top_category in h.paper.categories for h in hits)
    # a year outside from/to leaves nothing
    assert corpus.engine.facets(query, Filters(date_to=date(year - 1, 12, 31)).in_year(year)).total == 0


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(words=st.lists(st.sampled_from(VOCAB), min_size=1, max_size=3))
def test_any_plain_query_counts_like_the_store(corpus: Corpus, words: list[str]) -> None:
    if not any(_english().analyze(w) for w in words):
        return  # stop words only: nothing is required, the query falls back to the parser
    _check(corpus, " ".join(words))


def test_api_reports_count_and_facets(corpus: Corpus, client: TestClient) -> None:
    query = QUERIES[1]
    body = client.get("/api/papers/search", params={"q": query}).json()
    total, categories, years = _expected(corpus, query)
    assert body["total"] == total
    assert {f["value"]: f["count"] for f in body["years"]} == {str(y): n for y, n in years.items()}
    assert all(categories[f["value"]] == f["count"] for f in body["categories"])
    category = body["categories"][0]["value"]
    year = body["years"][0]["value"]
    narrowed = client.get("/api/papers/search", params={"q": query, "category": category, "year": year}).json()
    expected, _, _ = _expected(corpus, query, Filters(categories=(category,)).in_year(int(year)))
    assert narrowed["total"] == expected
    assert narrowed["items"] and all(
        category in it["categories"] and (it["announced"] or it["published"]).startswith(year)
        for it in narrowed["items"]
    )
    schema = client.get("/api/openapi.json").json()["components"]["schemas"]["SearchOut"]["properties"]
    assert {"total", "categories", "years", "unmatched", "items"} <= set(schema)
    assert client.get("/api/papers/search", params={"q": query, "year": "0"}).status_code == 422


def test_page_shows_count_and_facet_links_filter(corpus: Corpus, client: TestClient) -> None:
    query = QUERIES[0]
    total, _, _ = _expected(corpus, query)
    html = client.get("/search", params={"q": query}).text
    assert f"<b>{total:,}</b> papers hold every word" in html
    facets = corpus.engine.facets(query)
    category, count = facets.categories[0]
    assert f'>{category} <span class="n">{count}</span></a>' in html


# ---- in real Chromium ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(corpus: Corpus) -> Iterator[str]:
    with live_server(corpus.settings, corpus.store) as url:
        yield url


@pytest.mark.parametrize(("name", "device"), [("phone", PHONE), ("desktop", DESKTOP)])
def test_count_facets_and_weaker_matches_in_chromium(
    chromium: object, server: str, corpus: Corpus, name: str, device: dict[str, object], tmp_path: Path
) -> None:
    context = chromium.new_context(**device)  # type: ignore[attr-defined]
    page = context.new_page()
    width = int(device["viewport"]["width"])  # type: ignore[index]
    try:
        page.goto(f"{server}/search?q=reinforcement+learning+hebbian")
        assert "No paper mentions hebbian" in page.locator(".unmatched").inner_text()
        query = next(q for q in FEW if 5 <= _expected(corpus, q)[0] < 25)  # the strong list ends on page 1
        page.goto(f"{server}/search?q={query}")
        total, _, _ = _expected(corpus, query)
        assert page.locator(".facets .count").inner_text().startswith(f"{total:,} papers")
        weaker = page.locator("section.weaker")
        assert weaker.is_visible() and weaker.locator("article.card").count() > 0  # partial matches, set apart
        assert page.evaluate("document.documentElement.scrollWidth") <= width  # no sideways scroll
        link = page.locator(".facet-group[aria-label=Years] a.facet").first
        box = link.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width
        year = link.inner_text().split()[0]
        link.click()
        page.wait_for_url(f"**year={year}**")
        assert parse_qs(urlparse(page.url).query)["year"] == [year]
        assert page.locator(".facet.on").inner_text().split()[0] == year
        listed = page.locator(".list article.card")
        assert listed.count() > 0
        filtered, _, _ = _expected(corpus, query, Filters().in_year(int(year)))
        assert page.locator(".facets .count").inner_text().startswith(f"{filtered:,} paper")
        page.locator(".facet-group[aria-label=Categories] a.facet").first.click()
        page.wait_for_url("**category=**")
        assert "year=" in page.url  # the category link keeps the year filter
        page.screenshot(path=str(tmp_path / f"facets_{name}.png"))
    finally:
        context.close()
