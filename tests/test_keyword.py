"""Keyword index: BM25 ranking, stemming, filters, incremental sync, and recovery from damage."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from papersift.errors import QueryError
from papersift.index.keyword import Filters, KeywordIndex
from papersift.models import Paper
from papersift.store import Store


def paper(pid: str, title: str, abstract: str, **kw: object) -> Paper:
    base: dict[str, object] = dict(authors=["Ada Lovelace"], categories=["cs.CL"], announced=date(2025, 6, 2))
    base.update(kw)
    return Paper(id=pid, title=title, abstract=abstract, source="jsonl", **base)  # type: ignore[arg-type]


CORPUS = [
    paper("1", "Graph neural networks for molecules", "We train graph networks on molecular property prediction."),
    paper("2", "Scaling laws of language models", "Language modelling loss follows a power law in compute."),
    paper(
        "3", "Video diffusion", "Diffusion models generate videos.", categories=["cs.CV"], announced=date(2025, 7, 1)
    ),
    paper(
        "4",
        "Retrieval augmented generation",
        "Retrieving passages helps language models answer.",
        authors=["Geoffrey Hinton", "José Núñez"],
    ),
    paper("5", "Hidden paper about language models", "Language models.", hidden=True),
]


@pytest.fixture
def filled(sqlite_store: Store) -> Store:
    with sqlite_store.write() as w:
        w.insert(list(CORPUS))
    return sqlite_store


def ids(hits: list[tuple[str, float]]) -> list[str]:
    return [pid for pid, _ in hits]


def test_bm25_ranks_title_matches_first_and_stems(filled: Store, tmp_path: Path) -> None:
    index = KeywordIndex.open(tmp_path / "kw", filled)
    assert index.num_docs == 4  # the hidden paper is not searchable
    hits = index.search("language modeling")  # stem: modeling ~ modelling? at least "language" matches
    assert ids(hits)[0] == "2"
    assert "5" not in ids(hits)
    assert ids(index.search("molecule"))[0] == "1"  # stemming: molecule ~ molecules / molecular
    assert ids(index.search("the of and")) == []  # only stop words


def test_filters(filled: Store, tmp_path: Path) -> None:
    index = KeywordIndex.open(tmp_path / "kw", filled)
    assert ids(index.search("diffusion language", filters=Filters(categories=("cs.CV",)))) == ["3"]
    in_july = Filters(date_from=date(2025, 7, 1), date_to=date(2025, 7, 1))
    assert ids(index.search("diffusion language", filters=in_july)) == ["3"]
    assert ids(index.search("language", filters=Filters(author="hinton"))) == ["4"]
    assert ids(index.search("language", filters=Filters(author="Jose Nunez"))) == ["4"]


def test_incremental_sync_sees_updates_and_hides(filled: Store, tmp_path: Path) -> None:
    index = KeywordIndex.open(tmp_path / "kw", filled)
    with filled.write() as w:
        w.insert([paper("6", "Protein folding with transformers", "Structure prediction.")])
        w.update([paper("1", "Quantum chemistry baselines", "No graphs here.")])
        w.set_hidden("2", True)
    assert index.sync(filled) == 3
    assert ids(index.search("protein")) == ["6"]
    assert ids(index.search("molecules")) == []
    assert "2" not in ids(index.search("scaling laws"))
    assert index.sync(filled) == 0


def test_reopen_is_incremental_and_survives_corruption(filled: Store, tmp_path: Path) -> None:
    directory = tmp_path / "kw"
    KeywordIndex.open(directory, filled)
    for f in directory.iterdir():  # smash every segment file
        if f.name != "state.json" and f.is_file():
            f.write_bytes(b"garbage")
    rebuilt = KeywordIndex.open(directory, filled)
    assert rebuilt.num_docs == 4
    assert ids(rebuilt.search("video"))[0] == "3"
    (directory / "state.json").write_text("{not json")
    assert KeywordIndex.open(directory, filled).num_docs == 4


def test_index_of_another_store_is_rebuilt(filled: Store, tmp_path: Path) -> None:
    directory = tmp_path / "kw"
    KeywordIndex.open(directory, filled)
    other = Store.open(f"sqlite:///{tmp_path / 'other.db'}")
    with other.write() as w:
        w.insert([paper("9", "Completely different", "Nothing shared.")])
    index = KeywordIndex.open(directory, other)
    assert index.num_docs == 1
    other.close()


def test_empty_and_hostile_queries(filled: Store, tmp_path: Path) -> None:
    index = KeywordIndex.open(tmp_path / "kw", filled)
    with pytest.raises(QueryError, match="empty query"):
        index.search("  \x00 ")
    for hostile in ['title:"unclosed', "((((", "a" * 100_000, "NOT", "id:1 OR *", "\udcff\ud800"]:
        index.search(hostile)  # forgiven: results or none, never an exception


def test_plain_words_and_query_syntax_rank_alike(sqlite_store: Store, tmp_path: Path) -> None:
    """Plain words take the flat fast path; syntax goes to tantivy's parser; both see split words as phrases."""
    with sqlite_store.write() as w:
        w.insert(
            [
                paper("zero", "Zero-dimensional carbon dots", "Quantum dots of 0-dimensional carbon."),
                paper("apart", "Carbon sheets", "Dimensional analysis of 0 defects in carbon sheets."),
                paper("other", "Protein folding", "Attention networks fold proteins."),
            ]
        )
    index = KeywordIndex.open(tmp_path / "kw", sqlite_store)
    flat = index.search("0-dimensional carbon", 3)
    assert ids(flat)[0] == "zero"  # the phrase "0 dimension" matches only where the words are adjacent
    parsed = index.search('"0-dimensional" carbon', 3)  # a quote: the query parser's path
    assert ids(parsed)[0] == "zero" and set(ids(parsed)) == set(ids(flat))
    assert ids(index.search("carbon -dots", 3)) == ["apart"]  # excluded words still work
    assert index.search("the of and", 3) == []  # only stop words: nothing to match, no error
