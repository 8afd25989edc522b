"""Issue 10, item 21: a home copied or restored elsewhere keeps its keyword and vector indexes (they are keyed on
the store's own id, not on its URL), and indexes saved by older versions (keyed on the URL) are adopted once."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import numpy as np

from papersift.index.embed import HashEmbedder
from papersift.index.keyword import KeywordIndex
from papersift.index.vectors import VectorIndex
from papersift.ingest import ingest
from papersift.models import Paper
from papersift.settings import Settings
from papersift.store import Store

from .conftest import SAMPLE


class CountingEmbedder(HashEmbedder):
    """The real hashing embedder, counting the texts it embeds (a moved home must embed none)."""

    def __init__(self) -> None:
        super().__init__(64)
        self.calls = 0

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += len(texts)
        return super().embed_documents(texts)


def _segments(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir() if p.suffix in {".term", ".idx", ".store"}}


def _build(home: Path) -> Settings:
    settings = Settings(home=home, embedder="none")
    store = Store.open(settings.store_url)
    ingest(store, str(SAMPLE / "hf_featured_sample.jsonl.gz"))
    KeywordIndex.open(settings.index_dir / "keyword", store)
    embedder = CountingEmbedder()
    VectorIndex.open(settings.index_dir / "dense", store, embedder)
    assert embedder.calls > 0
    store.close()
    return settings


def test_a_copied_home_reuses_both_indexes(tmp_path: Path) -> None:
    old = _build(tmp_path / "old")
    shutil.copytree(tmp_path / "old", tmp_path / "new")
    new = Settings(home=tmp_path / "new", embedder="none")
    assert new.store_url != old.store_url
    segments = _segments(new.index_dir / "keyword")
    store = Store.open(new.store_url)
    keyword = KeywordIndex.open(new.index_dir / "keyword", store)
    assert _segments(new.index_dir / "keyword") == segments, "the keyword index was rebuilt"
    assert keyword.num_docs == store.count()
    embedder = CountingEmbedder()
    dense = VectorIndex.open(new.index_dir / "dense", store, embedder)
    assert embedder.calls == 0, "the copied home re-embedded its papers"
    assert len(dense) == store.count()
    with store.write() as w:  # and it stays incremental afterwards
        w.insert([Paper(id="t:moved", title="Moved homes keep vectors", announced=date(2026, 7, 2))])
    assert dense.sync(store) == 1 and embedder.calls == 1
    assert keyword.sync(store) == 1
    store.close()


def test_indexes_keyed_on_the_url_by_older_versions_are_adopted_once(tmp_path: Path) -> None:
    settings = _build(tmp_path / "home")
    store = Store.open(settings.store_url)
    url = store.engine.url.render_as_string(hide_password=True)
    for name in ("keyword", "dense"):  # what papersift wrote before store ids
        state_file = settings.index_dir / name / "state.json"
        state = json.loads(state_file.read_text())
        state_file.write_text(json.dumps({**state, "store": url}))
    segments = _segments(settings.index_dir / "keyword")
    KeywordIndex.open(settings.index_dir / "keyword", store)
    embedder = CountingEmbedder()
    VectorIndex.open(settings.index_dir / "dense", store, embedder)
    assert embedder.calls == 0 and _segments(settings.index_dir / "keyword") == segments
    for name in ("keyword", "dense"):
        assert json.loads((settings.index_dir / name / "state.json").read_text())["store"] == store.identity()
    store.close()


def test_an_index_of_another_store_is_still_rebuilt(tmp_path: Path) -> None:
    settings = _build(tmp_path / "home")
    for name in ("keyword", "dense"):
        state_file = settings.index_dir / name / "state.json"
        state_file.write_text(json.dumps({**json.loads(state_file.read_text()), "store": "sqlite:///elsewhere.db"}))
    store = Store.open(settings.store_url)
    embedder = CountingEmbedder()
    index = VectorIndex.open(settings.index_dir / "dense", store, embedder)
    assert len(index) == store.count()
    # rebuilt, not adopted: every paper copied in again, from the vectors the store keeps (nothing embedded)
    assert index.reused == store.count() and embedder.calls == 0
    assert json.loads((settings.index_dir / "keyword" / "state.json").read_text())["store"] != store.identity()
    KeywordIndex.open(settings.index_dir / "keyword", store)
    assert json.loads((settings.index_dir / "keyword" / "state.json").read_text())["store"] == store.identity()
    store.close()
