"""Vectors are data: kept in the store with their model and text hash, so an index rebuilds without embedding.

Runs on SQLite and on a real PostgreSQL server. Embedding work is read from the dense index's own counters
(`embedded`, `reused`) and its log line, on the real hashing embedder: nothing is replaced by a stand-in.
"""

from __future__ import annotations

import logging
import shutil
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from papersift.models import Paper
from papersift.search import SearchEngine
from papersift.settings import Settings
from papersift.store import Store
from papersift.store.vectors import StoredVectors, VectorStore

WORDS = ["protein", "galaxy", "speech", "graph", "neural", "lensing"]
WORDS += ["transformer", "retrieval", "folding", "quantum", "robot", "vision"]
DAY = date(2025, 6, 2)
QUERIES = ["protein folding", "galaxy lensing maps", "speech transformer", "quantum robot"]


def corpus(n: int) -> list[Paper]:
    """Papers with several sentences each, so each has several passages; deterministic text."""
    papers = []
    for i in range(n):
        words = [WORDS[(i * k + 3) % len(WORDS)] for k in range(1, 9)]
        abstract = " ".join(f"We study {w} {words[(j + 1) % 8]} number {i}." for j, w in enumerate(words[:5]))
        papers.append(
            Paper(
                id=f"p{i}",
                title=f"On {words[0]} and {words[1]}",
                abstract=abstract,
                source="jsonl",
                announced=date(2025, 6, 2),
            )
        )
    return papers


def results(engine: SearchEngine) -> list[list[tuple[str, float]]]:
    return [[(h.paper.id, round(h.score, 5)) for h in engine.search(q, limit=10)] for q in QUERIES]


@pytest.fixture
def filled(store: Store) -> Store:
    with store.write() as w:
        w.insert(corpus(40))
    return store


def open_engine(store: Store, home: Path, embedder: str = "hash:128") -> SearchEngine:
    return SearchEngine.open(store, Settings(home=home, embedder=embedder))


def test_deleted_index_rebuilds_from_stored_vectors_without_embedding(
    filled: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = open_engine(filled, tmp_path / "home")
    assert first.dense is not None and (first.dense.embedded, first.dense.reused) == (40, 0)
    before = results(first)
    assert VectorStore(filled, "hash-128", 128).count() == 40

    shutil.rmtree(tmp_path / "home" / "index" / "dense")
    with caplog.at_level(logging.INFO, logger="papersift.index"):
        again = open_engine(filled, tmp_path / "home")
    assert again.dense is not None and (again.dense.embedded, again.dense.reused) == (0, 40)
    assert "0 papers embedded, 40 copied from stored vectors" in caplog.text
    assert results(again) == before

    # another home (a new web host, a restored backup) on the same store: nothing embedded either
    other = open_engine(filled, tmp_path / "other-home")
    assert other.dense is not None and (other.dense.embedded, other.dense.reused) == (0, 40)
    assert results(other) == before


def test_changed_text_or_model_re_embeds_and_nothing_else_does(filled: Store, tmp_path: Path) -> None:
    open_engine(filled, tmp_path / "home")
    changed = corpus(40)[7]
    changed.abstract = "An entirely new abstract about quantum robots. It has two sentences."
    with filled.write() as w:
        w.update([changed])
        w.set_hidden("p8", True)  # hiding changes the revision but not any text: nothing to embed
    engine = open_engine(filled, tmp_path / "home")
    assert engine.dense is not None and engine.dense.embedded == 1 and "p8" not in engine.dense.slot_of
    stored = VectorStore(filled, "hash-128", 128).get(["p7"])["p7"]
    assert stored.text_hash == changed.text_hash() and stored.passages.shape == (2, 128)  # title, one window

    unchanged = open_engine(filled, tmp_path / "home")  # nothing changed: the index is current, no work at all
    assert unchanged.dense is not None and (unchanged.dense.embedded, unchanged.dense.reused) == (0, 0)

    other_model = open_engine(filled, tmp_path / "home", embedder="hash:64")
    assert other_model.dense is not None and (other_model.dense.embedded, other_model.dense.reused) == (39, 0)
    assert VectorStore(filled, "hash-64", 64).count() == 39  # the hidden paper is not embedded
    assert VectorStore(filled, "hash-128", 128).count() == 40  # the other model's vectors stay


def test_vector_writes_do_not_move_the_revision_and_round_trip(filled: Store) -> None:
    rev = filled.revision()
    rows = np.random.default_rng(0).standard_normal((3, 16)).astype(np.float16)
    vectors = VectorStore(filled, "m", 16)
    assert vectors.put([StoredVectors("p1", "h1", rows)]) == 1
    assert vectors.put([StoredVectors("p1", "h2", rows[:1])]) == 1  # replaced, not duplicated
    got = vectors.get(["p1", "p2"])
    assert list(got) == ["p1"] and got["p1"].text_hash == "h2"
    np.testing.assert_array_equal(got["p1"].passages, rows[:1])
    assert vectors.hashes(["p1"]) == {"p1": "h2"} and filled.revision() == rev
