"""Answerability of the relevance cut-off (`papersift.cutoff`) on BEIR queries.

Each query runs twice: against the full corpus (its relevant papers that reach the engine's top 10
should survive the cut-off: `cutoff_kept`) and with its relevant papers removed (then nothing should
pass: `unanswerable_empty`). Removing a paper is done by dropping it from both candidate lists, which
are then cut to the engine's depth again: exactly the candidates a corpus without it would yield, except
that BM25's document frequencies still count it (a few papers in 5,183; the cut-off's signals, cosine
and word coverage, do not depend on them).

`calibrate` picks the cut-off's coverage weight and threshold on *train* queries; `curve` measures any
cut-off on test queries without choosing anything.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from papersift.cutoff import Cutoff, signals
from papersift.search import CANDIDATES, SearchEngine

TOP = 10
KEEP_TARGET = 0.97  # calibration keeps this share of train top-10 relevant papers (the test target is 0.95)
WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
THRESHOLDS = tuple(round(0.2 + 0.01 * i, 2) for i in range(101))  # 0.20 .. 1.20

Pair = tuple[float | None, float]  # (cosine, share of query words held)


@dataclass(slots=True)
class Answerability:
    """One query's signals: its relevant papers in the full top 10, and every candidate once they are gone."""

    relevant: list[Pair]
    remaining: list[Pair]


def measure(
    engine: SearchEngine, queries: dict[str, str], qrels: dict[str, dict[str, int]]
) -> dict[str, Answerability]:
    """Run every query through the engine's own retrieval and fusion, with and without its relevant papers."""
    dense = engine.dense
    assert dense is not None, "the answerability check needs an embedder"
    out = {}
    for qid, text in queries.items():
        wanted = {doc for doc, rel in qrels[qid].items() if rel > 0}
        vector = dense.embedder.embed_query(text)
        bm25 = engine.keyword.search(text, CANDIDATES + len(wanted))
        near = dense.search_vector(vector, CANDIDATES + len(wanted))
        top = [pid for pid, _ in engine.combine(dense, vector, bm25[:CANDIDATES], near[:CANDIDATES])[:TOP]]
        kept_bm25 = [hit for hit in bm25 if hit[0] not in wanted][:CANDIDATES]
        kept_near = [hit for hit in near if hit[0] not in wanted][:CANDIDATES]
        remaining = list(dict.fromkeys(pid for pid, _ in kept_bm25 + kept_near))
        found = signals(engine.keyword, dense, vector, text, [pid for pid in top if pid in wanted] + remaining)
        out[qid] = Answerability([found[pid] for pid in top if pid in wanted], [found[pid] for pid in remaining])
    return out


def rates(runs: Sequence[Answerability], cutoff: Cutoff) -> tuple[float, float]:
    """(share of relevant top-10 papers the cut-off keeps, share of unanswerable queries left empty)."""
    relevant = [cutoff.verdict(*pair).strong for run in runs for pair in run.relevant]
    empty = [not any(cutoff.verdict(*pair).strong for pair in run.remaining) for run in runs]
    return (sum(relevant) / len(relevant) if relevant else 1.0), (sum(empty) / len(empty) if empty else 0.0)


def calibrate(runs: Sequence[Answerability], out: Callable[[str], None] = print) -> Cutoff:
    """For each coverage weight the highest threshold keeping KEEP_TARGET of the relevant papers; of those,
    the cut-off leaving the most queries empty. Call it with train queries only."""
    best: tuple[float, Cutoff] | None = None
    for weight in WEIGHTS:
        chosen = None
        for threshold in THRESHOLDS:
            cutoff = Cutoff(threshold, weight)
            kept, empty = rates(runs, cutoff)
            if kept >= KEEP_TARGET:
                chosen = (empty, cutoff, kept)
        if chosen is None:
            continue
        empty, cutoff, kept = chosen
        out(f"  coverage weight {weight:.1f}: threshold {cutoff.threshold:.2f} keeps {kept:.3f}, empties {empty:.3f}")
        if best is None or empty > best[0]:
            best = (empty, cutoff)
    assert best is not None
    return best[1]


def curve(runs: Sequence[Answerability], weight: float, thresholds: Sequence[float]) -> list[dict[str, float]]:
    """(threshold, cutoff_kept, unanswerable_empty) over thresholds at one coverage weight."""
    points = []
    for threshold in thresholds:
        kept, empty = rates(runs, Cutoff(threshold, weight))
        points.append({"threshold": threshold, "cutoff_kept": round(kept, 4), "unanswerable_empty": round(empty, 4)})
    return points
