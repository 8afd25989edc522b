"""Email digests: which papers a subscription gets for a period, the signed links, and the send run.

A daily digest covers the listing day it is run for; a weekly one covers the seven days up to it and
goes out on the first run of each ISO week. Papers an earlier digest of the same subscription carried
are left out, so trending and "papers like these" never repeat themselves. An empty digest is not
sent and not recorded, so a later run in the same period (after the day's ingest) can still send it.

A crash mid-send (kill -9, a reboot) leaves that digest claimed at `sending`; once the claim is older
than the lease (DEFAULT_LEASE, `digest send --lease`) the next run sends it again, whatever period it
runs for. The recipient may then get it twice (if the first attempt reached the server), never zero times.
The lease must outlast one send with its retries (a few minutes at most), so a live run is never overtaken.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from email.message import EmailMessage

from papersift import feed
from papersift.errors import PaperNotFound, QueryError
from papersift.letters import CONFIRM_DAYS, Letters
from papersift.mail import ADDRESS_RE, Mailer, MailError, build_message
from papersift.models import Paper
from papersift.rank import for_you
from papersift.search import MAX_LIMIT, Filters, SearchEngine, matches
from papersift.settings import Settings
from papersift.store import Store, authors, listing
from papersift.store.accounts import Accounts
from papersift.store.subscriptions import FREQUENCIES, Frequency, Subscription, Subscriptions, Topic, check_text

__all__ = ["DigestRun", "Period", "period_for", "select_papers", "send_digests", "subscribe", "validate"]

log = logging.getLogger("papersift.digest")
MAX_PAPERS = 50
RELATED_PER_SEED = 50
MAX_QUERY_CHARS = 500
# confirmation mails one mailbox may be sent per day, counted in the store (so across server processes)
ADDRESS_MAILS_PER_DAY = 5
DEFAULT_LEASE = timedelta(minutes=15)


@dataclass(slots=True, frozen=True)
class Period:
    """The span a digest covers and its ledger key (2026-06-30 or 2026-W27)."""

    key: str
    start: date
    end: date


def period_for(day: date, frequency: Frequency) -> Period:
    """The period a run on `day` sends for."""
    if frequency == "weekly":
        year, week, _ = day.isocalendar()
        return Period(f"{year}-W{week:02d}", day - timedelta(days=6), day)
    return Period(day.isoformat(), day, day)


def validate(email: str, topic: Topic, frequency: str, max_papers: int) -> None:
    """Reject a subscription that could never produce a digest, with a message a user can act on."""
    if frequency not in FREQUENCIES:
        raise QueryError(f"frequency must be one of {', '.join(FREQUENCIES)}")
    if not 1 <= max_papers <= MAX_PAPERS:
        raise QueryError(f"a digest holds 1 to {MAX_PAPERS} papers")
    if topic.kind in ("search", "category", "author") and not topic.query.strip():
        what = {"search": "a query", "category": "a category", "author": "an author name"}[topic.kind]
        raise QueryError(f"{'an' if topic.kind == 'author' else 'a'} {topic.kind} subscription needs {what}")
    if topic.kind == "foryou" and not topic.query.isdigit():
        raise QueryError("a 'for you' subscription belongs to a signed-in reader")
    if topic.kind == "similar" and not topic.seeds:
        raise QueryError("a 'papers like these' subscription needs at least one paper id")
    check_text("email address", email)
    topic.check()
    if not ADDRESS_RE.match(email) or len(email) > 254:
        raise QueryError(f"{email!r} does not look like an email address (name@example.org)")
    if len(topic.query) > MAX_QUERY_CHARS or len(topic.seeds) > 20:
        raise QueryError("the query is too long or there are too many seed papers (20 at most)")


def select_papers(
    store: Store,
    accounts: Accounts,
    engine: SearchEngine,
    settings: Settings,
    topic: Topic,
    period: Period,
    limit: int,
    exclude: set[str] | None = None,
) -> list[Paper]:
    """The best `limit` papers for a topic within a period, minus `exclude` (already sent)."""
    exclude = exclude or set()
    depth = min(MAX_LIMIT, 4 * limit + len(exclude))
    dates = Filters(date_from=period.start, date_to=period.end)
    papers: list[Paper]
    if topic.kind == "trending":
        clock = datetime.combine(period.end + timedelta(days=1), time(), UTC)
        items = feed.trending(
            store, accounts, gravity=settings.trending_gravity, days=settings.trending_days, limit=depth, now=clock
        )
        papers = [it.paper for it in items]
    elif topic.kind == "category":
        rows, _ = listing.papers_between(store, accounts, period.start, period.end, category=topic.query, limit=depth)
        papers = [p for p, _ in rows]
    elif topic.kind == "author":
        papers = author_papers(store, engine, topic.query, depth, period.start, period.end)
    elif topic.kind == "foryou":
        picks = for_you.rank_between(store, accounts, int(topic.query), period.start, period.end, limit, exclude)
        papers = [r.paper for r in picks]
    elif topic.kind == "search":
        filters = Filters(period.start, period.end, topic.categories, topic.venue, topic.author)
        papers = [h.paper for h in engine.search(topic.query, depth, filters, match="all")]  # an alert: every word
    else:
        papers = _like(engine, topic.seeds, dates)
    return [p for p in papers if p.id not in exclude and not p.hidden][:limit]


def author_papers(
    store: Store, engine: SearchEngine, name: str, limit: int, start: date | None = None, end: date | None = None
) -> list[Paper]:
    """An author's papers, newest first: those whose author list holds `name` as written (case, Unicode
    form and spacing aside; `papersift.store.authors`), the author page's rule. A name no paper holds
    that way (a surname alone, typed into the subscribe form) keeps the search filter's substring match."""
    if authors.known(store, name):
        return authors.papers_by(store, name, limit, start=start, end=end).papers
    words = [w.strip(".,;") for w in name.split()]
    surname = next((w for w in reversed(words) if len(w) > 1), "")
    if not surname:
        return []
    hits = engine.search(surname, min(MAX_LIMIT, 4 * limit), Filters(start, end, author=surname), "date")
    wanted = Filters(author=" ".join(name.split()))
    return [h.paper for h in hits if matches(h.paper, wanted)][:limit]


def _like(engine: SearchEngine, seeds: tuple[str, ...], dates: Filters) -> list[Paper]:
    """Papers like all the seeds: each seed's related list fused by reciprocal rank, within the dates."""
    scores: dict[str, float] = {}
    found: dict[str, Paper] = {}
    for seed in seeds:
        try:
            hits = engine.related(seed, RELATED_PER_SEED)
        except PaperNotFound:
            continue  # a seed paper that was removed should not silence the whole digest
        for hit in hits:
            if hit.paper.id in seeds or not matches(hit.paper, dates):
                continue
            scores[hit.paper.id] = scores.get(hit.paper.id, 0.0) + 1.0 / (60 + hit.rank)
            found[hit.paper.id] = hit.paper
    return [found[pid] for pid in sorted(scores, key=lambda pid: (-scores[pid], pid))]


@dataclass(slots=True)
class DigestRun:
    """What a send run did, for the summary line and the exit status."""

    sent: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    already: int = 0
    empty: int = 0
    would_send: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{len(self.sent)} sent", f"{len(self.failed)} failed", f"{self.already} already sent"]
        parts.append(f"{self.empty} empty")
        if self.would_send:
            parts.append(f"{len(self.would_send)} would be sent (dry run)")
        return "digest: " + ", ".join(parts)


def send_digests(
    store: Store,
    engine: SearchEngine,
    settings: Settings,
    letters: Letters,
    mailer: Mailer | None,
    day: date,
    *,
    dry_run: bool = False,
    echo: Callable[[str], None] = lambda _line: None,
    lease: timedelta = DEFAULT_LEASE,
) -> DigestRun:
    """One digest per active subscription for the period containing `day`; one failure stops nobody.
    Digests a crashed run left at `sending` for longer than `lease` are sent first, with their papers."""
    subs, accounts = Subscriptions(store), Accounts(store)
    run = DigestRun()
    active = {sub.id: sub for sub in subs.active()}
    if not dry_run:
        for sub_id, period_key, _ in subs.stale_claims(lease):
            if sub_id in active:
                _resend(store, subs, letters, mailer, active[sub_id], period_key, lease, run, echo)
    for sub in active.values():
        period = period_for(day, sub.frequency)
        label = f"{sub.email} #{sub.id} {period.key}"
        if subs.status(sub.id, period.key) in ("sending", "sent"):
            run.already += 1
            continue
        try:
            papers = select_papers(
                store, accounts, engine, settings, sub.topic, period, sub.max_papers, subs.sent_papers(sub.id)
            )
        except QueryError as exc:
            run.failed.append(label)
            echo(f"failed: {label}: {exc}")
            continue
        if not papers:
            run.empty += 1
            continue
        if dry_run:
            run.would_send.append(label)
            echo(f"would send: {label}: {len(papers)} papers")
            continue
        claimed = subs.claim(sub.id, period.key, [p.id for p in papers], lease)
        if claimed is None:
            run.already += 1
            continue
        _deliver(subs, letters, mailer, sub, period.key, papers, claimed, run, echo)
    return run


def _resend(
    store: Store,
    subs: Subscriptions,
    letters: Letters,
    mailer: Mailer | None,
    sub: Subscription,
    period_key: str,
    lease: timedelta,
    run: DigestRun,
    echo: Callable[[str], None],
) -> None:
    """Send again a digest whose sender died mid-send: the same papers, under the same period."""
    taken = subs.take_over(sub.id, period_key, lease)
    if taken is None:
        return  # another run took it over first
    claimed, ids = taken
    found = store.get_many(ids)
    papers = [found[pid] for pid in ids if pid in found and not found[pid].hidden]
    if not papers:
        subs.finish(sub.id, period_key, claimed, ok=False, error="its papers are gone from the store")
        return
    echo(f"resending an interrupted digest: {sub.email} #{sub.id} {period_key}")
    _deliver(subs, letters, mailer, sub, period_key, papers, claimed, run, echo)


def _deliver(
    subs: Subscriptions,
    letters: Letters,
    mailer: Mailer | None,
    sub: Subscription,
    period_key: str,
    papers: list[Paper],
    claimed: datetime,
    run: DigestRun,
    echo: Callable[[str], None],
) -> None:
    label = f"{sub.email} #{sub.id} {period_key}"
    assert mailer is not None
    try:
        mailer.send(digest_message(letters, mailer.config.sender, sub, period_key, papers))
    except MailError as exc:
        subs.finish(sub.id, period_key, claimed, ok=False, error=str(exc))
        run.failed.append(label)
        echo(f"failed: {exc}")
        log.warning("digest to %s failed: %s", label, exc)
        return
    if not subs.finish(sub.id, period_key, claimed, ok=True):
        log.warning("digest to %s was sent after its claim expired (raise --lease)", label)
    run.sent.append(label)
    echo(f"sent: {label}: {len(papers)} papers")


def digest_message(
    letters: Letters, sender: str, sub: Subscription, period_key: str, papers: list[Paper]
) -> EmailMessage:
    """The digest email with its one-click unsubscribe headers (RFC 2369 + RFC 8058)."""
    subject, text, html = letters.digest(sub, period_key, papers)
    unsubscribe = letters.unsubscribe_url(sub.id)
    headers = {"List-Unsubscribe": f"<{unsubscribe}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    return build_message(sender, sub.email, subject, text, html, headers)


def subscribe(
    store: Store,
    letters: Letters,
    mailer: Mailer | None,
    email: str,
    topic: Topic,
    frequency: Frequency = "daily",
    max_papers: int = 10,
    *,
    confirmed: bool = False,
) -> int:
    """Record a subscription and mail its confirmation link (double opt-in); returns its id.

    A request identical to one still pending (or active) mails nothing and returns that one's id; a mailbox
    sent ADDRESS_MAILS_PER_DAY confirmations in the last day raises RateLimited. Only an admin at the
    command line may pass confirmed=True, for an address they vouch for.
    """
    email = email.strip()
    validate(email, topic, frequency, max_papers)
    subs = Subscriptions(store)
    if confirmed:
        return subs.create(email, topic, frequency, max_papers, confirmed=True)
    if mailer is None:
        raise MailError("confirmation emails need an SMTP server: set PAPERSIFT_SMTP_HOST")
    pending_for = timedelta(days=CONFIRM_DAYS)
    sub_id, due = subs.request(
        email, topic, frequency, max_papers, per_day=ADDRESS_MAILS_PER_DAY, pending_for=pending_for
    )
    if due:
        sub = subs.get(sub_id)
        assert sub is not None
        subject, text, html = letters.confirmation(sub)
        try:
            mailer.send(build_message(mailer.config.sender, email, subject, text, html))
        except MailError:
            subs.discard(sub_id)  # else a retry would be taken for a pending repeat and mail nothing
            raise
    return sub_id
