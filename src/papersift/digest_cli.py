"""`papersift digest ...`: send digests from cron, preview one, subscribe an address as an admin.

Kept apart from cli.py, which registers the group; like the rest of the CLI it is a thin edge over
`papersift.digest`, turning domain errors into one-line messages and exit status 1.
"""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, cast

import click

from papersift import digest as digests
from papersift.errors import PapersiftError
from papersift.letters import Letters
from papersift.mail import Mailer, SmtpConfig
from papersift.search import SearchEngine
from papersift.store.accounts import Accounts
from papersift.store.subscriptions import FREQUENCIES, Frequency, Subscriptions, Topic

if TYPE_CHECKING:
    from papersift.cli import Context


def _letters(obj: Context) -> Letters:
    from papersift.web.auth import site_secret  # the secret the site signs with: links must verify there

    return Letters.for_settings(obj.settings, site_secret(obj.settings))


def _day(value: str | None) -> date:
    if not value:
        return datetime.now(UTC).date()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date like 2026-06-30", param_hint="--date") from None


def _fail(exc: PapersiftError) -> None:
    click.echo(f"error: {exc}", err=True)
    sys.exit(1)


@click.group()
def digest() -> None:
    """Email digests: send them (from cron), preview one, subscribe an address."""


@digest.command("send")
@click.option("--dry-run", is_flag=True, help="Say what would be sent; send and record nothing.")
@click.option("--date", "day", help="Send for the period containing this day (default today, UTC).")
@click.option(
    "--lease",
    type=click.FloatRange(min=0),
    default=digests.DEFAULT_LEASE.total_seconds() / 60,
    show_default=True,
    help="Minutes after which a digest left half-sent by a crashed run is sent again.",
)
@click.pass_obj
def send(obj: Context, dry_run: bool, day: str | None, lease: float) -> None:
    """Send every due digest once; exit 1 when any address failed (the others still get theirs).

    A run killed mid-send is finished by a later run once --lease has passed: at most one duplicate,
    never a lost digest."""
    when = _day(day)
    try:
        due = bool(Subscriptions(obj.store).active())  # no subscribers: fine without an SMTP server
        mailer = Mailer(SmtpConfig.from_settings(obj.settings)) if due and not dry_run else None
        engine = SearchEngine.open(obj.store, obj.settings)
        run = digests.send_digests(
            obj.store,
            engine,
            obj.settings,
            _letters(obj),
            mailer,
            when,
            dry_run=dry_run,
            echo=click.echo,
            lease=timedelta(minutes=lease),
        )
    except PapersiftError as exc:
        _fail(exc)
        return
    click.echo(run.summary())
    sys.exit(1 if run.failed else 0)


@digest.command("preview")
@click.argument("email")
@click.option("--date", "day", help="Render for the period containing this day (default today, UTC).")
@click.option("--html", "as_html", is_flag=True, help="Print the HTML part instead of the plain text.")
@click.pass_obj
def preview(obj: Context, email: str, day: str | None, as_html: bool) -> None:
    """Print the digests an address would get, without sending or recording anything."""
    when = _day(day)
    try:
        store = obj.store
        subs = [s for s in Subscriptions(store).by_email(email.strip()) if s.active]
        if not subs:
            raise PapersiftError(f"{email} has no active subscription")
        engine, letters = SearchEngine.open(store, obj.settings), _letters(obj)
        for sub in subs:
            period = digests.period_for(when, sub.frequency)
            papers = digests.select_papers(
                store, Accounts(store), engine, obj.settings, sub.topic, period, sub.max_papers
            )
            subject, text, html = letters.digest(sub, period.key, papers)
            state = "" if sub.confirmed else " (not confirmed yet: nothing is sent)"
            click.echo(f"Subject: {subject}{state}\n")
            click.echo(html if as_html else text)
    except PapersiftError as exc:
        _fail(exc)


@digest.command("subscribe")
@click.argument("email")
@click.option("--search", "query", help="A saved search: these words, ranked by relevance.")
@click.option("--category", "-c", multiple=True, help="With --search: only these categories; alone: one category.")
@click.option("--venue", default="", help="With --search: only this venue.")
@click.option("--author", default="", help="Alone: one author's papers; with --search: an author filter.")
@click.option("--like", "seeds", multiple=True, help="Papers like this one (repeat for several).")
@click.option("--trending", is_flag=True, help="The trending list.")
@click.option("--frequency", type=click.Choice(FREQUENCIES), default="daily", show_default=True)
@click.option("--max", "max_papers", type=click.IntRange(1, digests.MAX_PAPERS), default=10, show_default=True)
@click.option("--confirmed", is_flag=True, help="Skip the confirmation email: only for an address you vouch for.")
@click.pass_obj
def subscribe(
    obj: Context,
    email: str,
    query: str | None,
    category: tuple[str, ...],
    venue: str,
    author: str,
    seeds: tuple[str, ...],
    trending: bool,
    frequency: str,
    max_papers: int,
    confirmed: bool,
) -> None:
    """Subscribe EMAIL to one topic; it gets a confirmation link unless --confirmed."""
    if query:
        topic = Topic("search", query, category, venue, author)
    elif seeds:
        topic = Topic("similar", seeds=seeds)
    elif author:
        topic = Topic("author", author)
    elif len(category) == 1:
        topic = Topic("category", category[0])
    elif trending:
        topic = Topic("trending")
    else:
        raise click.UsageError("say what to send: --search, --like, --author, one --category or --trending")
    try:
        mailer = None if confirmed else Mailer(SmtpConfig.from_settings(obj.settings))
        sub_id = digests.subscribe(
            obj.store, _letters(obj), mailer, email, topic, cast(Frequency, frequency), max_papers, confirmed=confirmed
        )
    except PapersiftError as exc:
        _fail(exc)
        return
    verdict = "active" if confirmed else "confirmation link sent"
    click.echo(f"subscription {sub_id}: {email}, {frequency} {topic.describe()} ({verdict})")
