"""The curation model: which of a day's listed papers a curator would feature.

Chosen by measurement (`papersift bench curation`, figures in README): a LightGBM LambdaRank model
grouped by listing day over (a) the non-text features of `rank.features` (authors' featured track
record counted only from history known before the day, team size, code links, categories, cues),
(b) how close the paper is (tf-idf cosine) to papers featured in the previous weeks, and (c) a
logistic regression on tf-idf of title+abstract, given to the trees as out-of-fold scores so they
learn how far to trust it. Why this shape: the track record is the strongest single signal but is
strongly non-linear (one featured author matters far more than ten unfeatured ones; large groups
publish a lot and are featured at a low rate), which trees capture and a linear model does not;
text alone carries topic fashion, which the recent-featured similarity tracks as it drifts. The
learning-to-rank objective optimises exactly the per-day top of the list that is measured.
A linear model on the same features is the `logistic` baseline of the benchmark.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

import lightgbm as lgb
import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from papersift.rank.features import META_NAMES, History, Listed, meta_matrix

RECENT_DAYS = 30  # the window of "recently featured" papers a candidate is compared with
TEXT_FOLDS = 3
EXTRA_NAMES = ("recent_sim_max", "recent_sim_top3", "text_score", "text_pct", "recent_sim_pct")
FEATURE_NAMES = (*META_NAMES, *EXTRA_NAMES)


@dataclass(frozen=True, slots=True)
class Params:
    """LightGBM settings; picked on a validation slice of the training period, never on evaluation days."""

    num_leaves: int = 15
    learning_rate: float = 0.05
    rounds: int = 300
    min_child_samples: int = 50
    text_c: float = 4.0

    def lgb(self) -> dict[str, object]:
        return {
            "objective": "lambdarank",
            "metric": "ndcg",
            "eval_at": [10, 20],
            "num_leaves": self.num_leaves,
            "learning_rate": self.learning_rate,
            "min_child_samples": self.min_child_samples,
            "feature_fraction": 0.8,
            "bagging_fraction": 0.8,
            "bagging_freq": 1,
            "lambdarank_truncation_level": 30,
            "num_threads": 1,  # measured: on a shared 2-core machine two OpenMP threads spin, 4x the wall time
            "deterministic": True,
            "seed": 7,
            "verbosity": -1,
        }


@dataclass(slots=True)
class Day:
    """One listing day's candidates with their features (text score filled in once a text model exists)."""

    day: date
    papers: list[Listed]
    meta: np.ndarray
    text: sp.csr_matrix
    sims: np.ndarray  # (n, 2): max and top-3 mean cosine to recently featured papers
    nearest: np.ndarray  # index into the featured matrix of the closest recent featured paper, -1 if none
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0))


def make_vectorizer() -> TfidfVectorizer:
    return TfidfVectorizer(
        sublinear_tf=True,
        min_df=3,
        max_df=0.5,
        ngram_range=(1, 2),
        max_features=200_000,
        stop_words="english",
        dtype=np.float32,
    )


class Recent:
    """Texts of featured papers by the day they became known, to compare candidates with the recent ones."""

    def __init__(self, known: Sequence[date], matrix: sp.csr_matrix) -> None:
        self.known = np.asarray([d.toordinal() for d in known], dtype=np.int64)
        self.matrix = matrix

    def window(self, day: date, days: int = RECENT_DAYS) -> np.ndarray:
        end = day.toordinal()
        return np.flatnonzero((self.known < end) & (self.known >= end - days))

    def similarities(self, rows: sp.csr_matrix, day: date) -> tuple[np.ndarray, np.ndarray]:
        picked = self.window(day)
        if not len(picked) or rows.shape[0] == 0:
            return np.zeros((rows.shape[0], 2), np.float32), np.full(rows.shape[0], -1)
        sims = (rows @ self.matrix[picked].T).toarray()
        top = np.sort(sims, axis=1)[:, -3:]
        return np.column_stack([top[:, -1], top.mean(axis=1)]).astype(np.float32), picked[sims.argmax(axis=1)]


def build_days(
    days: Sequence[tuple[date, list[Listed]]],
    history: History,
    vectorizer: TfidfVectorizer,
    recent: Recent,
    featured: set[str] | None = None,
) -> list[Day]:
    """Features for each day in ascending order (the history is advanced as it goes)."""
    out = []
    for day, papers in sorted(days, key=lambda item: item[0]):
        history.advance(day)
        text = vectorizer.transform([p.text for p in papers]).tocsr()
        sims, nearest = recent.similarities(text, day)
        labels = np.asarray([p.id in featured for p in papers], np.float32) if featured is not None else np.zeros(0)
        out.append(Day(day, papers, meta_matrix(papers, history), text, sims, nearest, labels))
    return out


def _pct(values: np.ndarray) -> np.ndarray:
    """Rank within the day in [0, 1]: comparable across days and across text models of different strength."""
    if len(values) <= 1:
        return np.ones(len(values), np.float32)
    return (np.argsort(np.argsort(values)) / (len(values) - 1)).astype(np.float32)


def design(day: Day, text_score: np.ndarray) -> np.ndarray:
    extra = np.column_stack([day.sims, text_score, _pct(text_score), _pct(day.sims[:, 0])])
    return np.hstack([day.meta, extra]).astype(np.float32)


def fit_text(days: Sequence[Day], c: float) -> LogisticRegression:
    x = sp.vstack([d.text for d in days]).tocsr()
    y = np.concatenate([d.labels for d in days])
    return LogisticRegression(C=c, max_iter=300, solver="liblinear", class_weight="balanced").fit(x, y)


def text_scores(model: LogisticRegression, day: Day) -> np.ndarray:
    return np.asarray(model.decision_function(day.text), np.float32)


def positive_days(days: Sequence[Day]) -> list[Day]:
    found = [d for d in days if d.labels.sum() > 0]
    if len(found) < 2:
        raise ValueError("need at least two listing days with featured papers to train")
    return found


@dataclass(slots=True)
class Text:
    """The text model fitted on all `days`, and out-of-fold scores of those days for training the ranker."""

    model: LogisticRegression
    oof: list[np.ndarray]

    @classmethod
    def fit(cls, days: Sequence[Day], c: float) -> Text:
        oof: list[np.ndarray] = [np.zeros(0)] * len(days)
        for train, held in _folds(len(days), min(TEXT_FOLDS, len(days))):
            model = fit_text([days[i] for i in train], c)
            for i in held:
                oof[i] = text_scores(model, days[i])
        return cls(fit_text(days, c), oof)


def fit_ranker(days: Sequence[Day], oof: Sequence[np.ndarray], params: Params) -> lgb.Booster:
    x = np.vstack([design(d, s) for d, s in zip(days, oof, strict=True)])
    y = np.concatenate([d.labels for d in days])
    data = lgb.Dataset(x, y, group=[len(d.papers) for d in days], feature_name=list(FEATURE_NAMES))
    return lgb.train(params.lgb(), data, num_boost_round=params.rounds)


def _folds(n: int, k: int) -> Iterator[tuple[list[int], list[int]]]:
    """Contiguous blocks of days: a text model never scores days it was trained on."""
    bounds = np.linspace(0, n, k + 1).astype(int)
    for i in range(k):
        held = list(range(bounds[i], bounds[i + 1]))
        yield [j for j in range(n) if j < bounds[i] or j >= bounds[i + 1]], held


@dataclass(slots=True)
class Curator:
    """A fitted model: the tf-idf vocabulary, the text model and the ranker."""

    vectorizer: TfidfVectorizer
    text: LogisticRegression
    ranker: lgb.Booster
    params: Params

    @classmethod
    def fit(cls, days: Sequence[Day], vectorizer: TfidfVectorizer, params: Params) -> Curator:
        """`days` carry labels; days without a single featured paper teach the ranker nothing and are skipped."""
        days = positive_days(days)
        text = Text.fit(days, params.text_c)
        return cls(vectorizer, text.model, fit_ranker(days, text.oof, params), params)

    def score(self, day: Day) -> np.ndarray:
        if not day.papers:
            return np.zeros(0, np.float32)
        return np.asarray(self.ranker.predict(design(day, text_scores(self.text, day))), np.float32)


def recent_cutoff(day: date) -> date:
    return day - timedelta(days=RECENT_DAYS)
