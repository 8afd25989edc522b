"""A cross-process lock per index directory.

`papersift serve` workers and a cron `papersift ingest` all keep the same indexes in step with the
store; tantivy allows one writer and the vector files are replaced whole, so every open/sync that
may write takes this lock. It lives beside the directory, not in it, because a rebuild deletes the
directory. fcntl locks are released by the kernel if a process dies holding one.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from papersift.store import Store


@contextmanager
def index_lock(directory: Path) -> Iterator[None]:
    directory.parent.mkdir(parents=True, exist_ok=True)
    with (directory.parent / f".{directory.name}.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def newer_state(directory: Path, state: dict[str, Any]) -> dict[str, Any] | None:
    """The index's saved state when another process has synced it past `state`, else None."""
    try:
        on_disk: dict[str, Any] = json.loads((directory / "state.json").read_text())
    except (OSError, ValueError):
        return None
    return on_disk if int(on_disk.get("rev", -1)) > int(state["rev"]) else None


def belongs_to(state: dict[str, Any], store: Store) -> bool:
    """Whether an index's saved state was built from `store`.

    Keyed on the store's own id (`Store.identity`), so a home copied, moved or restored elsewhere keeps
    its indexes (re-embedding 1M papers takes hours). Indexes saved before store ids carry the store's
    URL instead: accepted when it is this store's URL, and the caller rewrites them with the id.
    """
    key = state.get("store")
    return key == store.identity() or key == store.engine.url.render_as_string(hide_password=True)
