"""Dense vector index on usearch (HNSW), kept in step with the store like the keyword index.

Files in the directory: `hnsw.usearch` (the graph + vectors, memory-mapped when nothing needs
adding), `slots.tsv` (slot -> paper id and text hash), `state.json` (schema, model, store
revision). A paper whose title and abstract are unchanged keeps its vector: embeddings are paid
once per text hash. Anything missing, foreign, from another model or unreadable is rebuilt.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

# Load order matters: onnxruntime imported *after* usearch 2.26 (its bundled numkong kernels)
# segfaults on import, while the other order works (seen with onnxruntime 1.32). The dense index
# itself works without onnxruntime, so its absence is fine.
with contextlib.suppress(ImportError):
    import onnxruntime  # noqa: F401
from usearch.index import Index

from papersift.index.embed import Embedder
from papersift.index.lock import index_lock, newer_state
from papersift.models import Paper
from papersift.store import Store

SCHEMA_VERSION = 1
EXACT_BELOW = 50_000  # brute force is exact and still fast for small corpora
EMBED_BATCH = 256
CHECKPOINT_S = 60.0  # a long backfill saves its progress this often, so a restart resumes it
Progress = Callable[[int], None]


def paper_text(paper: Paper) -> str:
    """What a paper is embedded as: title and abstract, the fields a reader judges relevance on."""
    return f"{paper.title}. {paper.abstract}" if paper.abstract else paper.title


class VectorIndex:
    """Open with `VectorIndex.open(directory, store, embedder)`; it is synced with the store."""

    def __init__(self, directory: Path, embedder: Embedder, state: dict[str, Any]) -> None:
        self.directory = directory
        self.embedder = embedder
        self.state = state
        self.index = Index(ndim=embedder.dim, metric="cos", dtype=state.get("dtype", "f16"))
        self.ids: list[str] = []
        self.hashes: list[str] = []
        self.slot_of: dict[str, int] = {}
        self._viewing = False

    # -- lifecycle ---------------------------------------------------------------------------------

    @classmethod
    def open(
        cls, directory: Path, store: Store, embedder: Embedder, dtype: str = "f16", progress: Progress | None = None
    ) -> VectorIndex:
        with index_lock(directory):
            found = cls._try_open(directory, store, embedder, dtype)
            if found is None:
                found = cls.create_empty(directory, store, embedder, dtype)
            found._sync_locked(store, progress)
        return found

    @classmethod
    def load(cls, directory: Path, store: Store, embedder: Embedder, dtype: str = "f16") -> VectorIndex | None:
        """What is on disk, possibly behind the store, without embedding anything; None if unusable."""
        with index_lock(directory):
            return cls._try_open(directory, store, embedder, dtype)

    def is_current(self, store: Store) -> bool:
        return int(self.state["rev"]) == store.revision()

    def pending(self, store: Store) -> int:
        """Papers changed since this index was last synced (an upper bound on what needs embedding)."""
        return store.count_changed_since(int(self.state["rev"]))

    @classmethod
    def _try_open(cls, directory: Path, store: Store, embedder: Embedder, dtype: str) -> VectorIndex | None:
        try:
            state = json.loads((directory / "state.json").read_text())
            expected = (SCHEMA_VERSION, embedder.name, embedder.dim, dtype)
            if (state["schema_version"], state["model"], state["dim"], state["dtype"]) != expected:
                return None
            if state["store"] != store.engine.url.render_as_string(hide_password=True):
                return None
            if int(state["rev"]) > store.revision():
                return None
            found = cls(directory, embedder, state)
            found._load(view=int(state["rev"]) == store.revision())
            return found
        except (OSError, ValueError, KeyError, IndexError, TypeError, RuntimeError):
            return None

    def _load(self, view: bool) -> None:
        lines = (self.directory / "slots.tsv").read_text().splitlines()
        self.ids = [line.split("\t", 1)[0] for line in lines]
        self.hashes = [line.split("\t", 1)[1] for line in lines]
        self.slot_of = {pid: slot for slot, pid in enumerate(self.ids) if pid}
        path = str(self.directory / "hnsw.usearch")
        if view:
            self.index.view(path)  # memory-mapped: pages load on demand, shared between processes
        else:
            self.index.load(path)
        self._viewing = view
        if len(self.index) != len(self.slot_of):
            raise ValueError("vector index and slot table disagree")

    def _save(self) -> None:
        tmp = self.directory / "hnsw.usearch.tmp"
        self.index.save(str(tmp))
        tmp.replace(self.directory / "hnsw.usearch")
        slots = self.directory / "slots.tsv.tmp"
        slots.write_text("".join(f"{pid}\t{h}\n" for pid, h in zip(self.ids, self.hashes, strict=True)))
        slots.replace(self.directory / "slots.tsv")
        state = self.directory / "state.json.tmp"
        state.write_text(json.dumps(self.state))
        state.replace(self.directory / "state.json")

    def sync(self, store: Store, progress: Progress | None = None) -> int:
        """Embed papers whose text changed since the last sync, drop hidden ones; returns vectors changed."""
        with index_lock(self.directory):
            newer = newer_state(self.directory, self.state)
            if newer is not None:
                self.state = newer
                self._reload(view=False)
            return self._sync_locked(store, progress)

    def _reload(self, view: bool) -> None:
        self.index = Index(ndim=self.embedder.dim, metric="cos", dtype=self.state["dtype"])
        self._load(view=view)

    def _sync_locked(self, store: Store, progress: Progress | None) -> int:
        target = store.revision()
        if target == self.state["rev"]:
            return 0
        if self._viewing:  # a memory-mapped index is read-only: load it to change it
            self._reload(view=False)
        pending: list[Paper] = []
        changed: set[str] = set()
        saved = time.monotonic()
        for paper in store.iter_papers(since_rev=int(self.state["rev"])):
            slot = self.slot_of.get(paper.id)
            if slot is not None and (paper.hidden or self.hashes[slot] != paper.text_hash()):
                self._remove(slot)
                changed.add(paper.id)
                slot = None
            if slot is None and not paper.hidden:
                pending.append(paper)
                changed.add(paper.id)
            if len(pending) >= EMBED_BATCH * 8:
                self._add(pending, progress)
                pending = []
                if time.monotonic() - saved > CHECKPOINT_S:
                    # saved under the old rev: a resumed sync walks the same papers and skips every
                    # one whose text hash already has a vector
                    self._save()
                    saved = time.monotonic()
        self._add(pending, progress)
        self.state["rev"] = target
        self._save()
        return len(changed)

    @classmethod
    def create_empty(cls, directory: Path, store: Store, embedder: Embedder, dtype: str = "f16") -> VectorIndex:
        """A new, empty index for loading precomputed vectors with `add_vectors` (e.g. from a GPU box)."""
        if directory.exists():
            shutil.rmtree(directory)
        directory.mkdir(parents=True)
        state = {
            "schema_version": SCHEMA_VERSION,
            "model": embedder.name,
            "dim": embedder.dim,
            "dtype": dtype,
            "store": store.engine.url.render_as_string(hide_password=True),
            "rev": 0,
        }
        return cls(directory, embedder, state)

    def add_vectors(self, ids: Sequence[str], vectors: np.ndarray, text_hashes: Sequence[str]) -> None:
        """Load vectors computed elsewhere; `text_hashes` (Paper.text_hash) keep later syncs incremental."""
        first = len(self.ids)
        self.index.add(np.arange(first, first + len(ids), dtype=np.uint64), vectors)
        for pid, text_hash in zip(ids, text_hashes, strict=True):
            self.slot_of[pid] = len(self.ids)
            self.ids.append(pid)
            self.hashes.append(text_hash)

    def commit(self, store: Store) -> None:
        """Declare the index current with the store and save it."""
        with index_lock(self.directory):
            self.state["rev"] = store.revision()
            self._save()

    def _remove(self, slot: int) -> None:
        self.index.remove(slot)
        del self.slot_of[self.ids[slot]]
        self.ids[slot] = ""

    def _add(self, papers: Sequence[Paper], progress: Progress | None) -> None:
        if not papers:
            return
        vectors = self.embedder.embed_documents([paper_text(p) for p in papers])
        first = len(self.ids)
        keys = np.arange(first, first + len(papers), dtype=np.uint64)
        self.index.add(keys, vectors)
        for paper in papers:
            self.slot_of[paper.id] = len(self.ids)
            self.ids.append(paper.id)
            self.hashes.append(paper.text_hash())
        if progress:
            progress(len(papers))

    # -- search ------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.slot_of)

    def search_vector(self, vector: np.ndarray, limit: int) -> list[tuple[str, float]]:
        """(paper id, cosine similarity) best first."""
        if not self.slot_of:
            return []
        count = min(limit, len(self.slot_of))
        matches = self.index.search(vector, count, exact=len(self.slot_of) < EXACT_BELOW)
        return [
            (self.ids[int(key)], 1.0 - float(dist)) for key, dist in zip(matches.keys, matches.distances, strict=True)
        ]

    def search(self, text: str, limit: int) -> list[tuple[str, float]]:
        return self.search_vector(self.embedder.embed_query(text), limit)

    def vector_of(self, paper_id: str) -> np.ndarray | None:
        slot = self.slot_of.get(paper_id)
        if slot is None:
            return None
        return np.asarray(self.index.get(slot), dtype=np.float32)
