"""Embeddings kept in the store: computed once, read by every host that needs an index.

Why in the store and not in files beside it: every host (web servers, a Ray driver, a cron ingest)
already reaches the store and nothing else, so no shared filesystem is needed; a row is written in the
same kind of transaction as the papers and carries the model's name and the text hash it was computed
from, so "is this vector still right?" is one lookup; `pg_dump` or a copy of the SQLite file backs it up
with the papers. Size: a paper is a title plus two-sentence windows of its abstract, 5.04 passages on
average on the 74,728 arXiv listings; at 384 float16 numbers (768 bytes) a passage that is ~3.9 KB a
paper, ~3.9 GB per million papers (11 GB for all 2.9M arXiv papers): the same bytes the home's
`passages.f16` holds, so a rebuild copies them straight in. float32 would double that for nothing
(the index keeps float16 passages anyway); the paper vector (their normalised mean) is not stored,
since it is recomputed from the passages at no cost.

Writing a vector never raises the store's revision: vectors are derived data, and indexes follow papers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import MetaData, Row, Table, func, select
from sqlalchemy.dialects import postgresql, sqlite

from papersift.store.engine import WRITE_OPTION
from papersift.store.papers import _LOOKUP_CHUNK, Store


@dataclass(frozen=True, slots=True)
class StoredVectors:
    """One paper's passage vectors for one model, as float16 rows, and the text hash they were made from."""

    paper_id: str
    text_hash: str
    passages: np.ndarray  # (count, dim) float16


class VectorStore:
    """The `vectors` table (migration 11) of one store, for one model."""

    def __init__(self, store: Store, model: str, dim: int) -> None:
        self.store = store
        self.model = model
        self.dim = dim
        md = MetaData()
        md.reflect(store.engine, only=["vectors"])
        self.table: Table = md.tables["vectors"]

    def get(self, ids: Sequence[str]) -> dict[str, StoredVectors]:
        """Stored vectors of these papers for this model (whatever text hash they were made from)."""
        t = self.table
        return {
            row.paper_id: StoredVectors(
                row.paper_id, row.text_hash, np.frombuffer(row.data, dtype=np.float16).reshape(-1, self.dim)
            )
            for row in self._rows(ids, t.c.paper_id, t.c.text_hash, t.c.data)
        }

    def hashes(self, ids: Sequence[str]) -> dict[str, str]:
        """The text hash each of these papers has vectors for (cheap: no vector bytes are read)."""
        t = self.table
        return {row.paper_id: row.text_hash for row in self._rows(ids, t.c.paper_id, t.c.text_hash)}

    def _rows(self, ids: Sequence[str], *columns: Any) -> Iterator[Row[Any]]:
        """`columns` of this model's rows for `ids`, looked up in chunks the backends' parameter limits allow."""
        t = self.table
        with self.store.engine.connect() as conn:
            for start in range(0, len(ids), _LOOKUP_CHUNK):
                chunk = list(ids[start : start + _LOOKUP_CHUNK])
                yield from conn.execute(select(*columns).where(t.c.model == self.model, t.c.paper_id.in_(chunk)))

    def put(self, items: Iterable[StoredVectors]) -> int:
        """Store (or replace) vectors in one transaction; returns how many papers were written."""
        rows = [
            {
                "paper_id": item.paper_id,
                "model": self.model,
                "text_hash": item.text_hash,
                "dim": self.dim,
                "count": len(item.passages),
                "data": np.ascontiguousarray(item.passages, dtype=np.float16).tobytes(),
            }
            for item in items
        ]
        if not rows:
            return 0
        engine = self.store.engine
        dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
        insert = dialect.insert(self.table)
        upsert = insert.on_conflict_do_update(
            index_elements=["paper_id", "model"],
            set_={name: insert.excluded[name] for name in ("text_hash", "dim", "count", "data")},
        )
        with engine.connect().execution_options(**{WRITE_OPTION: True}) as conn, conn.begin():
            conn.execute(upsert, rows)
        return len(rows)

    def count(self) -> int:
        """Papers with vectors of this model (any text hash)."""
        t = self.table
        with self.store.engine.connect() as conn:
            return int(conn.execute(select(func.count()).where(t.c.model == self.model)).scalar_one())
