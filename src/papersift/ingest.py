"""Sources -> store: idempotent upsert keyed by the normalised id, newest version wins.

Each batch is one transaction, so a crash or a damaged file never leaves a half-written batch;
with `strict=True` the whole run is one transaction and the first bad record aborts it untouched.
"""

from __future__ import annotations

import copy
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError, StatementError

from papersift import code_links, sources, validate
from papersift.errors import RecordError, SourceError, StoreError
from papersift.models import CONTENT_FIELDS, IngestReport, Paper, Rejected
from papersift.sources import ParsedRecord, http
from papersift.store import Store, Writer

MAX_KEPT_REJECTIONS = 1000
Progress = Callable[[int], None]
# what the store raises for one row it refuses (too long for a column, a NUL, a constraint): that
# record is rejected and the others kept; anything else (disk full, connection lost) stops the run
_ROW_ERRORS = (DataError, IntegrityError, UnicodeError, ValueError, TypeError)
_SQLITE_FULL = 13
_PG_DISK_FULL = "53100"


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
    merged.code_url = code_links.extract(merged.abstract, merged.comment)  # its text may mix both records
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


def _row_error(exc: BaseException) -> bool:
    """True when the store refused a row's data, not the write itself (a DBAPIError that is not a data
    or integrity error is the connection or the disk: retrying record by record cannot help)."""
    if isinstance(exc, StatementError) and not isinstance(exc, DBAPIError):
        return True  # a value no bind processor could convert
    return isinstance(exc, _ROW_ERRORS)


def _counts(report: IngestReport) -> tuple[int, int, int]:
    return report.added, report.updated, report.unchanged


def _restore(report: IngestReport, counts: tuple[int, int, int]) -> None:
    report.added, report.updated, report.unchanged = counts


@contextmanager
def _savepoint(writer: Writer) -> Iterator[None]:
    """A savepoint whose rollback also forgets what the writer cached inside it (the revision it took, a
    lock it holds): those were rolled back with the savepoint."""
    cached = dict(vars(writer))
    try:
        with writer.conn.begin_nested():
            yield
    except BaseException:
        vars(writer).update(cached)
        raise


def _write_guarded(
    writer: Writer, batch: dict[str, Paper], origins: dict[str, str], report: IngestReport, strict: bool
) -> None:
    """Write the batch in one savepoint (the fast path); when the store refuses a row, write it again record
    by record, each in its own savepoint, and reject the records it refuses with their origin."""
    counts = _counts(report)
    try:
        with _savepoint(writer):
            _write_batch(writer, batch, report)
        return
    except Exception as exc:
        if not _row_error(exc):
            raise
        _restore(report, counts)
    for paper_id, paper in batch.items():
        counts = _counts(report)
        try:
            with _savepoint(writer):
                _write_batch(writer, {paper_id: paper}, report)
        except Exception as exc:
            if not _row_error(exc):
                raise
            _restore(report, counts)
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:200]
            where = origins.get(paper_id, paper_id)
            _reject(report, Rejected(where, f"{paper_id}: the store refused it ({reason})"), strict)


def _reject(report: IngestReport, rejected: Rejected, strict: bool) -> None:
    if strict:
        raise RecordError(rejected.origin, f"{rejected.reason} (--strict: nothing was stored)")
    report.rejected += 1
    if len(report.rejections) < MAX_KEPT_REJECTIONS:
        report.rejections.append(rejected)


def _amend(report: IngestReport, origin: str, notes: tuple[str, ...]) -> None:
    report.amended += 1
    for note in notes:
        if len(report.amendments) < MAX_KEPT_REJECTIONS:
            report.amendments.append(Rejected(origin, note))


def _disk_full(exc: BaseException | None) -> bool:
    """Whether the store's disk is full, looking down the chain: SQLite ends the transaction on SQLITE_FULL,
    so what surfaces may be the failed rollback of the savepoint that was open, caused by the full disk."""
    seen = 0
    while exc is not None and seen < 10:
        orig = getattr(exc, "orig", None)
        if getattr(orig, "sqlite_errorcode", None) == _SQLITE_FULL or getattr(orig, "sqlstate", None) == _PG_DISK_FULL:
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def _kept(report: IngestReport) -> str:
    if not (report.added or report.updated):
        return "nothing from this run was stored; nothing stored earlier was lost"
    return (
        f"the batches committed before it were kept ({report.added} added, {report.updated} updated); "
        "nothing stored earlier was lost"
    )


def ingest_records(
    store: Store,
    records: Iterable[ParsedRecord],
    *,
    strict: bool = False,
    batch_size: int = 2000,
    progress: Progress | None = None,
    report: IngestReport | None = None,
    origin: str = "input",
) -> IngestReport:
    """Upsert parsed records; returns what changed. Every record passes `validate.normalise` first.
    Exceptions from `records` propagate after the batches before them have committed (non-strict) or
    with nothing committed (strict); a full disk becomes a StoreError that says what was kept."""
    report = report or IngestReport()
    started = time.perf_counter()
    try:
        if strict:
            with store.write() as writer:

                def write(batch: dict[str, Paper], origins: dict[str, str]) -> None:
                    _write_guarded(writer, batch, origins, report, strict)

                _run(records, report, batch_size, progress, write, strict, origin)
        else:

            def commit(batch: dict[str, Paper], origins: dict[str, str]) -> None:
                counts = _counts(report)
                try:
                    with store.write() as writer:
                        _write_guarded(writer, batch, origins, report, strict)
                except BaseException:
                    _restore(report, counts)  # the batch did not commit (a full disk fails at COMMIT too)
                    raise

            _run(records, report, batch_size, progress, commit, strict, origin)
    except OperationalError as exc:
        if not _disk_full(exc):
            raise
        kept = "nothing from this run was stored (--strict)" if strict else _kept(report)
        raise StoreError(f"the disk holding the store is full: {kept}; free some space and ingest again") from exc
    finally:
        report.seconds = time.perf_counter() - started
    return report


def _run(
    records: Iterable[ParsedRecord],
    report: IngestReport,
    batch_size: int,
    progress: Progress | None,
    commit: Callable[[dict[str, Paper], dict[str, str]], None],
    strict: bool,
    origin: str,
) -> None:
    batch: dict[str, Paper] = {}
    today = date.today()
    origins: dict[str, str] = {}  # paper id -> where its record came from, for the store's rejections

    def flush() -> None:
        if batch:
            commit(batch, origins)
            if progress:
                progress(len(batch))
            batch.clear()
            origins.clear()

    try:
        for number, parsed in enumerate(records, 1):
            if isinstance(parsed, Rejected):
                _reject(report, parsed, strict)
                continue
            where = getattr(parsed, "origin", "") or f"{origin}#{number}"
            checked = validate.normalise(parsed, where, today)
            if isinstance(checked, Rejected):
                _reject(report, checked, strict)
                continue
            if checked.notes:
                _amend(report, where, checked.notes)
            record = checked.paper
            origins[record.id] = where
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
                store,
                endpoint.fetch(target),
                strict=strict,
                batch_size=batch_size,
                progress=progress,
                report=report,
                origin=target,
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
        return ingest_records(
            store, records, strict=strict, batch_size=batch_size, progress=progress, report=report, origin=origin
        )
