"""The `papersift` command line: a thin edge over the service modules.

Domain errors become one-line messages and exit status 1; `ingest` exits 0 when something changed
and 3 when nothing did, so cron jobs can chain `ingest && digest send`.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, NoReturn, cast

import click
import orjson
from sqlalchemy.engine import make_url
from tqdm import tqdm

from papersift import export as exporter
from papersift import ingest as ingester
from papersift.digest_cli import digest
from papersift.errors import PapersiftError, SearchIndexError, SourceError, StoreBusy
from papersift.models import IngestReport, Paper
from papersift.search import MAX_LIMIT, Filters, SearchEngine, Sort
from papersift.settings import Settings, find_home
from papersift.sources import is_url, source_names
from papersift.sources.arxiv_oai import HARVEST_BASE, ArxivOAISource, harvest_url
from papersift.sources.hf_daily import API_URL as HF_API_URL
from papersift.sources.hf_daily import harvest_urls as hf_harvest_urls
from papersift.store import Store, lock_holder
from papersift.store.curation import latest_featured
from papersift.store.papers import DATE_RANGES

EXIT_UNCHANGED = 3


class Context:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._store: Store | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store.open(self.settings.store_url, busy_timeout=self.settings.busy_timeout)
        return self._store


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except PapersiftError as exc:
        _fail(_message(exc))


def _message(exc: PapersiftError) -> str:
    """The one line a user reads; a busy store names the file and, when it can be seen, who holds it."""
    if not isinstance(exc, StoreBusy):
        return str(exc)
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_object(Context) if ctx else None
    url = make_url(obj.settings.store_url) if obj else None
    if url is None or url.get_backend_name() != "sqlite" or not url.database:
        where = f"the store {url.render_as_string(hide_password=True)}" if url else "the store"
        return f"{where} is locked by another writer (an ingest or a server writing); retry when it finishes"
    pid = lock_holder.write_lock_holder(Path(url.database))
    holder = lock_holder.describe(pid) if pid else "another process (an ingest or a server writing)"
    return f"the store {url.database} is locked by another process: {holder}; retry when it finishes"


def _print_json(value: Any) -> None:
    click.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


@click.group()
@click.option(
    "--home",
    type=click.Path(path_type=Path),
    help="Data directory (default $PAPERSIFT_HOME, else the nearest ./.papersift upwards, else ~/.papersift).",
)
@click.option("--db", "database_url", help="Store URL (default $PAPERSIFT_DATABASE_URL or SQLite in the home).")
@click.version_option(package_name="papersift")
@click.pass_context
def main(ctx: click.Context, home: Path | None, database_url: str | None) -> None:
    """papersift: find the research papers that matter to you, on your own machine."""
    overrides: dict[str, Any] = {}
    if home:
        overrides["home"] = home
    elif not os.environ.get("PAPERSIFT_HOME"):
        found = find_home()  # the `.papersift` that `make run` made in this checkout, if any
        if found is not None:
            overrides["home"] = found
    if database_url:
        overrides["database_url"] = database_url
    with _errors():
        try:
            settings = Settings(**overrides)
        except ValueError as exc:
            raise click.UsageError(f"invalid setting: {exc}") from exc
        ctx.obj = Context(settings)
        ctx.call_on_close(lambda: ctx.obj._store and ctx.obj._store.close())


def _report_dict(report: IngestReport) -> dict[str, Any]:
    return {
        "added": report.added,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "rejected": report.rejected,
        "amended": report.amended,
        "seconds": round(report.seconds, 3),
        "rejections": [str(r) for r in report.rejections[:100]],
        "amendments": [str(r) for r in report.amendments[:100]],
    }


@main.command()
@click.argument("targets", nargs=-1, required=True)
@click.option("--source", type=click.Choice(source_names()), help="Input format; detected when omitted.")
@click.option("--map", "mapping", multiple=True, metavar="FIELD=KEY", help="Field mapping for jsonl/csv sources.")
@click.option("--strict", is_flag=True, help="Abort on the first malformed record, storing nothing from this run.")
@click.option("--no-index", is_flag=True, help="Skip updating the search index (run `papersift index` later).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar, no per-record warnings.")
@click.pass_obj
def ingest(
    obj: Context,
    targets: tuple[str, ...],
    source: str | None,
    mapping: tuple[str, ...],
    strict: bool,
    no_index: bool,
    as_json: bool,
    quiet: bool,
) -> None:
    """Ingest paper metadata from files or URLs (gzip is read transparently)."""
    options: dict[str, Any] = {
        "max_record_bytes": obj.settings.max_record_bytes,
        "timeout": obj.settings.http_timeout,
        "retries": obj.settings.http_retries + 1,
        "delay": obj.settings.arxiv_api_delay,
    }
    for item in mapping:
        field, sep, key = item.partition("=")
        if not sep or not field or not key:
            raise click.BadParameter(f"{item!r} is not FIELD=KEY", param_hint="--map")
        options[f"map.{field.strip()}"] = key.strip()
    changed, failed, reports = False, False, {}
    with _errors():
        store = obj.store
    for target in _expand(targets):
        bar = tqdm(desc=Path(target).name, unit=" papers", disable=quiet or None, file=sys.stderr, leave=False)
        try:
            report = ingester.ingest(
                store,
                target,
                source=source,
                options=options,
                strict=strict,
                batch_size=obj.settings.batch_size,
                progress=bar.update,
            )
        except SourceError as exc:
            failed = True
            report = exc.report if isinstance(exc.report, IngestReport) else IngestReport()
            click.echo(f"error: {exc}", err=True)
        except PapersiftError as exc:
            bar.close()
            _fail(_message(exc))
        finally:
            bar.close()
        reports[target] = _report_dict(report)
        changed = changed or report.changed
        if not quiet and not as_json:
            for rejected in report.rejections[:20]:
                click.echo(f"warning: skipped {rejected}", err=True)
            if report.rejected > 20:
                click.echo(f"warning: ... and {report.rejected - 20} more skipped records", err=True)
            for amended in report.amendments[:20]:
                click.echo(f"note: {amended}", err=True)
            if len(report.amendments) > 20:
                click.echo(f"note: ... and {len(report.amendments) - 20} more fields dropped", err=True)
        if not as_json:
            verdict = "" if report.changed else " (nothing changed)"
            click.echo(f"{target}: {report.summary()}{verdict}")
    if changed and not no_index:
        with _errors():  # BM25 only: the embedding model is built when something first needs vectors
            engine = SearchEngine.open(store, obj.settings, embed=False, vectors=False)
            if not as_json:
                click.echo(f"search index: {engine.num_docs} papers")
                _note_pending(engine)
    if as_json:
        _print_json(reports)
    sys.exit(1 if failed else (0 if changed else EXIT_UNCHANGED))


def _note_pending(engine: SearchEngine) -> None:
    pending = engine.vectors_pending()
    if pending:
        click.echo(
            f"note: {pending:,} papers await semantic vectors, so ranking is keyword-only until they have them; "
            "`papersift serve` computes them in the background, `papersift index` does it now",
            err=True,
        )


def _expand(targets: tuple[str, ...]) -> list[str]:
    """Directories stand for the files in them (sorted, hidden files skipped)."""
    out: list[str] = []
    for target in targets:
        path = Path(target)
        if not is_url(target) and path.is_dir():
            out += [str(p) for p in sorted(path.iterdir()) if p.is_file() and not p.name.startswith(".")]
        else:
            out.append(target)
    return out


@main.command()
@click.option("--set", "set_", default="cs", show_default=True, help="OAI-PMH set, e.g. cs, math, physics:hep-th.")
@click.option(
    "--from", "date_from", help="Records added or changed since this day; default: resume after the last harvest."
)
@click.option("--until", "date_until", help="Records up to this day.")
@click.option(
    "--format",
    "metadata_prefix",
    type=click.Choice(["arXiv", "arXivRaw"]),
    default="arXivRaw",
    show_default=True,
    help="arXivRaw carries version numbers and dates.",
)
@click.option("--endpoint", default=HARVEST_BASE, show_default=True, help="OAI-PMH base URL.")
@click.option(
    "--hf-daily",
    is_flag=True,
    help="Harvest Hugging Face daily papers (each day's featured papers with upvotes) instead of arXiv; "
    "resumes from the newest featured day stored.",
)
@click.option("--hf-endpoint", default=HF_API_URL, show_default=True, help="The daily_papers API URL.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def harvest(
    ctx: click.Context,
    set_: str,
    date_from: str | None,
    date_until: str | None,
    metadata_prefix: str,
    endpoint: str,
    hf_daily: bool,
    hf_endpoint: str,
    as_json: bool,
) -> None:
    """Incremental arXiv OAI-PMH (or --hf-daily) harvest: fetch what changed since the last run (for cron)."""
    obj: Context = ctx.obj
    start = _parse_day(date_from, "--from")
    if hf_daily:
        if start is None:
            with _errors():
                start = latest_featured(obj.store)
            if start is None:
                raise click.UsageError("the first --hf-daily harvest needs --from DAY (no featured paper is stored)")
        until = _parse_day(date_until, "--until") or datetime.now(UTC).date()
        urls = hf_harvest_urls(start, until, hf_endpoint)
        if not urls:
            raise click.UsageError(f"--until {until} is before the first day to harvest ({start})")
        if not as_json:
            click.echo(f"harvesting {len(urls)} day(s) of {hf_endpoint} from {start}", err=True)
        ctx.invoke(
            ingest,
            targets=tuple(urls),
            source=None,
            mapping=(),
            strict=False,
            no_index=False,
            as_json=as_json,
            quiet=as_json,
        )
        return
    if start is None:
        with _errors():
            start = obj.store.latest_update(ArxivOAISource.name)
        if start is None:
            raise click.UsageError("the first harvest needs --from DAY (a whole set is millions of records)")
    url = harvest_url(
        endpoint, metadata_prefix=metadata_prefix, set_=set_, from_=start, until=_parse_day(date_until, "--until")
    )
    if not as_json:
        click.echo(f"harvesting {url}", err=True)
    ctx.invoke(
        ingest, targets=(url,), source=None, mapping=(), strict=False, no_index=False, as_json=as_json, quiet=as_json
    )


@main.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def stats(obj: Context, as_json: bool) -> None:
    """What the store holds."""
    with _errors():
        figures = obj.store.stats()
    if as_json:
        _print_json(figures)
        return
    click.echo(f"papers:        {figures['papers']:,} ({figures['with_abstract']:,} with abstracts)")
    click.echo(f"featured:      {figures['featured']:,}")
    click.echo(f"with code:     {figures['with_code']:,} (a code or project link in the abstract or comment)")
    for name in DATE_RANGES:
        first, last = figures[f"{name}_from"], figures[f"{name}_to"]
        span = f"{first} .. {last}" if first else "no dates recorded"
        label = "featured on:" if name == "featured" else f"{name}:"  # "featured:" above is a count
        click.echo(f"{label:<15}{span}")
    click.echo(f"home:          {obj.settings.home_dir}")
    click.echo("by source:     " + ", ".join(f"{k} {v:,}" for k, v in figures["by_source"].items()))
    click.echo("categories:    " + ", ".join(f"{k} {v:,}" for k, v in figures["top_categories"].items()))
    click.echo(f"store:         {figures['backend']}, revision {figures['revision']}")


def _authors_line(paper: Paper, first: int = 4) -> str:
    names = paper.authors[:first]
    more = len(paper.authors) - len(names)
    return ", ".join(names) + (f" +{more} more" if more > 0 else "")


@main.command()
@click.argument("paper_id")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def show(obj: Context, paper_id: str, as_json: bool) -> None:
    """One paper's full metadata (arXiv ids, DOIs as doi:10..., or ids from search)."""
    from papersift.ids import parse_arxiv_id

    parsed = parse_arxiv_id(paper_id)
    with _errors():
        paper = obj.store.get(parsed[0] if parsed else paper_id)
    if as_json:
        _print_json(paper.to_dict())
        return
    click.echo(click.style(paper.title, bold=True))
    click.echo(_authors_line(paper, first=50))
    meta = [paper.id, str(paper.date or ""), " ".join(paper.categories), paper.venue]
    click.echo(" · ".join(m for m in meta if m))
    if paper.featured:
        click.echo(f"featured {paper.featured}, {paper.upvotes} upvotes")
    if paper.abs_url:
        click.echo(paper.abs_url)
    if paper.code_url:
        click.echo(f"code: {paper.code_url}")
    click.echo()
    click.echo(click.wrap_text(paper.abstract or "(no abstract)", width=100))


def _parse_day(value: str | None, name: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date like 2025-06-30", param_hint=name) from None


@main.command()
@click.argument("query")
@click.option("--limit", "-n", default=10, show_default=True, type=click.IntRange(1, MAX_LIMIT))
@click.option("--sort", type=click.Choice(["relevance", "date"]), default="relevance", show_default=True)
@click.option("--from", "date_from", help="Only papers dated on or after this day (YYYY-MM-DD).")
@click.option("--to", "date_to", help="Only papers dated on or before this day.")
@click.option("--category", "-c", multiple=True, help="Only these arXiv categories (any of them).")
@click.option("--venue", default="", help="Only papers from this venue.")
@click.option("--author", default="", help="Only papers with this author (surname or full name).")
@click.option("--has-code", is_flag=True, help="Only papers with a code or project link.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def search(
    obj: Context,
    query: str,
    limit: int,
    date_from: str | None,
    date_to: str | None,
    category: tuple[str, ...],
    venue: str,
    author: str,
    has_code: bool,
    sort: str,
    as_json: bool,
) -> None:
    """Search titles, abstracts and authors; best matches first."""
    filters = Filters(
        date_from=_parse_day(date_from, "--from"),
        date_to=_parse_day(date_to, "--to"),
        categories=category,
        venue=venue,
        author=author,
        has_code=has_code,
    )
    with _errors():
        engine = SearchEngine.open(obj.store, obj.settings, embed=False)
        try:
            hits = engine.search(query, limit, filters, cast(Sort, sort))
        except SearchIndexError as exc:  # damaged index files: mend them here, then answer
            click.echo(f"note: {exc}; rebuilding it now", err=True)
            engine.rebuild_keyword()
            hits = engine.search(query, limit, filters, cast(Sort, sort))
        missing = engine.unmatched(query)
        if not as_json:
            _note_pending(engine)
    if missing:  # on stderr, so --json output stays one JSON document
        click.echo("no paper mentions " + ", ".join(repr(word) for word in missing), err=True)
    if as_json:
        _print_json(
            [{"rank": h.rank, "score": round(h.score, 4), "relevance": h.relevance, **h.paper.to_dict()} for h in hits]
        )
        return
    if not hits:
        click.echo("no papers match well enough; try fewer or broader words, or drop a filter", err=True)
        return
    for hit in hits:
        paper = hit.paper
        click.echo(f"{hit.rank:>3}. " + click.style(paper.title, bold=True))
        click.echo(f"     {_authors_line(paper)} · {paper.date or 'undated'} · {paper.id}")
        abstract = paper.abstract[:240] + ("…" if len(paper.abstract) > 240 else "")
        if abstract:
            click.echo(click.wrap_text(abstract, width=100, initial_indent="     ", subsequent_indent="     "))


@main.command()
@click.option("--format", "fmt", type=click.Choice(exporter.FORMATS), default="jsonl", show_default=True)
@click.option("--output", "-o", type=click.Path(path_type=Path), help="Write here instead of standard output.")
@click.pass_obj
def export(obj: Context, fmt: str, output: Path | None) -> None:
    """Export every paper in the store."""
    with _errors():
        papers = obj.store.iter_papers()
        lines = exporter.to_jsonl(papers) if fmt == "jsonl" else exporter.to_bibtex(papers)
        if output:
            _write_whole(output, lines)
        else:
            for line in lines:
                sys.stdout.write(line)


def _write_whole(output: Path, lines: Iterable[str]) -> None:
    """Write OUTPUT.part, then rename it: a failed export leaves no half-written file behind."""
    try:
        if output.is_dir():
            raise IsADirectoryError(errno.EISDIR, "it is a folder; name a file in it", str(output))
        tmp = output.with_name(output.name + ".part")
        try:
            with tmp.open("w", encoding="utf-8") as out:
                out.writelines(lines)
            tmp.replace(output)
        except BaseException:
            with suppress(OSError, ValueError):
                tmp.unlink(missing_ok=True)
            raise
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path, or a path without a file name
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        _fail(f"cannot write {str(output)!r}: {reason}")


@main.command()
@click.option("--rebuild", is_flag=True, help="Drop the index and build it again from the store.")
@click.option(
    "--ray",
    "ray_address",
    is_flag=False,
    flag_value="auto",
    metavar="[ADDRESS]",
    help="Embed on Ray first: alone (or 'auto') starts a local Ray, an address joins a cluster "
    "($PAPERSIFT_RAY_ADDRESS).",
)
@click.pass_obj
def index(obj: Context, rebuild: bool, ray_address: str | None) -> None:
    """Bring the search index up to date with the store."""
    import shutil

    with _errors():
        address = ray_address or obj.settings.ray_address
        if address and obj.settings.embedder != "none":
            from papersift.index.ray_embed import embed_on_ray

            models = obj.settings.home_dir / "models"
            with tqdm(desc="embedding on ray", unit=" papers", file=sys.stderr) as bar:
                batch = obj.settings.ray_batch
                run = embed_on_ray(obj.store, obj.settings.embedder, models, address, bar.update, bar.reset, batch)
            click.echo(
                f"ray: {run.embedded:,} papers embedded by {run.workers} workers in {run.seconds:.0f}s", err=True
            )
        directory = obj.settings.index_dir / "keyword"
        if rebuild and directory.exists():
            shutil.rmtree(directory)
        engine = SearchEngine.open(obj.store, obj.settings, embed=False)
        problem = engine.keyword.verify()
        if problem:
            click.echo(f"note: the keyword index is damaged ({problem}); rebuilding it from the store", err=True)
            engine.rebuild_keyword()
        pending = engine.vectors_pending()
        with tqdm(total=pending, desc="embedding", unit=" papers", disable=not pending or None, file=sys.stderr) as bar:
            engine.sync_vectors(progress=bar.update)
    click.echo(f"search index: {engine.num_docs:,} papers" + (", semantic vectors up to date" if engine.dense else ""))


@main.command()
@click.option("--host", help="Interface to listen on (default $PAPERSIFT_HOST, 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), help="Port (default $PAPERSIFT_PORT, 8000).")
@click.option("--log-level", default="info", show_default=True, type=click.Choice(["debug", "info", "warning"]))
@click.option("--workers", type=click.IntRange(1, 64), help="Server processes (default $PAPERSIFT_WORKERS, 1).")
@click.pass_obj
def serve(obj: Context, host: str | None, port: int | None, log_level: str, workers: int | None) -> None:
    """Run the web site and JSON API (daily papers, trending, search, paper pages)."""
    import logging

    import uvicorn

    from papersift.web import create_app

    update = {"host": host, "port": port, "workers": workers}
    settings = obj.settings.model_copy(update={k: v for k, v in update.items() if v})
    logging.basicConfig(level=log_level.upper(), format="%(message)s")
    with _errors():
        count = obj.store.count()
        if settings.embed_device != "cpu":  # the index thread would only log it: refuse to start instead
            SearchEngine.open(obj.store, settings, embed=False, sync=False)
        if settings.workers > 1:
            # BM25 up to date once, before workers share it; each worker embeds new papers in the background
            SearchEngine.open(obj.store, settings, embed=False, vectors=False)  # each worker's thread loads the model
            os.environ["PAPERSIFT_HOME"] = str(settings.home_dir)  # workers read their settings from here
            os.environ["PAPERSIFT_DATABASE_URL"] = settings.store_url
            app: Any = "papersift.web:app_from_environment"
        else:
            app = create_app(settings, obj.store)
    click.echo(f"serving {count:,} papers on http://{settings.host}:{settings.port}/", err=True)
    uvicorn.run(
        app,
        factory=settings.workers > 1,
        workers=settings.workers,
        host=settings.host,
        port=settings.port,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        access_log=False,  # papersift.access writes one JSON line per request instead
        log_level=log_level,
    )


@main.group()
def bench() -> None:
    """Benchmarks that print figures (relevance, throughput)."""


@bench.command("relevance")
@click.option(
    "--beir",
    "folder",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A BEIR-format dataset folder, e.g. ../shared/data/scifact.",
)
@click.option(
    "--embedder", default="minilm-onnx-int8", show_default=True, help="Embedder spec (see PAPERSIFT_EMBEDDER)."
)
@click.option(
    "--keep",
    "home",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the benchmark's store and indexes here, so re-runs skip indexing (docs/s is then moot).",
)
@click.option(
    "--answerability-queries",
    "answerable",
    type=click.IntRange(min=1),
    help="Check the relevance cut-off on only this many train and test queries (default: all).",
)
def bench_relevance(folder: Path, embedder: str, home: Path | None, answerable: int | None) -> None:
    """nDCG@10, Recall@100, indexing docs/s, query latency and the relevance cut-off's answerability
    (cutoff_kept, unanswerable_empty); JSON summary on the last line."""
    from papersift.bench import relevance

    with _errors():
        relevance.main(folder, embedder, home, answerable)


@bench.command("latency")
@click.option("--papers", "n", default=100_000, show_default=True, type=click.IntRange(1000, 5_000_000))
@click.option(
    "--data",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=Path("../shared/data/arxiv_daily/arxiv_daily_2025-2026.jsonl.gz"),
    show_default=True,
)
@click.option("--embedder", default="minilm-onnx-int8", show_default=True, help="Model that embeds the queries.")
@click.option(
    "--keep",
    type=click.Path(file_okay=False, path_type=Path),
    help="Build into this directory and keep it, so a re-run only measures.",
)
def bench_latency(n: int, data: Path, embedder: str, keep: Path | None) -> None:
    """End-to-end query latency (p50/p99) and serving memory over N papers; JSON summary last."""
    from papersift.bench import latency

    with _errors():
        latency.main(data, n, embedder, keep)


@bench.command("recommend")
@click.option(
    "--data",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=Path("../shared/data/arxiv_daily/arxiv_daily_2025-2026.jsonl.gz"),
    show_default=True,
)
@click.option("--readers", default=300, show_default=True, type=click.IntRange(1, 5000), help="Readers per sample.")
@click.option("--seed", default=12, show_default=True, help="Seed that draws the readers.")
@click.option(
    "--sample",
    type=click.Choice(["test", "validation"]),
    default="test",
    show_default=True,
    help="Report on the test readers; tune on the disjoint validation readers.",
)
@click.option("--split", type=click.DateTime(["%Y-%m-%d"]), default="2026-01-01", show_default=True)
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), help="Only listings from this day (a smaller slice).")
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), help="Only listings before this day.")
@click.option("--min-before", default=5, show_default=True, type=click.IntRange(1, 1000))
@click.option("--min-after", default=3, show_default=True, type=click.IntRange(1, 1000))
def bench_recommend(
    data: Path,
    readers: int,
    seed: int,
    sample: str,
    split: datetime,
    since: datetime | None,
    until: datetime | None,
    min_before: int,
    min_after: int,
) -> None:
    """For-you recall@50 and P@10 on simulated readers, next to tf-idf baselines; JSON summary last."""
    from papersift.bench import recommend

    with _errors():
        recommend.main(
            data,
            readers,
            seed,
            sample,
            split.date(),
            since.date() if since else None,
            until.date() if until else None,
            min_before,
            min_after,
        )


@bench.command("curation")
@click.option(
    "--listings",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=Path("../shared/data/arxiv_daily/arxiv_daily_2025-2026.jsonl.gz"),
    show_default=True,
)
@click.option(
    "--featured",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=Path("../shared/data/hf_daily_papers/hf_daily_featured_papers.jsonl.gz"),
    show_default=True,
)
@click.option(
    "--split",
    "splits",
    multiple=True,
    default=("2025-10-01",),
    show_default=True,
    help="Train before this day, rank the days from it on; repeat for more splits (the first one is summarised).",
)
@click.option(
    "--days", "limit_days", type=click.IntRange(10, None), help="Only the first N listing days (a quick run)."
)
def bench_curation(listings: Path, featured: Path, splits: tuple[str, ...], limit_days: int | None) -> None:
    """Curation of the daily list: P@10 and nDCG@20 of featured papers vs baselines; JSON summary last."""
    from papersift.bench import curation

    days = [d for d in (_parse_day(s, "--split") for s in splits) if d is not None]
    with _errors():
        try:
            curation.main(listings, featured, days, limit_days)
        except ValueError as exc:
            _fail(str(exc))


@main.group()
def curate() -> None:
    """The learned curation of the daily list (picks and their reasons)."""


@curate.command("train")
@click.option("--force", is_flag=True, help="Retrain even when no featured paper, pick or vote changed.")
@click.pass_obj
def curate_train(obj: Context, force: bool) -> None:
    """Retrain when new featured data, picks or votes arrived, then score unscored days (for cron)."""
    from papersift import curate as curation

    with _errors():
        try:
            click.echo(curation.refresh(obj.settings, obj.store, force=force))
        except curation.NotEnoughHistory as exc:
            _fail(str(exc))


main.add_command(digest)

if __name__ == "__main__":
    main()
