"""Sources -> store: idempotent upsert keyed by the normalised id, newest version wins.

Each batch is one transaction, so a crash or a damaged file never leaves a half-written batch;
with `strict=True` the whole run is one transaction and the first bad record aborts it untouched.
"""

from __future__ import annotations

import copy
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

from papersift import sources
from papersift.errors import RecordError, SourceError
from papersift.models import CONTENT_FIELDS, IngestReport, Paper, Rejected
from papersift.sources import ParsedRecord, http
from papersift.store import Store, Writer

MAX_KEPT_REJECTIONS = 1000
Progress = Callable[[int], None]


def _rank(paper: Paper) -> int:
    cls = sources.SOURCES.get(paper.source)
    return cls.rank if cls else 0


def _outranks(new: Paper, old: Paper) -> bool:
    """Newest version wins, then the more authoritative source, then the newer listing of the same
    record. Two different records that share a dedup key (the same paper in two venues' lists) are
    ordered by their source ids, so that re-ingesting them in any order changes nothing."""
    new_key, old_key = (new.version or 0, _rank(new)), (old.version or 0, _rank(old))
    if new_key != old_key:
        return new_key > old_key
    if new.source_id and old.source_id and new.source_id != old.source_id:
        return new.source_id < old.source_id
    return True


def _earliest(*values: date | None) -> date | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def merge(old: Paper, new: Paper) -> Paper:
    """Combine two records of one paper: the winner's content, gaps filled from the other."""
    primary, secondary = (new, old) if _outranks(new, old) else (old, new)
    merged = copy.copy(primary)
    merged.authors = list(primary.authors)
    merged.categories = list(primary.categories)
    for name in CONTENT_FIELDS:
        if getattr(merged, name) in ("", None, []):
            setattr(merged, name, copy.copy(getattr(secondary, name)))
    # a listing that names only the first author, or cuts the abstract short, loses to a fuller one
    if len(secondary.authors) > len(merged.authors) and len(merged.authors) <= 1:
        merged.authors = list(secondary.authors)
    if len(secondary.abstract) > len(merged.abstract) and secondary.abstract.startswith(merged.abstract.rstrip(" .…")):
        merged.abstract = secondary.abstract
    merged.published = _earliest(old.published, new.published)
    merged.announced = _earliest(old.announced, new.announced)
    merged.featured = _earliest(old.featured, new.featured)
    merged.upvotes = max(old.upvotes, new.upvotes)
    merged.first_seen, merged.rev, merged.hidden = old.first_seen, old.rev, old.hidden
    return merged


def _write_batch(writer: Writer, batch: dict[str, Paper], report: IngestReport) -> None:
    existing = writer.get_many(list(batch))
    inserts, updates = [], []
    for paper_id, incoming in batch.items():
        old = existing.get(paper_id)
        if old is None:
            inserts.append(incoming)
            continue
        merged = merge(old, incoming)
        if merged.content_hash() == old.content_hash():
            report.unchanged += 1
        else:
            updates.append(merged)
    report.added += writer.insert(inserts)
    report.updated += writer.update(updates)


def _reject(report: IngestReport, rejected: Rejected, strict: bool) -> None:
    if strict:
        raise RecordError(rejected.origin, f"{rejected.reason} (--strict: nothing was stored)")
    report.rejected += 1
    if len(report.rejections) < MAX_KEPT_REJECTIONS:
        report.rejections.append(rejected)


def ingest_records(
    store: Store,
    records: Iterable[ParsedRecord],
    *,
    strict: bool = False,
    batch_size: int = 2000,
    progress: Progress | None = None,
    report: IngestReport | None = None,
) -> IngestReport:
    """Upsert parsed records; returns what changed. Exceptions from `records` propagate after the
    batches before them have committed (non-strict) or with nothing committed (strict)."""
    report = report or IngestReport()
    started = time.perf_counter()
    try:
        if strict:
            with store.write() as writer:
                _run(records, report, batch_size, progress, lambda batch: _write_batch(writer, batch, report), strict)
        else:

            def commit(batch: dict[str, Paper]) -> None:
                with store.write() as writer:
                    _write_batch(writer, batch, report)

            _run(records, report, batch_size, progress, commit, strict)
    finally:
        report.seconds = time.perf_counter() - started
    return report


def _run(
    records: Iterable[ParsedRecord],
    report: IngestReport,
    batch_size: int,
    progress: Progress | None,
    commit: Callable[[dict[str, Paper]], None],
    strict: bool,
) -> None:
    batch: dict[str, Paper] = {}

    def flush() -> None:
        if batch:
            commit(batch)
            if progress:
                progress(len(batch))
            batch.clear()

    try:
        for record in records:
            if isinstance(record, Rejected):
                _reject(report, record, strict)
                continue
            if not record.source_id:
                # a record its source gives no id of its own is known by its content, so that two
                # such records of one paper are ordered stably by `_outranks`
                record.source_id = f"sha:{record.content_hash()[:16]}"
            seen = batch.get(record.id)
            batch[record.id] = merge(seen, record) if seen else record
            if len(batch) >= batch_size:
                flush()
    except SourceError as exc:
        if not strict:
            flush()  # keep the good records read before the damage
        exc.report = report
        raise
    flush()


def _guarded(records: Iterator[ParsedRecord], origin: str, report: IngestReport) -> Iterator[ParsedRecord]:
    """Turn a damaged stream's low-level errors into one SourceError that says what was kept."""
    try:
        yield from records
    except sources.READ_ERRORS as exc:
        raise SourceError(
            f"{origin}: the file is damaged or truncated ({exc}); "
            "the records before that point were kept; nothing stored earlier was lost"
        ) from exc


def ingest(
    store: Store,
    target: str,
    *,
    source: str | None = None,
    options: dict[str, Any] | None = None,
    strict: bool = False,
    batch_size: int = 2000,
    progress: Progress | None = None,
) -> IngestReport:
    """Ingest a file path or URL; the format is detected unless `source` names it."""
    opts = {k: str(v) for k, v in (options or {}).items()}
    report = IngestReport()
    if sources.is_url(target):
        endpoint = sources.endpoint_source(target, opts)
        if endpoint is not None and (source is None or source == endpoint.name):
            return ingest_records(
                store, endpoint.fetch(target), strict=strict, batch_size=batch_size, progress=progress, report=report
            )
        # any other URL is a file on a web server: download it whole, then read it like a local file
        with tempfile.NamedTemporaryFile(prefix="papersift-", suffix=".download") as tmp:
            http.download(target, tmp, retry=http.RetryPolicy.from_options(opts))
            return _ingest_file(store, Path(tmp.name), target, source, opts, strict, batch_size, progress, report)
    return _ingest_file(store, Path(target), target, source, opts, strict, batch_size, progress, report)


def _ingest_file(
    store: Store,
    path: Path,
    origin: str,
    source: str | None,
    opts: dict[str, str],
    strict: bool,
    batch_size: int,
    progress: Progress | None,
    report: IngestReport,
) -> IngestReport:
    with sources.open_input(path) as stream:
        if source:
            src = sources.make_source(source, opts)
        else:
            name = origin.rsplit("/", 1)[-1].split("?", 1)[0]
            src = sources.detect(sources.head_of(stream, origin), name)(opts)
        records = _guarded(src.parse(stream, origin), origin, report)
        return ingest_records(store, records, strict=strict, batch_size=batch_size, progress=progress, report=report)
