"""For-you recommendations on simulated readers: every author with enough papers before and after a split
date is a reader whose library is their earlier papers; the candidates are every paper listed from the
split on; a hit is one of their later papers. Author names are never shown to a ranker (with them the
task is trivial). papersift's model (`papersift.rank.recommend`) is measured next to baselines from the
same run: a random order, the tf-idf centroid and arxiv-sanity-lite's per-tag model (LinearSVC, C=0.01,
balanced classes, on its tf-idf features: the library against random earlier papers).

Readers are drawn with a seed and split in two disjoint samples: choose settings on `--sample
validation`, report `--sample test` (the default).
"""

from __future__ import annotations

import gzip
import json
import random
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC

from papersift.rank import recommend

DEPTH = 50
SVM_NEGATIVES = 2000
Ranker = Callable[[list[int]], np.ndarray]  # library row indexes -> a score per candidate


@dataclass(slots=True)
class Task:
    texts: list[str]  # per paper, no author names
    candidates: np.ndarray  # row indexes of the papers listed from the split on
    earlier: np.ndarray  # row indexes listed before it (the SVM's pool of negatives)
    readers: list[tuple[str, list[int], set[int]]]  # (name, library rows, hit positions among candidates)


def load(path: Path, since: date | None, until: date | None) -> list[dict[str, Any]]:
    """Listings in [since, until) from the arxiv_daily JSON lines (gzip or plain)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        rows = [orjson.loads(line) for line in fh if line.strip()]
    lo, hi = (since or date.min).isoformat(), (until or date.max).isoformat()
    return [r for r in rows if lo <= r["listing_date"] < hi]


def build_task(
    rows: list[dict[str, Any]], split: date, n: int, seed: int, sample: str, min_before: int, min_after: int
) -> tuple[Task, int]:
    """The readers of one sample and everything a ranker may see; also how many readers qualified."""
    cut = split.isoformat()
    before: dict[str, list[int]] = defaultdict(list)
    after: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        for name in r["authors"]:
            (after if r["listing_date"] >= cut else before)[name].append(i)
    eligible = sorted(a for a, rows_ in before.items() if len(rows_) >= min_before and len(after[a]) >= min_after)
    random.Random(seed).shuffle(eligible)
    chosen = eligible[:n] if sample == "test" else eligible[n : 2 * n]
    candidates = np.array([i for i, r in enumerate(rows) if r["listing_date"] >= cut], dtype=np.int64)
    position = {int(row): k for k, row in enumerate(candidates)}
    earlier = np.array([i for i, r in enumerate(rows) if r["listing_date"] < cut], dtype=np.int64)
    texts = [recommend.paper_text(r["title"], r["abstract"], r.get("comment") or "") for r in rows]
    readers = [(a, before[a], {position[i] for i in after[a]}) for a in chosen]
    return Task(texts, candidates, earlier, readers), len(eligible)


def evaluate(task: Task, rank: Ranker) -> dict[str, float]:
    """Mean recall@50 and precision@10 over the task's readers."""
    recalls, precisions = [], []
    for _, library, hits in task.readers:
        best = recommend.top(rank(library), DEPTH).tolist()
        recalls.append(len(hits.intersection(best)) / len(hits))
        precisions.append(len(hits.intersection(best[:10])) / 10)
    return {"recall@50": round(float(np.mean(recalls)), 4), "p@10": round(float(np.mean(precisions)), 4)}


def papersift_ranker(task: Task, boost: float) -> Ranker:
    _, matrix = recommend.fit_space(task.texts, boost=boost)
    candidates = matrix[task.candidates]
    return lambda library: recommend.score(candidates, recommend.profile(matrix[library]))


def sanity_features(texts: Sequence[str]) -> sp.csr_matrix:
    """arxiv-sanity-lite's compute.py features (authors left out: they are hidden here)."""
    vectorizer = TfidfVectorizer(
        strip_accents="unicode",
        lowercase=True,
        stop_words="english",
        token_pattern=r"(?u)\b[a-zA-Z_][a-zA-Z0-9_]+\b",
        ngram_range=(1, 2),
        max_features=20000,
        sublinear_tf=True,
        max_df=0.1,
        min_df=5 if len(texts) > 5000 else 1,  # its min_df assumes a large corpus
        dtype=np.float32,
    )
    return sp.csr_matrix(vectorizer.fit_transform(texts))


def centroid_ranker(task: Task, features: sp.csr_matrix) -> Ranker:
    candidates = features[task.candidates]
    return lambda library: recommend.score(candidates, recommend.profile(features[library]))


def svm_ranker(task: Task, features: sp.csr_matrix) -> Ranker:
    candidates = features[task.candidates]

    def rank(library: list[int]) -> np.ndarray:
        rng = np.random.default_rng(library[0])  # seeded per reader: runs repeat
        pool = np.setdiff1d(task.earlier, library)
        negatives = rng.choice(pool, min(SVM_NEGATIVES, len(pool)), replace=False)
        x = features[np.concatenate([np.asarray(library), negatives])]
        y = np.r_[np.ones(len(library)), np.zeros(len(negatives))]
        model = LinearSVC(class_weight="balanced", C=0.01, max_iter=10000, tol=1e-6).fit(x, y)
        return np.asarray(model.decision_function(candidates))

    return rank


def random_ranker(task: Task, seed: int) -> Ranker:
    rng = np.random.default_rng(seed)
    return lambda library: rng.random(len(task.candidates))


def main(
    data: Path,
    readers: int = 300,
    seed: int = 12,
    sample: str = "test",
    split: date = date(2026, 1, 1),
    since: date | None = None,
    until: date | None = None,
    min_before: int = 5,
    min_after: int = 3,
    boost: float = recommend.IDF_BOOST,
) -> dict[str, Any]:
    """Print one row per ranker and, last, the JSON summary; returns the summary."""
    started = time.monotonic()
    rows = load(data, since, until)
    task, eligible = build_task(rows, split, readers, seed, sample, min_before, min_after)
    if not task.readers:
        raise SystemExit(f"no reader has {min_before}+ papers before {split} and {min_after}+ after in {data}")
    print(
        f"{len(rows):,} papers, {len(task.candidates):,} candidates from {split}; {eligible:,} qualifying readers, "
        f"{len(task.readers)} in the {sample} sample (seed {seed})"
    )
    results: dict[str, dict[str, float]] = {}
    timings: dict[str, float] = {}

    def measure(name: str, build: Callable[[], Ranker]) -> None:
        t0 = time.monotonic()
        results[name] = evaluate(task, build())
        timings[name] = time.monotonic() - t0
        r = results[name]
        print(f"  {name:<34} R@50 {r['recall@50']:.4f}  P@10 {r['p@10']:.4f}  ({timings[name]:.0f}s)", flush=True)

    measure("random", lambda: random_ranker(task, seed))
    features = sanity_features(task.texts)
    measure("tf-idf centroid", lambda: centroid_ranker(task, features))
    measure("tf-idf SVM (arxiv-sanity)", lambda: svm_ranker(task, features))
    measure("papersift", lambda: papersift_ranker(task, boost))
    ours = results.pop("papersift")
    svm = results["tf-idf SVM (arxiv-sanity)"]["recall@50"]
    ratio = ours["recall@50"] / svm if svm else float("inf")
    print(f"papersift / SVM recall@50: {ratio:.2f}x; whole run {time.monotonic() - started:.0f}s")
    summary = {**ours, "readers": len(task.readers), "sample": sample, "seed": seed, "ratio_to_svm": round(ratio, 3)}
    summary["baselines"] = results
    print(json.dumps(summary))
    return summary
