"""Learned curation of the daily list, measured: would papersift pick what Hugging Face's curators picked?

Listings come from the arXiv daily files, the featured papers from the HF daily-papers archive. The
model is trained on listing days before the split date (labels: papers featured before the split),
its settings picked on a validation slice carved from the end of that training period, and then it
ranks every later listing day that has featured papers. Reported: mean per-day precision@10 and
nDCG@20 (binary gains) of featured papers, next to baselines from the same run. Every history-based
feature of day D counts only what was known before D (see `rank.features`).
"""

from __future__ import annotations

import gzip
import json
import resource
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from papersift.bench.metrics import ndcg_at
from papersift.rank.curation import Curator, Day, Params, Recent, Text, build_days, fit_ranker, make_vectorizer
from papersift.rank.features import META_NAMES, Featuring, History, Listed, known_day

VALIDATION_SHARE = 0.2  # the last fifth of the training days picks the settings
GRID = (  # the ranker's settings; the text model is fitted once per stage and shared by every point
    Params(),
    Params(num_leaves=7, rounds=400),
    Params(num_leaves=31, rounds=200, min_child_samples=100),
    Params(learning_rate=0.03, rounds=500),
)


@dataclass(slots=True)
class Corpus:
    days: dict[date, list[Listed]]
    featured: dict[str, date]  # arXiv id -> first day featured
    featurings: list[Featuring]
    texts: dict[str, str]  # arXiv id -> title and abstract of every featured paper


def load(listings: Path, featured_file: Path, limit_days: int | None = None) -> Corpus:
    """Listings and the featured archive, joined on arXiv id; `limit_days` keeps the first N listing days (tests)."""
    days: dict[date, list[Listed]] = defaultdict(list)
    with gzip.open(listings) as stream:
        for line in stream:
            r = orjson.loads(line)
            day = date.fromisoformat(r["listing_date"])
            days[day].append(
                Listed(
                    r["id"],
                    day,
                    r["title"] or "",
                    r.get("abstract") or "",
                    tuple(r.get("authors") or ()),
                    tuple(r.get("categories") or ()),
                    r.get("comment") or "",
                )
            )
    if limit_days is not None:
        days = defaultdict(list, {d: days[d] for d in sorted(days)[:limit_days]})
    listed = {p.id: p for ps in days.values() for p in ps}
    featured: dict[str, date] = {}
    texts: dict[str, str] = {}
    first_author: dict[str, tuple[str, ...]] = {}
    with gzip.open(featured_file) as stream:
        for line in stream:
            r = orjson.loads(line)
            day = date.fromisoformat(r["date"][:10])
            if r["arxiv_id"] not in featured or day < featured[r["arxiv_id"]]:
                featured[r["arxiv_id"]] = day
            texts.setdefault(r["arxiv_id"], f"{r['title']}\n{r.get('summary') or ''}")
            first_author.setdefault(r["arxiv_id"], (r["author"],) if r.get("author") else ())
    featurings = []
    for pid, day in featured.items():
        paper = listed.get(pid)
        known = known_day(day, paper.day if paper else None)
        assert known is not None
        featurings.append(Featuring(pid, known, paper.authors if paper else first_author[pid]))
    return Corpus(dict(days), featured, featurings, texts)


def precision_at(ranked: Sequence[str], relevant: set[str], k: int = 10) -> float:
    return sum(1 for pid in ranked[:k] if pid in relevant) / k


def evaluate(days: Sequence[Day], scores: Sequence[np.ndarray]) -> dict[str, float]:
    p10, ndcg = [], []
    for day, score in zip(days, scores, strict=True):
        order = [day.papers[i].id for i in np.argsort(-score, kind="stable")]
        relevant = {p.id for p, y in zip(day.papers, day.labels, strict=True) if y > 0}
        p10.append(precision_at(order, relevant))
        ndcg.append(ndcg_at(order, dict.fromkeys(relevant, 1), 20))
    return {"p@10": round(float(np.mean(p10)), 4), "ndcg@20": round(float(np.mean(ndcg)), 4)}


def _column(name: str) -> int:
    return META_NAMES.index(name)


def _tiebreak(day: Day, seed: int) -> np.ndarray:
    """Random order among equal scores (seeded by the day, so baselines are reproducible)."""
    return np.random.default_rng(seed + day.day.toordinal()).random(len(day.papers)) * 1e-3


class Logistic:
    """The linear baseline: logistic regression on tf-idf + the standardised metadata features."""

    def __init__(self, days: Sequence[Day], c: float) -> None:
        self.scaler = StandardScaler().fit(np.vstack([d.meta for d in days]))
        x = sp.vstack([self._x(d) for d in days]).tocsr()
        y = np.concatenate([d.labels for d in days])
        self.model = LogisticRegression(C=c, max_iter=500, solver="liblinear", class_weight="balanced").fit(x, y)

    def _x(self, day: Day) -> sp.csr_matrix:
        return sp.hstack([day.text, sp.csr_matrix(self.scaler.transform(day.meta))]).tocsr()

    def score(self, day: Day) -> np.ndarray:
        return np.asarray(self.model.decision_function(self._x(day)))


def _pick(train: Sequence[Day], valid: Sequence[Day], candidates: Sequence[Any], fit: Callable[[Any], Any]) -> Any:
    best, best_key = candidates[0], (-1.0, -1.0)
    for candidate in candidates:
        model = fit(candidate)
        figures = evaluate(valid, [model.score(d) for d in valid])
        key = (figures["p@10"], figures["ndcg@20"])
        if key > best_key:
            best, best_key = candidate, key
    return best


def run_split(
    corpus: Corpus, split: date, grid: Sequence[Params] = GRID, out: Callable[[str], None] = print
) -> dict[str, Any]:
    started = time.perf_counter()
    train_featured = {pid for pid, day in corpus.featured.items() if day < split}
    history = History(corpus.featurings, [(p.day, p.authors) for ps in corpus.days.values() for p in ps])
    texts = corpus.texts
    vectorizer = make_vectorizer().fit(
        [p.text for d, ps in corpus.days.items() if d < split for p in ps]
        + [t for pid, t in texts.items() if corpus.featured[pid] < split]
    )
    known = {f.id: f.known for f in corpus.featurings}
    last = max(corpus.days)
    ids = sorted(i for i in texts if known[i] <= last)  # featured later can never be "recent" to a listed day
    listed_text = {p.id: p.text for ps in corpus.days.values() for p in ps}
    recent = Recent([known[i] for i in ids], vectorizer.transform([listed_text.get(i, texts[i]) for i in ids]).tocsr())
    ordered = sorted(corpus.days.items())
    train_days = build_days([x for x in ordered if x[0] < split], history, vectorizer, recent, train_featured)
    test_days = build_days([x for x in ordered if x[0] >= split], history, vectorizer, recent, set(corpus.featured))
    train_days = [d for d in train_days if d.labels.sum() > 0]
    test_days = [d for d in test_days if d.labels.sum() > 0]
    if len(train_days) < 10 or not test_days:
        raise ValueError(
            f"split {split}: {len(train_days)} training and {len(test_days)} evaluation days with featured papers"
        )
    cut = int(len(train_days) * (1 - VALIDATION_SHARE))
    fit_part, valid = train_days[:cut], train_days[cut:]
    out(
        f"split {split}: {len(train_days)} training days ({len(valid)} for validation), "
        f"{len(test_days)} evaluation days; features in {time.perf_counter() - started:.0f}s"
    )

    text = Text.fit(fit_part, grid[0].text_c)
    params = _pick(
        fit_part, valid, grid, lambda p: Curator(vectorizer, text.model, fit_ranker(fit_part, text.oof, p), p)
    )
    c = _pick(fit_part, valid, (0.25, 1.0, 4.0), lambda c: Logistic(fit_part, c))
    out(f"picked on validation: {params}; logistic C={c}")
    fit_started, fit_cpu = time.perf_counter(), time.process_time()
    curator = Curator.fit(train_days, vectorizer, params)
    fit_s, fit_cpu_s = time.perf_counter() - fit_started, time.process_time() - fit_cpu
    out(f"final fit on {len(train_days)} days: {fit_s:.1f}s wall, {fit_cpu_s:.1f}s CPU")
    logistic = Logistic(train_days, c)

    track = _column("featured_sum")
    team = _column("team_size")
    table = {
        "random": evaluate(test_days, [_tiebreak(d, 1) for d in test_days]),
        "team size": evaluate(test_days, [d.meta[:, team] + _tiebreak(d, 2) for d in test_days]),
        "track record": evaluate(test_days, [d.meta[:, track] + _tiebreak(d, 3) for d in test_days]),
        "logistic tf-idf + metadata": evaluate(test_days, [logistic.score(d) for d in test_days]),
        "papersift (lambdarank)": evaluate(test_days, [curator.score(d) for d in test_days]),
    }
    for name, figures in table.items():
        out(f"  {name:28s} P@10 {figures['p@10']:.4f}  nDCG@20 {figures['ndcg@20']:.4f}")
    out(f"split {split} done in {time.perf_counter() - started:.0f}s")
    ours = table.pop("papersift (lambdarank)")
    return {
        "split": split.isoformat(),
        **ours,
        "baselines": table,
        "eval_days": len(test_days),
        "fit_cpu_s": round(fit_cpu_s, 1),
    }


def main(
    listings: Path,
    featured: Path,
    splits: Sequence[date],
    limit_days: int | None = None,
    grid: Sequence[Params] = GRID,
) -> dict[str, Any]:
    """Prints one table per split; the last line is the JSON of the first split, other splits under `splits`."""
    started, cpu_started = time.perf_counter(), time.process_time()
    corpus = load(listings, featured, limit_days)
    print(
        f"loaded {sum(map(len, corpus.days.values()))} listed papers on {len(corpus.days)} days, "
        f"{len(corpus.featured)} featured"
    )
    results = [run_split(corpus, split, grid, partial(print, flush=True)) for split in splits]
    summary = {
        **results[0],
        "seconds": round(time.perf_counter() - started, 1),
        "cpu_seconds": round(time.process_time() - cpu_started, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    if len(results) > 1:
        summary["splits"] = {r["split"]: {k: r[k] for k in ("p@10", "ndcg@20", "baselines")} for r in results[1:]}
    print(json.dumps(summary))
    return summary
