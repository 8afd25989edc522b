"""Learned curation in the product: train the model from the store, keep it versioned on disk, score the days.

Positives are papers with a `featured` date (Hugging Face daily papers, kept current by `harvest`), papers
an admin featured on this site, and papers this site's readers upvoted (MIN_VOTES or more). The model
(`rank.curation`) is saved under `<home>/index/curation/<version>/` (LightGBM's text format, the tf-idf
vocabulary as JSON and arrays as .npy: no pickles), with `current` naming the version in use. Scores,
picks and reasons are written to the store, so requests only read them. `papersift curate train` (cron)
and the serve process's background job (`CurationJob`) call `refresh`.
"""

from __future__ import annotations

import json
import logging
import resource
import shutil
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
from sklearn.linear_model import LogisticRegression

from papersift.models import Paper
from papersift.rank.curation import FEATURE_NAMES, Curator, Day, Params, Recent, build_days, make_vectorizer
from papersift.rank.features import META_NAMES, Featuring, History, Listed, known_day
from papersift.settings import Settings
from papersift.store import Store
from papersift.store.accounts import Accounts
from papersift.store.curation import Curation, Scored

log = logging.getLogger("papersift.curate")

FORMAT = 1
PICKS_PER_DAY = 10  # Hugging Face features ~15 a day; the first screen of picks is what a reader judges
MIN_VOTES = 2  # local upvotes that make a paper a positive example
MIN_TRAIN_DAYS = 2
RETRAIN_EVERY = 3600.0  # seconds: the background job retrains at most this often when data changed
SIMILAR = 0.2  # tf-idf cosine from which a paper is "close to" a recently featured one


class NotEnoughHistory(ValueError):
    """The store holds too few featured (or picked, or voted) papers on listing days to learn from."""


@dataclass(slots=True)
class Data:
    """What the store knows, in the model's terms."""

    days: dict[date, list[Listed]]
    positives: set[str]
    featurings: list[Featuring]
    texts: dict[str, str]  # id -> text of every positive, for the recent-featured similarity
    fingerprint: str


def model_root(settings: Settings) -> Path:
    return settings.index_dir / "curation"


def _listed(paper: Paper, day: date) -> Listed:
    return Listed(
        paper.id, day, paper.title, paper.abstract, tuple(paper.authors), tuple(paper.categories), paper.comment
    )


def load_data(store: Store, accounts: Accounts, curation: Curation) -> Data:
    """One pass over the store: listing days, positives and the featured history with the day each became known."""
    picks = curation.all_picks()
    voted = curation.voted_papers(accounts, MIN_VOTES)
    days: dict[date, list[Listed]] = defaultdict(list)
    featurings: list[Featuring] = []
    texts: dict[str, str] = {}
    for paper in store.iter_papers():
        if paper.hidden:
            continue
        if paper.announced is not None:
            days[paper.announced].append(_listed(paper, paper.announced))
        became = [known_day(d, paper.announced) for d in (paper.featured, picks.get(paper.id))]
        known = min((d for d in became if d is not None), default=None)
        if known is not None:
            featurings.append(Featuring(paper.id, known, tuple(paper.authors)))
            texts[paper.id] = f"{paper.title}\n{paper.abstract}"
    positives = set(texts) | set(voted)
    last = max((f.known for f in featurings), default=None)
    fingerprint = f"{len(featurings)}:{last}:{len(picks)}:{len(voted)}:{sum(map(len, days.values()))}"
    return Data(dict(days), positives, featurings, texts, fingerprint)


def _features(data: Data, vectorizer: Any, days: Sequence[date], labels: bool) -> tuple[list[Day], Recent]:
    history = History(data.featurings, [(p.day, p.authors) for ps in data.days.values() for p in ps])
    ids = sorted(data.texts)
    known = {f.id: f.known for f in data.featurings}
    recent = Recent([known[i] for i in ids], vectorizer.transform([data.texts[i] for i in ids]).tocsr())
    wanted = [(d, data.days[d]) for d in sorted(days)]
    return build_days(wanted, history, vectorizer, recent, data.positives if labels else None), recent


@dataclass(slots=True)
class TrainReport:
    version: str
    seconds: float
    peak_rss_mb: float
    days: int
    papers: int
    positives: int
    scored: int


def train(settings: Settings, store: Store, params: Params | None = None) -> TrainReport:
    """Fit on every listing day with a positive, save a new version, make it current, score every day."""
    started = time.perf_counter()
    accounts, curation = Accounts(store), Curation(store)
    data = load_data(store, accounts, curation)
    train_days = [d for d, ps in data.days.items() if any(p.id in data.positives for p in ps)]
    if len(train_days) < MIN_TRAIN_DAYS:
        raise NotEnoughHistory(
            f"{len(train_days)} listing day(s) with a featured, picked or upvoted paper; need {MIN_TRAIN_DAYS}: "
            "harvest the Hugging Face daily papers first (papersift harvest --hf-daily)"
        )
    vectorizer = make_vectorizer()
    vectorizer.fit([p.text for ps in data.days.values() for p in ps] + list(data.texts.values()))
    days, _ = _features(data, vectorizer, train_days, labels=True)
    curator = Curator.fit(days, vectorizer, params or Params())
    version = datetime.now(UTC).strftime("v%Y%m%dT%H%M%S%fZ")
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    papers, positives = sum(len(d.papers) for d in days), int(sum(d.labels.sum() for d in days))
    meta: dict[str, Any] = {
        "format": FORMAT,
        "version": version,
        "trained_at": datetime.now(UTC).isoformat(),
        "fingerprint": data.fingerprint,
        "params": asdict(curator.params),
        "features": list(FEATURE_NAMES),
        "days": len(days),
        "papers": papers,
        "positives": positives,
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(peak, 1),
    }
    save(model_root(settings), curator, meta)
    scored = score_days(store, curation, curator, version, data, sorted(data.days))
    return TrainReport(
        version, round(seconds, 1), round(peak, 1), meta["days"], meta["papers"], meta["positives"], scored
    )


# -- on disk ---------------------------------------------------------------------------------------------------


def save(root: Path, curator: Curator, meta: dict[str, Any]) -> Path:
    """Write a version directory completely, then point `current` at it (a reader never sees half a model)."""
    folder = root / meta["version"]
    tmp = root / f".{meta['version']}.tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    curator.ranker.save_model(str(tmp / "ranker.txt"))
    vocabulary = sorted(curator.vectorizer.vocabulary_, key=curator.vectorizer.vocabulary_.__getitem__)
    (tmp / "vocabulary.json").write_text(json.dumps(vocabulary))
    np.save(tmp / "idf.npy", curator.vectorizer.idf_)
    np.save(tmp / "text_coef.npy", curator.text.coef_)
    np.save(tmp / "text_intercept.npy", curator.text.intercept_)
    (tmp / "model.json").write_text(json.dumps(meta, indent=1))
    tmp.rename(folder)
    pointer = root / ".current.tmp"
    pointer.write_text(meta["version"])
    pointer.replace(root / "current")
    for old in sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("v"))[:-3]:
        shutil.rmtree(old, ignore_errors=True)  # keep the three newest versions
    return folder


def current_version(settings: Settings) -> str | None:
    pointer = model_root(settings) / "current"
    try:
        return pointer.read_text().strip() or None
    except FileNotFoundError:
        return None


def load(settings: Settings) -> tuple[Curator, dict[str, Any]] | None:
    """The current model and its metadata, or None when none was trained (or it is of an unknown format)."""
    version = current_version(settings)
    if version is None:
        return None
    folder = model_root(settings) / version
    meta = json.loads((folder / "model.json").read_text())
    if meta.get("format") != FORMAT or meta.get("features") != list(FEATURE_NAMES):
        return None
    vectorizer = make_vectorizer()
    vectorizer.vocabulary_ = {t: i for i, t in enumerate(json.loads((folder / "vocabulary.json").read_text()))}
    vectorizer.idf_ = np.load(folder / "idf.npy")
    text = LogisticRegression()
    text.coef_ = np.load(folder / "text_coef.npy")
    text.intercept_ = np.load(folder / "text_intercept.npy")
    text.classes_ = np.array([0.0, 1.0])
    ranker = lgb.Booster(model_file=str(folder / "ranker.txt"))
    return Curator(vectorizer, text, ranker, Params(**meta["params"])), meta


# -- scoring and reasons ---------------------------------------------------------------------------------------


def _terms(names: np.ndarray, row: Any, other: Any) -> str:
    """The two terms that most make two tf-idf rows alike: what "close to featured papers on X" names."""
    shared = row.multiply(other).tocsr()
    if not shared.nnz:
        return ""
    top = shared.indices[np.argsort(-shared.data)[:2]]
    return " and ".join(str(names[i]) for i in top)


def reason(names: np.ndarray, day: Day, recent: Recent, index: int) -> str:
    """One line on why the model picked paper `index` of `day`: track record, topic, code; the first two that hold."""
    meta = day.meta[index]
    parts = []
    before = int(meta[META_NAMES.index("featured_papers")])
    if before:
        parts.append(f"authors featured {before} time{'s' if before != 1 else ''} before")
    nearest = int(day.nearest[index])
    if day.sims[index, 0] >= SIMILAR and nearest >= 0:
        terms = _terms(names, day.text[index], recent.matrix[nearest])
        if terms:
            parts.append(f"close to featured papers on {terms}")
    if meta[META_NAMES.index("has_repo")]:
        parts.append("has code")
    elif meta[META_NAMES.index("has_project_page")]:
        parts.append("has a project page")
    return "; ".join(parts[:2]) or "reads like papers featured before"


def score_days(
    store: Store, curation: Curation, curator: Curator, version: str, data: Data, days: Sequence[date]
) -> int:
    """Score every paper of these listing days and store score, rank within the day, pick flag and reason."""
    if not days:
        return 0
    built, recent = _features(data, curator.vectorizer, days, labels=False)
    names = curator.vectorizer.get_feature_names_out()
    rows: list[Scored] = []
    for day in built:
        scores = curator.score(day)
        order = np.argsort(-scores, kind="stable")
        n = len(order)
        for rank, i in enumerate(order):
            pick = rank < PICKS_PER_DAY
            why = reason(names, day, recent, int(i)) if pick else ""
            pct = 1.0 - rank / (n - 1) if n > 1 else 1.0
            rows.append(Scored(day.papers[i].id, float(scores[i]), pct, pick, why))
    return curation.save_scores(version, rows)


def refresh(settings: Settings, store: Store, force: bool = False) -> str:
    """Retrain when the positives changed (or `force`), else score days that have unscored papers; says what it did."""
    accounts, curation = Accounts(store), Curation(store)
    loaded = load(settings)
    if loaded is None or force:
        report = train(settings, store)
        return (
            f"trained {report.version} in {report.seconds}s (peak RSS {report.peak_rss_mb} MB); scored {report.scored}"
        )
    curator, meta = loaded
    data = load_data(store, accounts, curation)
    if data.fingerprint.rsplit(":", 1)[0] != str(meta["fingerprint"]).rsplit(":", 1)[0]:
        report = train(settings, store)
        return f"retrained {report.version} in {report.seconds}s; scored {report.scored}"
    return score_new(store, curation, curator, meta["version"], data)


def score_new(store: Store, curation: Curation, curator: Curator, version: str, data: Data) -> str:
    """Score the days that have papers the current model has not scored yet (a new listing, a re-listing)."""
    done = curation.scored_ids(version)
    todo = sorted({d for d, ps in data.days.items() if any(p.id not in done for p in ps)})
    scored = score_days(store, curation, curator, version, data, todo)
    return f"model {version} current; scored {scored} papers on {len(todo)} day(s)"


class CurationJob:
    """serve's background curation: checks every PAPERSIFT_CURATE_EVERY seconds, trains at most every RETRAIN_EVERY.

    Its own daemon thread, so training (seconds to minutes) never delays the search index thread or a request.
    """

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_train = 0.0
        self.last: str = ""

    def start(self) -> None:
        """Start the thread unless PAPERSIFT_CURATE_EVERY is 0; its first check comes one interval after start."""
        if self._thread is None and self.settings.curate_every > 0:
            self._thread = threading.Thread(target=self._run, name="papersift-curate", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.settings.curate_every):
            try:
                self.last = self.round()
            except NotEnoughHistory as exc:
                self.last = str(exc)
            except Exception:
                log.exception("curation update failed; the site keeps the last scores")

    def round(self) -> str:
        """One check: retrain if due and the data changed, else score new papers."""
        due = time.monotonic() - self._last_train >= RETRAIN_EVERY or load(self.settings) is None
        if due:
            before = current_version(self.settings)
            message = refresh(self.settings, self.store)
            if current_version(self.settings) != before:
                self._last_train = time.monotonic()
            return message
        loaded = load(self.settings)
        assert loaded is not None
        curator, meta = loaded
        curation = Curation(self.store)
        data = load_data(self.store, Accounts(self.store), curation)
        return score_new(self.store, curation, curator, meta["version"], data)
