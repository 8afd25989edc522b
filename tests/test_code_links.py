"""Code and project links: the extractor, ingest, migration 7's backfill, the has_code filter in the
index, dense matching, the API, the pages and the CLI."""

from __future__ import annotations

import gzip
import itertools
import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import MetaData, insert, select

from papersift.cli import main
from papersift.code_links import _INTRO, _JOIN, _SCHEME_GAP, CODE_HOSTS, extract, host_of
from papersift.index.keyword import Filters, KeywordIndex
from papersift.ingest import ingest_records
from papersift.models import CONTENT_FIELDS, Paper
from papersift.search import matches
from papersift.settings import Settings
from papersift.store import Store, migrations
from papersift.urls import safe_url
from papersift.web import create_app

from .conftest import shared
from .old_store import store_at

REPO = "https://github.com/owner/repo"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Code is available at https://github.com/owner/repo.", REPO),
        ("(see https://github.com/owner/repo)", REPO),
        ("Code: https://github.com/owner/repo.git, 12 pages", REPO),
        ("code at github.com/owner/repo;", REPO),
        ("code: www.github.com/owner/repo", REPO),
        ("Code: http://github.com/Owner-1/repo_v2.0.", "https://github.com/Owner-1/repo_v2.0"),
        ("\\footnote{Code: https://github.com/owner/repo}.", REPO),
        # spaces that LaTeX line breaks put into arXiv abstracts
        ("available at https://github.com/ owner/repo. ICCV", REPO),
        ("available at https:// github.com/owner/repo Qing", REPO),
        ("link https://github.com/\nowner/repo", REPO),
        ("released at: https: //github.com/owner/repo.", REPO),
        ("Our code is available at https: //anon.example/r/x", "https://anon.example/r/x"),
        ("https://gitlab.com/group/sub/project.", "https://gitlab.com/group/sub/project"),
        ("weights: https://huggingface.co/org/model-7B", "https://huggingface.co/org/model-7B"),
        ("data: https://huggingface.co/datasets/org/set.", "https://huggingface.co/datasets/org/set"),
        ("demo at https://huggingface.co/spaces/org/demo", "https://huggingface.co/spaces/org/demo"),
        ("https://bitbucket.org/team/tool", "https://bitbucket.org/team/tool"),
        ("https://codeberg.org/me/thing)", "https://codeberg.org/me/thing"),
        ("Project page: https://lab.example.edu/proj/.", "https://lab.example.edu/proj/"),
        (
            "Our code is publicly available at: https://anonymous.4open.science/r/X-1",
            "https://anonymous.4open.science/r/X-1",
        ),
        ("Project Page: abhinav.github.io/GIST/.", "https://abhinav.github.io/GIST/"),
        ("videos at https://proj.github.io", "https://proj.github.io"),
        # the first repository wins over an earlier project page
        ("Project page: https://a.example.org/p. Code: https://github.com/owner/repo", REPO),
        # never taken
        ("See https://huggingface.co/papers/2501.00001", ""),
        ("Code: https://arxiv.org/abs/2501.00001", ""),
        ("Our code is available at https://doi.org/10.5281/zenodo.1", ""),
        ("we compare with https://example.com/benchmark", ""),
        ("https://github.com/owner only", ""),
        ("https://github.com/features/copilot is a product", ""),
        ("Code: https://github.com/", ""),
        ("mail me at me@github.com/x/y", ""),
        ("The code will be released upon acceptance.", ""),
        ("Code available on GitHub.", ""),
        ("", ""),
    ],
)
def test_extract(text: str, expected: str) -> None:
    assert extract(text) == expected


def test_extract_reads_comment_after_abstract() -> None:
    assert extract("An abstract without links.", "10 pages. Code: https://github.com/owner/repo") == REPO
    assert extract("Code: https://github.com/first/one", "https://github.com/second/two").endswith("first/one")


url_parts = st.sampled_from(
    [
        "https://",
        "http://",
        "github.com/",
        "www.",
        "gitlab.com/",
        "huggingface.co/",
        "papers/",
        "spaces/",
        "datasets/",
        "bitbucket.org/",
        "codeberg.org/",
        ".github.io",
        "arxiv.org/",
        "Code: ",
        "Project page: ",
        "code is available at ",
        "owner",
        "/",
        ".git",
        ".",
        ")",
        " ",
        "\n",
        "\x00",
        "javascript:",
        "é",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(url_parts, st.text(max_size=8)), max_size=14).map("".join), st.text(max_size=60))
def test_extract_returns_a_safe_link_on_an_allowed_host_or_nothing(abstract: str, comment: str) -> None:
    url = extract(abstract, comment)
    if not url:
        return
    assert safe_url(url) == url
    assert url.startswith(("https://", "http://"))
    host = host_of(url)
    assert host and not host.endswith("arxiv.org")
    if host not in CODE_HOSTS:  # any other host only when introduced as code / a project page, or github.io
        assert host.endswith(".github.io") or _INTRO.search(
            _JOIN.sub("/", _SCHEME_GAP.sub("://", f"{abstract} {comment}"))
        )
    else:
        assert not url.lower().startswith("https://huggingface.co/papers/")


def _paper(pid: str, abstract: str, comment: str = "", day: date = date(2026, 1, 5)) -> Paper:
    return Paper(
        id=pid, title=f"Paper {pid} diffusion", abstract=abstract, comment=comment, source="jsonl", announced=day
    )


def test_code_url_is_derived_not_content() -> None:
    assert "code_url" not in CONTENT_FIELDS  # the hash covers abstract and comment, which it comes from


def test_ingest_sets_and_merge_recomputes_code_url(sqlite_store: Store) -> None:
    report = ingest_records(
        sqlite_store,
        [_paper("t:1", "Code: https://github.com/a/b."), _paper("t:2", "no link", "Project page: https://x.org/p")],
    )
    assert report.added == 2
    assert sqlite_store.get("t:1").code_url == "https://github.com/a/b"
    assert sqlite_store.get("t:2").code_url == "https://x.org/p"
    again = ingest_records(sqlite_store, [_paper("t:1", "Code: https://github.com/a/b.")])
    assert again.unchanged == 1
    # a newer version whose abstract drops the link: the link goes with it
    newer = _paper("t:1", "Rewritten abstract without any link.")
    newer.version = 2
    assert ingest_records(sqlite_store, [newer]).updated == 1
    assert sqlite_store.get("t:1").code_url == ""
    assert sqlite_store.stats()["with_code"] == 1


def _store_at_6(url: str, rows: list[tuple[str, str, str]]) -> None:
    with store_at(url, 6) as conn:
        md = MetaData()
        md.reflect(conn, only=["papers"])
        conn.execute(
            insert(md.tables["papers"]),
            [
                dict(
                    id=pid,
                    title="t",
                    abstract=abstract,
                    comment=comment,
                    authors=[],
                    categories=[],
                    primary_category="",
                    first_seen=datetime.now(UTC),
                    source="jsonl",
                    source_id="",
                    doi="",
                    venue="",
                    abs_url="",
                    pdf_url="",
                    upvotes=0,
                    hidden=False,
                    content_hash="x",
                    rev=1,
                )
                for pid, abstract, comment in rows
            ],
        )


def test_migration_7_backfills_code_links(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(migrations, "_BACKFILL_BATCH", 3)  # several batches over a small store
    rows = [
        (f"p{i:02d}", f"Abstract {i}. Code: https://github.com/o/r{i}." if i % 3 == 0 else "plain", "")
        for i in range(10)
    ]
    rows.append(("q", "no link here", "Project page: https://site.example/q"))
    _store_at_6(store_url, rows)
    store = Store.open(store_url)
    try:
        got = {pid: p.code_url for pid, p in store.get_many([r[0] for r in rows]).items()}
        assert got == {
            pid: (f"https://github.com/o/r{int(pid[1:])}" if pid.startswith("p") and int(pid[1:]) % 3 == 0 else "")
            for pid, _, _ in rows
        } | {"q": "https://site.example/q"}
        assert store.stats()["with_code"] == 5
        assert store.revision() == 1  # one new revision for the backfilled rows
        with store.engine.connect() as conn:
            revs = dict(conn.execute(select(store.papers.c.id, store.papers.c.rev)).all())
        assert revs["p03"] == 1 and revs["p01"] == 1 and revs["q"] == 1
    finally:
        store.close()


def test_has_code_filter_in_the_index_and_dense_matching(sqlite_store: Store, tmp_path: Path) -> None:
    papers = [_paper("t:c", "diffusion code at https://github.com/a/b"), _paper("t:n", "diffusion without a link")]
    ingest_records(sqlite_store, papers)
    index = KeywordIndex.open(tmp_path / "kw", sqlite_store)
    assert {pid for pid, _ in index.search("diffusion", 10)} == {"t:c", "t:n"}
    assert [pid for pid, _ in index.search("diffusion", 10, Filters(has_code=True))] == ["t:c"]
    assert [pid for pid, _ in index.batch_search(["diffusion"], 10, Filters(has_code=True), sort="date")[0]] == ["t:c"]
    assert bool(Filters(has_code=True))
    stored = sqlite_store.get_many(["t:c", "t:n"])
    assert matches(stored["t:c"], Filters(has_code=True)) and not matches(stored["t:n"], Filters(has_code=True))
    assert matches(stored["t:n"], Filters())


@pytest.fixture
def site(tmp_path: Path) -> tuple[Settings, Store]:
    settings = Settings(home=tmp_path / "home", secret_key="test-secret")
    store = Store.open(settings.store_url)
    ingest_records(
        store,
        [
            _paper("t:c", "diffusion models. Code: https://github.com/a/b"),
            _paper("t:n", "diffusion models without a link"),
        ],
    )
    return settings, store


def test_api_and_pages_show_code_and_filter(site: tuple[Settings, Store]) -> None:
    settings, store = site
    try:
        client = TestClient(create_app(settings, store), raise_server_exceptions=False)
        items = client.get("/api/papers/search", params={"q": "diffusion"}).json()["items"]
        assert {it["id"]: it["code_url"] for it in items} == {"t:c": "https://github.com/a/b", "t:n": ""}
        only = client.get("/api/papers/search", params={"q": "diffusion", "has_code": "true"}).json()["items"]
        assert [it["id"] for it in only] == ["t:c"]
        bad = client.get("/api/papers/search", params={"q": "diffusion", "has_code": "maybe"})
        assert bad.status_code == 422 and set(bad.json()["error"]) >= {"code", "message"}
        page = client.get("/search", params={"q": "diffusion"}).text
        assert 'name="has_code"' in page and 'href="https://github.com/a/b"' in page
        filtered = client.get("/search", params={"q": "diffusion", "has_code": "1"}).text
        assert "t:n" not in filtered and 'value="1" checked' in filtered
        paper = client.get("/papers/t:c").text
        assert 'class="btn code" href="https://github.com/a/b"' in paper
        assert "btn code" not in client.get("/papers/t:n").text
    finally:
        store.close()


def test_cli_stats_and_search_has_code(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = Store.open(Settings(home=home).store_url)
    ingest_records(
        store,
        [_paper("t:c", "diffusion. Code: https://github.com/a/b"), _paper("t:n", "diffusion without a link")],
    )
    store.close()
    runner = CliRunner()
    stats = runner.invoke(main, ["--home", str(home), "stats", "--json"], catch_exceptions=False)
    assert json.loads(stats.output)["with_code"] == 1
    assert "with code:" in runner.invoke(main, ["--home", str(home), "stats"], catch_exceptions=False).output
    found = runner.invoke(main, ["--home", str(home), "search", "diffusion", "--has-code", "--json"])
    assert [hit["id"] for hit in json.loads(found.output)] == ["t:c"]
    assert json.loads(found.output)[0]["code_url"] == "https://github.com/a/b"


def test_real_arxiv_listings_give_safe_links() -> None:
    """On 10,000 real listings: every link is safe, on a code host or introduced as a project page, and a
    sizeable share of papers has one (the README gives the figures for all 74,728)."""
    path = shared("arxiv_daily/arxiv_daily_2025-2026.jsonl.gz")
    found = 0
    with gzip.open(path, "rt") as handle:
        for line in itertools.islice(handle, 10_000):
            record = json.loads(line)
            url = extract(record.get("abstract") or "", record.get("comment") or "")
            if url:
                found += 1
                assert safe_url(url) == url and host_of(url)
                assert "arxiv.org" not in host_of(url) and not url.startswith("https://huggingface.co/papers/")
    assert 1_000 < found < 5_000
