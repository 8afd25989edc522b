"""Dense index and hybrid engine: incremental sync keyed on text hashes, recovery, fused ranking."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pytest

from papersift.errors import ConfigError
from papersift.index.embed import HashEmbedder
from papersift.index.keyword import Filters, KeywordIndex
from papersift.index.vectors import VectorIndex, passages
from papersift.models import Paper
from papersift.search import SearchEngine
from papersift.settings import Settings
from papersift.store import Store


class CountingEmbedder(HashEmbedder):
    """The lexical test embedder, counting how many texts it was asked to embed."""

    def __init__(self) -> None:
        super().__init__(128)
        self.calls = 0

    def embed_documents(self, texts):  # type: ignore[no-untyped-def]
        self.calls += len(texts)
        return super().embed_documents(texts)

    def embed_query(self, text):  # type: ignore[no-untyped-def]
        return HashEmbedder.embed_documents(self, [text])[0]


def paper(pid: str, title: str, abstract: str, **kw: object) -> Paper:
    return Paper(id=pid, title=title, abstract=abstract, source="jsonl", announced=date(2025, 6, 2), **kw)  # type: ignore[arg-type]


@pytest.fixture
def filled(sqlite_store: Store) -> Store:
    with sqlite_store.write() as w:
        w.insert(
            [
                paper("a", "Protein structure prediction", "Folding proteins with attention networks."),
                paper("b", "Galaxy cluster lensing", "Weak lensing maps of galaxy clusters.", categories=["astro-ph"]),
                paper("c", "Speech recognition at scale", "Transcribing speech with large models."),
            ]
        )
    return sqlite_store


def test_sync_embeds_each_text_once(filled: Store, tmp_path: Path) -> None:
    embedder = CountingEmbedder()
    index = VectorIndex.open(tmp_path / "dense", filled, embedder)
    assert len(index) == 3 and embedder.calls == 6  # each paper: its title and one window of its abstract
    assert index.search("protein folding", 1)[0][0] == "a"
    with filled.write() as w:
        w.update([paper("a", "Protein structure prediction", "Folding proteins with attention networks.", upvotes=5)])
        w.update([paper("c", "Speech synthesis", "Generating speech.")])
        w.set_hidden("b", True)
    assert index.sync(filled) == 2  # c re-embedded, b dropped; a's text did not change
    assert embedder.calls == 8 and index._viewing  # saved, then mapped rather than kept as a private copy
    assert "b" not in [pid for pid, _ in index.search("galaxy lensing", 3)]
    reopened = VectorIndex.open(tmp_path / "dense", filled, embedder)  # memory-mapped, nothing to do
    assert embedder.calls == 8 and len(reopened) == 2
    assert reopened.search("speech synthesis", 1)[0][0] == "c"


def test_damaged_or_foreign_index_is_rebuilt(filled: Store, tmp_path: Path) -> None:
    VectorIndex.open(tmp_path / "dense", filled, HashEmbedder(128))
    (tmp_path / "dense" / "hnsw.usearch").write_bytes(b"garbage")
    assert len(VectorIndex.open(tmp_path / "dense", filled, HashEmbedder(128))) == 3
    assert len(VectorIndex.open(tmp_path / "dense", filled, HashEmbedder(64))) == 3  # another model: rebuilt
    (tmp_path / "dense" / "slots.tsv").write_text("nonsense")
    assert len(VectorIndex.open(tmp_path / "dense", filled, HashEmbedder(64))) == 3
    (tmp_path / "dense" / "passages.f16").write_bytes(b"")  # passage vectors lost: rebuilt, not half-scored
    rebuilt = VectorIndex.open(tmp_path / "dense", filled, HashEmbedder(64))
    assert len(rebuilt) == 3 and (tmp_path / "dense" / "passages.f16").stat().st_size > 0


def test_a_paper_is_scored_by_its_best_passage(sqlite_store: Store, tmp_path: Path) -> None:
    """One matching sentence in a long abstract on other topics: the passage signal finds it."""
    filler = "".join(f"We also study topic {w} in depth." for w in ("alpha", "beta", "gamma", "delta", "epsilon"))
    with sqlite_store.write() as w:
        w.insert([paper("long", "Assorted results", filler + "Graphene superconductivity appears at low angles.")])
    embedder = HashEmbedder(256)
    index = VectorIndex.open(tmp_path / "dense", sqlite_store, embedder)
    assert index.count[index.slot_of["long"]] == 4  # the title + three windows of two sentences
    query = embedder.embed_query("graphene superconductivity")
    whole, best = index.scores(query, ["long", "unknown"])
    assert set(whole) == set(best) == {"long"}
    assert best["long"] > whole["long"] + 0.1
    reopened = VectorIndex.open(tmp_path / "dense", sqlite_store, embedder)  # memory-mapped passages
    assert reopened.scores(query, ["long"]) == (whole, best)


def test_passage_scores_match_each_papers_own_passages(filled: Store, tmp_path: Path) -> None:
    """Scores gathered for many candidates at once (papers with 2..5 passages, asked out of order and
    twice) equal each paper's own best passage, computed one paper at a time."""
    with filled.write() as w:
        abstracts = {n: "".join(f"Finding {n} number {k} holds." for k in range(2 * n)) for n in range(1, 5)}
        w.insert([paper(f"x{n}", f"Study {n}", text) for n, text in abstracts.items()])
    embedder = HashEmbedder(128)
    index = VectorIndex.open(tmp_path / "dense", filled, embedder)
    query = embedder.embed_query("finding number holds study")
    wanted = ["x3", "a", "x1", "x4", "x3", "c", "x2", "b"]
    whole, best = index.scores(query, wanted)
    assert list(best) == ["x3", "a", "x1", "x4", "c", "x2", "b"]
    for pid in best:
        own = embedder.embed_documents(passages(filled.get(pid)))
        assert best[pid] == pytest.approx(float((own @ query).max()), abs=2e-3)  # float16 storage
        mean = own.mean(axis=0) / np.linalg.norm(own.mean(axis=0))
        assert whole[pid] == pytest.approx(float(mean @ query), abs=2e-2)  # 8-bit paper vectors
    assert sorted(int(index.count[index.slot_of[f"x{n}"]]) for n in range(1, 5)) == [2, 3, 4, 5]


def test_hybrid_engine_fuses_and_filters(filled: Store, tmp_path: Path) -> None:
    engine = SearchEngine(
        filled,
        KeywordIndex.open(tmp_path / "kw", filled),
        VectorIndex.open(tmp_path / "dense", filled, HashEmbedder(128)),
    )
    hits = engine.search("galaxy clusters", 3)
    assert hits[0].paper.id == "b"
    # two topics at once: the loose ranking (match="any"), since no paper holds both words and the relevance
    # cut-off would otherwise list only weaker matches
    only_astro = engine.search("proteins and galaxies", 3, Filters(categories=("astro-ph",)), match="any")
    assert [h.paper.id for h in only_astro] == ["b"]
    assert [h.paper.id for h in engine.related("a", 2)] and all(h.paper.id != "a" for h in engine.related("a", 2))
    page2 = engine.search("speech proteins galaxy", 1, offset=1, match="any")
    assert page2[0].rank == 2


def test_keyword_ranking_serves_until_every_paper_has_a_vector(filled: Store, tmp_path: Path) -> None:
    """embed=False never embeds; a dense index missing papers is set aside, not fused, until synced."""
    settings = Settings(home=tmp_path, embedder="hash:128")
    engine = SearchEngine.open(filled, settings, embed=False)
    assert engine.dense is None and engine.vectors_pending() == 3
    assert engine.search("galaxy clusters", 3)[0].paper.id == "b"  # BM25 answers at once
    assert engine.sync_vectors() == 3 and engine.dense is not None and engine.vectors_pending() == 0
    reopened = SearchEngine.open(filled, settings, embed=False)  # current on disk: hybrid from the start
    assert reopened.dense is not None
    with filled.write() as w:
        w.insert([paper("d", "Galaxy rotation curves", "Dark matter halos of spiral galaxies.")])
    reopened.sync(embed=False)
    assert reopened.dense is None and reopened.vectors_pending() == 1
    assert "d" in [h.paper.id for h in reopened.search("galaxy", 5)]
    assert reopened.sync_vectors() == 1 and reopened.dense is not None and len(reopened.dense) == 4


def test_default_model_missing_means_keyword_search_not_an_error(
    filled: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the packaged model the default degrades to BM25; a model the user named must work or say why."""
    monkeypatch.delenv("PAPERSIFT_EMBEDDER")
    default = Settings(home=tmp_path)
    assert default.embedder == "minilm-onnx-int8"
    # the shipped model file missing, as in an install that lost its package data
    monkeypatch.setattr("papersift.index.embed_onnx.SHIPPED_DIR", tmp_path / "no-model-here")
    engine = SearchEngine.open(filled, default)
    assert engine.dense is None and engine.vectors_pending() == 0
    assert engine.search("galaxy", 1)[0].paper.id == "b"
    with pytest.raises(ConfigError, match="minilm-onnx-int8"):
        SearchEngine.open(filled, Settings(home=tmp_path, embedder="minilm-onnx-int8"))
