"""Progress of the server's background embedding, for `/healthz` and the notice on search pages.

A first run serves keyword results at once while the index thread prepares the model and embeds the
corpus (a minute for the sample, hours for a big mirror): readers and operators see how far it got.
The worker thread writes, request threads read; each field is one attribute assignment, and a reader
that sees a half-updated pair is off by one batch in a figure that is an estimate anyway.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from papersift.web.site import Site

Phase = Literal["waiting", "preparing", "embedding"]


@dataclass(frozen=True, slots=True)
class WarmupState:
    """Where semantic search is on its way: `preparing` the model, `embedding` papers, or `waiting` for
    the next round of the index thread; rate and ETA are None until the first batch is done."""

    phase: Phase
    embedded: int
    total: int
    papers_per_s: float | None
    eta_s: float | None

    def notice(self) -> str:
        """What the search page tells a reader meanwhile, e.g. "Semantic search is warming up: 1,200 of 1,812
        papers, about 40 s left — keyword results meanwhile." """
        if self.phase == "preparing":
            doing = f"preparing the language model for {self.total:,} papers"
        elif self.phase == "embedding":
            left = f", {_duration(self.eta_s)} left" if self.eta_s is not None else ""
            doing = f"{self.embedded:,} of {self.total:,} papers{left}"
        else:
            doing = f"{self.total:,} new papers to read"
        return f"Semantic search is warming up: {doing} — keyword results meanwhile."

    def to_dict(self) -> dict[str, object]:
        return {
            "phase": self.phase,
            "embedded": self.embedded,
            "total": self.total,
            "papers_per_s": None if self.papers_per_s is None else round(self.papers_per_s, 1),
            "eta_s": None if self.eta_s is None else round(self.eta_s),
        }


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"about {max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"about {round(seconds / 60)} min"
    return f"about {seconds / 3600:.1f} h"


class Warmup:
    """Written by the index thread (`preparing`, `embedding`, `advance`, `done`), read by requests (`state`)."""

    def __init__(self) -> None:
        self._phase: Phase = "waiting"
        self._total = 0
        self._embedded = 0
        self._started = 0.0

    def preparing(self, total: int) -> None:
        """The model is being loaded (built once, about half a minute) before `total` papers are embedded."""
        self._embedded, self._total, self._phase = 0, total, "preparing"

    def embedding(self, total: int) -> None:
        self._embedded, self._total, self._started = 0, total, time.monotonic()
        self._phase = "embedding"

    def advance(self, papers: int) -> None:
        """A batch of `papers` got its vectors (the progress callback of `SearchEngine.sync_vectors`)."""
        self._embedded += papers
        self._total = max(self._total, self._embedded)

    def done(self) -> None:
        self._phase = "waiting"

    def state(self, pending: int) -> WarmupState:
        """The progress to show while dense ranking is off; `pending` counts for a round not begun yet."""
        phase = self._phase
        if phase == "waiting":
            return WarmupState("waiting", 0, pending, None, None)
        embedded, total = self._embedded, self._total
        elapsed = time.monotonic() - self._started
        rate = embedded / elapsed if phase == "embedding" and embedded and elapsed > 0 else None
        eta = (total - embedded) / rate if rate else None
        return WarmupState(phase, embedded, total, rate, eta)


def semantic_health(site: Site) -> dict[str, object]:
    """The `/healthz` fields on semantic search: `semantic` is ok, off (no embedder), starting or warming up;
    `embedding` the progress while warming up (else null)."""
    state = site.warming_up()
    if state is not None:
        return {"semantic": "warming up", "embedding": state.to_dict()}
    engine = site.engine_if_open()
    if engine is None:
        return {"semantic": "starting", "embedding": None}
    return {"semantic": "ok" if engine.embeds or engine.vectors_unloaded else "off", "embedding": None}
